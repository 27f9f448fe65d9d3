"""Turn a pod's container into an OCI container spec, as the kubelet and containerd do.

Pure functions over the pod's JSON (`dict` as the API returns it), called by the pod
worker at every container start and tested without a server.

Dev-cluster rules that a real node does not have, because no image is ever pulled:

- Root filesystem. The annotation `devcluster.seccomp-recorder.io/rootfs` (`busybox`
  or `host`) applies to every container of the pod. Without it the image decides:
  an image whose repository name is `busybox` (any registry, tag or digest) gets the
  busybox-static root filesystem, and `host` gets a read-only bind of the host's root
  with a private writable /tmp. Any other image fails with ErrImagePull.
- Runtime. `spec.runtimeClassName: crun` or the annotation
  `devcluster.seccomp-recorder.io/runtime: crun` runs the pod with crun, and
  otherwise it runs with runc.
- Entrypoint. Images have no entrypoint: `command` plus `args` is the process, and
  the busybox image alone defaults to `sh`, as Docker's busybox image does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seccomp_devcluster import oci
from seccomp_devcluster.node.seccomp import CreateContainerError, seccomp_for_container

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


@dataclass(frozen=True)
class NodeContext:
    """Node settings that container specs depend on, besides the pod itself."""

    kubelet_root: Path
    seccomp_default: bool = False


def image_repository(image: str) -> str:
    """Return an image reference's last path component without tag or digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def rootfs_for(pod: dict[str, Any], container: dict[str, Any]) -> oci.Rootfs:
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
    if repository == "host":
        return "host"
    raise ImagePullError(
        f'failed to pull image "{container.get("image", "")}": the dev cluster runs only the '
        f"images busybox and host, or any image with the pod annotation "
        f"{ROOTFS_ANNOTATION}: busybox|host")


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


def _environment(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    env = [*oci.DEFAULT_ENV, f"HOSTNAME={pod['metadata']['name']}"]
    for variable in container.get("env") or []:
        # NOTE: only literal values are supported; valueFrom (fieldRef, secrets,
        # config maps) gives an empty value.
        env.append(f"{variable['name']}={variable.get('value', '')}")
    return env


def _security_value(pod_context: dict[str, Any], container_context: dict[str, Any],
                    key: str) -> Any:
    if container_context.get(key) is not None:
        return container_context[key]
    return pod_context.get(key)


def container_spec_for(pod: dict[str, Any], container: dict[str, Any], context: NodeContext,
                       *, network_namespace: str | None, cgroup_parent: str) -> oci.ContainerSpec:
    """Build the OCI container spec for one of the pod's containers.

    Raises ImagePullError for an image the dev cluster cannot run and
    CreateContainerError for a spec the runtime cannot be given (a Localhost
    seccomp profile that cannot be loaded, no command).

    NOTE: volumes, volumeMounts, probes, lifecycle hooks and resource limits are
    ignored, and a container counts as ready while it runs.
    """
    spec = pod["spec"]
    pod_context = spec.get("securityContext") or {}
    container_context = container.get("securityContext") or {}
    rootfs = rootfs_for(pod, container)
    capabilities = capabilities_for(container_context)
    privileged = bool(container_context.get("privileged"))
    # The kubelet sets no_new_privs only for an explicit allowPrivilegeEscalation:
    # false; containerd and CRI-O pass that flag through unchanged.
    allow_escalation = container_context.get("allowPrivilegeEscalation")
    no_new_privileges = allow_escalation is False and not privileged

    seccomp = seccomp_for_container(
        spec, container, kubelet_root=context.kubelet_root, capabilities=capabilities,
        privileged=privileged, seccomp_default=context.seccomp_default)

    uid = _security_value(pod_context, container_context, "runAsUser")
    gid = _security_value(pod_context, container_context, "runAsGroup")
    supplemental = [int(group) for group in pod_context.get("supplementalGroups") or []]
    return oci.ContainerSpec(
        args=process_args(container, rootfs),
        runtime=runtime_for(pod),
        rootfs=rootfs,
        no_new_privileges=no_new_privileges,
        seccomp=seccomp,
        env=_environment(pod, container),
        cwd=container.get("workingDir") or "/",
        hostname=spec.get("hostname") or pod["metadata"]["name"],
        capabilities=capabilities,
        network_namespace=network_namespace,
        host_network=bool(spec.get("hostNetwork")),
        uid=int(uid) if uid is not None else 0,
        gid=int(gid) if gid is not None else 0,
        additional_gids=supplemental,
        readonly_rootfs=bool(container_context.get("readOnlyRootFilesystem")),
        cgroup_parent=cgroup_parent,
        annotations={"io.kubernetes.pod.name": pod["metadata"]["name"],
                     "io.kubernetes.pod.namespace": pod["metadata"]["namespace"],
                     "io.kubernetes.pod.uid": pod["metadata"]["uid"],
                     "io.kubernetes.container.name": container["name"]},
    )
