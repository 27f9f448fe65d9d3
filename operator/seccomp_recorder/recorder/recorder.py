"""Load the recorder's BPF program, point it at tasks, and read what it recorded.

The command line records one process tree (`Mode.COMMAND_TREE`): user space
registers the first task and the kernel follows its forks. The node agent
records every container on its node (`Mode.ALL_CONTAINERS`): every task outside
the host's mount namespace. Either way the results are keyed by mount namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from seccomp_recorder.recorder import libbpf
from seccomp_recorder.recorder.errors import (
    BpfObjectMissing,
    BpfPermissionDenied,
    BtfMissing,
    KernelTooOld,
    RecorderError,
    TracepointMissing,
)
from seccomp_recorder.recorder.maps import (
    STAT_COUNT,
    SYSCALL_SLOTS,
    TASK_NEEDS_BASE_FILTER,
    X32_SYSCALL_BIT,
    Abi,
    Event,
    EventType,
    ExecInfo,
    OddSyscallKey,
    Phase,
    RecorderConfig,
    Stat,
    SyscallKey,
    SyscallSet,
    TaskState,
)

logger = logging.getLogger(__name__)

DEFAULT_BTF_PATH = Path("/sys/kernel/btf/vmlinux")
DEFAULT_OBJECT_PATH = Path(__file__).parent / "bpf" / "recorder.bpf.o"
# Ring buffers (5.8) are the newest kernel feature the program needs.
MINIMUM_KERNEL = (5, 8)

# Effective capability bits (linux/capability.h).
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


class Mode(enum.Enum):
    COMMAND_TREE = "command-tree"
    ALL_CONTAINERS = "all-containers"


@dataclass(frozen=True)
class RecorderSettings:
    """Paths of the recorder's BPF object and of the kernel's BTF.

    Read once at start from flags or from SECCOMP_RECORDER_BPF_OBJECT and
    SECCOMP_RECORDER_BTF; a BTF path other than the default is handed to libbpf
    as a custom BTF for the CO-RE relocations.
    """

    object_path: Path = DEFAULT_OBJECT_PATH
    btf_path: Path = DEFAULT_BTF_PATH

    @classmethod
    def from_environment(
        cls, *, object_path: Path | None = None, btf_path: Path | None = None
    ) -> RecorderSettings:
        environment_object = os.environ.get("SECCOMP_RECORDER_BPF_OBJECT")
        environment_btf = os.environ.get("SECCOMP_RECORDER_BTF")
        return cls(
            object_path=object_path
            or (Path(environment_object) if environment_object else DEFAULT_OBJECT_PATH),
            btf_path=btf_path or (Path(environment_btf) if environment_btf else DEFAULT_BTF_PATH),
        )


@dataclass(frozen=True)
class ExecRecord:
    """The first execve out of the runtime's setup in one mount namespace."""

    pid: int
    filtered: bool
    no_new_privs: bool
    runtime_comm: str


@dataclass(frozen=True)
class MapUsage:
    """Entries in a BPF map and its capacity."""

    entries: int
    max_entries: int

    @property
    def fill_ratio(self) -> float:
        """entries / max_entries, 0 for a map without capacity."""
        return self.entries / self.max_entries if self.max_entries else 0.0


@dataclass
class NamespaceRecording:
    """Everything recorded in one mount namespace.

    `numbers[phase][abi]` contains raw syscall numbers as the kernel saw them
    (x32 numbers with their 0x40000000 bit).
    """

    mntns: int
    numbers: dict[Phase, dict[Abi, set[int]]] = field(default_factory=dict)
    exec_record: ExecRecord | None = None

    def add(self, phase: Phase, abi: Abi, number: int) -> None:
        self.numbers.setdefault(phase, {}).setdefault(abi, set()).add(number)

    def phases(self) -> set[Phase]:
        return {phase for phase, by_abi in self.numbers.items() if any(by_abi.values())}


def mount_namespace_of(pid: int | str = "self") -> int:
    """Return the inode number of a process's mount namespace."""
    return os.stat(f"/proc/{pid}/ns/mnt").st_ino


def _kernel_version() -> tuple[int, int]:
    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        logger.warning("cannot parse the kernel release %r; assuming it is recent", release)
        return MINIMUM_KERNEL


