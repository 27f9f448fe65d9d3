"""The node status entry and merge patch that the agent sends, built without a server."""

from __future__ import annotations

from seccomp_recorder.agent import status
from seccomp_recorder.agent.status import NodeReport
from seccomp_recorder.models.profile import NodeProfileState

INSTALLED = NodeReport(
    NodeProfileState.INSTALLED, status.PROFILE_INSTALLED, "", 3, "ab" * 32
)


def test_patch_touches_only_this_node() -> None:
    entry = status.node_entry(INSTALLED, None, "2025-01-01T00:00:00Z")
    patch = status.status_patch("node-1", entry)
    assert patch == {
        "nodeStatuses": {
            "node-1": {
                "state": "Installed",
                "message": "",
                "observedGeneration": 3,
                "contentHash": "ab" * 32,
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }
        }
    }


def test_transition_time_kept_for_same_state() -> None:
    previous = {"state": "Installed", "lastTransitionTime": "2024-06-01T00:00:00Z"}
    entry = status.node_entry(INSTALLED, previous, "2025-01-01T00:00:00Z")
    assert entry["lastTransitionTime"] == "2024-06-01T00:00:00Z"


def test_transition_time_set_on_state_change() -> None:
    previous = {"state": "Error", "lastTransitionTime": "2024-06-01T00:00:00Z"}
    entry = status.node_entry(INSTALLED, previous, "2025-01-01T00:00:00Z")
    assert entry["lastTransitionTime"] == "2025-01-01T00:00:00Z"


def test_removed_clears_hash_and_generation() -> None:
    report = NodeReport(NodeProfileState.REMOVED, status.PROFILE_REMOVED)
    entry = status.node_entry(report, None, "2025-01-01T00:00:00Z")
    # null removes the key in a JSON merge patch.
    assert entry["contentHash"] is None
    assert entry["observedGeneration"] is None


def test_is_reported_compares_all_but_time() -> None:
    entry = status.node_entry(INSTALLED, None, "2025-01-01T00:00:00Z")
    assert status.is_reported(entry, INSTALLED)
    assert not status.is_reported(None, INSTALLED)
    newer = NodeReport(NodeProfileState.INSTALLED, status.PROFILE_INSTALLED, "", 4, "ab" * 32)
    assert not status.is_reported(entry, newer)
    other_hash = NodeReport(NodeProfileState.INSTALLED, status.PROFILE_INSTALLED, "", 3, "cd" * 32)
    assert not status.is_reported(entry, other_hash)


def test_current_entry_reads_node() -> None:
    obj = {"status": {"nodeStatuses": {"node-1": {"state": "Error"}, "node-2": {}}}}
    assert status.current_entry(obj, "node-1") == {"state": "Error"}
    assert status.current_entry(obj, "node-3") is None
    assert status.current_entry({}, "node-1") is None


def test_long_message_truncated() -> None:
    message = "x" * (status.MAX_MESSAGE_LENGTH + 100)
    cut = status.truncate(message)
    assert len(cut) == status.MAX_MESSAGE_LENGTH
    assert cut.endswith("[truncated]")


def test_warning_reasons() -> None:
    assert NodeReport(NodeProfileState.ERROR, status.PROFILE_INVALID).warning
    assert NodeReport(NodeProfileState.ERROR, status.BASE_PROFILE_NOT_FOUND).warning
    assert not INSTALLED.warning
