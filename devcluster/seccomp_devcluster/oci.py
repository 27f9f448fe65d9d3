"""Build OCI bundles and run containers with runc or crun.

Used by the recorder's kernel tests and by the dev cluster's node stand-in. Every
container gets a runtime `--root` directory private to its caller, so this module
never lists or changes containers it did not start, and `delete` removes everything
a container left: runtime state, cgroups (including the parent cgroups named in
`ContainerSpec.cgroup_parent` once they are empty) and the bundle directory.

The defaults follow what containerd's CRI plugin gives a Kubernetes container:
the capability set, namespaces, masked and read-only /proc paths, and a cgroup
path that ends in the 64-hex container id.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Self

from seccomp_devcluster.cgroups import crun_ready, remove_cgroup
from seccomp_devcluster.hostroot import host_root_layout

__all__ = [
    "ContainerResult", "ContainerSpec", "Mount", "OciRuntimeError", "RunningContainer",
    "create_bundle", "crun_ready", "list_containers", "new_container_id", "run_container",
]

logger = logging.getLogger(__name__)

Runtime = Literal["runc", "crun"]
Rootfs = Literal["busybox", "host"]

RUNTIMES: tuple[Runtime, ...] = ("runc", "crun")
BUSYBOX = Path("/usr/bin/busybox")

# containerd's and Docker's default capability set for a non-privileged container.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

DEFAULT_ENV: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)

# The cgroup under which containers are placed unless the spec names another one.
DEFAULT_CGROUP_PARENT = "seccomp-devcluster"

# Paths that containerd and runc's default spec hide or make read-only in /proc and /sys.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

# Seconds to wait for a runtime command or for the shim to report creation.
RUNTIME_TIMEOUT = 30.0
# Seconds `delete` waits for a killed container's init process to be reaped.
DELETE_TIMEOUT = 10.0

SHIM = Path(__file__).with_name("oci_shim.py")

# Serializes making and removing the folders that containers of one caller share (the
# runtime root, the bundles folder): a `delete` that removes an empty shared folder
# must not race with a `create` that is about to use it.
_shared_folders = threading.Lock()


class OciRuntimeError(RuntimeError):
    """A runtime command failed; the message carries the runtime's own error output."""


@dataclass
class Mount:
    """An extra mount, in the OCI runtime spec's terms."""

    destination: str
    source: str
    type: str = "bind"
    options: list[str] = field(default_factory=lambda: ["rbind", "ro"])


@dataclass
class ContainerSpec:
    """A container's process, root filesystem and confinement, for `create_bundle`."""

    args: list[str]
    runtime: Runtime = "runc"
    # "busybox": a writable copy of busybox-static with its applet links.
    # "host": the host's top-level directories bound read-only, with private writable
    # /tmp and /run (see `seccomp_devcluster.hostroot`).
    rootfs: Rootfs = "busybox"
    no_new_privileges: bool = True
    # OCI LinuxSeccomp JSON, or None for no filter (Unconfined).
    seccomp: dict[str, Any] | None = None
    env: list[str] = field(default_factory=lambda: list(DEFAULT_ENV))
    cwd: str = "/"
    hostname: str = "ctr"
    capabilities: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    # Path of a network namespace to join; None gives a new one with only lo.
    network_namespace: str | None = None
    # Share the caller's network namespace (a hostNetwork pod); overrides the above.
    host_network: bool = False
    # Share the caller's PID and IPC namespaces (hostPID, hostIPC).
    host_pid: bool = False
    host_ipc: bool = False
    # All devices allowed, /sys writable, no masked or read-only /proc paths. The
    # capabilities and the seccomp filter are set by the caller as for any container.
    # NOTE: the host's device nodes are not added to /dev, as containerd adds them.
    privileged: bool = False
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    readonly_rootfs: bool = False
    mounts: list[Mount] = field(default_factory=list)
    # linux.rootfsPropagation ("rslave", "rshared"...); None keeps the runtime's default.
    rootfs_propagation: str | None = None
    # Relative cgroup path under which the container's cgroup `<parent>/<id>` is made.
    # NOTE: runc 1.1 places it under the caller's own cgroup in each v1 hierarchy,
    # crun 1.8 under each hierarchy's root, so the two nest differently.
    cgroup_parent: str = DEFAULT_CGROUP_PARENT
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerResult:
    """The outcome of `run_container`."""

    container_id: str
    exit_code: int
    stdout: bytes
    stderr: bytes


