"""The agent's Kubernetes API side: clients, resource names, status patches and Events.

Objects travel as the API's JSON (`dict`), read with `_preload_content=False`, so no field
is lost to the `kubernetes` client's generated models and custom resources look the same
as pods. The installer and the recording side both use these helpers; every request goes
through the one `ApiClients` built by `connect`, whose connection pool is thread-safe.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Final

import kubernetes

from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.kubeapi import (
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
    "GROUP", "MERGE_PATCH", "PROFILES", "RECORDINGS", "RECORDING_RESULTS", "REQUEST_TIMEOUT",
    "VERSION", "ApiClients", "KubeObject", "connect", "describe", "event_body",
    "now_rfc3339", "patch_profile_status", "patch_status", "post_event", "read_json",
]

# `source.component` and `reportingComponent` of the Events the agent posts.
EVENT_COMPONENT: Final = "seccomp-recorder-agent"


def connect(settings: AgentSettings) -> ApiClients:
    """Build the API clients from `settings.kubeconfig`, else from the in-cluster config.

    Raises `kubernetes.config.ConfigException` when neither is usable, for example when
    the agent runs outside a pod and no kubeconfig is set.
    """
    configuration = kubernetes.client.Configuration()
    if settings.kubeconfig is not None:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    # The informers and the installer retry with their own backoff and log each failure,
    # so urllib3's immediate retries would only add delay and log lines.
    configuration.retries = False
    return ApiClients.from_api_client(kubernetes.client.ApiClient(configuration))


def describe(obj: KubeObject) -> str:
    """Name an object as logs do: `namespace/name`, or `name` when cluster-scoped."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "?")
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def now_rfc3339() -> str:
    """Return the current time as Kubernetes writes timestamps: UTC, whole seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def patch_status(
    api: ApiClients, plural: str, namespace: str, name: str, status_patch: KubeObject
) -> None:
    """Merge `status_patch` into the status subresource of one of the project's objects.

    A JSON merge patch changes only the keys it names, so agents of other nodes that
    patch their own entries at the same time keep theirs. Raises ApiException, with
    status 404 when the object is gone.
    """
    api.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        {"status": status_patch},
        _content_type=MERGE_PATCH,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )


def patch_profile_status(
    api: ApiClients, namespace: str, name: str, status_patch: KubeObject
) -> None:
    """Merge `status_patch` into the SeccompProfile's status subresource."""
    patch_status(api, PROFILES, namespace, name, status_patch)


def event_body(
    involved: KubeObject, *, reason: str, message: str, warning: bool, node_name: str
) -> KubeObject:
    """Build a core/v1 Event about `involved`, as the kubelet would post one.

    The name is the object's name plus a random suffix, as client-go's recorder makes it,
    so Events never collide.
    """
    metadata = involved.get("metadata") or {}
    timestamp = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata.get('name', 'object')}.{secrets.token_hex(8)}",
            "namespace": metadata.get("namespace") or "default",
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": EVENT_COMPONENT, "host": node_name},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": node_name,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }


def post_event(api: ApiClients, body: KubeObject) -> None:
    """Create the Event `body` (from `event_body`); raises ApiException when that fails."""
    # The client validates a dict body into its model anyway; its signature wants the model.
    event: Any = body
    api.core.create_namespaced_event(
        body["metadata"]["namespace"],
        event,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
