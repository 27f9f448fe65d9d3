"""The kopf handlers of the operator, registered on import with kopf's default registry.

Every handler is thin: it unpacks kopf's arguments, guards, and delegates to the plain
functions of `agent_deploy`, `recording_sync` and `profile_status`. The handlers get the
settings, the API clients and the wake-ups through kopf's memo (`Runtime`), never from
module state, so nothing here reads configuration at import time.

- Startup: create or update the node agent DaemonSet.
- SeccompRecording: start and stop on create, resume and spec changes, and stop when
  the duration elapsed (timer). A daemon per recording turns results into profiles. A
  finalizer waits, bounded, for the agents' final results and finalizes the profiles.
- SeccompRecordingResult: wake the daemon of the result's recording.
- SeccompProfile: keep the status true to the spec and the agents' reports on every
  change; a finalizer keeps a deleted profile until no existing node has its file.
- Node: an in-memory index of the nodes, for the profile statuses, and a recount of
  every profile's nodes when the nodes the agents target change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from seccomp_recorder.models.recording import (
    RecordingPhase,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
)
from seccomp_recorder.operator import events, metrics, recording_sync
from seccomp_recorder.operator.agent_deploy import DeployOutcome, ensure_agent_daemonset
from seccomp_recorder.operator.daemonset import NAME as DAEMONSET_NAME
from seccomp_recorder.operator.events import Reason
from seccomp_recorder.operator.kube import (
    GROUP,
    PROFILES,
    RECORDING_RESULTS,
    RECORDINGS,
    VERSION,
    ApiClients,
    ConflictError,
    describe_error,
)
from seccomp_recorder.operator.node_changes import CountedNodes, recount_profiles
from seccomp_recorder.operator.profile_status import (
    NodeInfo,
    ProfileView,
    compute_status,
    deletion_blockers,
    status_events,
    status_patch,
    targeted_nodes,
)
from seccomp_recorder.operator.recording_state import duration_deadline
from seccomp_recorder.operator.settings import OperatorSettings
from seccomp_recorder.operator.wakeups import Wakeups

# Seconds between two checks of whether a recording's duration elapsed.
DURATION_CHECK_INTERVAL: Final = 2.0
# Seconds a recording's sync loop sleeps at most, also when nothing woke it: a safety net
# for a missed result event.
SYNC_IDLE_INTERVAL: Final = 60.0
# Seconds before a sync pass that failed on an API error is tried again.
SYNC_RETRY_DELAY: Final = 10.0
# Seconds between two checks of a deleted profile's node entries.
PROFILE_REMOVAL_RETRY_DELAY: Final = 5.0
# Attempts and back-off of the agent deployment at start, before the operator goes on
# without it and reports the failure.
AGENT_DEPLOY_ATTEMPTS: Final = 5
AGENT_DEPLOY_BACKOFF: Final = 5.0
# Back-off of recording handlers that failed on an API error, in seconds.
HANDLER_BACKOFF: Final = 5.0


# The logger kopf passes: its per-object adapter, which prefixes [namespace/name].
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass
class Runtime:
    """Shared state of the handlers, passed as kopf's memo (kopf copies it per object, shallowly)."""

    settings: OperatorSettings
    api: ApiClients
    wakeups: Wakeups = field(default_factory=Wakeups)
    counted_nodes: CountedNodes = field(default_factory=CountedNodes)


def _now() -> datetime:
    return datetime.now(UTC)


def _in_namespace(namespace: str | None) -> str:
    # kopf types `namespace` as optional for every resource, but these are all namespaced.
    if namespace is None:
        raise kopf.PermanentError("the object has no namespace, but its kind is namespaced")
    return namespace


# Startup