def new_container_id() -> str:
    """Return a random 64-hex id, the form containerd and CRI-O give containers."""
    return secrets.token_hex(32)


# -- bundles ---------------------------------------------------------------------------


def _busybox_applets() -> list[str]:
    listing = subprocess.run(
        [str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True
    )
    return [line for line in listing.stdout.splitlines() if line and line != "bin/busybox"]


def build_busybox_rootfs(rootfs: Path) -> None:
    """Fill `rootfs` with a private copy of busybox-static and links for its applets.

    NB: the binary is copied, never hard-linked, because a container with a writable
    root filesystem could otherwise change the host's /usr/bin/busybox.
    """
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in _busybox_applets():
        link = rootfs / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to("/bin/busybox")
    for directory in ("proc", "sys", "dev", "tmp", "etc", "root", "run", "var/tmp"):
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")


def _standard_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    sysfs_options = ["nosuid", "noexec", "nodev", "rw" if spec.privileged else "ro"]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sysfs_options},
    ]
    layout = host_root_layout([m.destination for m in spec.mounts]) if spec.rootfs == "host" else None
    if layout is not None:
        mounts.extend(layout.mounts())
    for extra in spec.mounts:
        mounts.append({"destination": extra.destination, "type": extra.type,
                       "source": extra.source, "options": list(extra.options)})
    if layout is not None:
        # After the volumes, so that an emptyDir at /tmp does not hide them either.
        mounts.extend(layout.tmp_mounts())
    return mounts


def build_config(spec: ContainerSpec, rootfs_path: str, cgroups_path: str) -> dict[str, Any]:
    """Return the OCI runtime config (config.json) for `spec`."""
    capabilities = list(spec.capabilities)
    namespaces: list[dict[str, str]] = [{"type": "uts"}, {"type": "mount"}]
    if not spec.host_pid:
        namespaces.append({"type": "pid"})
    if not spec.host_ipc:
        namespaces.append({"type": "ipc"})
    if not spec.host_network:
        network = {"type": "network"}
        if spec.network_namespace is not None:
            network["path"] = spec.network_namespace
        namespaces.append(network)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        # A privileged container may use every device, as with containerd; nothing is
        # masked or read-only in its /proc and /sys.
        "resources": {"devices": [{"allow": spec.privileged, "access": "rwm"}]},
        "maskedPaths": [] if spec.privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if spec.privileged else list(READONLY_PATHS),
    }
    if spec.rootfs_propagation is not None:
        linux["rootfsPropagation"] = spec.rootfs_propagation
    if spec.seccomp is not None:
        linux["seccomp"] = spec.seccomp
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": spec.uid, "gid": spec.gid,
                     "additionalGids": list(spec.additional_gids)},
            "args": list(spec.args),
            "env": list(spec.env),
            "cwd": spec.cwd,
            "capabilities": {"bounding": capabilities, "effective": capabilities,
                             "permitted": capabilities},
            "noNewPrivileges": spec.no_new_privileges,
        },
        "root": {"path": rootfs_path,
                 "readonly": spec.readonly_rootfs or spec.rootfs == "host"},
        "hostname": spec.hostname,
        "mounts": _standard_mounts(spec),
        "annotations": dict(spec.annotations),
        "linux": linux,
    }


