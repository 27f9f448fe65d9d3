"""Prometheus metrics of the node agent, served over HTTP when a metrics port is set.

The installer and the recording controller update these metrics as they work; `serve`
starts prometheus_client's HTTP server in a daemon thread. Counting works without a
server, so tests and a disabled port cost nothing but the counters. Labels take only
values from small fixed sets (loops, Event reasons, map names, states, architectures),
never pod names, UIDs or syscall names, so the number of series stays bounded.
docs/metrics.md lists every metric, and a unit test keeps the two lists equal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from threading import Lock
from typing import Final
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from seccomp_recorder.agent import status
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.models.profile import NodeProfileState
from seccomp_recorder.recorder.maps import Stat
from seccomp_recorder.recorder.recorder import FILLING_MAPS
from seccomp_recorder.syscalls import tables

PREFIX: Final = "seccomp_recorder_agent_"

# Loops whose passes are timed: the profile installer's reconcile of one profile, and one
# round of the recording controller (events, sweep, snapshots, results).
LOOPS: Final = ("profile", "recording")
RESULT_KINDS: Final = ("snapshot", "final")
INSTALL_ERROR_REASONS: Final = tuple(sorted(status.WARNING_REASONS))
REPORTED_STATES: Final = tuple(state.value for state in NodeProfileState)

RECONCILE_DURATION: Final = prometheus_client.Histogram(
    PREFIX + "reconcile_duration_seconds",
    "Seconds one pass of an agent loop took, by loop (profile: one profile's reconcile;"
    " recording: one round of the recording controller).",
    ["loop"],
)
RECORDER_ATTACHED: Final = prometheus_client.Gauge(
    PREFIX + "recorder_attached",
    "1 while the eBPF recorder is attached on this node, else 0.",
)
ACTIVE_RECORDINGS: Final = prometheus_client.Gauge(
    PREFIX + "active_recordings",
    "SeccompRecordings in phase Recording, as this agent sees them.",
)
RECORDED_CONTAINERS: Final = prometheus_client.Gauge(
    PREFIX + "recorded_containers",
    "Running containers on this node that an active SeccompRecording selects.",
)
PROFILES: Final = prometheus_client.Gauge(
    PREFIX + "profiles",
    "SeccompProfiles by the state this agent last reported for its node.",
    ["state"],
)
INSTALL_ERRORS: Final = prometheus_client.Counter(
    PREFIX + "install_errors",
    "Profile installations that failed, by Event reason; counted when the error is reported.",
    ["reason"],
)
RESULTS_WRITTEN: Final = prometheus_client.Counter(
    PREFIX + "results_written",
    "SeccompRecordingResults created or updated, by kind (snapshot or final).",
    ["kind"],
)
RESULT_WRITE_FAILURES: Final = prometheus_client.Counter(
    PREFIX + "result_write_failures",
    "SeccompRecordingResult writes that the API server rejected or that failed; retried.",
)
RESULT_SYSCALLS: Final = prometheus_client.Histogram(
    PREFIX + "result_syscalls",
    "Distinct syscall names in each SeccompRecordingResult written.",
    buckets=(10, 25, 50, 75, 100, 150, 200, 300, 400),
)
UNKNOWN_SYSCALLS: Final = prometheus_client.Counter(
    PREFIX + "unknown_syscalls",
    "Syscall numbers without a name in final results, by architecture.",
    ["architecture"],
)
MAP_ENTRIES: Final = prometheus_client.Gauge(
    PREFIX + "bpf_map_entries",
    "Entries in the recorder's BPF map, by map; 0 while the recorder is detached.",
    ["map"],
)
MAP_MAX_ENTRIES: Final = prometheus_client.Gauge(
    PREFIX + "bpf_map_max_entries",
    "Capacity (max_entries) of the recorder's BPF map, by map.",
    ["map"],
)
MAP_FILL_RATIO: Final = prometheus_client.Gauge(
    PREFIX + "bpf_map_fill_ratio",
    "Entries divided by max_entries of the recorder's BPF map, by map; calls are lost at 1.",
    ["map"],
)


class KernelLossCounters(Collector):
    """The recorder's own loss counters (`Recorder.stats()`), as last read from the kernel.

    The kernel keeps these counters in a pinned map, so they survive agent restarts and
    drop to 0 when the recorder detaches and its maps go; Prometheus treats the drop as a
    counter reset.
    """

    NAME: Final = PREFIX + "recorder_lost"

    def __init__(self) -> None:
        self._lock = Lock()
        self._values: dict[str, int] = {stat.name.lower(): 0 for stat in Stat}

    def update(self, stats: Mapping[Stat, int]) -> None:
        """Store the counters of the last `Recorder.stats()` call."""
        with self._lock:
            for stat, value in stats.items():
                self._values[stat.name.lower()] = value

    def reset(self) -> None:
        """Set every counter to 0, as when the recorder's maps are dropped."""
        self.update({stat: 0 for stat in Stat})

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            self.NAME,
            "Events the recorder's eBPF program could not keep, by counter (set_full,"
            " task_state_full, event_dropped, odd_full); any increase means a profile may"
            " miss calls.",
            labels=["counter"],
        )
        with self._lock:
            for counter, value in sorted(self._values.items()):
                family.add_metric([counter], value)
        yield family


RECORDER_LOST: Final = KernelLossCounters()
prometheus_client.REGISTRY.register(RECORDER_LOST)


def _initialize_labels() -> None:
    """Create every series of the fixed label sets, so each is served from the start at 0."""
    for loop in LOOPS:
        RECONCILE_DURATION.labels(loop)
    for state in REPORTED_STATES:
        PROFILES.labels(state)
    for reason in INSTALL_ERROR_REASONS:
        INSTALL_ERRORS.labels(reason)
    for kind in RESULT_KINDS:
        RESULTS_WRITTEN.labels(kind)
    for name in FILLING_MAPS:
        MAP_ENTRIES.labels(name)
        MAP_MAX_ENTRIES.labels(name)
        MAP_FILL_RATIO.labels(name)
    try:
        native = tables.native_architecture()
    except tables.UnsupportedArchitectureError:
        return
    for architecture in (native, *tables.companion_architectures(native)):
        UNKNOWN_SYSCALLS.labels(str(architecture))


_initialize_labels()


def count_profile_states(states: Mapping[object, NodeProfileState]) -> None:
    """Set the `profiles` gauge from the state last reported for each profile."""
    counts = dict.fromkeys(REPORTED_STATES, 0)
    for state in states.values():
        counts[state.value] += 1
    for state_name, count in counts.items():
        PROFILES.labels(state_name).set(count)


def clear_recorder_gauges() -> None:
    """Zero the gauges that describe an attached recorder, when it detaches."""
    RECORDER_ATTACHED.set(0)
    RECORDED_CONTAINERS.set(0)
    for name in FILLING_MAPS:
        MAP_ENTRIES.labels(name).set(0)
        MAP_FILL_RATIO.labels(name).set(0)
    RECORDER_LOST.reset()


def serve(settings: AgentSettings) -> WSGIServer | None:
    """Start the metrics HTTP server on the set address and port; return it (None for port 0).

    The server runs in a daemon thread until the process exits or `shutdown()` is called.
    """
    if settings.metrics_port == 0:
        return None
    server, _ = prometheus_client.start_http_server(
        settings.metrics_port, addr=settings.metrics_address
    )
    return server
