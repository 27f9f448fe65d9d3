"""Settings of one node stand-in, read once from the command line."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from seccomp_devcluster.node.podspec import DEFAULT_HOST_IMAGES, default_host_image_path


@dataclass(frozen=True)
class NodeSettings:
    """File locations and behaviour of one node, as set by its command-line options."""

    node_name: str
    # The kubelet's --root-dir: Localhost profiles are read from `<kubelet_root>/seccomp/`.
    kubelet_root: Path
    # Runtime state, bundles, network namespace files and the crun hugetlb mount.
    state_dir: Path
    # Container logs, `<log_root>/<namespace>_<pod>_<uid>/<container>.log`.
    log_root: Path
    node_ip: str = "127.0.0.1"
    # Loopback range from which pods without hostNetwork get their podIP.
    pod_cidr: str = "127.10.0.0/16"
    # The kubelet's --seccomp-default: RuntimeDefault for pods that set no profile.
    seccomp_default: bool = False
    # Seconds before the first restart of a crashed container, doubled per restart.
    crash_loop_backoff: float = 10.0
    max_crash_loop_backoff: float = 300.0
    # Seconds between refreshes of the Node's Ready condition.
    heartbeat_interval: float = 10.0
    # Image name patterns (fnmatch) that run on the host's root filesystem, and the
    # PATH those images get; see `seccomp_devcluster.node.podspec`.
    host_images: tuple[str, ...] = DEFAULT_HOST_IMAGES
    host_image_path: str = field(default_factory=default_host_image_path)
    # The API relay's serving certificate and key, and the CA that pods get as ca.crt
    # (PEM files). None: the node makes its own in its state folder.
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    root_ca_file: Path | None = None
    # What the Node reports as allocatable, for resourceFieldRef without limits.
    allocatable_cpu: int = field(default_factory=lambda: os.cpu_count() or 1)
    allocatable_memory: int = field(
        default_factory=lambda: os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))

    @property
    def runtime_root(self) -> Path:
        return self.state_dir / "runtime"

    @property
    def host_path_root(self) -> Path:
        """The node's private folder for hostPath volumes missing on the machine."""
        return self.state_dir / "host"

    @property
    def cgroup_parent(self) -> str:
        """Cgroup under which this node's pod cgroups `pod<uid>` are made.

        The node name alone is not unique on the machine, because two dev clusters may
        run at once and both have a node-1, so a digest of the state folder follows it.
        """
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"seccomp-devcluster/{self.node_name}-{digest}"


@dataclass
class PodAddresses:
    """Hands out pod IPs from the node's loopback range, one per pod uid."""

    cidr: str
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _assigned: dict[str, str] = field(default_factory=dict)

    def assign(self, uid: str) -> str:
        with self._lock:
            if uid in self._assigned:
                return self._assigned[uid]
            used = set(self._assigned.values())
            for host in ipaddress.ip_network(self.cidr).hosts():
                address = str(host)
                if address not in used:
                    self._assigned[uid] = address
                    return address
            raise RuntimeError(f"pod IP range {self.cidr} is exhausted")

    def release(self, uid: str) -> None:
        with self._lock:
            self._assigned.pop(uid, None)
