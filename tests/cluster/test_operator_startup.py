"""The operator's start: the agent DaemonSet, re-applied settings, and its log format.

The dev cluster has no DaemonSet controller, so the DaemonSet is stored but runs no pods.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_fixtures import (  # noqa: F401 (fixtures are found by their registered names)
    StartOperator,
    kube_fixture,
    namespace_fixture,
    start_operator_fixture,
)
from operator_helpers import AGENT_IMAGE, RECORDINGS, Kube, recording_body, wait_for

pytestmark = pytest.mark.cluster

DAEMONSET = "seccomp-recorder-agent"


def read_daemonset(kube: Kube, namespace: str) -> dict[str, Any]:
    response: Any = kube.apps.read_namespaced_daemon_set(DAEMONSET, namespace, _preload_content=False)
    found: dict[str, Any] = json.loads(response.data)
    return found


def agent_container(daemonset: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = daemonset["spec"]["template"]["spec"]["containers"][0]
    return container


def reasons_about_daemonset(kube: Kube, namespace: str) -> list[str]:
    """Return the reasons of the Events about the DaemonSet, sorted: Events have no order."""
    return sorted(kube.reasons(namespace, "DaemonSet", DAEMONSET))


def test_operator_creates_agent_daemonset(kube: Kube, start_operator: StartOperator) -> None:
    operator = start_operator(KUBELET_ROOT="/data/kubelet")
    namespace = operator.settings["NAMESPACE"]
    daemonset = read_daemonset(kube, namespace)
    container = agent_container(daemonset)
    assert container["image"] == AGENT_IMAGE
    assert container["command"] == ["python", "-m", "seccomp_recorder.agent"]
    assert daemonset["spec"]["template"]["spec"]["hostPID"] is True
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/data/kubelet/seccomp" in mounts
    assert reasons_about_daemonset(kube, namespace) == ["AgentDeployed"]


def test_restart_applies_changed_settings(kube: Kube, start_operator: StartOperator) -> None:
    first = start_operator()
    namespace = first.settings["NAMESPACE"]
    assert first.stop() == 0

    second = start_operator(AGENT_IMAGE="registry.example.com/seccomp-recorder:next")
    assert agent_container(read_daemonset(kube, namespace))["image"] == (
        "registry.example.com/seccomp-recorder:next"
    )
    assert reasons_about_daemonset(kube, namespace) == ["AgentDeployed", "AgentUpdated"]
    assert second.stop() == 0

    # The same settings again leave the DaemonSet's spec as it is. Its generation counts
    # spec changes only: the DaemonSet controller's status writes change resourceVersion.
    generation = read_daemonset(kube, namespace)["metadata"]["generation"]
    start_operator(AGENT_IMAGE="registry.example.com/seccomp-recorder:next")
    assert read_daemonset(kube, namespace)["metadata"]["generation"] == generation
    assert reasons_about_daemonset(kube, namespace) == ["AgentDeployed", "AgentUpdated"]


def test_missing_namespace_is_reported_and_survived(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    operator = start_operator(NAMESPACE="no-such-namespace")
    operator.wait_for_log("Going on without it")
    # The operator still handles recordings without its agents.
    kube.create(RECORDINGS, recording_body(namespace, "web"))
    wait_for(
        "the recording to start",
        lambda: ((kube.get(RECORDINGS, namespace, "web") or {}).get("status") or {}).get("phase")
        == "Recording",
        operator=operator,
    )


def test_json_logs_carry_the_object(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    operator = start_operator(LOG_FORMAT="json", LOG_LEVEL="INFO")
    kube.create(RECORDINGS, recording_body(namespace, "web"))
    operator.wait_for_log("Recording is Recording")
    lines = [json.loads(line) for line in operator.log().splitlines() if line.startswith("{")]
    about_recording = [
        line for line in lines
        if line.get("object", {}).get("name") == "web" and "Recording is" in line["message"]
    ]
    assert about_recording, f"no JSON line about the recording in {lines}"
    assert about_recording[0]["object"]["namespace"] == namespace
    assert about_recording[0]["severity"] == "info"
