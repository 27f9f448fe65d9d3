"""Prometheus metrics of the operator, served over HTTP when a metrics port is set.

The counters live in prometheus_client's default registry; `serve` starts its HTTP
server in a daemon thread. Counting works without a server, so tests and a disabled
port cost nothing but the counters.
"""

from __future__ import annotations

from typing import Final
from wsgiref.simple_server import WSGIServer

import prometheus_client

from seccomp_recorder.operator.settings import OperatorSettings

EVENTS_POSTED: Final = prometheus_client.Counter(
    "seccomp_recorder_operator_events_posted",
    "Kubernetes Events posted by the operator, by reason and type.",
    ["reason", "type"],
)
PROFILE_WRITES: Final = prometheus_client.Counter(
    "seccomp_recorder_operator_profile_writes",
    "SeccompProfiles created or updated from recordings, by kind of write.",
    ["kind"],
)
SYNC_FAILURES: Final = prometheus_client.Counter(
    "seccomp_recorder_operator_sync_failures",
    "Passes over a recording's results that failed on an API error and were retried.",
)


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
