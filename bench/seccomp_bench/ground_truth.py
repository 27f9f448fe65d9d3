"""The two ground truths part 3 compares recorded profiles with: strace and SCMP_ACT_LOG.

- `strace_names` reads `strace -f -o FILE` output. From a whole `runc run` it
  keeps only the container: the process that executes the entrypoint, from that
  execve on, and every process it creates afterwards.
- `SessionAuditReader` collects the AUDIT_SECCOMP records of SCMP_ACT_LOG runs
  from the audit netlink multicast group, grouped by audit session, so the
  records of one run are separated from those of every other process on the
  machine (bench/c/audit_exec.c starts each run in a session of its own).
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from seccomp_devcluster.auditlog import (
    AUDIT_NLGRP_READLOG,
    AUDIT_SECCOMP,
    NETLINK_AUDIT,
    parse_record,
)
from seccomp_recorder.syscalls import tables

logger = logging.getLogger(__name__)

# One line of `strace -f -qq`: a call, the rest of a call (`<... NAME resumed>`), a
# signal (`--- SIGCHLD ... ---`) or an exit (`+++ exited with 0 +++`).
_CALL = re.compile(r"^(?P<pid>\d+)\s+(?:<\.\.\. (?P<resumed>\w+) resumed>|(?P<call>\w+)\()")
# strace prints `???` for a call it could not read, such as the one a task was in when
# another thread's exit_group or a SIGKILL ended it: no name to compare, so skipped.
_NOT_A_CALL = re.compile(r"^\d+\s+(?:(?:---|\+\+\+) |\?\?\?\(|<\.\.\. \?\?\? resumed>)")
# The end of a call that returned a number: the child's pid for the calls below. Under
# --pidns-translation, strace adds the pid as its own namespace numbers it, which is the
# one its first column uses for a process in another pid namespace (a container's).
_RETURNED = re.compile(
    r"\)\s+=\s+(?P<value>\d+)(?:\s+/\* (?P<translated>\d+) in strace's PID NS \*/)?\s*$"
)
_PROCESS_CREATORS = frozenset({"clone", "clone3", "fork", "vfork"})
_SESSION = re.compile(r"\bses=(\d+)")
_HEADER_SIZE = 16  # struct nlmsghdr, in the host's byte order
# Bytes of socket buffer for records that arrive faster than this thread parses them.
# SO_RCVBUFFORCE (root) goes past net.core.rmem_max, which caps SO_RCVBUF.
_RECEIVE_BUFFER = 64 * 1024 * 1024
SO_RCVBUFFORCE = 33


@dataclass
class _Line:
    pid: int
    name: str
    text: str
    resumed: bool


def _parse_strace(output: str) -> list[_Line]:
    lines = []
    for text in output.splitlines():
        match = _CALL.match(text)
        if match:
            name = match.group("resumed") or match.group("call")
            lines.append(
                _Line(int(match.group("pid")), name, text, match.group("resumed") is not None)
            )
        elif not _NOT_A_CALL.match(text):
            raise ValueError(f"unexpected line in strace output: {text!r}")
    return lines


def strace_names(output: str, entrypoint: str | None = None) -> set[str]:
    """Return the syscall names in `strace -f -qq --pidns-translation -o FILE` output.

    With `entrypoint` (a path such as "/bin/sh"), keep only the process whose
    successful execve of that path comes first, from that call on, and the
    processes it and its descendants create. Raises ValueError for a line that is
    no call, signal or exit, so a change of strace's format cannot hide calls, and
    when the entrypoint's execve is not found.
    """
    lines = _parse_strace(output)
    if entrypoint is None:
        return {line.name for line in lines}

    start = _entrypoint_execve(lines, entrypoint)
    if start is None:
        raise ValueError(f"no successful execve of {entrypoint} in the strace output")

    children: dict[int, list[int]] = defaultdict(list)
    for line in lines[start:]:
        if line.name in _PROCESS_CREATORS:
            returned = _RETURNED.search(line.text)
            if returned and int(returned.group("value")) > 0:
                child = returned.group("translated") or returned.group("value")
                children[line.pid].append(int(child))
    container = {lines[start].pid}
    pending = [lines[start].pid]
    while pending:
        for child in children[pending.pop()]:
            if child not in container:
                container.add(child)
                pending.append(child)
    return {line.name for line in lines[start:] if line.pid in container}


def _entrypoint_execve(lines: list[_Line], entrypoint: str) -> int | None:
    """Return the index of the first successful execve of `entrypoint`.

    strace splits a call that another process interrupts into `execve(... <unfinished ...>`
    and `<... execve resumed>) = 0`, so the result may be on a later line.
    """
    for index, line in enumerate(lines):
        if line.name != "execve" or line.resumed:
            continue
        if not line.text.split("(", 1)[1].startswith(f'"{entrypoint}"'):
            continue
        if line.text.endswith("<unfinished ...>"):
            result = next(
                (
                    later
                    for later in lines[index + 1 :]
                    if later.pid == line.pid and later.resumed and later.name == "execve"
                ),
                None,
            )
            if result is not None and result.text.rstrip().endswith("= 0"):
                return index
        elif line.text.rstrip().endswith("= 0"):
            return index
    return None


@dataclass
class _Sessions:
    numbers: dict[int, set[tuple[str, int]]] = field(default_factory=lambda: defaultdict(set))
    records: int = 0


class SessionAuditReader:
    """Collect AUDIT_SECCOMP records by audit session while the reader is open.

    The project's SeccompAuditReader keeps no session, so this one reads the
    same multicast group with the same record parser and files each call under
    the `ses=` field of its record.
    """

    def __init__(self) -> None:
        self.receive_errors = 0
        self._sessions = _Sessions()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        audit = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        try:
            audit.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RECEIVE_BUFFER)
            audit.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
        except OSError:
            audit.close()
            raise
        audit.settimeout(0.1)
        self._socket = audit
        self._thread = threading.Thread(target=self._read, name="bench-audit", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._socket is not None:
            self._socket.close()

    def wait_for_quiet(self, quiet: float = 0.3) -> None:
        """Wait until no record has arrived for `quiet` seconds: delivery is asynchronous."""
        count = -1
        while True:
            with self._lock:
                current = self._sessions.records
            if current == count:
                return
            count = current
            time.sleep(quiet)

    def names(self, session: int) -> tuple[set[str], set[str]]:
        """Return the syscall names logged in `session`, and the numbers no table names."""
        with self._lock:
            numbers = set(self._sessions.numbers.get(session, set()))
        names: set[str] = set()
        unnamed: set[str] = set()
        for architecture, number in numbers:
            name = tables.syscall_name(architecture, number)
            if name is None:
                unnamed.add(f"{architecture}:{number}")
            else:
                names.add(name)
        return names, unnamed

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError as error:
                # ENOBUFS: the socket's buffer overflowed and the kernel dropped records.
                self.receive_errors += 1
                logger.warning("audit netlink receive failed: %s", error)
                continue
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        calls = parse_messages(data)
        with self._lock:
            for session, architecture, number in calls:
                self._sessions.numbers[session].add((architecture, number))
            self._sessions.records += len(calls)


def parse_messages(data: bytes) -> list[tuple[int, str, int]]:
    """Return (session, architecture, syscall number) of each AUDIT_SECCOMP message in `data`.

    `data` is what one recv() on the audit socket returned: netlink messages, each
    padded to 4 bytes. Records without a session or a parsable call are skipped.
    """
    calls = []
    offset = 0
    while offset + _HEADER_SIZE <= len(data):
        length = int.from_bytes(data[offset : offset + 4], sys.byteorder)
        kind = int.from_bytes(data[offset + 4 : offset + 6], sys.byteorder)
        if length < _HEADER_SIZE:
            break
        if kind == AUDIT_SECCOMP:
            text = data[offset + _HEADER_SIZE : offset + length].decode(errors="replace")
            record = parse_record(text)
            session = _SESSION.search(text)
            if record is not None and session is not None:
                calls.append((int(session.group(1)), record.architecture, record.syscall))
        offset += (length + 3) & ~3
    return calls
