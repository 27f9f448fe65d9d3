"""Pod phase and status as the kubelet writes them."""

from __future__ import annotations

from seccomp_devcluster.node.status import (
    Conditions,
    ContainerRecord,
    ContainerState,
    pod_phase,
    pod_status,
    waiting,
)


def running(name: str = "app") -> ContainerRecord:
    return ContainerRecord(name, "busybox", state=ContainerState("running", started_at="t0"))


def terminated(name: str, code: int, *, finished: bool = True) -> ContainerRecord:
    state = ContainerState("terminated", reason="Completed" if code == 0 else "Error",
                           exit_code=code, started_at="t0", finished_at="t1")
    return ContainerRecord(name, "busybox", state=state, finished=finished)


def phase(app: list[ContainerRecord], *, initialized: bool = True,
          init_failed: bool = False) -> str:
    return pod_phase([], app, initialized=initialized, init_failed=init_failed)


def test_phase_pending_before_first_start() -> None:
    assert phase([ContainerRecord("app", "busybox")]) == "Pending"
    assert phase([running()], initialized=False) == "Pending"


def test_phase_running() -> None:
    assert phase([running("a"), terminated("b", 0)]) == "Running"


def test_phase_running_while_restarting() -> None:
    crashed = terminated("a", 1, finished=False)
    crashed.last_state, crashed.state = crashed.state, waiting("CrashLoopBackOff")

    assert phase([crashed]) == "Running"


def test_phase_succeeded_and_failed() -> None:
    assert phase([terminated("a", 0), terminated("b", 0)]) == "Succeeded"
    assert phase([terminated("a", 0), terminated("b", 2)]) == "Failed"


def test_phase_failed_init() -> None:
    assert phase([ContainerRecord("app", "busybox")], initialized=False,
                 init_failed=True) == "Failed"


def test_status_fields_for_running_pod() -> None:
    app = running()
    app.container_id = "runc://" + "a" * 64

    status = pod_status(init=[], app=[app], phase="Running", initialized=True,
                        sandbox_ready=True, conditions=Conditions(), host_ip="127.0.0.1",
                        pod_ip="127.10.0.1", start_time="t0")

    conditions = {entry["type"]: entry["status"] for entry in status["conditions"]}
    assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True",
                          "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
    container = status["containerStatuses"][0]
    assert container["containerID"] == "runc://" + "a" * 64
    assert container["state"] == {"running": {"startedAt": "t0"}}
    assert container["ready"] is True
    assert container["started"] is True
    assert status["podIP"] == "127.10.0.1"
    assert status["hostIP"] == "127.0.0.1"
    assert "initContainerStatuses" not in status


def test_status_reasons_for_unready_pod() -> None:
    init = ContainerRecord("setup", "busybox", state=waiting("PodInitializing"))
    app = ContainerRecord("app", "busybox", state=waiting("PodInitializing"))

    status = pod_status(init=[init], app=[app], phase="Pending", initialized=False,
                        sandbox_ready=True, conditions=Conditions(), host_ip="127.0.0.1",
                        pod_ip=None, start_time="t0")

    by_type = {entry["type"]: entry for entry in status["conditions"]}
    assert by_type["Initialized"]["reason"] == "ContainersNotInitialized"
    assert by_type["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert by_type["Ready"]["message"] == "containers with unready status: [app]"
    assert status["initContainerStatuses"][0]["state"] == {
        "waiting": {"reason": "PodInitializing"}}
    assert "podIP" not in status


def test_terminated_state_fields() -> None:
    state = ContainerState("terminated", reason="Error", exit_code=137, started_at="t0",
                           finished_at="t1", container_id="crun://x")

    assert state.to_api() == {"terminated": {"exitCode": 137, "reason": "Error",
                                             "startedAt": "t0", "finishedAt": "t1",
                                             "containerID": "crun://x"}}


def test_condition_time_changes_only_on_flip() -> None:
    conditions = Conditions()
    first = conditions.set("Ready", False)
    conditions.times["Ready"] = ("False", "earlier")

    assert conditions.set("Ready", False) == "earlier"
    assert conditions.set("Ready", True) != "earlier"
    assert first