@kopf.on.startup()
def deploy_agent(memo: Runtime, retry: int, logger: Logger, **_: Any) -> None:
    """Create or update the node agent DaemonSet from the operator's settings."""
    settings = memo.settings
    reference = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET_NAME, "namespace": settings.namespace},
    }
    try:
        with metrics.RECONCILE_DURATION.labels("agent_deploy").time():
            outcome, daemonset = ensure_agent_daemonset(memo.api, settings)
    except (ApiException, ConflictError) as error:
        message = (
            f"deploying the agent DaemonSet {settings.namespace}/{DAEMONSET_NAME} failed:"
            f" {describe_error(error)}"
        )
        if retry + 1 < AGENT_DEPLOY_ATTEMPTS:
            raise kopf.TemporaryError(message, delay=AGENT_DEPLOY_BACKOFF) from error
        logger.error("%s. Going on without it, so no node installs or records profiles.", message)
        _post_at_startup(memo.api, reference, Reason.AGENT_DEPLOY_FAILED, message, logger,
                         warning=True)
        return
    image = settings.agent_image
    if outcome is DeployOutcome.CREATED:
        message = f"created the agent DaemonSet with image {image}"
        _post_at_startup(memo.api, daemonset, Reason.AGENT_DEPLOYED, message, logger)
    elif outcome is DeployOutcome.UPDATED:
        message = f"updated the agent DaemonSet to the operator's settings, image {image}"
        _post_at_startup(memo.api, daemonset, Reason.AGENT_UPDATED, message, logger)
    else:
        message = "the agent DaemonSet matches the operator's settings"
    logger.info("%s%s (%s/%s).", message[0].upper(), message[1:], settings.namespace, DAEMONSET_NAME)


def _post_at_startup(
    api: ApiClients, involved: dict[str, Any], reason: Reason, message: str, logger: Logger,
    *, warning: bool = False,
) -> None:
    # An Event that cannot be posted (its namespace is missing, say) must not stop the
    # operator, because the log line carries the same message.
    try:
        events.create_event(api, involved, reason, message, warning=warning)
    except ApiException as error:
        logger.warning("Posting the %s Event failed: %s", reason.value, describe_error(error))


@kopf.on.cleanup()
def close_clients(memo: Runtime, **_: Any) -> None:
    """Close the API clients' connection pool when the operator stops."""
    memo.api.close()


# Nodes


@kopf.index("", "v1", "nodes")
def node_index(body: kopf.Body, name: str, **_: Any) -> dict[str, NodeInfo]:
    """Index the nodes by name, with readiness, labels and taints."""
    return {name: NodeInfo.from_body(body)}


@kopf.on.event("", "v1", "nodes")
def recount_profiles_for_nodes(
    event: kopf.RawEvent, body: kopf.Body, name: str, memo: Runtime, logger: Logger,
    **kwargs: Any,
) -> None:
    """Recount every profile's nodes when a node came, went, or changed readiness."""
    # Most node events are status heartbeats that leave this node where it was: compare
    # this node alone before the whole index.
    last_counted = memo.counted_nodes.nodes
    if last_counted is not None:
        settings = memo.settings
        targeted_now = event.get("type") != "DELETED" and bool(targeted_nodes(
            [NodeInfo.from_body(body)], settings.agent_node_selector, settings.agent_tolerations
        ))
        if targeted_now == (name in last_counted):
            return

    targeted = _targeted(memo, kwargs["node_index"])
    with memo.counted_nodes.held() as counted:
        if counted.nodes == targeted:
            return
        try:
            with metrics.RECONCILE_DURATION.labels("profile_recount").time():
                patched = recount_profiles(memo.api, targeted, now=_now())
        except ApiException as error:
            logger.warning(
                "Recounting the profiles for nodes %s failed, to be tried again on the next"
                " node event: %s", ", ".join(sorted(targeted)) or "(none)", describe_error(error),
            )
            return
        counted.nodes = targeted
    logger.info(
        "Recounted the profiles for the %d node(s) the agents now target: %d status(es)"
        " changed.", len(targeted), patched,
    )


# SeccompRecordings


