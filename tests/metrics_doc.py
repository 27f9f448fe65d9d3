"""The metrics that docs/metrics.md lists, and the names a /metrics page serves."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
METRICS_DOC = REPO / "docs" / "metrics.md"

# A table row of docs/metrics.md: | `name` | type | `label`, `label` | meaning |
ROW = re.compile(r"^\| `(?P<name>seccomp_recorder_[a-z_]+)` \| (?P<type>\w+) \|(?P<labels>[^|]*)\|")

Catalogue = dict[str, tuple[str, frozenset[str]]]


def documented_metrics(text: str) -> Catalogue:
    """Map each metric name in the doc's tables to its type and labels."""
    found: Catalogue = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r"`([a-z_]+)`", match["labels"]))
        assert match["name"] not in found, f"{match['name']} is listed twice in {METRICS_DOC}"
        found[match["name"]] = (match["type"], labels)
    return found


def documented(prefix: str) -> set[str]:
    """Return the names of docs/metrics.md that start with `prefix`."""
    names = documented_metrics(METRICS_DOC.read_text(encoding="utf-8"))
    return {name for name in names if name.startswith(prefix)}


def served_names(text: str) -> set[str]:
    """Return the documented form of each family name in an exposition: counters with _total."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names
