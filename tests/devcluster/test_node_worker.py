"""PodWorker with real runtimes and a recording reporter in place of the API server."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from prerequisites import require
from seccomp_devcluster import oci, pki
from seccomp_devcluster.cgroups import remove_cgroup
from seccomp_devcluster.node.podspec import NETNS_ANNOTATION
from seccomp_devcluster.node.relay import ApiRelay
from seccomp_devcluster.node.settings import NodeSettings, PodAddresses
from seccomp_devcluster.node.volumes import ServiceAccountFiles
from seccomp_devcluster.node.worker import PodWorker

pytestmark = pytest.mark.kernel

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}
# Seconds a test waits for a pod to reach a state; generous, never asserted on.
PATIENCE = 30.0


class RecordingReporter:
    """Keeps what a pod worker would send to the API server."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.annotations: dict[str, str] = {}
        self.removed = threading.Event()
        self.changed = threading.Condition()

    def write_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self.changed:
            self.statuses.append(json.loads(json.dumps(status)))
            self.changed.notify_all()

    def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.annotations.update(annotations)

    def remove(self, namespace: str, name: str, uid: str) -> None:
        self.removed.set()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE
        with self.changed:
            while True:
                if self.statuses and predicate(self.statuses[-1]):
                    return self.statuses[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = self.statuses[-1] if self.statuses else None
                    raise AssertionError(f"pod never reached the state; last status: {last}")
                self.changed.wait(remaining)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[NodeSettings]:
    require(os.geteuid() == 0, "needs root to run OCI containers")
    require(shutil.which("runc") is not None, "needs runc")
    require(shutil.which("unshare") is not None, "needs util-linux unshare")
    node_settings = NodeSettings(
        node_name=f"worker-test-{uuid.uuid4().hex[:6]}", kubelet_root=tmp_path / "kubelet",
        state_dir=tmp_path / "state", log_root=tmp_path / "logs", crash_loop_backoff=0.1,
        max_crash_loop_backoff=0.4)
    (node_settings.kubelet_root / "seccomp").mkdir(parents=True)
    with oci.crun_ready():
        yield node_settings
    for runtime in oci.RUNTIMES:
        assert oci.list_containers(node_settings.runtime_root / runtime, runtime) == []
    node_cgroup = Path("/sys/fs/cgroup/pids") / node_settings.cgroup_parent
    assert list(node_cgroup.glob("pod*")) == []
    remove_cgroup(node_settings.cgroup_parent)
    assert not list((node_settings.state_dir / "netns").glob("*"))


def make_pod(containers: list[dict[str, Any]], *, init: list[dict[str, Any]] | None = None,
             **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4()),
                         "annotations": {}},
            "spec": {"containers": containers, "initContainers": init or [], **spec}}


class Harness:
    def __init__(self, pod: dict[str, Any], settings: NodeSettings) -> None:
        self.reporter = RecordingReporter()
        self.worker = PodWorker(pod, settings, self.reporter, PodAddresses(settings.pod_cidr))
        self.settings = settings

    def __enter__(self) -> Self:
        self.worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.worker.request_stop(0, deleted=True)
        assert self.worker.join(PATIENCE)

    def log(self, container: str) -> bytes:
        return (self.worker.log_dir / f"{container}.log").read_bytes()


def terminal(status: dict[str, Any]) -> bool:
    return status["phase"] in ("Succeeded", "Failed")


def container_state(status: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    entry: dict[str, Any] = next(s for s in status[key] if s["name"] == name)
    return entry


def test_localhost_profile_denies_mkdir(settings: NodeSettings) -> None:
    (settings.kubelet_root / "seccomp" / "deny-mkdir.json").write_text(json.dumps(DENY_MKDIR))
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["mkdir", "/made"]}],
                   restartPolicy="Never",
                   securityContext={"seccompProfile": {"type": "Localhost",
                                                       "localhostProfile": "deny-mkdir.json"}})

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        state = container_state(status, "c")["state"]["terminated"]
        assert status["phase"] == "Failed"
        assert state["exitCode"] == 1
        assert b"Operation not permitted" in harness.log("c")


