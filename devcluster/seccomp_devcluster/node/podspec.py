"""Turn a pod's container into an OCI container spec, as the kubelet and containerd do.

Pure functions over the pod's JSON (`dict` as the API returns it), called by the pod
worker at every container start and tested without a server.

Dev-cluster rules that a real node does not have, because no image is ever pulled:

- Root filesystem. The annotation `devcluster.seccomp-recorder.io/rootfs` (`busybox`
  or `host`) applies to every container of the pod. Without it the image decides.
  An image whose repository name is `busybox` (any registry, tag or digest) gets the
  busybox-static root filesystem. An image whose repository name is `host`, or whose
  name without tag and digest matches one of the node's host image patterns, gets
  the read-only view of the host's root (`seccomp_devcluster.hostroot`). Patterns
  are `fnmatch` patterns, where `*` also matches `/`, and by default
  `seccomp-recorder*` and `*/seccomp-recorder*`, the project's own images. Any other
  image fails with ErrImagePull.
- Image environment. Host-root images have the node's `host_image_path` as PATH
  (by default the dev cluster's venv first), so `python` runs the project's venv, as
  the project's images put their venv first on PATH.
- Runtime. `spec.runtimeClassName: crun` or the annotation
  `devcluster.seccomp-recorder.io/runtime: crun` runs the pod with crun, and
  otherwise it runs with runc.
- Entrypoint. Images have no entrypoint: `command` plus `args` is the process, and
  the busybox image alone defaults to `sh`, as Docker's busybox image does. Every
  image runs as user 0 unless the security context sets `runAsUser`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from seccomp_devcluster import oci
from seccomp_devcluster.node.environment import (
    CreateContainerConfigError,
    ObjectLookup,
    PodRuntimeInfo,
    container_environment,
)
from seccomp_devcluster.node.seccomp import CreateContainerError, seccomp_for_container
from seccomp_devcluster.node.volumes import rootfs_propagation

logger = logging.getLogger(__name__)

ANNOTATION_PREFIX = "devcluster.seccomp-recorder.io/"
ROOTFS_ANNOTATION = ANNOTATION_PREFIX + "rootfs"
RUNTIME_ANNOTATION = ANNOTATION_PREFIX + "runtime"
# Written by the node: path of the pod's network namespace, for `nsenter --net=PATH`.
NETNS_ANNOTATION = ANNOTATION_PREFIX + "netns"

# Every capability of Linux 5.9 and later, given to privileged containers.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


class ImagePullError(Exception):
    """The image is not one the dev cluster can run; the message is for the pod status."""


# Image name patterns that run on the host root by default: the project's images.
DEFAULT_HOST_IMAGES: tuple[str, ...] = ("seccomp-recorder*", "*/seccomp-recorder*")


def default_host_image_path() -> str:
    """Return PATH for host-root images: this Python's venv first, if it runs in one."""
    default = oci.DEFAULT_ENV[0].partition("=")[2]
    if sys.prefix != sys.base_prefix:
        return f"{os.path.join(sys.prefix, 'bin')}:{default}"
    return default


@dataclass(frozen=True)
class NodeContext:
    """Node settings that container specs depend on, besides the pod itself."""

    kubelet_root: Path
    seccomp_default: bool = False
    host_images: tuple[str, ...] = DEFAULT_HOST_IMAGES
    host_image_path: str = field(default_factory=default_host_image_path)


def image_name(image: str) -> str:
    """Return an image reference without tag or digest (`ghcr.io/a/b:1` gives `ghcr.io/a/b`)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_repository(image: str) -> str:
    """Return an image reference's last path component without tag or digest."""
    return image_name(image).rsplit("/", 1)[-1]


