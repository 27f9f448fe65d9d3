"""Part 4: the control plane on the dev cluster: latencies, install throughput, memory and CPU.

The dev cluster runs N node stand-ins, the operator, and one node agent process
per node, each with its own kubelet root as the DaemonSet's pods would have. The
benchmark starts the agents itself, with a private bpffs for their pins, because
a DaemonSet pod would pin in the machine's /sys/fs/bpf. Measured, in this order so
that the recorders the last step attaches cannot slow the others:

1. memory and CPU of the operator and the agents while idle;
2. time from a SeccompProfile's create request to its file on every node, and
   to status phase Installed;
3. install throughput for many profiles at once, with memory and CPU under that
   load, then idle again with every profile installed;
4. time from a recorded container's exit to its SeccompProfile containing the
   container's calls.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import kubernetes
from kubernetes.client.exceptions import ApiException

from seccomp_bench import agents, processes
from seccomp_bench.config import BenchConfig
from seccomp_bench.processes import BenchError
from seccomp_devcluster.cluster import DevCluster
from seccomp_devcluster.kube import list_and_watch

logger = logging.getLogger(__name__)

NAMESPACE = "default"
OPERATOR_NAMESPACE = "seccomp-recorder"
# The operator deploys the agent as a DaemonSet with this image. The dev cluster runs
# images named like seccomp-recorder* on the host's root, but not this one, so the
# DaemonSet's pods stay in ErrImagePull and the benchmark's own agent processes, with
# their private bpffs, are the only agents.
AGENT_IMAGE = "bench.invalid/agent-not-run-here:bench"
PROFILES = "seccompprofiles"
RECORDINGS = "seccomprecordings"
# A small valid profile; clone3 fails with ENOSYS so that glibc falls back to clone.
PROFILE_SPEC = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
        {"names": ["read", "write", "close", "exit_group", "futex"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}
# The recorded container: a distinctive call (uname), then the boot-clock time it ends at.
RECORDED_COMMAND = ["/bin/sh", "-c", "uname -a > /dev/null; cat /proc/uptime"]
RECORDED_CALL = "uname"
RECORDED_CONTAINER = "work"
# Seconds between two polls of files and of the API during a latency sample.
POLL_INTERVAL = 0.01
# Seconds any one step may take before the benchmark gives up on it: a guard against a
# hung cluster, well above the ~450 s that 1,000 profiles on 10 nodes took here.
STEP_TIMEOUT = 1200.0


class Operator:
    """The `python -m seccomp_recorder.operator` process, with its settings in its environment."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {
            key: value
            for key, value in agents.python_environment().items()
            if not key.startswith("SECCOMP_RECORDER_") and key != "KUBERNETES_SERVICE_HOST"
        }
        environment.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "SECCOMP_RECORDER_AGENT_IMAGE": AGENT_IMAGE,
                "SECCOMP_RECORDER_NAMESPACE": OPERATOR_NAMESPACE,
            }
        )
        self.process = processes.start(
            [sys.executable, "-m", "seccomp_recorder.operator"],
            log=self.log_path,
            environment=environment,
        )
        # kopf logs this once its startup handlers ran; its watches start right after.
        processes.wait_until(
            lambda: "Initial authentication has finished" in self._log(),
            f"the operator to start (log {self.log_path})",
            agents.START_TIMEOUT,
            process=self.process,
        )

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            status = processes.stop(self.process)
            if status != 0:
                logger.warning("the operator exited with %d; see %s", status, self.log_path)
            self.process = None


@dataclass
class Deployment:
    """The dev cluster with the operator and one agent per node, all running."""

    cluster: DevCluster
    client: kubernetes.client.ApiClient
    operator: Operator
    agents: list[agents.Agent]

    def profile_paths(self, name: str) -> list[Path]:
        return [
            agent.kubelet_root / "seccomp" / "seccomp-recorder" / NAMESPACE / f"{name}.json"
            for agent in self.agents
        ]

    def pids(self) -> dict[str, int]:
        found = {}
        if self.cluster.apiserver_pid is not None:
            found["apiserver"] = self.cluster.apiserver_pid
        if self.operator.process is not None:
            found["operator"] = self.operator.process.pid
        for agent in self.agents:
            if agent.process is not None:
                found[f"agent/{agent.node_name}"] = agent.process.pid
        return found