def create_bundle(spec: ContainerSpec, directory: Path, *, container_id: str | None = None) -> Path:
    """Write an OCI bundle for `spec` into `directory` and return its path.

    The container's cgroup is `<spec.cgroup_parent>/<container_id>`; without an id
    the bundle's directory name is used.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if spec.rootfs == "busybox":
        build_busybox_rootfs(directory / "rootfs")
    else:
        host_root_layout([m.destination for m in spec.mounts]).build(directory / "rootfs")
    leaf = container_id if container_id is not None else directory.name
    config = build_config(spec, "rootfs", f"{spec.cgroup_parent}/{leaf}")
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


# -- running containers -----------------------------------------------------------------


def runtime_binary(runtime: Runtime) -> str:
    path = shutil.which(runtime)
    if path is None:
        raise OciRuntimeError(f"OCI runtime {runtime!r} not found on PATH; "
                              "scripts/install-deps installs it")
    return path


StdioTarget = int | IO[Any] | None


class RunningContainer:
    """A container driven through create, start, kill and delete.

    A small shim process (`oci_shim.py`) stays the container's subreaper, as
    containerd's shim does, so `wait` returns the real exit status. The container's
    stdout and stderr are written straight to `stdout` and `stderr` (file objects,
    descriptors, or None for /dev/null). Use it as a context manager, or call
    `delete`, which is safe to call in any state and more than once.

    `runtime_root` (default `workdir/runtime/<runtime>`) is the runtime's `--root`.
    With `remove_parent_cgroups` false, `delete` removes only the container's own
    cgroup, so a caller that creates sibling containers concurrently never races
    with the removal of their common parent.
    """

    def __init__(self, spec: ContainerSpec, workdir: Path, *, container_id: str | None = None,
                 stdout: StdioTarget = None, stderr: StdioTarget = None,
                 runtime_root: Path | None = None, remove_parent_cgroups: bool = True) -> None:
        self.spec = spec
        self.id = container_id or new_container_id()
        self.workdir = workdir
        self.bundle = workdir / "bundles" / self.id
        self.root = runtime_root or workdir / "runtime" / spec.runtime
        self.runtime_log = workdir / "bundles" / f"{self.id}.log"
        self.cgroups_path = f"{spec.cgroup_parent}/{self.id}"
        self._stdout = stdout
        self._stderr = stderr
        self._shim: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._pid: int | None = None
        self._exit_code: int | None = None
        self._created = threading.Event()
        self._started = threading.Event()
        self._failed = threading.Event()
        self._exited = threading.Event()
        self._reader: threading.Thread | None = None
        self._deleted = False
        self._remove_parent_cgroups = remove_parent_cgroups

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.delete()

    @property
    def pid(self) -> int | None:
        """PID of the container's init process on the host, once created."""
        return self._pid

    @property
    def exit_code(self) -> int | None:
        return self._exit_code

    def _runtime(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [runtime_binary(self.spec.runtime), "--root", str(self.root), *args]
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=RUNTIME_TIMEOUT, check=False)
        if check and completed.returncode != 0:
            raise OciRuntimeError(f"{' '.join(command)} failed with exit code "
                                  f"{completed.returncode}: {completed.stderr.strip()}")
        return completed

    def _read_runtime_log(self) -> str:
        try:
            return self.runtime_log.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    def _read_control(self) -> None:
        assert self._control is not None
        with self._control.makefile("r") as lines:
            for line in lines:
                message, _, argument = line.strip().partition(" ")
                if message == "created":
                    self._pid = int(argument)
                    self._created.set()
                elif message == "started":
                    self._started.set()
                elif message == "failed":
                    self._failed.set()
                elif message == "exited":
                    self._exit_code = int(argument)
                    self._exited.set()
        # The shim is gone: wake up every waiter.
        self._failed.set()
        self._exited.set()

    def create(self) -> None:
        """Write the bundle and create the container; its process waits for `start`."""
        with _shared_folders:
            create_bundle(self.spec, self.bundle, container_id=self.id)
            self.root.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair()
        self._control = ours
        self._shim = subprocess.Popen(
            [sys.executable, str(SHIM), str(theirs.fileno()), runtime_binary(self.spec.runtime),
             str(self.root), str(self.runtime_log), str(self.bundle), self.id,
             str(self.bundle / "init.pid")],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout if self._stdout is not None else subprocess.DEVNULL,
            stderr=self._stderr if self._stderr is not None else subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self._reader = threading.Thread(target=self._read_control, daemon=True,
                                        name=f"oci-shim-{self.id[:12]}")
        self._reader.start()
        self._wait_for(self._created, "create")

    def _wait_for(self, event: threading.Event, step: str) -> None:
        deadline_reached = not _wait_any(event, self._failed, RUNTIME_TIMEOUT)
        if event.is_set():
            return
        detail = self._read_runtime_log() or "no runtime log output"
        if deadline_reached:
            raise OciRuntimeError(f"{self.spec.runtime} {step} of container {self.id} timed out "
                                  f"after {RUNTIME_TIMEOUT} s: {detail}")
        raise OciRuntimeError(f"{self.spec.runtime} {step} of container {self.id} failed: "
                              f"{detail}")

    def start(self) -> None:
        """Start the created container's process."""
        if self._control is None or not self._created.is_set():
            raise OciRuntimeError(f"container {self.id} must be created before it is started")
        self._control.sendall(b"start\n")
        self._wait_for(self._started, "start")

    def state(self) -> dict[str, Any]:
        """Return the runtime's `state` JSON (status: created, running, stopped)."""
        result: dict[str, Any] = json.loads(self._runtime("state", self.id).stdout)
        return result

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the container's init process; a stopped container is ignored."""
        if self._exited.is_set() or not self._created.is_set():
            return
        completed = self._runtime("kill", self.id, str(int(sig)), check=False)
        if completed.returncode != 0 and not self._exited.is_set():
            logger.debug("%s kill %s: %s", self.spec.runtime, self.id, completed.stderr.strip())

    def exec(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        """Run `args` inside the running container (`runc exec`) and return the result.

        The process gets the container's user, environment and working directory.
        Raises subprocess.TimeoutExpired after `timeout` seconds, once the runtime's
        exec command and its helpers (one process group) have been killed.
        """
        command = [runtime_binary(self.spec.runtime), "--root", str(self.root), "exec",
                   self.id, *args]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            try:
                process.communicate(timeout=DELETE_TIMEOUT)
            except subprocess.TimeoutExpired:
                # The command in the container keeps the pipes open. It ends with the
                # container, and nothing waits for it here.
                for pipe in (process.stdout, process.stderr):
                    if pipe is not None:
                        pipe.close()
                process.wait()
            raise
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the container's process to exit; return its exit code, or None on timeout.

        The code is 128 plus the signal number when a signal ended the process.
        """
        if not self._exited.wait(timeout):
            return None
        return self._exit_code

    def delete(self) -> None:
        """Kill the container if it runs, then remove its state, cgroups and bundle."""
        if self._deleted:
            return
        self._deleted = True
        try:
            if self._created.is_set() and not self._exited.is_set():
                self._runtime("kill", self.id, "KILL", check=False)
                if not self._exited.wait(DELETE_TIMEOUT):
                    logger.warning("Container %s did not exit within %s s of SIGKILL",
                                   self.id, DELETE_TIMEOUT)
            if self.root.exists():
                self._runtime("delete", "--force", self.id, check=False)
        finally:
            if self._control is not None:
                self._control.close()
            if self._shim is not None:
                try:
                    self._shim.wait(DELETE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    logger.warning("Shim of container %s did not exit; killing it", self.id)
                    self._shim.kill()
                    self._shim.wait()
            remove_cgroup(self.cgroups_path, None if self._remove_parent_cgroups else 1)
            shutil.rmtree(self.bundle, ignore_errors=True)
            self.runtime_log.unlink(missing_ok=True)
            with _shared_folders:
                _remove_empty(self.root)
                _remove_empty(self.root.parent)
                _remove_empty(self.bundle.parent)


def _wait_any(first: threading.Event, second: threading.Event, timeout: float) -> bool:
    """Wait until either event is set; return False when `timeout` seconds passed first."""
    step = 0.01
    waited = 0.0
    while waited < timeout:
        if first.wait(step) or second.is_set():
            return True
        waited += step
        step = min(step * 2, 0.2)
    return first.is_set() or second.is_set()


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # Not empty (another container still uses it) or already gone.


def run_container(spec: ContainerSpec, workdir: Path, *, name: str | None = None,
                  timeout: float = 60) -> ContainerResult:
    """Run `spec` to completion in `workdir` and return its exit code and output.

    `name` is the runtime's container id (a random 64-hex id by default). On timeout
    the container is killed and deleted and TimeoutError is raised. Whatever
    happens, also on failure or timeout, the container's runtime state, cgroups and
    bundle are removed before this returns.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir) as stdout, \
            tempfile.TemporaryFile(dir=workdir) as stderr, \
            RunningContainer(spec, workdir, container_id=name, stdout=stdout,
                             stderr=stderr) as container:
        container.create()
        container.start()
        exit_code = container.wait(timeout)
        if exit_code is None:
            container.delete()
            raise TimeoutError(f"container {container.id} ({' '.join(spec.args)}) did not "
                               f"exit within {timeout} s; it was killed")
        container.delete()
        stdout.seek(0)
        stderr.seek(0)
        return ContainerResult(container_id=container.id, exit_code=exit_code,
                               stdout=stdout.read(), stderr=stderr.read())


def list_containers(root: Path, runtime: Runtime) -> list[str]:
    """Return the ids of the containers that `runtime` keeps in the state directory `root`."""
    if not root.exists():
        return []
    completed = subprocess.run(
        [runtime_binary(runtime), "--root", str(root), "list", "--quiet"],
        capture_output=True, text=True, timeout=RUNTIME_TIMEOUT, check=False,
    )
    return completed.stdout.split()
