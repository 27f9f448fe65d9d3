"""End to end on the dev cluster: SeccompRecording to installed SeccompProfile and back.

Real containers (runc), real eBPF recorders in one agent per node, the operator, and
pods that then run under the profiles the recording produced.
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import pytest
from stack import Stack, busybox, localhost, wait_for

from loopback import LOOPBACK
from metrics_doc import documented, served_names
from seccomp_recorder.agent import metrics as agent_metrics
from seccomp_recorder.operator import metrics as operator_metrics

pytestmark = pytest.mark.cluster

WORKLOAD = "echo hello > /tmp/out && cat /tmp/out && ls / > /dev/null"


def final(profile: dict[str, Any]) -> bool:
    return profile["metadata"].get("annotations", {}).get("seccomp-recorder.io/final") == "true"


def record(stack: Stack, name: str, **spec: Any) -> None:
    """Create a recording of the pods labelled app=<name> and wait until it records."""
    stack.create_recording(name, {"podSelector": {"matchLabels": {"app": name}}, **spec})
    stack.wait_until_recording(name)


def test_one_pod_profile_enforced(stack: Stack) -> None:
    record(stack, "one")
    stack.run_pod("one-1", [busybox("main", WORKLOAD)], labels={"app": "one"})
    stack.wait_for_phase("one-1", "Succeeded")
    stack.stop_recording("one")
    stack.wait_until_completed("one")

    profile = stack.wait_until_installed("one-main")
    assert final(profile)
    assert {"execve", "openat", "write"} <= stack.allowed("one-main")
    assert "mkdir" not in stack.allowed("one-main")
    node = stack.pod("one-1")["spec"]["nodeName"]
    agent = next(agent for agent in stack.agents if agent.node_name == node)
    assert agent.profile_path("one-main", stack.namespace).is_file()

    confined = localhost(stack.namespace, "one-main")
    stack.run_pod("rerun", [busybox("main", WORKLOAD, securityContext=confined)], node=node)
    stack.run_pod("outside", [busybox("main", "mkdir /tmp/new", securityContext=confined)], node=node)
    stack.wait_for_phase("rerun", "Succeeded")
    stack.wait_for_phase("outside", "Failed")
    assert stack.logs("rerun", "main").strip() == "hello"
    assert "Operation not permitted" in stack.logs("outside", "main")


def test_metrics_served_while_recording(stack: Stack) -> None:
    """curl reads every documented metric from the operator and each agent, mid-recording."""
    record(stack, "metered")
    stack.run_pod("metered-1", [busybox("main", WORKLOAD)], labels={"app": "metered"})
    stack.wait_for_phase("metered-1", "Succeeded")

    for process, port in stack.metrics_ports.items():
        served = curl(f"http://{LOOPBACK}:{port}/metrics")
        prefix = operator_metrics.PREFIX if process == "operator" else agent_metrics.PREFIX
        expected = documented(prefix)
        assert expected, f"docs/metrics.md lists no metric with prefix {prefix}"
        assert sorted(expected - served_names(served)) == [], f"missing from {process}"
        if process != "operator":
            assert _sample(served, "seccomp_recorder_agent_recorder_attached") == 1.0

    stack.stop_recording("metered")
    stack.wait_until_completed("metered")


def curl(url: str) -> str:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--max-time", "30", url],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, f"curl {url} failed: {result.stderr}"
    return result.stdout


def _sample(exposition: str, name: str) -> float:
    """Return the value of the unlabelled sample `name` in a /metrics page."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no sample {name} in the metrics page")


def test_replicas_containers_and_init(stack: Stack) -> None:
    record(stack, "web")
    # Each replica makes one call the others do not, so only a union has all three.
    for index, step in enumerate(["mkdir /tmp/a", "ln -s /a /tmp/l", "sync"], 1):
        stack.run_pod(f"web-{index}", [busybox("main", step)], labels={"app": "web"})
    stack.run_pod(
        "web-pair",
        [busybox("main", "true"), busybox("sidecar", "rmdir /tmp 2>/dev/null; true")],
        init_containers=[busybox("setup", "hostname > /dev/null")],
        labels={"app": "web"},
    )
    for pod in ("web-1", "web-2", "web-3", "web-pair"):
        stack.wait_for_phase(pod, "Succeeded")
    stack.stop_recording("web")
    recording = stack.wait_until_completed("web")

    assert set(recording["status"]["profiles"]) == {"web-main", "web-sidecar", "web-setup"}
    main = stack.allowed("web-main")
    assert {"mkdir", "symlink", "sync"} <= main
    assert "rmdir" in stack.allowed("web-sidecar")
    assert "rmdir" not in main
    assert "uname" in stack.allowed("web-setup")
    labels = stack.profile("web-setup")["metadata"]["labels"]  # type: ignore[index]
    assert labels["seccomp-recorder.io/container"] == "setup"


