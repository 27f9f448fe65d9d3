"""Pods on the dev cluster, end to end: seccomp, redis in the pod's netns, life cycle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cluster_helpers import (
    container_status,
    create_pod,
    delete_and_watch,
    phase_is,
    pod_log,
    unique_name,
    wait_for_pod,
    waiting_reason,
)

from prerequisites import require
from seccomp_devcluster.cluster import DevCluster
from seccomp_devcluster.node.podspec import NETNS_ANNOTATION

pytestmark = pytest.mark.cluster

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


def localhost(profile: str) -> dict[str, dict[str, str]]:
    return {"seccompProfile": {"type": "Localhost", "localhostProfile": profile}}


def install_profile(seccomp_dir: Path, name: str) -> str:
    (seccomp_dir / "tests").mkdir(parents=True, exist_ok=True)
    (seccomp_dir / "tests" / name).write_text(json.dumps(DENY_MKDIR))
    return f"tests/{name}"


def test_localhost_profile_denies_mkdir(devcluster: DevCluster) -> None:
    profile = install_profile(devcluster.nodes[0].seccomp_dir, "deny-mkdir.json")
    name = unique_name("deny-mkdir")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["mkdir", "/made"]}],
               restartPolicy="Never", securityContext=localhost(profile))

    pod = wait_for_pod(devcluster, name, phase_is("Succeeded", "Failed"))

    terminated = container_status(pod, "c")["state"]["terminated"]
    assert terminated["exitCode"] == 1
    assert pod["status"]["phase"] == "Failed"
    assert "Operation not permitted" in pod_log(devcluster, name, "c")


def test_missing_profile_gives_create_container_error(devcluster: DevCluster) -> None:
    name = unique_name("no-profile")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox", "command": ["true"],
                                   "securityContext": localhost("tests/absent.json")}])
    path = devcluster.nodes[0].seccomp_dir / "tests" / "absent.json"

    pod = wait_for_pod(devcluster, name,
                       lambda p: waiting_reason(p, "c") == "CreateContainerError")

    message = container_status(pod, "c")["state"]["waiting"]["message"]
    assert message == (f'failed to create containerd container: cannot load seccomp profile '
                       f'"{path}": open {path}: no such file or directory')
    assert pod["status"]["phase"] == "Pending"


def test_runtime_default_denies_unshare(devcluster: DevCluster) -> None:
    name = unique_name("runtime-default")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["unshare", "--user", "true"]}],
               restartPolicy="Never",
               securityContext={"seccompProfile": {"type": "RuntimeDefault"}})

    pod = wait_for_pod(devcluster, name, phase_is("Succeeded", "Failed"))

    assert container_status(pod, "c")["state"]["terminated"]["exitCode"] != 0
    assert "Operation not permitted" in pod_log(devcluster, name, "c")


def test_redis_serves_benchmark_in_pod_netns(devcluster: DevCluster) -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server")
    require(shutil.which("redis-benchmark") is not None, "needs redis-benchmark")
    name = unique_name("redis")
    create_pod(devcluster, name, [{
        "name": "redis", "image": "host",
        "command": ["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"]}])
    pod = wait_for_pod(devcluster, name, phase_is("Running"))
    netns = pod["metadata"]["annotations"][NETNS_ANNOTATION]

    links = subprocess.run(["nsenter", f"--net={netns}", "ip", "-o", "link"],
                           capture_output=True, text=True, check=True)
    benchmark = subprocess.run(
        ["nsenter", f"--net={netns}", "redis-benchmark", "-h", "127.0.0.1", "-p", "6379",
         "-n", "2000", "-c", "4", "-q", "-t", "ping,set,get"],
        capture_output=True, text=True, timeout=60, check=False)

    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    assert benchmark.returncode == 0, benchmark.stderr
    results = [line for line in benchmark.stdout.splitlines() if "requests per second" in line]
    assert any(line.startswith("SET: ") for line in results), benchmark.stdout
    assert any(line.startswith("GET: ") for line in results), benchmark.stdout


def test_init_containers_then_app_exit_code(devcluster: DevCluster) -> None:
    name = unique_name("init")
    create_pod(devcluster, name,
               [{"name": "app", "image": "busybox",
                 "command": ["sh", "-c", "exit 3"]}],
               initContainers=[{"name": f"init{index}", "image": "busybox",
                                "command": ["sh", "-c", f"echo init{index}"]}
                               for index in (1, 2)],
               restartPolicy="Never")

    pod = wait_for_pod(devcluster, name, phase_is("Succeeded", "Failed"))

    first = container_status(pod, "init1", init=True)["state"]["terminated"]
    second = container_status(pod, "init2", init=True)["state"]["terminated"]
    app = container_status(pod, "app")["state"]["terminated"]
    assert first["exitCode"] == second["exitCode"] == 0
    assert first["finishedAt"] <= second["startedAt"] <= app["startedAt"]
    assert app["exitCode"] == 3
    assert app["reason"] == "Error"
    assert pod["status"]["phase"] == "Failed"
    assert pod_log(devcluster, name, "init2") == "init2\n"


def test_on_failure_restarts_failed_container(devcluster: DevCluster) -> None:
    name = unique_name("restarts")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", "echo run; exit 1"]}],
               restartPolicy="OnFailure")

    pod = wait_for_pod(devcluster, name,
                       lambda p: container_status(p, "c")["restartCount"] >= 2
                       if p["status"].get("containerStatuses") else False)

    status = container_status(pod, "c")
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Running"
    assert pod_log(devcluster, name, "c").count("run\n") >= 2


def test_deletion_delivers_sigterm(devcluster: DevCluster) -> None:
    name = unique_name("graceful")
    script = "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done"
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", script]}])
    wait_for_pod(devcluster, name, phase_is("Running"))

    final = delete_and_watch(devcluster, name, grace_period=30)

    terminated = container_status(final, "c")["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert final["status"]["phase"] == "Succeeded"


def test_deletion_kills_after_grace_period(devcluster: DevCluster) -> None:
    name = unique_name("stubborn")
    script = "trap '' TERM; while :; do sleep 0.1; done"
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", script]}],
               terminationGracePeriodSeconds=1)
    wait_for_pod(devcluster, name, phase_is("Running"))

    final = delete_and_watch(devcluster, name)

    terminated = container_status(final, "c")["state"]["terminated"]
    assert terminated["exitCode"] == 137
    assert final["status"]["phase"] == "Failed"


def test_crun_runtime_class(devcluster: DevCluster) -> None:
    name = unique_name("crun")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["echo", "from-crun"]}],
               restartPolicy="Never", runtimeClassName="crun")

    pod = wait_for_pod(devcluster, name, phase_is("Succeeded", "Failed"))

    assert container_status(pod, "c")["containerID"].startswith("crun://")
    assert pod_log(devcluster, name, "c") == "from-crun\n"


def test_container_cgroup_ends_in_its_id(devcluster: DevCluster) -> None:
    name = unique_name("cgroup")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sleep", "60"]}])
    pod = wait_for_pod(devcluster, name, phase_is("Running"))
    runtime, _, container_id = container_status(pod, "c")["containerID"].partition("://")
    state_root = devcluster.nodes[0].state_dir / "runtime" / runtime

    state = subprocess.run([runtime, "--root", str(state_root), "state", container_id],
                           capture_output=True, text=True, check=True)
    pid = json.loads(state.stdout)["pid"]
    cgroup = Path(f"/proc/{pid}/cgroup").read_text()

    assert len(container_id) == 64
    pids_line = next(line for line in cgroup.splitlines() if ":pids:" in line)
    assert pids_line.endswith(f"/pod{pod['metadata']['uid']}/{container_id}")


@pytest.mark.devcluster(nodes=2)
def test_nodes_keep_separate_kubelet_roots(devcluster: DevCluster) -> None:
    first, second = devcluster.nodes
    profile = install_profile(first.seccomp_dir, "only-on-node-1.json")
    names = {node.name: unique_name(node.name) for node in devcluster.nodes}
    for node in devcluster.nodes:
        create_pod(devcluster, names[node.name],
                   [{"name": "c", "image": "busybox", "command": ["mkdir", "/made"]}],
                   restartPolicy="Never", nodeName=node.name,
                   securityContext=localhost(profile))

    on_first = wait_for_pod(devcluster, names[first.name], phase_is("Succeeded", "Failed"))
    on_second = wait_for_pod(devcluster, names[second.name],
                             lambda p: waiting_reason(p, "c") == "CreateContainerError")

    assert first.kubelet_root != second.kubelet_root
    assert container_status(on_first, "c")["state"]["terminated"]["exitCode"] == 1
    assert str(second.seccomp_dir) in container_status(on_second, "c")["state"]["waiting"][
        "message"]


@pytest.mark.devcluster(nodes=2)
def test_scheduler_spreads_pods_round_robin(devcluster: DevCluster) -> None:
    names = [unique_name("spread") for _ in range(4)]
    for name in names:
        create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                       "command": ["sleep", "60"]}])

    pods = [wait_for_pod(devcluster, name, phase_is("Running")) for name in names]

    nodes = [pod["spec"]["nodeName"] for pod in pods]
    assert sorted(set(nodes)) == ["node-1", "node-2"]
    assert nodes.count("node-1") == nodes.count("node-2") == 2