def test_missing_localhost_profile(settings: NodeSettings) -> None:
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["true"],
                     "securityContext": {"seccompProfile": {
                         "type": "Localhost", "localhostProfile": "absent.json"}}}])
    path = settings.kubelet_root / "seccomp" / "absent.json"

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(
            lambda s: "waiting" in container_state(s, "c")["state"]
            and container_state(s, "c")["state"]["waiting"]["reason"] == "CreateContainerError")

        waiting = container_state(status, "c")["state"]["waiting"]
        assert waiting["message"] == (
            f'failed to create containerd container: cannot load seccomp profile "{path}": '
            f"open {path}: no such file or directory")
        assert status["phase"] == "Pending"


def test_runtime_default_denies_unshare(settings: NodeSettings) -> None:
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["unshare", "-U", "true"],
                     "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
                   restartPolicy="Never")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        assert container_state(status, "c")["state"]["terminated"]["exitCode"] != 0
        assert b"Operation not permitted" in harness.log("c")


def test_unshare_allowed_without_profile(settings: NodeSettings) -> None:
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["unshare", "-U", "true"]}],
                   restartPolicy="Never")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        assert status["phase"] == "Succeeded", harness.log("c")


def test_init_containers_run_first_in_order(settings: NodeSettings) -> None:
    init = [{"name": f"init{i}", "image": "busybox", "command": ["sh", "-c", f"echo init{i}"]}
            for i in (1, 2)]
    pod = make_pod([{"name": "app", "image": "busybox", "command": ["echo", "app"]}],
                   init=init, restartPolicy="Never")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        assert status["phase"] == "Succeeded"
        started = [container_state(status, n, init=True)["state"]["terminated"]["finishedAt"]
                   for n in ("init1", "init2")]
        app_started = container_state(status, "app")["state"]["terminated"]["startedAt"]
        assert started[0] <= started[1] <= app_started
        seen = [s for s in harness.reporter.statuses
                if any("running" in c["state"] or "terminated" in c["state"]
                       for c in s["containerStatuses"])]
        first_app = seen[0]
        assert all("terminated" in c["state"] for c in first_app["initContainerStatuses"])
        conditions = {c["type"]: c["status"] for c in first_app["conditions"]}
        assert conditions["Initialized"] == "True"


def test_failing_init_container_fails_pod(settings: NodeSettings) -> None:
    pod = make_pod([{"name": "app", "image": "busybox", "command": ["true"]}],
                   init=[{"name": "init", "image": "busybox", "command": ["sh", "-c", "exit 3"]}],
                   restartPolicy="Never")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        assert status["phase"] == "Failed"
        init_state = container_state(status, "init", init=True)["state"]["terminated"]
        assert init_state["exitCode"] == 3
        assert "waiting" in container_state(status, "app")["state"]


def test_failing_init_container_restarts(settings: NodeSettings) -> None:
    init = [{"name": "init", "image": "busybox", "command": ["sh", "-c", "exit 1"]}]
    pod = make_pod([{"name": "app", "image": "busybox", "command": ["true"]}],
                   init=init, restartPolicy="OnFailure")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(
            lambda s: container_state(s, "init", init=True)["restartCount"] >= 2)

        assert status["phase"] == "Pending"
        last = container_state(status, "init", init=True)["lastState"]["terminated"]
        assert last["exitCode"] == 1


@pytest.mark.parametrize(("policy", "code", "restarts"), [
    ("Never", 0, False), ("Never", 5, False), ("OnFailure", 0, False),
    ("OnFailure", 5, True), ("Always", 0, True), ("Always", 5, True),
])
def test_restart_policy(settings: NodeSettings, policy: str, code: int, restarts: bool) -> None:
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sh", "-c", f"exit {code}"]}],
                   restartPolicy=policy)

    with Harness(pod, settings) as harness:
        if restarts:
            status = harness.reporter.wait_for(
                lambda s: container_state(s, "c")["restartCount"] >= 2)
            last = container_state(status, "c")["lastState"]["terminated"]
            assert last["exitCode"] == code
            assert status["phase"] == "Running"
        else:
            status = harness.reporter.wait_for(terminal)
            state = container_state(status, "c")["state"]["terminated"]
            assert state["exitCode"] == code
            assert state["reason"] == ("Completed" if code == 0 else "Error")
            assert container_state(status, "c")["restartCount"] == 0
            assert status["phase"] == ("Succeeded" if code == 0 else "Failed")


