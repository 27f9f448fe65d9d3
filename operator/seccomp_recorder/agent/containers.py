"""Which pod container a mount namespace belongs to: container ids from cgroups and pod status.

Container runtimes name each container's cgroup after its 64-hex id, alone
(`.../pod<uid>/<id>`, the cgroupfs driver) or inside a unit name
(`cri-containerd-<id>.scope`, the systemd driver). Pod status reports the same
id as `containerID: <runtime>://<id>`. The innermost 64-hex id of a cgroup path is
the container's: outer ones may belong to a pod sandbox.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONTAINER_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
PROC = Path("/proc")


def container_id_in(text: str) -> str | None:
    """Return the innermost (last) 64-hex container id in a cgroup path or name."""
    found = CONTAINER_ID.findall(text)
    return found[-1] if found else None


# A pod's cgroup, as the kubelet names it: `pod<uid>` (cgroupfs driver) or
# `...-pod<uid with underscores>.slice` (systemd driver).
POD_UID = re.compile(
    r"pod([0-9a-f]{8})[-_]([0-9a-f]{4})[-_]([0-9a-f]{4})[-_]([0-9a-f]{4})[-_]([0-9a-f]{12})"
)


def pod_uid_in(text: str) -> str | None:
    """Return the pod UID in a cgroup path, with dashes, or None when the path has none."""
    found = POD_UID.findall(text)
    return "-".join(found[-1]) if found else None


def cgroup_path_of_process(pid: int, proc: Path = PROC) -> str | None:
    """Return the cgroup path of a process that names a container, preferring cgroup v2.

    Lines of every hierarchy are read and the unified one (`0::`) is preferred; on
    hybrid hosts the v1 controllers carry the same path.
    """
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
    for path in [*unified, *(line.split(":", 2)[-1] for line in lines)]:
        if container_id_in(path) is not None:
            return path
    return None


def container_id_of_process(pid: int, proc: Path = PROC) -> str | None:
    """Return the container id of a process from /proc/PID/cgroup, or None when it has none."""
    path = cgroup_path_of_process(pid, proc)
    return None if path is None else container_id_in(path)


def live_mount_namespaces(proc: Path = PROC) -> dict[int, int]:
    """Map the mount namespace of every live process to one of its pids."""
    namespaces: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            namespaces.setdefault(os.stat(entry / "ns" / "mnt").st_ino, int(entry.name))
        except OSError:
            continue
    return namespaces


@dataclass(frozen=True)
class PodContainer:
    """One container of one pod on this node, as the pod's status names it."""

    namespace: str
    pod: str
    pod_uid: str
    container: str
    container_id: str
    init_container: bool
    running: bool
    labels: Mapping[str, str]


def split_container_id(value: str) -> str | None:
    """Return the id part of a status containerID such as `containerd://<64 hex>`."""
    _, _, identifier = value.rpartition("://")
    return identifier if CONTAINER_ID.fullmatch(identifier) else None


def pod_containers(pod: Mapping[str, Any]) -> Iterator[PodContainer]:
    """Yield every container of a pod that has a container id in the pod's status."""
    metadata = pod.get("metadata", {})
    status = pod.get("status", {}) or {}
    for key, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for entry in status.get(key) or []:
            # The container that ran before a restart is named in lastState.
            previous = ((entry.get("lastState") or {}).get("terminated") or {}).get("containerID")
            for value, running in (
                (entry.get("containerID"), "running" in (entry.get("state") or {})),
                (previous, False),
            ):
                identifier = split_container_id(value or "")
                if identifier is None:
                    continue
                yield PodContainer(
                    namespace=metadata.get("namespace", ""),
                    pod=metadata.get("name", ""),
                    pod_uid=metadata.get("uid", ""),
                    container=entry.get("name", ""),
                    container_id=identifier,
                    init_container=init,
                    running=running,
                    labels=dict(metadata.get("labels") or {}),
                )


def index_containers(pods: Iterable[Mapping[str, Any]]) -> dict[str, PodContainer]:
    """Map container id to its pod container for all the given pods."""
    return {
        container.container_id: container
        for pod in pods
        for container in pod_containers(pod)
    }