def test_long_running_pod_gets_profile(stack: Stack) -> None:
    record(stack, "svc")
    script = "while true; do mkdir -p /tmp/d; sleep 0.5; done"
    stack.run_pod("svc-1", [busybox("main", script)], labels={"app": "svc"})
    stack.wait_for_phase("svc-1", "Running")

    profile = stack.wait_for_profile("svc-main", lambda p: "mkdir" in str(p["spec"]))

    assert stack.pod("svc-1")["status"]["phase"] == "Running"
    assert not final(profile)
    stack.wait_until_installed("svc-main")


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("None", {"fixed-fixed-a-main", "fixed-fixed-b-main"}), ("Containers", {"fixed-main"})],
)
def test_merge_strategy_fixed_names(stack: Stack, strategy: str, expected: set[str]) -> None:
    record(stack, "fixed", mergeStrategy=strategy)
    for pod in ("fixed-a", "fixed-b"):
        stack.run_pod(pod, [busybox("main", WORKLOAD)], labels={"app": "fixed"})
    for pod in ("fixed-a", "fixed-b"):
        stack.wait_for_phase(pod, "Succeeded")
    stack.stop_recording("fixed")

    recording = stack.wait_until_completed("fixed")

    assert recording["status"]["phase"] == "Completed"
    assert set(recording["status"]["profiles"]) == expected
    assert set(stack.profiles()) == expected


def test_earlier_pods_do_not_delay_stop(stack: Stack) -> None:
    stack.run_pod("done-1", [busybox("main", "true")], labels={"app": "done"})
    stack.wait_for_phase("done-1", "Succeeded")
    # finishedAt and startedAt have whole seconds: start the recording in a later one.
    time.sleep(1.1)
    record(stack, "done")
    stack.stop_recording("done")

    # No agent reports a container that ended before the recording, so the stop must
    # not wait for it until the final-result timeout (60 s in the stack).
    def completed() -> dict[str, Any] | None:
        recording = stack.recording("done")
        conditions = recording.get("status", {}).get("conditions", [])
        done = any(c["type"] == "Completed" and c["status"] == "True" for c in conditions)
        return recording if done else None

    recording = wait_for("the recording to complete", completed, patience=20.0)
    assert recording["status"]["profiles"] == []
    assert recording["status"]["containers"] == []


def test_agent_killed_between_snapshots(stack: Stack) -> None:
    record(stack, "crash")
    script = "mkdir /tmp/a; sleep 4; rmdir /tmp/a; sleep 1"
    stack.run_pod("crash-1", [busybox("main", script)], labels={"app": "crash"})
    node = stack.wait_for_phase("crash-1", "Running")["spec"]["nodeName"]
    agent = next(agent for agent in stack.agents if agent.node_name == node)

    def snapshot_with_mkdir() -> bool:
        results = stack.kube.list("seccomprecordingresults", stack.namespace)
        return any("mkdir" in str(result["spec"]["syscalls"]) for result in results)

    wait_for("a snapshot with mkdir", snapshot_with_mkdir)
    assert agent.process is not None
    agent.process.send_signal(signal.SIGKILL)
    agent.process.wait()
    agent.process = None
    # The pod's last calls (rmdir, exit_group) happen while its node has no agent.
    stack.wait_for_phase("crash-1", "Succeeded")
    agent.start()

    stack.stop_recording("crash")
    stack.wait_until_completed("crash")
    allowed = stack.allowed("crash-main")
    assert "mkdir" in allowed
    assert "rmdir" in allowed
    assert "exit_group" in allowed
