"""The Localhost profiles a pod runs under, read from the pod's JSON, and their users.

A pod names a Localhost profile in `securityContext.seccompProfile` at pod level and in
each container's `securityContext`, for app, init and ephemeral containers alike. The
pod-level profile counts even when every container sets its own: the kubelet passes it
to the runtime for the pod sandbox too (containerd applies it to the pause container).

NOTE: the seccomp annotations that Kubernetes before 1.27 also read
(`seccomp.security.alpha.kubernetes.io/pod`) are not considered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from seccomp_recorder.agent.paths import parse_localhost_profile

KubeObject = dict[str, Any]

LOCALHOST: Final = "Localhost"
# Pods in these phases have no running container left and never start one again.
FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})
CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


def localhost_profiles(pod: KubeObject) -> set[str]:
    """Return every `localhostProfile` value that the pod or one of its containers sets."""
    spec = pod.get("spec") or {}
    contexts = [spec.get("securityContext") or {}]
    for field in CONTAINER_LISTS:
        for container in spec.get(field) or []:
            contexts.append(container.get("securityContext") or {})
    found = set()
    for context in contexts:
        profile = context.get("seccompProfile") or {}
        if profile.get("type") == LOCALHOST and profile.get("localhostProfile"):
            found.add(str(profile["localhostProfile"]))
    return found


def project_profiles(pod: KubeObject) -> set[tuple[str, str]]:
    """Return (namespace, name) of every SeccompProfile of this project that the pod uses."""
    found = set()
    for value in localhost_profiles(pod):
        parsed = parse_localhost_profile(value)
        if parsed is not None:
            found.add(parsed)
    return found


def is_finished(pod: KubeObject) -> bool:
    """Tell whether the pod's phase is Succeeded or Failed, so no container of it runs."""
    return (pod.get("status") or {}).get("phase") in FINISHED_PHASES


def pods_using(namespace: str, name: str, pods: Iterable[KubeObject]) -> list[str]:
    """Return `namespace/name` of each unfinished pod that uses profile `namespace/name`.

    A pending pod counts, because its containers will need the file when they start, and
    so does a pod being deleted, until its containers have stopped and the node removed it.
    """
    users = []
    for pod in pods:
        if is_finished(pod) or (namespace, name) not in project_profiles(pod):
            continue
        metadata = pod.get("metadata") or {}
        users.append(f"{metadata.get('namespace')}/{metadata.get('name')}")
    return sorted(users)