def _effective_capabilities() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_prerequisites(settings: RecorderSettings) -> None:
    """Raise a RecorderError naming what is missing and what to do, or return."""
    version = _kernel_version()
    if version < MINIMUM_KERNEL:
        raise KernelTooOld(
            f"kernel {os.uname().release} is too old: the recorder needs Linux "
            f"{MINIMUM_KERNEL[0]}.{MINIMUM_KERNEL[1]} or newer (BPF ring buffers); "
            "upgrade the kernel of this node"
        )
    if not settings.btf_path.is_file():
        raise BtfMissing(
            f"kernel BTF not found at {settings.btf_path}: the recorder needs a kernel built "
            "with CONFIG_DEBUG_INFO_BTF=y, or a BTF file for this exact kernel passed with "
            "--btf or SECCOMP_RECORDER_BTF (for example one from BTFHub)"
        )
    if not os.access(settings.btf_path, os.R_OK):
        raise BtfMissing(f"kernel BTF at {settings.btf_path} is not readable: run as root")
    if not settings.object_path.is_file():
        raise BpfObjectMissing(
            f"BPF object not found at {settings.object_path}: build it with `make bpf` "
            "(needs clang and libbpf-dev), or pass its path with --bpf-object or "
            "SECCOMP_RECORDER_BPF_OBJECT"
        )
    capabilities = _effective_capabilities()
    has_bpf = capabilities & (1 << CAP_BPF) and capabilities & (1 << CAP_PERFMON)
    if not (has_bpf or capabilities & (1 << CAP_SYS_ADMIN)):
        raise BpfPermissionDenied(
            "no permission to load BPF programs: run as root, or grant CAP_BPF and "
            "CAP_PERFMON (CAP_SYS_ADMIN on kernels before 5.8)"
        )


def _explain(error: OSError, what: str) -> RecorderError:
    details = "; ".join(libbpf.recent_messages()[-5:])
    suffix = f" (libbpf: {details})" if details else ""
    if error.errno in (errno.EPERM, errno.EACCES):
        return BpfPermissionDenied(
            f"{what} was denied ({error.strerror}): run as root, or grant CAP_BPF and "
            f"CAP_PERFMON; a lockdown or seccomp policy may also forbid bpf(){suffix}"
        )
    if error.errno == errno.ENOENT and "attach" in what:
        return TracepointMissing(
            f"{what} failed: a raw tracepoint the recorder needs (raw_syscalls:sys_enter, "
            "sched:sched_process_fork/exec/exit) is missing; the kernel needs "
            f"CONFIG_FTRACE_SYSCALLS and CONFIG_TRACEPOINTS{suffix}"
        )
    return RecorderError(f"{what} failed: {error.strerror or error}{suffix}")