@kopf.on.create(GROUP, VERSION, RECORDINGS, backoff=HANDLER_BACKOFF)
@kopf.on.resume(GROUP, VERSION, RECORDINGS, backoff=HANDLER_BACKOFF)
@kopf.on.update(GROUP, VERSION, RECORDINGS, field="spec", backoff=HANDLER_BACKOFF)
def reconcile_recording(
    namespace: str | None, name: str, memo: Runtime, logger: Logger, **_: Any
) -> None:
    """Start, stop or leave the recording as its spec requests, then wake its sync loop."""
    namespace = _in_namespace(namespace)
    with metrics.RECONCILE_DURATION.labels("recording_lifecycle").time():
        recording_sync.apply_lifecycle(memo.api, namespace, name, logger)
    memo.wakeups.wake(namespace, name)


@kopf.on.event(GROUP, VERSION, RECORDINGS)
def count_recording(
    event: kopf.RawEvent, status: kopf.Status, namespace: str | None, name: str, **_: Any
) -> None:
    """Keep the recording's phase and container states for the metrics."""
    namespace = _in_namespace(namespace)
    if event.get("type") == "DELETED":
        metrics.OBJECTS.forget_recording(namespace, name)
    else:
        metrics.OBJECTS.observe_recording(namespace, name, status)


