"""The operator's own requests to the API server, beside kopf's watches and patches.

kopf watches the resources and patches the object a handler runs for. Every other
request goes through the official `kubernetes` client here: the DaemonSet, the profiles
written from recordings, the results, and status writes with resourceVersion
preconditions.
Objects travel as the API's JSON (`dict`, read with `_preload_content=False`), so no field
is lost to the client's generated models and custom resources look like built-in ones.
The client is synchronous; kopf runs sync handlers in threads, and async code calls
these functions with `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from seccomp_recorder.kubeapi import (
    API_VERSION,
    GROUP,
    MERGE_PATCH,
    PROFILES,
    RECORDING_RESULTS,
    RECORDINGS,
    REQUEST_TIMEOUT,
    VERSION,
    ApiClients,
    KubeObject,
    read_json,
)

__all__ = [
    "API_VERSION", "CONFLICT_ATTEMPTS", "FINALIZER", "GROUP", "HTTP_CONFLICT", "HTTP_INVALID",
    "HTTP_NOT_FOUND", "MERGE_PATCH", "PROFILES", "RECORDINGS", "RECORDING_RESULTS",
    "REQUEST_TIMEOUT", "VERSION", "ApiClients", "ConflictError", "KubeObject", "connect",
    "create_custom", "describe_error", "get_custom", "is_status", "list_custom",
    "list_custom_everywhere", "patch_status",
    "read_json", "replace_custom", "update_status",
]

# The finalizer kopf adds to the objects it handles, for their delete handlers.
FINALIZER: Final = f"{GROUP}/finalizer"

# Attempts of a read-modify-write that meets 409 Conflict, each with a fresh read.
CONFLICT_ATTEMPTS: Final = 5

HTTP_NOT_FOUND: Final = 404
HTTP_CONFLICT: Final = 409
HTTP_INVALID: Final = 422


def connect() -> ApiClients:
    """Build the API clients as kopf logs in: in-cluster in a pod, else from the kubeconfig.

    In a pod (KUBERNETES_SERVICE_HOST is set) the service account is used; elsewhere the
    kubeconfig that KUBECONFIG names, or ~/.kube/config. Raises
    `kubernetes.config.ConfigException` when neither is usable.
    """
    configuration = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    return ApiClients.from_api_client(kubernetes.client.ApiClient(configuration))


def is_status(error: ApiException, status: int) -> bool:
    """Return whether `error` is an API error with HTTP `status`."""
    return isinstance(error, ApiException) and bool(error.status == status)


def describe_error(error: Exception) -> str:
    """Describe an API error in one line: the HTTP status and the API server's message."""
    if not isinstance(error, ApiException):
        return str(error)
    message = error.reason or ""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        message = str(body["message"])
    return f"{error.status} {message}".strip()


def get_custom(api: ApiClients, namespace: str, plural: str, name: str) -> KubeObject | None:
    """Read one of this project's objects; None when it does not exist."""
    try:
        response = api.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name,
            _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if is_status(error, HTTP_NOT_FOUND):
            return None
        raise
    return read_json(response)


def list_custom(
    api: ApiClients, namespace: str, plural: str, label_selector: str
) -> list[KubeObject]:
    """List this project's objects of `plural` in `namespace` that match `label_selector`."""
    response = api.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, label_selector=label_selector,
        _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    items: list[KubeObject] = read_json(response).get("items") or []
    return items


def list_custom_everywhere(api: ApiClients, plural: str) -> list[KubeObject]:
    """List this project's objects of `plural` in every namespace."""
    response = api.custom.list_cluster_custom_object(
        GROUP, VERSION, plural, _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    items: list[KubeObject] = read_json(response).get("items") or []
    return items


def create_custom(api: ApiClients, namespace: str, plural: str, body: KubeObject) -> KubeObject:
    """Create an object; raises ApiException, with status 409 when the name is taken."""
    response = api.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body,
        _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    return read_json(response)


def replace_custom(api: ApiClients, namespace: str, plural: str, body: KubeObject) -> KubeObject:
    """Replace an object (PUT); its metadata.resourceVersion is a precondition (409)."""
    response = api.custom.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body["metadata"]["name"], body,
        _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    return read_json(response)


def patch_status(
    api: ApiClients,
    namespace: str,
    plural: str,
    name: str,
    status_patch: Mapping[str, Any],
    resource_version: str | None = None,
) -> KubeObject:
    """Merge `status_patch` into the status subresource of an object.

    With `resource_version`, the patch applies only to that version of the object and
    fails with 409 Conflict otherwise, so a status computed from an older read never
    overwrites a newer one.
    """
    body: KubeObject = {"status": dict(status_patch)}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    response = api.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, body,
        _content_type=MERGE_PATCH, _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    return read_json(response)


def update_status(
    api: ApiClients,
    namespace: str,
    plural: str,
    name: str,
    compute: Callable[[KubeObject], Mapping[str, Any] | None],
) -> tuple[KubeObject | None, Mapping[str, Any] | None]:
    """Read an object, compute a status patch from it, and write it with a precondition.

    `compute` gets the object as read and returns the merge patch for its status, or
    None (or an empty patch) to write nothing. On 409 Conflict the object is read again
    and `compute` called again, up to CONFLICT_ATTEMPTS times. Returns the object as
    last read or written (None when it does not exist) and the patch that was written.
    """
    for _ in range(CONFLICT_ATTEMPTS):
        obj = get_custom(api, namespace, plural, name)
        if obj is None:
            return None, None
        patch = compute(obj)
        if not patch:
            return obj, None
        try:
            written = patch_status(
                api, namespace, plural, name, patch, obj["metadata"].get("resourceVersion")
            )
        except ApiException as error:
            if is_status(error, HTTP_CONFLICT):
                continue
            if is_status(error, HTTP_NOT_FOUND):
                return None, None
            raise
        return written, patch
    raise ConflictError(f"{plural} {namespace}/{name}")


class ConflictError(RuntimeError):
    """An object kept changing between read and write, CONFLICT_ATTEMPTS times in a row."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} changed between read and write {CONFLICT_ATTEMPTS} times in a row;"
            " the next pass tries again"
        )
