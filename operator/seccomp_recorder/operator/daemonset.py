"""The node agent's DaemonSet: a pure manifest builder and the decision to rewrite it.

`build_agent_daemonset` turns the operator's settings into the manifest. The startup
handler creates the DaemonSet, or replaces it when `needs_update` finds that a field the
operator sets differs, so a changed setting reaches the agents on the operator's next
start, while fields that the API server defaults never cause a rewrite.

Each privilege the agent gets is explained where it is granted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from seccomp_recorder.operator.settings import OperatorSettings

NAME: Final = "seccomp-recorder-agent"
CONTAINER_NAME: Final = "agent"
LABELS: Final = {
    "app.kubernetes.io/name": "seccomp-recorder",
    "app.kubernetes.io/component": "agent",
}
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "seccomp-recorder-operator"}

# Where the agent keeps its recording state across restarts, on the node and in the pod.
STATE_DIR: Final = "/var/lib/seccomp-recorder"
BPFFS: Final = "/sys/fs/bpf"
KERNEL_BTF: Final = "/sys/kernel/btf"
# Seconds the agent gets on SIGTERM to send its final snapshots before it is killed.
TERMINATION_GRACE_PERIOD: Final = 30


def build_agent_daemonset(
    settings: OperatorSettings, owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build the DaemonSet manifest of the node agent from `settings`.

    With `owner`, an object as the API server returns it (the operator's Deployment),
    the DaemonSet names it in ownerReferences, and the garbage collector deletes the
    DaemonSet once the owner is gone.
    """
    seccomp_dir = str(settings.kubelet_root / "seccomp")
    pod_spec: dict[str, Any] = {
        "serviceAccountName": settings.agent_service_account,
        # hostPID: the recorder sees host PIDs in its eBPF events and reads
        # /proc/<pid>/cgroup and /proc/<pid>/ns/mnt of containers on the node to match
        # them to pods; that needs the host's PID namespace.
        "hostPID": True,
        "nodeSelector": dict(settings.agent_node_selector),
        "tolerations": [dict(toleration) for toleration in settings.agent_tolerations],
        "terminationGracePeriodSeconds": TERMINATION_GRACE_PERIOD,
        "containers": [_agent_container(settings, seccomp_dir)],
        "volumes": [
            _host_path_volume("seccomp", seccomp_dir, "DirectoryOrCreate"),
            # The node's bpffs, wherever it is mounted, appears at /sys/fs/bpf in the pod,
            # where the agent pins by default.
            _host_path_volume("bpffs", str(settings.agent_bpffs_path), "Directory"),
            _host_path_volume("btf", KERNEL_BTF, "Directory"),
            _host_path_volume("state", STATE_DIR, "DirectoryOrCreate"),
            # The root filesystem is read only; scratch files go to memory-backed /tmp.
            {"name": "tmp", "emptyDir": {"medium": "Memory"}},
        ],
    }
    metadata: dict[str, Any] = {
        "name": NAME,
        "namespace": settings.namespace,
        "labels": {**LABELS, **MANAGED_BY},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    manifest: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec},
        },
    }
    return manifest


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """Build an ownerReference to `owner`, neither controller nor blocking its deletion.

    blockOwnerDeletion stays unset because setting it needs the permission to delete the
    owner, where the OwnerReferencesPermissionEnforcement admission plugin runs.
    """
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }


def _metrics_environment(settings: OperatorSettings) -> list[dict[str, Any]]:
    """Build the agent's metrics settings: the port, served on the pod IP only."""
    if settings.agent_metrics_port == 0:
        return []
    return [
        {"name": "SECCOMP_RECORDER_METRICS_PORT", "value": str(settings.agent_metrics_port)},
        {
            "name": "SECCOMP_RECORDER_METRICS_ADDRESS",
            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
        },
    ]


def _agent_container(settings: OperatorSettings, seccomp_dir: str) -> dict[str, Any]:
    container = _agent_container_base(settings, seccomp_dir)
    if settings.agent_metrics_port != 0:
        # Only with a port: the API server drops an empty list, and `needs_update` would
        # then see a difference at every start.
        container["ports"] = [
            {"name": "metrics", "containerPort": settings.agent_metrics_port, "protocol": "TCP"}
        ]
    return container


