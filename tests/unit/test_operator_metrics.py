"""The operator's Prometheus metrics and their HTTP server."""

from __future__ import annotations

import urllib.request

from loopback import free_port
from seccomp_recorder.operator import metrics
from seccomp_recorder.operator.settings import load_settings

IMAGE = "registry.example.com/seccomp-recorder:0.1.0"


def test_port_zero_serves_nothing() -> None:
    assert metrics.serve(load_settings({"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE})) is None


def test_counters_are_served_on_the_port() -> None:
    port = free_port()
    settings = load_settings({
        "SECCOMP_RECORDER_AGENT_IMAGE": IMAGE,
        "SECCOMP_RECORDER_METRICS_PORT": str(port),
        "SECCOMP_RECORDER_METRICS_ADDRESS": "127.0.0.1",
    })
    metrics.PROFILE_WRITES.labels("create").inc()
    server = metrics.serve(settings)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'seccomp_recorder_operator_profile_writes_total{kind="create"}' in text
    assert "seccomp_recorder_operator_events_posted_total" in text
    assert "seccomp_recorder_operator_sync_failures_total" in text
