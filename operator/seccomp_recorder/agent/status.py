"""What the agent reports about a profile on its node: the `nodeStatuses` entry and Event reasons.

Each agent writes only `status.nodeStatuses[<its node>]`, with a JSON merge patch of the
status subresource, so agents of different nodes never overwrite each other. The operator
sums the entries up into the profile's phase. These builders are pure, so tests check the
patch bodies without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from seccomp_recorder.models.profile import NodeProfileState

KubeObject = dict[str, Any]

# Event reasons: stable CamelCase identifiers that users and alerts filter on.
PROFILE_INSTALLED: Final = "ProfileInstalled"
PROFILE_INSTALL_FAILED: Final = "ProfileInstallFailed"
PROFILE_INVALID: Final = "ProfileInvalid"
BASE_PROFILE_NOT_FOUND: Final = "BaseProfileNotFound"
PROFILE_IN_USE: Final = "ProfileInUse"
PROFILE_REMOVED: Final = "ProfileRemoved"

WARNING_REASONS: Final = frozenset({PROFILE_INSTALL_FAILED, PROFILE_INVALID, BASE_PROFILE_NOT_FOUND})

# Event reasons of the recording side, about SeccompRecordings, per node.
RECORDER_ATTACHED: Final = "RecorderAttached"
RECORDER_ATTACH_FAILED: Final = "RecorderAttachFailed"
RESULT_WRITE_FAILED: Final = "ResultWriteFailed"
SYSCALLS_LOST: Final = "SyscallsLost"

# Every reason the agent posts: about SeccompProfiles, then about SeccompRecordings.
PROFILE_REASONS: Final = (
    PROFILE_INSTALLED, PROFILE_INSTALL_FAILED, PROFILE_INVALID, BASE_PROFILE_NOT_FOUND,
    PROFILE_IN_USE, PROFILE_REMOVED,
)
RECORDING_REASONS: Final = (
    RECORDER_ATTACHED, RECORDER_ATTACH_FAILED, RESULT_WRITE_FAILED, SYSCALLS_LOST,
)

# Maximum length of a message in a status entry or an Event, in characters. Longer ones are
# cut, and every problem is also logged in full.
MAX_MESSAGE_LENGTH: Final = 4000


@dataclass(frozen=True)
class NodeReport:
    """The state of one profile's file on this node, as the agent will report it."""

    state: NodeProfileState
    reason: str
    message: str = ""
    observed_generation: int | None = None
    content_hash: str | None = None

    @property
    def warning(self) -> bool:
        """Whether the Event for this report is of type Warning."""
        return self.reason in WARNING_REASONS


def truncate(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """Cut `message` to `limit` characters, marking the cut."""
    if len(message) <= limit:
        return message
    marker = " [truncated]"
    return message[: limit - len(marker)] + marker


def current_entry(profile: KubeObject, node_name: str) -> KubeObject | None:
    """Return this node's entry in the profile's `status.nodeStatuses`, or None."""
    node_statuses = (profile.get("status") or {}).get("nodeStatuses") or {}
    entry = node_statuses.get(node_name)
    return entry if isinstance(entry, dict) else None


def is_reported(entry: KubeObject | None, report: NodeReport) -> bool:
    """Tell whether `entry` already contains `report` (the transition time aside)."""
    if entry is None:
        return False
    return (
        entry.get("state") == report.state.value
        and (entry.get("message") or "") == truncate(report.message)
        and entry.get("observedGeneration") == report.observed_generation
        and entry.get("contentHash") == report.content_hash
    )


def node_entry(report: NodeReport, previous: KubeObject | None, now: str) -> KubeObject:
    """Build the `nodeStatuses` entry for `report`.

    `lastTransitionTime` becomes `now` when the state changes and keeps the previous
    value otherwise. Unset fields are written as null, so the merge patch removes them.
    """
    transition = now
    if previous is not None and previous.get("state") == report.state.value:
        transition = previous.get("lastTransitionTime") or now
    return {
        "state": report.state.value,
        "message": truncate(report.message),
        "observedGeneration": report.observed_generation,
        "contentHash": report.content_hash,
        "lastTransitionTime": transition,
    }


def status_patch(node_name: str, entry: KubeObject) -> KubeObject:
    """Build the merge patch of `status` that sets only this node's entry."""
    return {"nodeStatuses": {node_name: entry}}