def rootfs_for(pod: dict[str, Any], container: dict[str, Any],
               host_images: tuple[str, ...] = DEFAULT_HOST_IMAGES) -> oci.Rootfs:
    annotation = (pod["metadata"].get("annotations") or {}).get(ROOTFS_ANNOTATION)
    if annotation is not None:
        if annotation not in ("busybox", "host"):
            raise ImagePullError(
                f"invalid annotation {ROOTFS_ANNOTATION}={annotation!r}: use busybox or host")
        rootfs: oci.Rootfs = annotation
        return rootfs
    repository = image_repository(container.get("image", ""))
    if repository == "busybox":
        return "busybox"
    name = image_name(container.get("image", ""))
    if repository == "host" or any(fnmatch.fnmatchcase(name, p) for p in host_images):
        return "host"
    raise ImagePullError(
        f'failed to pull image "{container.get("image", "")}": the dev cluster runs only the '
        f"images busybox, host and those matching {', '.join(host_images) or 'no pattern'}, "
        f"or any image with the pod annotation {ROOTFS_ANNOTATION}: busybox|host")


def runtime_for(pod: dict[str, Any]) -> oci.Runtime:
    annotation = (pod["metadata"].get("annotations") or {}).get(RUNTIME_ANNOTATION)
    if annotation == "crun" or pod["spec"].get("runtimeClassName") == "crun":
        return "crun"
    return "runc"


def process_args(container: dict[str, Any], rootfs: oci.Rootfs) -> list[str]:
    args = [*(container.get("command") or []), *(container.get("args") or [])]
    if args:
        return args
    if rootfs == "busybox":
        return ["sh"]
    raise CreateContainerError(
        f'failed to create containerd container: container "{container["name"]}" has no '
        "command and the host image has no entrypoint")


def capabilities_for(security_context: dict[str, Any]) -> list[str]:
    """Apply `capabilities.add` and `.drop` (names with or without CAP_, or ALL)."""
    if security_context.get("privileged"):
        return list(ALL_CAPABILITIES)
    requested = security_context.get("capabilities") or {}

    def normalise(names: list[str]) -> set[str]:
        result: set[str] = set()
        for name in names:
            upper = name.upper()
            if upper == "ALL":
                result.update(ALL_CAPABILITIES)
            else:
                result.add(upper if upper.startswith("CAP_") else f"CAP_{upper}")
        return result

    dropped = normalise(requested.get("drop") or [])
    added = normalise(requested.get("add") or [])
    result = [cap for cap in oci.DEFAULT_CAPABILITIES if cap not in dropped]
    result.extend(sorted(added - set(result)))
    return result


