"""Read the kernel's seccomp audit records (SCMP_ACT_LOG) from the audit netlink socket.

A filter whose action is SCMP_ACT_LOG lets every call through and has the kernel
write one AUDIT_SECCOMP record per call. /dev/kmsg rate-limits those records,
but the audit netlink multicast group AUDIT_NLGRP_READLOG delivers all of them,
so it gives the ground truth of what a process made after its filter was
installed. Reading it needs CAP_AUDIT_READ, and no audit daemon is involved.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_SECCOMP = 1326
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_RECEIVE_BUFFER = 8 * 1024 * 1024
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')

# AUDIT_ARCH_* values (linux/audit.h) as the records print them, by seccomp architecture.
AUDIT_ARCHITECTURES = {
    "c000003e": "SCMP_ARCH_X86_64",
    "40000003": "SCMP_ARCH_X86",
    "c00000b7": "SCMP_ARCH_AARCH64",
    "40000028": "SCMP_ARCH_ARM",
}
X32_SYSCALL_BIT = 0x40000000


@dataclass(frozen=True)
class SeccompRecord:
    pid: int
    comm: str
    architecture: str
    syscall: int
    # The executable's path as the task sees it, e.g. /bin/busybox inside a container.
    exe: str = ""


def parse_record(text: str) -> SeccompRecord | None:
    """Parse the text of one AUDIT_SECCOMP record; None when a field is missing."""
    fields = {key: value.strip('"') for key, value in _FIELD.findall(text)}
    try:
        arch = fields["arch"].lower()
        number = int(fields["syscall"])
        pid = int(fields["pid"])
    except (KeyError, ValueError):
        return None
    architecture = AUDIT_ARCHITECTURES.get(arch, f"audit-arch-{arch}")
    if architecture == "SCMP_ARCH_X86_64" and number & X32_SYSCALL_BIT:
        architecture = "SCMP_ARCH_X32"
    return SeccompRecord(pid=pid, comm=fields.get("comm", ""), architecture=architecture,
                         syscall=number, exe=fields.get("exe", ""))


class SeccompAuditReader:
    """Collect AUDIT_SECCOMP records in a background thread while the reader is open.

    Use as a context manager around the run to observe; `records` contains what arrived.
    `mark()` and `since(mark)` separate the records of consecutive runs.
    """

    def __init__(self) -> None:
        self.records: list[SeccompRecord] = []
        self.lost_messages = 0
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        audit = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        try:
            audit.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            audit.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
        except OSError:
            audit.close()
            raise
        audit.settimeout(0.1)
        self._socket = audit
        self._thread = threading.Thread(target=self._read, name="seccomp-audit", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def mark(self) -> int:
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[SeccompRecord]:
        with self._lock:
            return list(self.records[mark:])

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError as error:
                # ENOBUFS: the socket's buffer overflowed and the kernel dropped messages.
                self.lost_messages += 1
                logger.warning("audit netlink receive failed: %s", error)
                continue
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _flags, _sequence, _pid = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            if kind == AUDIT_SECCOMP:
                text = data[offset + _HEADER.size: offset + length].decode(errors="replace")
                record = parse_record(text)
                if record is not None:
                    with self._lock:
                        self.records.append(record)
            offset += (length + 3) & ~3
