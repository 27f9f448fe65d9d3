"""Fakes of the Kubernetes API for the agent's unit tests: list functions and API clients.

`FakeListFunction` stands in for a client list method such as
`CoreV1Api.list_pod_for_all_namespaces`: each list or watch call takes the next scripted
answer, and every call's keyword arguments are recorded. `FakeApi` records status patches
and Events as the installer sends them.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException


def pod(
    name: str,
    *,
    namespace: str = "default",
    phase: str = "Running",
    profile: str | None = None,
    container_profile: str | None = None,
    resource_version: str = "1",
) -> dict[str, Any]:
    """Build a pod's JSON with an optional pod-level and container-level Localhost profile."""
    spec: dict[str, Any] = {"nodeName": "node-1", "containers": [{"name": "main"}]}
    if profile is not None:
        spec["securityContext"] = {
            "seccompProfile": {"type": "Localhost", "localhostProfile": profile}
        }
    if container_profile is not None:
        spec["containers"][0]["securityContext"] = {
            "seccompProfile": {"type": "Localhost", "localhostProfile": container_profile}
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
        "spec": spec,
        "status": {"phase": phase},
    }


def profile(
    name: str,
    *,
    namespace: str = "default",
    spec: dict[str, Any] | None = None,
    generation: int = 1,
    resource_version: str = "1",
    uid: str | None = None,
    deleting: bool = False,
    node_statuses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a SeccompProfile's JSON; the default spec allows read, write and exit_group."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "generation": generation,
        "resourceVersion": resource_version,
        "uid": uid or f"uid-{namespace}-{name}",
    }
    if deleting:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    obj: dict[str, Any] = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": metadata,
        "spec": spec if spec is not None else allow_spec("read", "write", "exit_group"),
    }
    if node_statuses is not None:
        obj["status"] = {"nodeStatuses": node_statuses}
    return obj


def allow_spec(*names: str, base: str | None = None) -> dict[str, Any]:
    """Build a spec that allows `names` (plus clone3 with ENOSYS) and denies the rest."""
    spec: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": list(names), "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    }
    if base is not None:
        spec["baseProfileName"] = base
    return spec


class FakeResponse:
    """A urllib3 response read with `_preload_content=False`: a list body or a watch stream."""

    def __init__(self, body: bytes, on_end: Callable[[], None] | None = None) -> None:
        self.data = body
        self._on_end = on_end
        self.closed = False
        self.released = False

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self.data.splitlines(keepends=True)
        if self._on_end is not None:
            self._on_end()

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True

    def shutdown(self) -> None:
        self.closed = True


ListAnswer = tuple[list[dict[str, Any]], str] | BaseException
WatchAnswer = list[dict[str, Any]] | BaseException


class FakeListFunction:
    """A scripted list function: list calls take `lists` in turn, watch calls take `watches`.

    When the watches run out, `when_exhausted` is called (tests pass the informer's stop),
    and the watch returns an empty stream.
    """

    def __init__(self) -> None:
        self.lists: deque[ListAnswer] = deque()
        self.watches: deque[WatchAnswer] = deque()
        self.calls: list[dict[str, Any]] = []
        self.when_exhausted: Callable[[], None] | None = None

    def __call__(self, **arguments: Any) -> FakeResponse:
        self.calls.append(arguments)
        if arguments.get("watch"):
            return self._watch()
        answer = self.lists.popleft()
        if isinstance(answer, BaseException):
            raise answer
        items, version = answer
        body = {"kind": "List", "metadata": {"resourceVersion": version}, "items": items}
        return FakeResponse(json.dumps(body).encode())

    def _watch(self) -> FakeResponse:
        if not self.watches:
            if self.when_exhausted is not None:
                self.when_exhausted()
            return FakeResponse(b"")
        answer = self.watches.popleft()
        if isinstance(answer, BaseException):
            raise answer
        lines = b"".join(json.dumps(event).encode() + b"\n" for event in answer)
        return FakeResponse(lines)

    def watch_calls(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if call.get("watch")]

    def list_calls(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if not call.get("watch")]


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def gone_event() -> dict[str, Any]:
    return event(
        "ERROR",
        {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"},
    )


def bookmark(version: str) -> dict[str, Any]:
    return event("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": version}})


def api_error(status: int, reason: str = "error") -> ApiException:
    return ApiException(status=status, reason=reason)


class FakeCustomObjects:
    """Records `patch_namespaced_custom_object_status` calls; `fail_with` makes them raise."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.fail_with: BaseException | None = None

    def patch_namespaced_custom_object_status(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        **options: Any,
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.patches.append((namespace, name, body, options.get("_content_type")))


class FakeCore:
    """Records `create_namespaced_event` calls."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.events.append(body)


class FakeApi:
    """Stands in for `kube.ApiClients`: `custom` and `core` record what is sent."""

    def __init__(self) -> None:
        self.custom = FakeCustomObjects()
        self.core = FakeCore()
        self.api_client = None

    def close(self) -> None:
        pass

    def reasons(self) -> list[str]:
        return [body["reason"] for body in self.core.events]

    def node_entries(self, node: str = "node-1") -> list[dict[str, Any]]:
        return [body["status"]["nodeStatuses"][node] for _, _, body, _ in self.custom.patches]