@cache
def bounding_capabilities() -> frozenset[str]:
    """Return the capabilities in this process's bounding set, which a container may get."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return frozenset(name for bit, name in enumerate(ALL_CAPABILITIES)
                             if mask >> bit & 1)
    return frozenset(ALL_CAPABILITIES)


def _security_value(pod_context: dict[str, Any], container_context: dict[str, Any],
                    key: str) -> Any:
    if container_context.get(key) is not None:
        return container_context[key]
    return pod_context.get(key)


def _no_lookup(_kind: str, _namespace: str, _name: str) -> dict[str, Any] | None:
    return None


def check_run_as_non_root(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """Raise CreateContainerConfigError when runAsNonRoot is set and the user is root.

    Every dev cluster image runs as user 0, so without runAsUser the image's user
    breaks the rule too. The messages are the kubelet's.
    """
    pod_context = pod["spec"].get("securityContext") or {}
    container_context = container.get("securityContext") or {}
    if not _security_value(pod_context, container_context, "runAsNonRoot"):
        return
    metadata = pod["metadata"]
    where = (f'(pod: "{metadata["name"]}_{metadata["namespace"]}({metadata["uid"]})", '
             f"container: {container['name']})")
    uid = _security_value(pod_context, container_context, "runAsUser")
    if uid is not None:
        if int(uid) == 0:
            raise CreateContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    raise CreateContainerConfigError(f"container has runAsNonRoot and image will run as root {where}")


def container_spec_for(pod: dict[str, Any], container: dict[str, Any], context: NodeContext,
                       *, network_namespace: str | None, cgroup_parent: str,
                       mounts: list[oci.Mount] | None = None, info: PodRuntimeInfo | None = None,
                       lookup: ObjectLookup = _no_lookup) -> oci.ContainerSpec:
    """Build the OCI container spec for one of the pod's containers.

    `mounts` are the container's volume mounts (`volumes.container_mounts`), `info`
    the pod's addresses for the environment, and `lookup` reads ConfigMaps and
    Secrets for `env` and `envFrom`. Raises ImagePullError for an image the dev
    cluster cannot run. Raises CreateContainerConfigError for a configuration that
    cannot be resolved (runAsNonRoot with user 0, a missing ConfigMap key). Raises
    CreateContainerError for a spec the runtime cannot be given (a Localhost seccomp
    profile that cannot be loaded, no command).

    NOTE: lifecycle hooks and resource limits are ignored; probes are run by the
    pod worker (`seccomp_devcluster.node.probes`).
    """
    spec = pod["spec"]
    pod_context = spec.get("securityContext") or {}
    container_context = container.get("securityContext") or {}
    rootfs = rootfs_for(pod, container, context.host_images)
    check_run_as_non_root(pod, container)
    capabilities = capabilities_for(container_context)
    # NOTE: a capability that the machine itself lacks cannot be given, so it is left
    # out with a warning. Some sandboxes drop CAP_SYS_RESOURCE, and a real node has all.
    missing = [name for name in capabilities if name not in bounding_capabilities()]
    if missing:
        logger.warning("[%s/%s] Container %s: this machine cannot grant %s; left out",
                       pod["metadata"].get("namespace"), pod["metadata"].get("name"),
                       container["name"], ", ".join(missing))
        capabilities = [name for name in capabilities if name not in missing]
    privileged = bool(container_context.get("privileged"))
    # The kubelet sets no_new_privs only for an explicit allowPrivilegeEscalation:
    # false; containerd and CRI-O pass that flag through unchanged.
    allow_escalation = container_context.get("allowPrivilegeEscalation")
    no_new_privileges = allow_escalation is False and not privileged

    seccomp = seccomp_for_container(
        spec, container, kubelet_root=context.kubelet_root, capabilities=capabilities,
        privileged=privileged, seccomp_default=context.seccomp_default)

    if info is None:
        info = PodRuntimeInfo(pod_ip="", host_ip="")
    environment = container_environment(
        pod, container, info, lookup,
        image_path=context.host_image_path if rootfs == "host" else None)
    uid = _security_value(pod_context, container_context, "runAsUser")
    gid = _security_value(pod_context, container_context, "runAsGroup")
    supplemental = [int(group) for group in pod_context.get("supplementalGroups") or []]
    if pod_context.get("fsGroup") is not None:
        supplemental.append(int(pod_context["fsGroup"]))
    volume_mounts = list(mounts or [])
    return oci.ContainerSpec(
        args=process_args(container, rootfs),
        runtime=runtime_for(pod),
        rootfs=rootfs,
        no_new_privileges=no_new_privileges,
        seccomp=seccomp,
        env=environment,
        cwd=container.get("workingDir") or "/",
        hostname=spec.get("hostname") or pod["metadata"]["name"],
        capabilities=capabilities,
        network_namespace=network_namespace,
        host_network=bool(spec.get("hostNetwork")),
        host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")),
        privileged=privileged,
        uid=int(uid) if uid is not None else 0,
        gid=int(gid) if gid is not None else 0,
        additional_gids=supplemental,
        readonly_rootfs=bool(container_context.get("readOnlyRootFilesystem")),
        mounts=volume_mounts,
        rootfs_propagation=rootfs_propagation(volume_mounts),
        cgroup_parent=cgroup_parent,
        annotations={"io.kubernetes.pod.name": pod["metadata"]["name"],
                     "io.kubernetes.pod.namespace": pod["metadata"]["namespace"],
                     "io.kubernetes.pod.uid": pod["metadata"]["uid"],
                     "io.kubernetes.container.name": container["name"]},
    )
