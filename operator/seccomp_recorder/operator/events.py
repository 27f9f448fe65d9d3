"""Kubernetes Events that the operator posts, and their reasons.

Every reason is a stable CamelCase constant here, so users can filter on it
(`kubectl get events --field-selector reason=ProfileInvalid`) and alerts can rely on it.
Failures are Warning events, state changes Normal ones. Events about watched objects go
through kopf's poster, which sends them in the background from any handler thread.
`create_event` posts directly, for startup, because kopf's poster is not available yet.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, cast

import kopf

from seccomp_recorder.operator.kube import REQUEST_TIMEOUT, ApiClients
from seccomp_recorder.operator.metrics import EVENTS_POSTED

# `source.component` and `reportingComponent` of the Events posted by `create_event`.
EVENT_COMPONENT: Final = "seccomp-recorder-operator"


class Reason(StrEnum):
    """Reason of an Event posted by the operator."""

    # The node agent DaemonSet.
    AGENT_DEPLOYED = "AgentDeployed"
    AGENT_UPDATED = "AgentUpdated"
    AGENT_DEPLOY_FAILED = "AgentDeployFailed"

    # SeccompRecordings.
    RECORDING_STARTED = "RecordingStarted"
    RECORDING_STOPPED = "RecordingStopped"
    RECORDING_COMPLETED = "RecordingCompleted"
    RECORDING_FAILED = "RecordingFailed"
    AGENTS_ATTACHED = "AgentsAttached"
    FINAL_RESULTS_TIMED_OUT = "FinalResultsTimedOut"
    RESULT_INVALID = "ResultInvalid"
    UNKNOWN_SYSCALLS = "UnknownSyscalls"

    # SeccompProfiles written from recordings.
    PROFILE_CREATED = "ProfileCreated"
    PROFILE_UPDATED = "ProfileUpdated"
    PROFILE_FINAL = "ProfileFinal"
    PROFILE_NAME_CONFLICT = "ProfileNameConflict"

    # SeccompProfiles and their installation on nodes, summed up over the nodes. The node
    # agents post their own Events per node (ProfileInstalled, ProfileInstallFailed,
    # ProfileRemoved...), so these reasons differ wherever the scope differs.
    PROFILE_INVALID = "ProfileInvalid"
    PROFILE_READY = "ProfileReady"
    PROFILE_NODE_ERROR = "ProfileNodeError"
    PROFILE_REMOVAL_PENDING = "ProfileRemovalPending"
    PROFILE_RELEASED = "ProfileReleased"


def _as_body(body: Mapping[str, Any]) -> kopf.Body:
    if isinstance(body, kopf.Body):
        return body
    return kopf.Body(cast(kopf.RawBody, dict(body)))


def post_normal(body: Mapping[str, Any], reason: Reason, message: str) -> None:
    """Post a Normal event about `body`, an object as the API returns it."""
    kopf.event(_as_body(body), type="Normal", reason=reason.value, message=message)
    EVENTS_POSTED.labels(reason.value, "Normal").inc()


def post_warning(body: Mapping[str, Any], reason: Reason, message: str) -> None:
    """Post a Warning event about `body`, an object as the API returns it."""
    kopf.event(_as_body(body), type="Warning", reason=reason.value, message=message)
    EVENTS_POSTED.labels(reason.value, "Warning").inc()


@dataclass(frozen=True)
class EventToPost:
    """An Event that a pure decision calls for, posted later by its handler."""

    reason: Reason
    message: str
    warning: bool = False


def post(body: Mapping[str, Any], events: Iterable[EventToPost]) -> None:
    """Post `events` about `body`, each as a Warning or a Normal event."""
    for event in events:
        if event.warning:
            post_warning(body, event.reason, event.message)
        else:
            post_normal(body, event.reason, event.message)


def event_body(
    involved: Mapping[str, Any], reason: Reason, message: str, *, warning: bool, now: datetime
) -> dict[str, Any]:
    """Build a core/v1 Event about `involved`, named as client-go's recorder names them."""
    metadata = involved.get("metadata") or {}
    timestamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reference = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "uid": metadata.get("uid"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata.get('name', 'object')}.{secrets.token_hex(8)}",
            "namespace": metadata.get("namespace") or "default",
        },
        "involvedObject": {key: value for key, value in reference.items() if value},
        "reason": reason.value,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }


def create_event(
    api: ApiClients,
    involved: Mapping[str, Any],
    reason: Reason,
    message: str,
    *,
    warning: bool = False,
) -> None:
    """Post an Event about `involved` with the API client; raises ApiException on failure."""
    body: Any = event_body(involved, reason, message, warning=warning, now=datetime.now(UTC))
    api.core.create_namespaced_event(
        body["metadata"]["namespace"], body,
        _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
    )
    EVENTS_POSTED.labels(reason.value, body["type"]).inc()
