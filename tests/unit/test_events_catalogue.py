"""docs/events.md lists exactly the Event reasons that the operator and the agent post."""

from __future__ import annotations

import re
from pathlib import Path

from seccomp_recorder.agent import status
from seccomp_recorder.operator.events import Reason

EVENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
# A table row: | `Reason` | Type | About | Posted by | Meaning |
ROW = re.compile(r"^\| `(?P<reason>[A-Za-z]+)` \| (?P<type>Normal|Warning) \| [^|]+ \| (?P<by>[^|]+) \|")


def documented() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in EVENTS_DOC.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match is not None:
            assert match["reason"] not in rows, f"{match['reason']} is listed twice"
            rows[match["reason"]] = (match["type"], match["by"].strip())
    return rows


def test_doc_lists_every_operator_reason() -> None:
    rows = documented()
    for reason in Reason:
        assert reason.value in rows, f"{reason.value} is missing from docs/events.md"
        assert "operator" in rows[reason.value][1], reason.value


def test_doc_lists_every_agent_reason() -> None:
    rows = documented()
    for reason in (*status.PROFILE_REASONS, *status.RECORDING_REASONS):
        assert reason in rows, f"{reason} is missing from docs/events.md"
        assert "agent" in rows[reason][1], reason


def test_doc_lists_no_other_reason() -> None:
    known = {reason.value for reason in Reason} | set(status.PROFILE_REASONS)
    known |= set(status.RECORDING_REASONS)
    assert sorted(set(documented()) - known) == []


def test_agent_warning_types_match_doc() -> None:
    rows = documented()
    for reason in status.PROFILE_REASONS:
        expected = "Warning" if reason in status.WARNING_REASONS else "Normal"
        assert rows[reason][0] == expected, reason


def test_reasons_are_camel_case() -> None:
    for reason in documented():
        assert re.fullmatch(r"(?:[A-Z][a-z]+)+", reason), reason
