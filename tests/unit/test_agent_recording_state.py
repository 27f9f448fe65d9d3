"""The recording side's state file: ended containers' calls survive an agent restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seccomp_recorder.agent.recording import (
    ControllerState,
    Finished,
    Namespace,
    RecordingController,
)
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.recorder.maps import Abi, Phase
from seccomp_recorder.recorder.recorder import ExecRecord, NamespaceRecording

CONTAINER = "c" * 64
MNTNS = 4026532999


def recording(*numbers: int, phase: Phase = Phase.WORKLOAD) -> NamespaceRecording:
    found = NamespaceRecording(MNTNS)
    for number in numbers:
        found.add(phase, Abi.NATIVE, number)
    return found


class FakeRecorder:
    """The kernel's maps of one namespace: `snapshot` reads them, `collect` empties them."""

    def __init__(self, kernel: NamespaceRecording) -> None:
        self.kernel = kernel
        self.late_calls: list[int] = []
        self.collected = False

    def snapshot(self, mntns: int) -> dict[int, NamespaceRecording]:
        return {mntns: self.kernel}

    def collect(self, mntns: int) -> NamespaceRecording:
        for number in self.late_calls:
            self.kernel.add(Phase.WORKLOAD, Abi.NATIVE, number)
        self.collected = True
        taken, self.kernel = self.kernel, NamespaceRecording(mntns)
        return taken


class FakeInformer:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self._objects = objects

    def objects(self) -> list[dict[str, Any]]:
        return self._objects


def controller(tmp_path: Path, kernel: NamespaceRecording) -> tuple[RecordingController, FakeRecorder]:
    settings = AgentSettings(node_name="node-1", state_dir=tmp_path)
    pods = FakeInformer([{"metadata": {"uid": "0c1e0a20-72f5-44be-adef-18ab31485a6a"}}])
    made = RecordingController(
        settings, api=None, pods=pods, recordings=FakeInformer([]), host_mntns=1  # type: ignore[arg-type]
    )
    fake = FakeRecorder(kernel)
    made.recorder = fake  # type: ignore[assignment]
    made.state.namespaces[MNTNS] = Namespace(container_id=CONTAINER, pid=10)
    return made, fake


def test_finished_round_trips_through_document() -> None:
    kept = recording(0, 1, 59)
    kept.add(Phase.FILTERED, Abi.COMPAT, 20)
    kept.exec_record = ExecRecord(pid=10, filtered=True, no_new_privs=False, runtime_comm="runc")
    finished = Finished(kept, CONTAINER, 123.5)

    again = Finished.from_document(finished.document())

    assert again == finished


def test_calls_are_saved_before_kernel_delete(tmp_path: Path) -> None:
    made, fake = controller(tmp_path, recording(0, 1, 285))

    made._collect(MNTNS)

    assert fake.collected
    # A new agent process starts from the state file alone.
    restarted = ControllerState.load(tmp_path / "recording-state.json")
    (finished,) = restarted.finished.values()
    assert finished.container_id == CONTAINER
    assert finished.recording.numbers[Phase.WORKLOAD][Abi.NATIVE] == {0, 1, 285}


def test_late_calls_join_the_finished_record(tmp_path: Path) -> None:
    made, fake = controller(tmp_path, recording(0, 1))
    fake.late_calls = [231]

    made._collect(MNTNS)

    (finished,) = made.state.finished.values()
    assert 231 in finished.recording.numbers[Phase.WORKLOAD][Abi.NATIVE]


def test_other_pods_containers_are_dropped(tmp_path: Path) -> None:
    made, fake = controller(tmp_path, recording(0, 1))
    made.state.namespaces[MNTNS].pod_uid = "99999999-72f5-44be-adef-18ab31485a6a"

    made._collect(MNTNS)

    assert fake.collected
    assert made.state.finished == {}