def _agent_container_base(settings: OperatorSettings, seccomp_dir: str) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": settings.agent_image,
        "imagePullPolicy": settings.agent_image_pull_policy.value,
        "command": ["python", "-m", "seccomp_recorder.agent"],
        "env": [
            # The agent records and installs for the node it runs on, named by the
            # downward API.
            {
                "name": "SECCOMP_RECORDER_NODE_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
            },
            {"name": "SECCOMP_RECORDER_KUBELET_ROOT", "value": str(settings.kubelet_root)},
            {"name": "SECCOMP_RECORDER_STATE_DIR", "value": STATE_DIR},
            {
                "name": "SECCOMP_RECORDER_SNAPSHOT_INTERVAL",
                "value": f"{settings.agent_snapshot_interval:g}",
            },
            {"name": "SECCOMP_RECORDER_LOG_LEVEL", "value": settings.log_level},
            {"name": "SECCOMP_RECORDER_LOG_FORMAT", "value": settings.log_format.value},
            *_metrics_environment(settings),
        ],
        "resources": {key: dict(value) for key, value in settings.agent_resources.items()},
        "securityContext": {
            # Root in the container, to write profiles into the kubelet's folder and to
            # read /proc of other users' processes.
            "runAsUser": 0,
            "readOnlyRootFilesystem": True,
            "capabilities": {
                "drop": ["ALL"],
                "add": [
                    # BPF: create maps and load the recorder's eBPF program.
                    "BPF",
                    # PERFMON: attach the program to the raw_syscalls tracepoints.
                    "PERFMON",
                    # SYS_ADMIN: pin maps and links in bpffs and read BTF on kernels
                    # older than 5.8, which have no CAP_BPF.
                    "SYS_ADMIN",
                    # SYS_RESOURCE: raise RLIMIT_MEMLOCK for BPF maps on kernels older
                    # than 5.11, which charge maps to it.
                    "SYS_RESOURCE",
                    # SYS_PTRACE: read /proc/<pid>/ns/* and /proc/<pid>/root of
                    # containers of other users.
                    "SYS_PTRACE",
                    # DAC_OVERRIDE: write into the kubelet's seccomp folder and the
                    # state folder whatever their owner and mode on the node.
                    "DAC_OVERRIDE",
                ],
            },
            # TODO: run the agent under its own seccomp profile; runtime default
            # profiles do not all allow bpf() and perf_event_open().
            "seccompProfile": {"type": "Unconfined"},
        },
        "volumeMounts": [
            # The kubelet's Localhost profile folder, at the same path as on the node;
            # the agent writes every SeccompProfile here, under seccomp-recorder/.
            {"name": "seccomp", "mountPath": seccomp_dir},
            # The node's bpffs (SECCOMP_RECORDER_AGENT_BPFFS_PATH): pinned maps and links
            # outlive an agent restart, so a restarted agent keeps what was recorded.
            {"name": "bpffs", "mountPath": BPFFS},
            # The kernel's BTF for CO-RE relocations of the eBPF program, read only.
            {"name": "btf", "mountPath": KERNEL_BTF, "readOnly": True},
            # The recording state kept across agent restarts.
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _host_path_volume(name: str, path: str, path_type: str) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path, "type": path_type}}


def needs_update(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Return whether the live DaemonSet lacks or changed a field that `desired` sets.

    Fields that only the live object has (defaults of the API server, labels added by
    others) are ignored, so a DaemonSet is rewritten only when a setting changed or a
    field the operator owns was edited by hand. Lists must match item by item.
    """
    return not _contains(live, desired)


def _contains(live: Any, desired: Any) -> bool:
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and _contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(item, wanted) for item, wanted in zip(live, desired, strict=True))
        )
    # NOTE: the real API server rewrites resource quantities in canonical form ("0.5"
    # becomes "500m"), so a setting written in another form makes every start rewrite
    # the DaemonSet once more; the rewrite changes nothing and rolls out no pods.
    return bool(live == desired)