class Recorder:
    """One loaded and attached copy of the recorder's BPF program.

    NB: close() detaches the programs; a Recorder left open keeps recording.
    """

    def __init__(
        self,
        mode: Mode,
        *,
        settings: RecorderSettings | None = None,
        host_mntns: int | None = None,
        pin_directory: Path | None = None,
    ) -> None:
        self.mode = mode
        self.settings = settings or RecorderSettings.from_environment()
        self.host_mntns = host_mntns if host_mntns is not None else mount_namespace_of()
        # With a pin directory on a BPF filesystem, the maps and the attached programs
        # outlive this process, so a restarted agent resumes without losing a call.
        self.pin_directory = pin_directory
        self.resumed = False
        self._object: libbpf.Object | None = None
        self._ring: libbpf.RingBuffer | None = None
        self._events: list[Event] = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        check_prerequisites(self.settings)
        custom_btf = None if self.settings.btf_path == DEFAULT_BTF_PATH else self.settings.btf_path
        try:
            self._object = libbpf.Object(self.settings.object_path, btf_path=custom_btf)
        except OSError as error:
            raise _explain(error, f"opening BPF object {self.settings.object_path}") from error

        config = RecorderConfig(
            all_containers=int(self.mode is Mode.ALL_CONTAINERS), host_mntns=self.host_mntns
        )
        try:
            # A BTF file given by hand serves CO-RE relocations only, and tp_btf programs
            # cannot attach with it, so the raw tracepoint entry point is loaded instead.
            self._object.skip_program(
                SYS_ENTER_RAW if custom_btf is None else SYS_ENTER_BTF
            )
            self._object.set_read_only_data(bytes(config))
            if self.pin_directory is not None:
                self._prepare_pins(self._object, self.pin_directory)
            self._object.load()
        except OSError as error:
            self.close()
            raise _explain(error, "loading the recorder's BPF program") from error
        try:
            if self.resumed:
                self._object.adopt_pinned_links(self._link_pin)
            else:
                self._object.attach_all()
                if self.pin_directory is not None:
                    self._object.pin_links(self._link_pin)
        except OSError as error:
            self.close()
            raise _explain(error, "attaching the recorder's BPF programs") from error
        self._ring = libbpf.RingBuffer(self._object.map("events"), self._on_event)
        logger.info(
            "recorder %s in %s mode (host mount namespace %d)",
            "resumed from its pinned maps and links" if self.resumed else "attached",
            self.mode.value,
            self.host_mntns,
        )

    def _link_pin(self, program: str) -> Path:
        assert self.pin_directory is not None
        return self.pin_directory / f"link-{program}"

    def _prepare_pins(self, bpf: libbpf.Object, directory: Path) -> None:
        """Point every map at its pin, and find out whether a previous agent left them."""
        check_pin_directory(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in PINNED_MAPS:
            bpf.set_pin_path(name, directory / f"map-{name}")
        links = [self._link_pin(program) for program in bpf.program_names()]
        self.resumed = all(link.exists() for link in links)
        if not self.resumed:
            # Leftovers of an interrupted start, or of programs this start does not load:
            # detach them and begin afresh.
            for link in directory.glob("link-*"):
                link.unlink(missing_ok=True)

    def unpin(self) -> None:
        """Detach the programs and drop the pinned maps: the end of recording on this node."""
        if self.pin_directory is None:
            return
        for path in self.pin_directory.glob("link-*"):
            path.unlink(missing_ok=True)
        for path in self.pin_directory.glob("map-*"):
            path.unlink(missing_ok=True)
        try:
            self.pin_directory.rmdir()
        except OSError as error:
            logger.warning("cannot remove pin directory %s: %s", self.pin_directory, error)

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self._object is not None:
            self._object.close()
            self._object = None

    @property
    def _bpf(self) -> libbpf.Object:
        if self._object is None:
            raise RecorderError("the recorder is not started")
        return self._object

    def track(self, pid: int, phase: Phase = Phase.SETUP) -> None:
        """Record task `pid` and every task it forks from now on.

        In SETUP, as a launcher between fork and execve is, the task's calls count
        as the workload's only after its execve (or after a seccomp filter install).
        """
        state = TaskState(
            mntns=mount_namespace_of(pid), phase=phase, flags=TASK_NEEDS_BASE_FILTER
        )
        self._bpf.map("task_states").update(ctypes.c_uint32(pid), state)

    def tracked_tasks(self) -> int:
        """Count the live tasks the recorder follows."""
        return sum(1 for _ in self._bpf.map("task_states").keys(ctypes.c_uint32))

    def _on_event(self, data: bytes) -> None:
        self._events.append(Event.from_buffer_copy(data[: ctypes.sizeof(Event)]))

    def poll_events(self, timeout_ms: int = 0) -> list[Event]:
        """Return the events the kernel sent since the last call."""
        if self._ring is not None:
            self._ring.poll(timeout_ms)
        events, self._events = self._events, []
        return events

    def stats(self) -> dict[Stat, int]:
        """Sum the per-CPU counters of what the kernel side could not keep."""
        stats_map = self._bpf.map("stats")
        cpus = os.cpu_count() or 1
        # NB: a per-CPU value has one 8-byte slot for every possible CPU.
        possible = _possible_cpus() or cpus
        totals: dict[Stat, int] = {}
        for index in range(STAT_COUNT):
            values = (ctypes.c_uint64 * possible)()
            stats_map.lookup(ctypes.c_uint32(index), values)
            totals[Stat(index)] = sum(values)
        return totals

    def map_usage(self) -> dict[str, MapUsage]:
        """Count the entries of the maps that fill up as tasks and namespaces come.

        A full `syscall_sets` or `task_states` map loses calls (counted in `stats()`), so
        a fill ratio near 1 warns before that happens. Counting walks every key, one
        bpf() call each, so call it at a snapshot interval rather than per event.
        """
        bpf = self._bpf
        usage = {}
        for name, key_type in FILLING_MAPS.items():
            bpf_map = bpf.map(name)
            entries = sum(1 for _ in bpf_map.keys(key_type))
            usage[name] = MapUsage(entries=entries, max_entries=bpf_map.max_entries)
        return usage

    def _keys_by_namespace(self) -> Iterator[SyscallKey]:
        for raw in self._bpf.map("syscall_sets").keys(SyscallKey):
            yield SyscallKey.from_buffer_copy(raw)

    def namespaces(self) -> set[int]:
        """Return the mount namespaces that have anything recorded, reading keys only."""
        bpf = self._bpf
        found = {SyscallKey.from_buffer_copy(raw).mntns for raw in bpf.map("syscall_sets").keys(SyscallKey)}
        found |= {
            OddSyscallKey.from_buffer_copy(raw).mntns
            for raw in bpf.map("odd_syscalls").keys(OddSyscallKey)
        }
        found |= {
            ctypes.c_uint32.from_buffer_copy(raw).value
            for raw in bpf.map("exec_infos").keys(ctypes.c_uint32)
        }
        return found

    def snapshot(self, mntns: int | None = None) -> dict[int, NamespaceRecording]:
        """Read what was recorded, for one mount namespace or all, leaving it in place."""
        return self._read(mntns, delete=False)

    def collect(self, mntns: int) -> NamespaceRecording:
        """Read and then delete everything recorded for `mntns`.

        Called when the namespace's container has exited, because the kernel
        reuses the inode number for later mount namespaces.
        """
        recordings = self._read(mntns, delete=True)
        return recordings.get(mntns, NamespaceRecording(mntns))

    def _read(self, mntns: int | None, *, delete: bool) -> dict[int, NamespaceRecording]:
        bpf = self._bpf
        recordings: dict[int, NamespaceRecording] = {}
        sets = bpf.map("syscall_sets")
        value = SyscallSet()
        for key in list(self._keys_by_namespace()):
            if mntns is not None and key.mntns != mntns:
                continue
            if not sets.lookup(key, value):
                continue
            recording = recordings.setdefault(key.mntns, NamespaceRecording(key.mntns))
            abi = Abi(key.abi)
            for slot in range(SYSCALL_SLOTS):
                if value.seen[slot]:
                    number = slot | X32_SYSCALL_BIT if abi is Abi.X32 else slot
                    recording.add(Phase(key.phase), abi, number)
            if delete:
                sets.delete(key)

        odd = bpf.map("odd_syscalls")
        for raw in list(odd.keys(OddSyscallKey)):
            odd_key = OddSyscallKey.from_buffer_copy(raw)
            if mntns is not None and odd_key.mntns != mntns:
                continue
            recording = recordings.setdefault(odd_key.mntns, NamespaceRecording(odd_key.mntns))
            recording.add(Phase(odd_key.phase), Abi(odd_key.abi), odd_key.nr)
            if delete:
                odd.delete(odd_key)

        exec_infos = bpf.map("exec_infos")
        info = ExecInfo()
        for raw in list(exec_infos.keys(ctypes.c_uint32)):
            namespace = ctypes.c_uint32.from_buffer_copy(raw).value
            if mntns is not None and namespace != mntns:
                continue
            if not exec_infos.lookup(ctypes.c_uint32(namespace), info):
                continue
            recording = recordings.setdefault(namespace, NamespaceRecording(namespace))
            recording.exec_record = ExecRecord(
                pid=info.pid,
                filtered=bool(info.filtered),
                no_new_privs=bool(info.no_new_privs),
                runtime_comm=info.runtime_comm.decode(errors="replace"),
            )
            if delete:
                exec_infos.delete(ctypes.c_uint32(namespace))
        return recordings


BPF_FS_MAGIC = 0xCAFE4A11
# Maps pinned for a restart; the internal .rodata is not, because it never changes.
PINNED_MAPS = ("task_states", "syscall_sets", "odd_syscalls", "exec_infos", "events", "stats")
# Maps whose fill `map_usage` reports, with their key types.
FILLING_MAPS: dict[str, type[ctypes.Structure | ctypes.c_uint32]] = {
    "syscall_sets": SyscallKey,
    "task_states": ctypes.c_uint32,
}
# The two entry points of sys_enter; a start loads one of them.
SYS_ENTER_BTF = "record_sys_enter"
SYS_ENTER_RAW = "record_sys_enter_raw"


def check_pin_directory(directory: Path) -> None:
    """Raise OSError(EINVAL) unless `directory`, or its nearest existing parent, is on bpffs.

    The default pin directory, /sys/fs/bpf/seccomp-recorder/<node>, is two levels below
    the mount point and does not exist on a fresh node, so its parent may not exist either.
    """
    existing = directory
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not _on_bpf_filesystem(existing):
        raise OSError(
            errno.EINVAL,
            f"pin directory {directory} is not on a BPF filesystem: mount one there "
            "(mount -t bpf bpf /sys/fs/bpf) or choose another directory",
        )


def _on_bpf_filesystem(path: Path) -> bool:
    """Tell whether `path` is on a BPF filesystem (bpffs), where maps and links can be pinned."""
    class _StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buffer = _StatFs()
    if libc.statfs(os.fsencode(path), ctypes.byref(buffer)) != 0:
        return False
    return (int(buffer.f_type) & 0xFFFFFFFF) == BPF_FS_MAGIC


def _possible_cpus() -> int:
    """Count the CPUs the kernel sizes per-CPU maps for (/sys/devices/system/cpu/possible)."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    except OSError:
        return 0
    total = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        total += (int(last) if last else int(first)) - int(first) + 1
    return total


def event_kind(event: Event) -> EventType | None:
    try:
        return EventType(event.type)
    except ValueError:
        return None
