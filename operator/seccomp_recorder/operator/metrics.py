"""Prometheus metrics of the operator, served over HTTP when a metrics port is set.

The metrics live in prometheus_client's default registry; `serve` starts its HTTP
server in a daemon thread. Counting works without a server, so tests and a disabled
port cost nothing but the counters. The gauges of recordings and profiles are computed
at each scrape from `OBJECTS`, which the event handlers keep up to date with the objects
as watched. Labels take only values from small fixed sets (phases, states, handlers,
Event reasons), never object names, UIDs or syscall names, so the number of series stays
bounded. docs/metrics.md lists every metric, and a unit test keeps the two lists equal.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from seccomp_recorder.models.profile import NodeProfileState, ProfilePhase
from seccomp_recorder.models.recording import ContainerRecordingState, RecordingPhase
from seccomp_recorder.operator.settings import OperatorSettings

PREFIX: Final = "seccomp_recorder_operator_"

# Handlers whose runs are timed.
HANDLERS: Final = (
    "agent_deploy",
    "recording_lifecycle",
    "recording_sync",
    "profile_status",
    "profile_recount",
    "profile_release",
)

EVENTS_POSTED: Final = prometheus_client.Counter(
    PREFIX + "events_posted",
    "Kubernetes Events posted by the operator, by reason and type.",
    ["reason", "type"],
)
PROFILE_WRITES: Final = prometheus_client.Counter(
    PREFIX + "profile_writes",
    "SeccompProfiles created or updated from recordings, by kind of write.",
    ["kind"],
)
SYNC_FAILURES: Final = prometheus_client.Counter(
    PREFIX + "sync_failures",
    "Passes over a recording's results that failed on an API error and were retried.",
)
RECONCILE_DURATION: Final = prometheus_client.Histogram(
    PREFIX + "reconcile_duration_seconds",
    "Seconds one run of a handler took, by handler.",
    ["handler"],
)


@dataclass(frozen=True)
class _Summary:
    """The phase and the counts by state of one watched object, as the gauges sum them."""

    phase: str
    # Containers (of a recording) or node entries (of a profile), by state.
    parts: Mapping[str, int] = field(default_factory=dict)


class WatchedObjects(Collector):
    """The recordings and profiles the operator watches, summed up into gauges at scrape time.

    Handlers call `observe_*` with every version of an object that kopf delivers, and
    `forget_*` when it is deleted. Only the phase and the counts by state are kept.
    """

    def __init__(self) -> None:
        self._lock = Lock()
        self._recordings: dict[tuple[str, str], _Summary] = {}
        self._profiles: dict[tuple[str, str], _Summary] = {}

    def observe_recording(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Store the phase and the container states of a recording's status."""
        containers = Tally(
            str(container.get("state")) for container in status.get("containers") or []
            if isinstance(container, Mapping)
        )
        phase = str(status.get("phase") or RecordingPhase.PENDING.value)
        with self._lock:
            self._recordings[(namespace, name)] = _Summary(phase, dict(containers))

    def observe_profile(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Store the phase and the node entry states of a profile's status."""
        entries = status.get("nodeStatuses") or {}
        states = Tally(
            str(entry.get("state")) for entry in entries.values() if isinstance(entry, Mapping)
        )
        phase = str(status.get("phase") or ProfilePhase.PENDING.value)
        with self._lock:
            self._profiles[(namespace, name)] = _Summary(phase, dict(states))

    def forget_recording(self, namespace: str, name: str) -> None:
        with self._lock:
            self._recordings.pop((namespace, name), None)

    def forget_profile(self, namespace: str, name: str) -> None:
        with self._lock:
            self._profiles.pop((namespace, name), None)

    def clear(self) -> None:
        with self._lock:
            self._recordings.clear()
            self._profiles.clear()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            recordings = list(self._recordings.values())
            profiles = list(self._profiles.values())
        yield _count(
            "recordings", "SeccompRecordings by phase.", "phase",
            [member.value for member in RecordingPhase], Tally(item.phase for item in recordings),
        )
        yield _count(
            "recorded_containers",
            "Containers listed in the statuses of SeccompRecordings, by state; state"
            " Recording counts the containers under recording.",
            "state", [member.value for member in ContainerRecordingState],
            _sum_parts(recordings),
        )
        yield _count(
            "profiles", "SeccompProfiles by phase.", "phase",
            [member.value for member in ProfilePhase], Tally(item.phase for item in profiles),
        )
        yield _count(
            "profile_node_states",
            "Node entries (status.nodeStatuses) of all SeccompProfiles, by state; state Error"
            " counts the failed installations.",
            "state", [member.value for member in NodeProfileState], _sum_parts(profiles),
        )


def _sum_parts(summaries: list[_Summary]) -> Tally[str]:
    total: Tally[str] = Tally()
    for summary in summaries:
        total.update(summary.parts)
    return total


def _count(
    name: str, documentation: str, label: str, known: list[str], counts: Mapping[str, int]
) -> GaugeMetricFamily:
    """Build a gauge with one series per known value, 0 when absent.

    Values outside `known` (a status edited by hand) are left out, so they add no series.
    """
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=[label])
    for value in known:
        family.add_metric([value], counts.get(value, 0))
    return family


OBJECTS: Final = WatchedObjects()
prometheus_client.REGISTRY.register(OBJECTS)

for _handler in HANDLERS:
    RECONCILE_DURATION.labels(_handler)
for _kind in ("create", "update"):
    PROFILE_WRITES.labels(_kind)


def serve(settings: OperatorSettings) -> WSGIServer | None:
    """Start the metrics HTTP server on the set address and port; return it (None for port 0).

    The server runs in a daemon thread until the process exits or `shutdown()` is called.
    """
    if settings.metrics_port == 0:
        return None
    server, _ = prometheus_client.start_http_server(
        settings.metrics_port, addr=settings.metrics_address
    )
    return server
