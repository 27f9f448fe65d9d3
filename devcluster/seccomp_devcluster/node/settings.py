"""Settings of one node stand-in, read once from the command line."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path


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

    @property
    def runtime_root(self) -> Path:
        return self.state_dir / "runtime"

    @property
    def cgroup_parent(self) -> str:
        """Cgroup under which this node's pod cgroups `pod<uid>` are made."""
        return f"seccomp-devcluster/{self.node_name}"


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