def _create_namespace(client: kubernetes.client.ApiClient, name: str) -> None:
    body: Any = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    try:
        kubernetes.client.CoreV1Api(client).create_namespace(body, _preload_content=False)
    except ApiException as error:
        if error.status != 409:
            raise


@contextmanager
def deployment(config: BenchConfig, work_dir: Path) -> Iterator[Deployment]:
    """Start the dev cluster, the operator and the agents; stop them all afterwards."""
    with ExitStack() as stack:
        bpffs = stack.enter_context(agents.bpf_filesystem(work_dir / "bpffs"))
        cluster = stack.enter_context(
            DevCluster(work_dir / "cluster", nodes=config.cluster_nodes, log_level="WARNING")
        )
        client = cluster.api_client()
        agents.apply_crds(client)
        _create_namespace(client, OPERATOR_NAMESPACE)

        operator = Operator(cluster.kubeconfig_path, work_dir / "operator.log")
        stack.callback(operator.stop)
        operator.start()

        node_agents = [
            agents.Agent(
                node.name, node.kubelet_root, cluster.kubeconfig_path, work_dir / "agents", bpffs
            )
            for node in cluster.nodes
        ]
        for agent in node_agents:
            stack.callback(agent.stop)
            agent.launch()
        for agent in node_agents:
            agent.wait_for_log("Informers synced")
        yield Deployment(cluster, client, operator, node_agents)


# -- memory and CPU ---------------------------------------------------------------------------


def _usage_between(
    before: dict[str, tuple[float, int]],
    after: dict[str, tuple[float, int]],
    seconds: float,
    peak_rss: dict[str, int],
) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for name, (cpu_before, _) in before.items():
        cpu_after, rss = after[name]
        usage[name] = {
            "cpu_percent": 100.0 * (cpu_after - cpu_before) / seconds,
            "rss_bytes": max(rss, peak_rss.get(name, 0)),
        }
    return usage


def _read_all(pids: dict[str, int]) -> dict[str, tuple[float, int]]:
    return {name: processes.read_proc_stat(pid) for name, pid in pids.items()}


def sample_idle(setup: Deployment, seconds: float) -> dict[str, Any]:
    """Measure CPU use and resident memory of the operator and agents over `seconds`."""
    pids = setup.pids()
    before = _read_all(pids)
    started = time.monotonic()
    time.sleep(seconds)
    after = _read_all(pids)
    return {
        "seconds": seconds,
        "processes": _usage_between(before, after, time.monotonic() - started, {}),
    }


# -- latencies ------------------------------------------------------------------------------


def profile_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{agents.GROUP}/{agents.VERSION}",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": PROFILE_SPEC,
    }


def _phase(profile: dict[str, Any] | None) -> str | None:
    if profile is None:
        return None
    phase: str | None = (profile.get("status") or {}).get("phase")
    return phase


def apply_latency(setup: Deployment, name: str) -> dict[str, float]:
    """Create one profile and time its file on each node and its Installed phase."""
    paths = setup.profile_paths(name)
    file_times: dict[Path, float] = {}
    installed: float | None = None
    started = time.monotonic()
    agents.create_object(setup.client, PROFILES, profile_body(name))
    while len(file_times) < len(paths) or installed is None:
        elapsed = time.monotonic() - started
        if elapsed > STEP_TIMEOUT:
            raise BenchError(
                f"profile {name} not installed within {STEP_TIMEOUT} s: files on"
                f" {len(file_times)} of {len(paths)} nodes, phase"
                f" {_phase(agents.get_object(setup.client, PROFILES, name))}"
            )
        for path in paths:
            if path not in file_times and path.exists():
                file_times[path] = elapsed
        if (
            installed is None
            and _phase(agents.get_object(setup.client, PROFILES, name)) == "Installed"
        ):
            installed = elapsed
        time.sleep(POLL_INTERVAL)
    return {
        "first_file_seconds": min(file_times.values()),
        "all_files_seconds": max(file_times.values()),
        "installed_seconds": installed,
    }