def _runs_with_duration(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool(spec.get("duration")) and status.get("phase") == RecordingPhase.RECORDING


@kopf.timer(
    GROUP, VERSION, RECORDINGS, interval=DURATION_CHECK_INTERVAL, when=_runs_with_duration,
    backoff=HANDLER_BACKOFF,
)
def stop_after_duration(
    spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str, memo: Runtime,
    logger: Logger, **_: Any,
) -> None:
    """Stop the recording once its duration has elapsed since it started."""
    try:
        deadline = duration_deadline(
            SeccompRecordingSpec.model_validate(dict(spec)),
            SeccompRecordingStatus.model_validate(dict(status)),
        )
    except ValidationError:
        return  # The create and update handlers fail a recording with an invalid spec.
    if deadline is None or _now() < deadline:
        return
    namespace = _in_namespace(namespace)
    with metrics.RECONCILE_DURATION.labels("recording_lifecycle").time():
        recording_sync.apply_lifecycle(memo.api, namespace, name, logger)
    memo.wakeups.wake(namespace, name)


@kopf.daemon(GROUP, VERSION, RECORDINGS, cancellation_timeout=30.0)
async def sync_profiles(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: Runtime,
    logger: Logger, **kwargs: Any,
) -> None:
    """Turn the recording's results into profiles whenever they change or a delay is due."""
    namespace = _in_namespace(namespace)
    memory = recording_sync.SyncMemory()
    memo.wakeups.register(namespace, name)
    try:
        while not stopped:
            try:
                targeted = _targeted(memo, kwargs["node_index"])
                with metrics.RECONCILE_DURATION.labels("recording_sync").time():
                    outcome = await asyncio.to_thread(
                        functools.partial(
                            recording_sync.sync_recording, memo.api, memo.settings, namespace,
                            name, memory, logger, targeted=targeted,
                        )
                    )
            except (ApiException, ConflictError) as error:
                metrics.SYNC_FAILURES.inc()
                logger.error("Syncing the profiles failed, retrying in %g s: %s",
                             SYNC_RETRY_DELAY, describe_error(error))
                delay = SYNC_RETRY_DELAY
            else:
                delay = SYNC_IDLE_INTERVAL if outcome.next_delay is None else outcome.next_delay
            await memo.wakeups.wait(
                namespace, name, min(delay, SYNC_IDLE_INTERVAL), stopped.wait()
            )
    finally:
        memo.wakeups.forget(namespace, name)


@kopf.on.delete(GROUP, VERSION, RECORDINGS, backoff=HANDLER_BACKOFF)
def finalize_recording(
    namespace: str | None, name: str, memo: Runtime, logger: Logger, **_: Any
) -> None:
    """Stop the recording, wait (bounded) for final results, then finalize its profiles."""
    namespace = _in_namespace(namespace)
    with metrics.RECONCILE_DURATION.labels("recording_lifecycle").time():
        recording_sync.apply_lifecycle(memo.api, namespace, name, logger)
    delay, pending = recording_sync.deletion_wait(memo.api, memo.settings, namespace, name)
    if delay is not None:
        listed = ", ".join(pending[:5]) + (" and more" if len(pending) > 5 else "")
        containers = "container" if len(pending) == 1 else "containers"
        raise kopf.TemporaryError(
            f"waiting for the final results of {len(pending)} {containers}: {listed}",
            delay=delay,
        )
    recording_sync.sync_recording(
        memo.api, memo.settings, namespace, name, recording_sync.SyncMemory(), logger,
        finalize=True,
    )


@kopf.on.field(GROUP, VERSION, RECORDINGS, field="status.agents")
async def wake_on_agents(namespace: str | None, name: str, memo: Runtime, **_: Any) -> None:
    """Wake the recording's sync loop when an agent reports its recorder, to update the condition."""
    memo.wakeups.wake(_in_namespace(namespace), name)


# SeccompRecordingResults


@kopf.on.event(GROUP, VERSION, RECORDING_RESULTS)
async def wake_recording(spec: kopf.Spec, namespace: str | None, memo: Runtime, **_: Any) -> None:
    """Wake the sync loop of the recording that the result belongs to."""
    recording = spec.get("recording")
    if isinstance(recording, str) and recording and namespace is not None:
        memo.wakeups.wake(namespace, recording)


# SeccompProfiles


def _targeted(memo: Runtime, nodes: kopf.Index[str, NodeInfo]) -> frozenset[str]:
    known = [info for store in nodes.values() for info in store]
    return targeted_nodes(
        known, memo.settings.agent_node_selector, memo.settings.agent_tolerations
    )


def _refresh_profile_status(
    body: kopf.Body, patch: kopf.Patch, memo: Runtime, nodes: kopf.Index[str, NodeInfo]
) -> None:
    with metrics.RECONCILE_DURATION.labels("profile_status").time():
        profile = ProfileView.from_body(body)
        status = compute_status(profile, _targeted(memo, nodes), now=_now())
        changes = status_patch(body.get("status") or {}, status)
        if changes:
            patch.status.update(changes)
            events.post(body, status_events(profile.status, status, generation=profile.generation))


@kopf.on.event(GROUP, VERSION, PROFILES)
def update_profile_status(
    event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch, memo: Runtime, **kwargs: Any
) -> None:
    """Recompute the profile's status from its spec and the agents' node entries."""
    metadata = body.get("metadata") or {}
    key = (metadata.get("namespace", ""), metadata.get("name", ""))
    if event.get("type") == "DELETED":
        metrics.OBJECTS.forget_profile(*key)
        return
    metrics.OBJECTS.observe_profile(*key, body.get("status") or {})
    _refresh_profile_status(body, patch, memo, kwargs["node_index"])




@kopf.on.delete(GROUP, VERSION, PROFILES)
def release_profile(
    body: kopf.Body, patch: kopf.Patch, retry: int, logger: Logger, **kwargs: Any
) -> None:
    """Hold a deleted profile until every node that still exists removed its file."""
    nodes: kopf.Index[str, NodeInfo] = kwargs["node_index"]
    with metrics.RECONCILE_DURATION.labels("profile_release").time():
        profile = ProfileView.from_body(body)
        blockers = deletion_blockers(profile.status, set(nodes))
    if profile.status.phase != "Terminating":
        patch.status["phase"] = "Terminating"
    if blockers:
        message = f"waiting for nodes {', '.join(blockers)} to remove the profile's file"
        if retry == 0:
            events.post_normal(body, Reason.PROFILE_REMOVAL_PENDING, message)
        raise kopf.TemporaryError(message, delay=PROFILE_REMOVAL_RETRY_DELAY)
    logger.info("Every node that still exists removed the profile's file.")
    events.post_normal(body, Reason.PROFILE_RELEASED, "removed from every node that still exists")
