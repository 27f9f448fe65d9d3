"""The node agents install SeccompProfiles on the dev cluster's nodes, end to end.

Each test runs one agent process per node (the `agents` fixture), applies profiles through
the API server as a user or a Git sync would, and checks the files on each node's kubelet
root, the profile's `nodeStatuses` and the Events. No operator runs here, so tests that
need a profile held in deletion put a finalizer on it themselves.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from agent_helpers import (
    REPOSITORY,
    TEST_FINALIZER,
    AgentProcess,
    create_profile,
    delete_profile,
    events_about,
    localhost,
    node_state,
    read_profile,
    remove_finalizers,
    wait_for,
    wait_for_node_state,
)

from seccomp_devcluster.cluster import DevCluster
from seccomp_recorder.agent.informers import profile_informer
from seccomp_recorder.models.formats import render_oci_json
from seccomp_recorder.models.profile import SeccompProfileSpec

pytestmark = pytest.mark.cluster

# Allows everything but mkdir and mkdirat, which fail with EPERM: busybox runs under it,
# and `mkdir` shows that the node stand-in applied it.
DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def profile_body(name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": "default", **metadata},
        "spec": spec,
    }


def create_pod(cluster: DevCluster, name: str, node: str, profile: str, command: list[str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": localhost(profile),
            "containers": [{"name": "main", "image": "busybox", "command": command}],
        },
    }
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    core.create_namespaced_pod("default", body, _preload_content=False)  # type: ignore[arg-type]


def read_pod(cluster: DevCluster, name: str) -> dict[str, Any] | None:
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    try:
        response: Any = core.read_namespaced_pod(name, "default", _preload_content=False)
    except kubernetes.client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise
    found: dict[str, Any] = json.loads(response.data)
    return found


def wait_for_running(cluster: DevCluster, name: str) -> None:
    try:
        wait_for(f"pod {name} to run", lambda: pod_phase(cluster, name) == "Running")
    except AssertionError as error:
        last = (read_pod(cluster, name) or {}).get("status")
        raise AssertionError(f"{error}; its status: {json.dumps(last, indent=1)}") from None


def pod_phase(cluster: DevCluster, name: str) -> str | None:
    pod = read_pod(cluster, name)
    return None if pod is None else (pod.get("status") or {}).get("phase")


def reasons_of(cluster: DevCluster, name: str) -> list[str]:
    return [event["reason"] for event in events_about(cluster, name)]


def kubectl(cluster: DevCluster, *arguments: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(REPOSITORY / "devcluster" / "kubectl"), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env={"KUBECONFIG": str(cluster.kubeconfig_path), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.devcluster(nodes=2)
def test_yaml_profile_installed_on_every_node(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    name = unique("web")
    # The moment a node's status entry first shows Installed, its file must already exist.
    file_at_first_installed: dict[str, bool] = {}
    lock = threading.Lock()

    def check_status(profile: dict[str, Any]) -> None:
        if profile["metadata"]["name"] != name:
            return
        statuses = (profile.get("status") or {}).get("nodeStatuses") or {}
        for agent in agents:
            entry = statuses.get(agent.node_name) or {}
            with lock:
                if entry.get("state") == "Installed" and agent.node_name not in file_at_first_installed:
                    file_at_first_installed[agent.node_name] = agent.profile_path(name).exists()

    watcher = profile_informer(kubernetes.client.CustomObjectsApi(devcluster.api_client()))
    watcher.add_handlers(on_add=check_status, on_update=lambda old, new: check_status(new))
    watcher.start()
    try:
        assert watcher.wait_for_sync(30)
        manifest = yaml.safe_dump(profile_body(name, DENY_MKDIR))
        kubectl(devcluster, "apply", "-f", "-", stdin=manifest)
        entries = {
            agent.node_name: wait_for_node_state(devcluster, name, agent.node_name, "Installed")
            for agent in agents
        }
        wait_for("the watch to see every node Installed", lambda: len(file_at_first_installed) == 2)
    finally:
        watcher.stop()

    assert file_at_first_installed == {agent.node_name: True for agent in agents}
    expected = render_oci_json(SeccompProfileSpec.model_validate(DENY_MKDIR)).encode()
    for agent in agents:
        content = agent.profile_path(name).read_bytes()
        assert content == expected
        entry = entries[agent.node_name]
        assert entry["contentHash"] == hashlib.sha256(content).hexdigest()
        assert entry["observedGeneration"] == 1
    # The Event follows the status patch, so it may arrive a moment later.
    wait_for("a ProfileInstalled Event from each node", lambda: reasons_of(devcluster, name).count("ProfileInstalled") == 2)
    assert reasons_of(devcluster, name).count("ProfileInstalled") == 2


@pytest.mark.devcluster(nodes=2)
def test_spec_change_rewrites_files(devcluster: DevCluster, agents: list[AgentProcess]) -> None:
    name = unique("web")
    create_profile(devcluster, profile_body(name, DENY_MKDIR))
    for agent in agents:
        wait_for_node_state(devcluster, name, agent.node_name, "Installed")
    changed = {**DENY_MKDIR, "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}
    manifest = yaml.safe_dump(profile_body(name, changed))
    kubectl(devcluster, "apply", "-f", "-", stdin=manifest)

    def generation_two_everywhere() -> bool:
        profile = read_profile(devcluster, name)
        statuses = (profile or {}).get("status", {}).get("nodeStatuses", {})
        return all(
            statuses.get(agent.node_name, {}).get("observedGeneration") == 2 for agent in agents
        )

    wait_for("generation 2 on every node", generation_two_everywhere)
    for agent in agents:
        assert "rmdir" in agent.profile_path(name).read_text()


@pytest.mark.devcluster(nodes=2)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"}]},
            '"no_such_call" is not known',
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
            "SCMP_ACT_NOTIFY cannot be loaded",
        ),
    ],
)
def test_invalid_profile_reaches_no_disk(
    devcluster: DevCluster, agents: list[AgentProcess], spec: dict[str, Any], expected: str
) -> None:
    name = unique("bad")
    create_profile(devcluster, profile_body(name, spec))
    for agent in agents:
        entry = wait_for_node_state(devcluster, name, agent.node_name, "Error")
        assert expected in entry["message"]
        assert not agent.profile_path(name).exists()
        folder = agent.profile_path(name).parent
        leftovers = [path for path in folder.glob(f".{name}*")] if folder.exists() else []
        assert leftovers == []
    def invalid_events() -> list[dict[str, Any]] | None:
        found = [e for e in events_about(devcluster, name) if e["reason"] == "ProfileInvalid"]
        return found if len(found) == len(agents) else None

    events = wait_for("a ProfileInvalid Event from each node", invalid_events)
    uid = (read_profile(devcluster, name) or {})["metadata"]["uid"]
    for event in events:
        assert event["type"] == "Warning"
        assert expected in event["message"]
        assert event["involvedObject"]["kind"] == "SeccompProfile"
        assert event["involvedObject"]["uid"] == uid


@pytest.mark.devcluster(nodes=2)
def test_missing_base_gives_error_then_installs(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    name, base = unique("web"), unique("base")
    create_profile(devcluster, profile_body(name, {**DENY_MKDIR, "baseProfileName": base}))
    for agent in agents:
        entry = wait_for_node_state(devcluster, name, agent.node_name, "Error")
        assert f'"{base}" not found' in entry["message"]
        assert not agent.profile_path(name).exists()
    wait_for("BaseProfileNotFound Events", lambda: reasons_of(devcluster, name).count("BaseProfileNotFound") == 2)

    base_spec = {**DENY_MKDIR, "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    create_profile(devcluster, profile_body(base, base_spec))
    for agent in agents:
        wait_for_node_state(devcluster, name, agent.node_name, "Installed")
        document = json.loads(agent.profile_path(name).read_text())
        denied = {syscall for rule in document["syscalls"] for syscall in rule["names"]}
        assert denied == {"mkdir", "mkdirat", "rmdir"}
        assert "baseProfileName" not in document


@pytest.mark.devcluster(nodes=2)
def test_pod_runs_under_installed_profile(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    name = unique("deny-mkdir")
    create_profile(devcluster, profile_body(name, DENY_MKDIR))
    node = agents[1]
    wait_for_node_state(devcluster, name, node.node_name, "Installed")
    pod = unique("mkdir")
    create_pod(
        devcluster, pod, node.node_name, f"seccomp-recorder/default/{name}.json",
        ["sh", "-c", "mkdir /made; echo exit=$?"],
    )
    wait_for(f"pod {pod} to finish", lambda: pod_phase(devcluster, pod) in ("Succeeded", "Failed"))
    core = kubernetes.client.CoreV1Api(devcluster.api_client())
    log: Any = core.read_namespaced_pod_log(pod, "default", _preload_content=False)
    output = log.data.decode()
    assert "Operation not permitted" in output
    assert "exit=1" in output


@pytest.mark.devcluster(nodes=1)
def test_deleted_profile_kept_until_pod_gone(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    [agent] = agents
    name = unique("in-use")
    create_profile(devcluster, profile_body(name, DENY_MKDIR, finalizers=[TEST_FINALIZER]))
    wait_for_node_state(devcluster, name, agent.node_name, "Installed")
    pod = unique("sleeper")
    create_pod(
        devcluster, pod, agent.node_name, f"seccomp-recorder/default/{name}.json",
        ["sleep", "3600"],
    )
    wait_for_running(devcluster, pod)

    delete_profile(devcluster, name)
    def in_use_entry() -> dict[str, Any] | None:
        entry = node_state(read_profile(devcluster, name), agent.node_name)
        return entry if entry and "uses it" in entry.get("message", "") else None

    entry = wait_for("the agent to report the profile in use", in_use_entry)
    assert entry["state"] == "Installed"
    assert f"default/{pod}" in entry["message"]
    time.sleep(1.0)  # Give a wrong removal the time to happen.
    assert agent.profile_path(name).exists()
    assert pod_phase(devcluster, pod) == "Running"

    core = kubernetes.client.CoreV1Api(devcluster.api_client())
    core.delete_namespaced_pod(pod, "default", grace_period_seconds=1, _preload_content=False)
    wait_for_node_state(devcluster, name, agent.node_name, "Removed")
    # The node stand-in writes the final phase once the containers stopped, and only then
    # removes the pod object, so the pod may still be there, but finished.
    assert pod_phase(devcluster, pod) in (None, "Succeeded", "Failed")
    assert not agent.profile_path(name).exists()
    wait_for("a ProfileRemoved Event", lambda: "ProfileRemoved" in reasons_of(devcluster, name))
    reasons = reasons_of(devcluster, name)
    assert reasons.count("ProfileInUse") == 1
    assert reasons.count("ProfileRemoved") == 1
    remove_finalizers(devcluster, name)
    wait_for("the profile to be gone", lambda: read_profile(devcluster, name) is None)


@pytest.mark.devcluster(nodes=1)
def test_orphan_file_removed_when_pod_gone(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    [agent] = agents
    name = unique("orphan")
    create_profile(devcluster, profile_body(name, DENY_MKDIR))
    wait_for_node_state(devcluster, name, agent.node_name, "Installed")
    pod = unique("sleeper")
    create_pod(
        devcluster, pod, agent.node_name, f"seccomp-recorder/default/{name}.json",
        ["sleep", "3600"],
    )
    wait_for_running(devcluster, pod)
    # Without a finalizer the object goes at once, and the file is an orphan in use.
    delete_profile(devcluster, name)
    wait_for("the profile to be gone", lambda: read_profile(devcluster, name) is None)
    time.sleep(1.0)
    assert agent.profile_path(name).exists()
    core = kubernetes.client.CoreV1Api(devcluster.api_client())
    core.delete_namespaced_pod(pod, "default", grace_period_seconds=1, _preload_content=False)
    wait_for("the orphan file to go", lambda: not agent.profile_path(name).exists())


@pytest.mark.devcluster(nodes=2)
def test_restart_reconciles_missing_and_orphans(
    devcluster: DevCluster, agents: list[AgentProcess]
) -> None:
    unchanged, removed, added = unique("unchanged"), unique("removed"), unique("added")
    for name in (unchanged, removed):
        create_profile(devcluster, profile_body(name, DENY_MKDIR))
        for agent in agents:
            wait_for_node_state(devcluster, name, agent.node_name, "Installed")
    for agent in agents:
        assert agent.stop() == 0

    # While the agents are down: one profile goes, one comes, and a file is changed by hand.
    delete_profile(devcluster, removed)
    create_profile(devcluster, profile_body(added, DENY_MKDIR))
    tampered: Path = agents[0].profile_path(unchanged)
    tampered.write_text("{}\n")

    for agent in agents:
        agent.start()
    for agent in agents:
        wait_for_node_state(devcluster, added, agent.node_name, "Installed")
        wait_for("the orphan file to go", lambda agent=agent: not agent.profile_path(removed).exists())
        assert agent.profile_path(added).exists()
    wait_for("the changed file to be restored", lambda: tampered.read_text() != "{}\n")
    expected = render_oci_json(SeccompProfileSpec.model_validate(DENY_MKDIR))
    assert tampered.read_text() == expected