def _boot_clock() -> float:
    """Return the CLOCK_BOOTTIME seconds that /proc/uptime shows, inside containers too."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _pod_body(name: str, label: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": label}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "containers": [
                {"name": RECORDED_CONTAINER, "image": "busybox", "command": RECORDED_COMMAND}
            ],
        },
    }


def _profile_has_call(profile: dict[str, Any] | None, call: str) -> bool:
    if profile is None:
        return False
    rules = (profile.get("spec") or {}).get("syscalls") or []
    return any(
        call in rule.get("names", []) and rule.get("action") == "SCMP_ACT_ALLOW" for rule in rules
    )


def recording_latency(setup: Deployment, index: int) -> dict[str, float]:
    """Record one short container and time its exit to a profile with its calls."""
    core = kubernetes.client.CoreV1Api(setup.client)
    recording = f"bench-recording-{index}"
    agent = setup.agents[0]
    agents.create_object(
        setup.client, RECORDINGS, agents.recording_body(recording, {"app": recording})
    )
    # Every agent attaches while any recording is active; the recorded pod's node matters.
    agent.wait_for_log("recorder attached on node")

    pod = f"bench-recorded-{index}"
    pod_body: Any = _pod_body(pod, recording, agent.node_name)
    core.create_namespaced_pod(NAMESPACE, pod_body, _preload_content=False)

    def finished() -> bool:
        response: Any = core.read_namespaced_pod(pod, NAMESPACE, _preload_content=False)
        body = json.loads(response.data)
        phase = (body.get("status") or {}).get("phase")
        if phase == "Failed":
            raise BenchError(f"recorded pod {pod} failed: {body.get('status')}")
        return phase == "Succeeded"

    processes.wait_until(finished, f"pod {pod} to finish", STEP_TIMEOUT, interval=POLL_INTERVAL)
    seen_finished = _boot_clock()
    output = core.read_namespaced_pod_log(pod, NAMESPACE, container=RECORDED_CONTAINER)
    exited = float(output.split()[0])

    name = f"{recording}-{RECORDED_CONTAINER}"
    processes.wait_until(
        lambda: _profile_has_call(agents.get_object(setup.client, PROFILES, name), RECORDED_CALL),
        f"profile {name} to contain {RECORDED_CALL}",
        STEP_TIMEOUT,
        interval=POLL_INTERVAL,
    )
    materialized = _boot_clock()
    return {
        "pod_succeeded_seconds": seen_finished - exited,
        "profile_seconds": materialized - exited,
    }


# -- install throughput ---------------------------------------------------------------------


def _count_files(setup: Deployment, prefix: str) -> int:
    total = 0
    for agent in setup.agents:
        directory = agent.kubelet_root / "seccomp" / "seccomp-recorder" / NAMESPACE
        if directory.is_dir():
            total += sum(1 for entry in os.scandir(directory) if entry.name.startswith(prefix))
    return total


class _InstalledWatch:
    """Times when each profile whose name starts with `prefix` first reached phase Installed.

    A watch rather than repeated lists, because listing a thousand profiles every
    fraction of a second would load the API server that is being measured.
    """

    def __init__(self, client: kubernetes.client.ApiClient, prefix: str, started: float) -> None:
        self.prefix = prefix
        self.started = started
        self.installed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        list_profiles = functools.partial(
            kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object,
            agents.GROUP,
            agents.VERSION,
            PROFILES,
        )
        self._thread = threading.Thread(
            target=list_and_watch,
            args=(list_profiles, self._on_event, self._stopping),
            name="bench-profile-watch",
            daemon=True,
        )

    def _on_event(self, kind: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if kind == "DELETED" or not name.startswith(self.prefix) or _phase(body) != "Installed":
            return
        with self._lock:
            self.installed_at.setdefault(name, time.monotonic() - self.started)

    def count(self) -> int:
        with self._lock:
            return len(self.installed_at)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join()


def install_throughput(setup: Deployment, count: int) -> dict[str, Any]:
    """Create `count` profiles at once and time their files on every node and their statuses.

    One thread sends the create requests one after the other while this one counts the
    files every 0.25 s and a watch collects the Installed phases.
    """
    prefix = "bench-load-"
    names = [f"{prefix}{index:05d}" for index in range(count)]
    expected_files = count * len(setup.agents)
    pids = setup.pids()
    peak_rss: dict[str, int] = {}
    timeline: list[dict[str, float]] = []
    created: list[float] = []
    failures: list[BaseException] = []

    def create_all() -> None:
        try:
            for name in names:
                agents.create_object(setup.client, PROFILES, profile_body(name))
        except (ApiException, OSError) as error:
            failures.append(error)
        created.append(time.monotonic() - started)

    before = _read_all(pids)
    started = time.monotonic()
    creator = threading.Thread(target=create_all, name="bench-create-profiles", daemon=True)
    all_files: float | None = None
    all_installed: float | None = None
    with _InstalledWatch(setup.client, prefix, started) as watch:
        creator.start()
        while all_files is None or all_installed is None:
            elapsed = time.monotonic() - started
            if failures:
                raise BenchError(f"creating the profiles failed: {failures[0]}")
            if elapsed > STEP_TIMEOUT:
                raise BenchError(f"{count} profiles not installed within {STEP_TIMEOUT} s")
            files = _count_files(setup, prefix)
            installed = watch.count()
            timeline.append({"seconds": elapsed, "files": files, "installed": installed})
            if all_files is None and files >= expected_files:
                all_files = elapsed
            if all_installed is None and installed >= count:
                all_installed = max(watch.installed_at.values())
            for name, (_, rss) in _read_all(pids).items():
                peak_rss[name] = max(peak_rss.get(name, 0), rss)
            time.sleep(0.25)
    after = _read_all(pids)
    creator.join()

    return {
        "profiles": count,
        "nodes": len(setup.agents),
        "create_seconds": created[0],
        "all_files_seconds": all_files,
        "all_installed_seconds": all_installed,
        "timeline": timeline,
        "usage": {
            "seconds": all_installed,
            "processes": _usage_between(before, after, all_installed, peak_rss),
        },
    }


def measure(config: BenchConfig, work_dir: Path) -> dict[str, Any]:
    """Run every step of part 4 on a fresh dev cluster and return the raw measurements."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with deployment(config, work_dir) as setup:
        logger.info("control plane: %d nodes up; sampling idle use", config.cluster_nodes)
        idle = sample_idle(setup, config.idle_seconds)

        applies = []
        for index in range(config.latency_samples):
            logger.info("control plane: apply latency %d/%d", index + 1, config.latency_samples)
            applies.append(apply_latency(setup, f"bench-apply-{index}"))

        logger.info("control plane: installing %d profiles", config.cluster_profiles)
        load = install_throughput(setup, config.cluster_profiles)
        idle_loaded = sample_idle(setup, config.idle_seconds)

        recordings = []
        for index in range(config.latency_samples):
            logger.info("control plane: recording latency %d/%d", index + 1, config.latency_samples)
            recordings.append(recording_latency(setup, index))

    return {
        "nodes": config.cluster_nodes,
        "operator_settings": {"AGENT_IMAGE": AGENT_IMAGE, "NAMESPACE": OPERATOR_NAMESPACE},
        "recorded_command": RECORDED_COMMAND,
        "idle": idle,
        "apply_latency": applies,
        "install": load,
        "idle_with_profiles": idle_loaded,
        "recording_latency": recordings,
    }