def test_status_of_running_container(settings: NodeSettings) -> None:
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sleep", "60"]}])

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(lambda s: s["phase"] == "Running")

        entry = container_state(status, "c")
        runtime, _, container_id = entry["containerID"].partition("://")
        assert runtime == "runc"
        assert len(container_id) == 64
        assert entry["ready"] is True
        assert entry["started"] is True
        assert status["podIP"].startswith("127.10.")
        netns = harness.reporter.annotations[NETNS_ANNOTATION]
        assert Path(netns).exists()
        cgroups = list(Path("/sys/fs/cgroup/pids").rglob(container_id))
        assert len(cgroups) == 1
        assert cgroups[0].parent.name == f"pod{pod['metadata']['uid']}"


def test_crun_runtime_class(settings: NodeSettings) -> None:
    require(shutil.which("crun") is not None, "needs crun")
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["echo", "from-crun"]}],
                   restartPolicy="Never", runtimeClassName="crun")

    with Harness(pod, settings) as harness:
        status = harness.reporter.wait_for(terminal)

        assert container_state(status, "c")["containerID"].startswith("crun://")
        assert harness.log("c") == b"from-crun\n"


def test_deletion_sends_sigterm(settings: NodeSettings) -> None:
    script = "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done"
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}])

    with Harness(pod, settings) as harness:
        harness.reporter.wait_for(lambda s: s["phase"] == "Running")

        harness.worker.request_stop(20, deleted=True)

        assert harness.worker.join(PATIENCE)
        assert harness.reporter.removed.is_set()
        final = harness.reporter.statuses[-1]
        assert container_state(final, "c")["state"]["terminated"]["exitCode"] == 0


def test_deletion_kills_after_grace_period(settings: NodeSettings) -> None:
    script = "trap '' TERM; while :; do sleep 0.1; done"
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}])

    with Harness(pod, settings) as harness:
        harness.reporter.wait_for(lambda s: s["phase"] == "Running")

        harness.worker.request_stop(0.5, deleted=True)

        assert harness.worker.join(PATIENCE)
        final = harness.reporter.statuses[-1]
        assert container_state(final, "c")["state"]["terminated"]["exitCode"] == 137
        assert final["phase"] == "Failed"


def test_relay_listener_follows_pod(settings: NodeSettings, tmp_path: Path) -> None:
    paths = pki.create_cluster_pki(tmp_path / "pki")
    # Nothing connects, so the upstream address is never used.
    relay = ApiRelay("127.0.0.1", 9, paths.serving_cert, paths.serving_key)
    relay.start()
    pod = make_pod([{"name": "c", "image": "busybox", "command": ["sh", "-c", (
        'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; sleep 300')]}])
    try:
        worker = PodWorker(pod, settings, RecordingReporter(), PodAddresses(settings.pod_cidr),
                           relay=relay, service_account=ServiceAccountFiles(ca_cert=b"CA"))
        worker.start()
        deadline = time.monotonic() + PATIENCE
        while not (worker.log_dir / "c.log").exists() or not (
                worker.log_dir / "c.log").read_bytes():
            assert time.monotonic() < deadline, "the container never wrote its log"
            time.sleep(0.05)
        listening = relay.listener_keys()
        output = (worker.log_dir / "c.log").read_text()

        worker.request_stop(0, deleted=True)
        assert worker.join(PATIENCE)
    finally:
        relay.stop()

    assert listening == ["default/p", "host"]
    assert output == f"127.0.0.1:{relay.port}\n"
    assert relay.listener_keys() == []
    assert not relay.running
    assert not any(thread.name == "api-relay" for thread in threading.enumerate())
