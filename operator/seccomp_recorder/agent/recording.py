"""The agent's recording side: the eBPF recorder attached while any recording is active.

The recorder runs in its all-containers mode, so it keeps every container's calls
from the container's first syscall, before anything here knows which pod it
belongs to. The controller then maps mount namespaces to container ids (from the
kernel's events and /proc), container ids to pod containers (from pod status), and
writes a SeccompRecordingResult for each container a recording selects:
- a snapshot of a running container every `snapshot_interval`, when its calls grew;
- a final result when the container's namespace is gone, or when its recording stops.

Calls of containers no recording selects are dropped when their namespace ends.

Restarts lose nothing: the recorder's maps and programs are pinned on bpffs, and the
namespace map and what was sent are kept in a state file, so a restarted agent
resumes where the previous one stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from seccomp_recorder import atomicfile
from seccomp_recorder.agent import metrics, status
from seccomp_recorder.agent.containers import (
    PodContainer,
    cgroup_path_of_process,
    container_id_in,
    index_containers,
    live_mount_namespaces,
    pod_uid_in,
)
from seccomp_recorder.agent.informers import Informer
from seccomp_recorder.agent.kube import (
    GROUP,
    RECORDING_RESULTS,
    RECORDINGS,
    VERSION,
    ApiClients,
    event_body,
    now_rfc3339,
    patch_status,
    post_event,
)
from seccomp_recorder.agent.selection import Recording, parse_recordings, result_body, selects
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.models.profile import Architecture
from seccomp_recorder.recorder.analysis import container_syscalls
from seccomp_recorder.recorder.errors import RecorderError
from seccomp_recorder.recorder.maps import Abi, Event, EventType, Phase, Stat
from seccomp_recorder.recorder.recorder import (
    ExecRecord,
    Mode,
    NamespaceRecording,
    Recorder,
    mount_namespace_of,
)
from seccomp_recorder.recorder.runtimes import Runtime

logger = logging.getLogger(__name__)

STATE_FILE = "recording-state.json"
# Seconds between two checks for mount namespaces whose processes are all gone.
SWEEP_INTERVAL = 2.0
# Seconds a finished container's calls wait for its pod status to name it.
UNMATCHED_GRACE = 60.0
# Seconds between two attempts to attach the recorder after a failure.
ATTACH_RETRY = 10.0
EVENT_POLL_MS = 200


@dataclass
class Sent:
    """What was last written for one container of one recording."""

    sequence: int = 0
    names: dict[str, list[str]] = field(default_factory=dict)
    final: bool = False


@dataclass
class Namespace:
    """A recorded mount namespace and the container it belongs to, when known."""

    container_id: str | None = None
    pid: int = 0
    # The pod UID in the container's cgroup path, when the path was read from /proc.
    pod_uid: str | None = None


@dataclass
class Finished:
    """A namespace whose processes are gone: its calls, taken out of the kernel, to report.

    `deadline` is the wall-clock time after which calls no pod claims are dropped.
    """

    recording: NamespaceRecording
    container_id: str
    deadline: float

    def document(self) -> dict[str, Any]:
        record = self.recording.exec_record
        return {
            "mntns": self.recording.mntns,
            "containerId": self.container_id,
            "deadline": self.deadline,
            "numbers": {
                phase.name: {abi.name: sorted(numbers) for abi, numbers in by_abi.items()}
                for phase, by_abi in self.recording.numbers.items()
            },
            "execRecord": None if record is None else asdict(record),
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Finished:
        recording = NamespaceRecording(int(document["mntns"]))
        for phase, by_abi in document["numbers"].items():
            for abi, numbers in by_abi.items():
                for number in numbers:
                    recording.add(Phase[phase], Abi[abi], int(number))
        if document.get("execRecord") is not None:
            recording.exec_record = ExecRecord(**document["execRecord"])
        return cls(recording, document["containerId"], float(document["deadline"]))


@dataclass
class ControllerState:
    """The part of the controller's memory that must survive an agent restart."""

    namespaces: dict[int, Namespace] = field(default_factory=dict)
    # Keyed by "<recording uid>/<container id>".
    sent: dict[str, Sent] = field(default_factory=dict)
    # Ended namespaces not reported yet, keyed by "<mntns>/<container id>". Their calls
    # live only here once they are out of the kernel's maps.
    finished: dict[str, Finished] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        document = {
            "namespaces": {str(k): asdict(v) for k, v in self.namespaces.items()},
            "sent": {k: asdict(v) for k, v in self.sent.items()},
            "finished": {k: v.document() for k, v in self.finished.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_atomic(path, json.dumps(document, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ControllerState:
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable recording state %s: %s", path, error)
            return cls()
        return cls(
            namespaces={int(k): Namespace(**v) for k, v in document.get("namespaces", {}).items()},
            sent={k: Sent(**v) for k, v in document.get("sent", {}).items()},
            finished={
                k: Finished.from_document(v) for k, v in document.get("finished", {}).items()
            },
        )


def _runtime_of(container_id_prefix: str) -> Runtime | None:
    try:
        return Runtime(container_id_prefix)
    except ValueError:
        return None


class RecordingController:
    """Attaches the recorder while recordings are active and reports what it recorded."""

    def __init__(
        self,
        settings: AgentSettings,
        api: ApiClients,
        pods: Informer,
        recordings: Informer,
        *,
        host_mntns: int | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.pods = pods
        self.recordings = recordings
        self.host_mntns = host_mntns if host_mntns is not None else _host_mount_namespace()
        self.state_path = settings.state_dir / STATE_FILE
        self.state = ControllerState.load(self.state_path)
        self.recorder: Recorder | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0
        self._next_snapshot = 0.0
        self._next_attach = 0.0
        self._dirty = False
        # Recordings (by uid) told that this node's recorder is attached.
        self._attach_reported: set[str] = set()
        # The loss counters last logged, so each change is logged once.
        self._reported_losses: dict[Stat, int] = {}
        # Warning Events posted, by (recording uid, reason, message), so none is repeated.
        self._posted: set[tuple[str, str, str]] = set()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recording", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reporting; a pinned recorder stays attached for the next agent to resume."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self.pods.wait_for_sync()
        self.recordings.wait_for_sync()
        # A previous agent may have left the recorder pinned: resume it whatever the
        # recordings say, so that what it recorded meanwhile is reported or dropped.
        if self.settings.pin_dir.exists() and any(self.settings.pin_dir.glob("link-*")):
            self._attach()
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception:  # the loop must outlive any one failure
                logger.exception("recording step failed; retrying")
                time.sleep(1.0)
        if self.recorder is not None:
            self._save()
            self.recorder.close()
            self.recorder = None
            metrics.clear_recorder_gauges()

    def step(self) -> None:
        """Do one round of work: attach or detach, read events, sweep, snapshot, report."""
        recordings = parse_recordings(self.recordings.objects())
        active = [recording for recording in recordings if recording.active]
        metrics.ACTIVE_RECORDINGS.set(len(active))

        if active and self.recorder is None and time.monotonic() >= self._next_attach:
            failure = self._attach()
            if failure is not None:
                self._post_once(
                    active, status.RECORDER_ATTACH_FAILED,
                    f"the recorder cannot attach, so no container on this node is recorded:"
                    f" {failure}", warning=True,
                )
        if self.recorder is None:
            self._stopping.wait(0.5)
            return

        events = self.recorder.poll_events(EVENT_POLL_MS)
        # The round is timed from here, so the wait for events is left out.
        with metrics.RECONCILE_DURATION.labels("recording").time():
            self._work(events, recordings, active)

    def _work(self, events: list[Event], recordings: list[Recording], active: list[Recording]) -> None:
        """Handle the kernel's events, then sweep, snapshot and report as they are due."""
        assert self.recorder is not None
        for event in events:
            self._on_event(event.type, event.mntns, event.pid, event.cgroup.decode(errors="replace"))

        now = time.monotonic()
        containers = index_containers(self.pods.objects())
        if now >= self._next_sweep:
            self._sweep()
            self._next_sweep = now + SWEEP_INTERVAL
        self._report_finished(containers, recordings)
        if now >= self._next_snapshot:
            self._snapshot_running(containers, recordings)
            self._read_recorder_metrics(active)
            self._next_snapshot = now + self.settings.snapshot_interval
        self._finalize_stopped(containers, recordings)

        self._report_attached(active)
        if not active and not self.state.finished:
            self._detach()
        if self._dirty:
            self._save()

    def _report_attached(self, active: list[Recording]) -> None:
        """Tell each active recording that this node's recorder is attached, once."""
        node = self.settings.node_name
        for recording in active:
            obj = self.recordings.get(recording.namespace, recording.name) or {}
            agents = (obj.get("status") or {}).get("agents") or {}
            if (agents.get(node) or {}).get("attached") is True:
                continue
            if recording.uid in self._attach_reported:
                continue
            try:
                patch_status(
                    self.api, RECORDINGS, recording.namespace, recording.name,
                    {"agents": {node: {"attached": True, "since": now_rfc3339()}}},
                )
            except ApiException as error:
                logger.error(
                    "[%s/%s] cannot report the recorder of node %s attached: %s",
                    recording.namespace, recording.name, node, _reason(error),
                )
                continue
            self._attach_reported.add(recording.uid)
            logger.info(
                "[%s/%s] reported the recorder of node %s attached",
                recording.namespace, recording.name, node,
            )
            self._post(
                recording, status.RECORDER_ATTACHED,
                "the recorder is attached: containers started from now on are recorded from"
                " their first syscall", warning=False,
            )

    def _post(self, recording: Recording, reason: str, message: str, *, warning: bool) -> None:
        """Post an Event about `recording`; a failure is logged, because Events are informational."""
        involved = self.recordings.get(recording.namespace, recording.name)
        if involved is None:
            return
        node = self.settings.node_name
        body = event_body(
            involved, reason=reason, message=status.truncate(f"{message} (node {node})"),
            warning=warning, node_name=node,
        )
        try:
            post_event(self.api, body)
        except ApiException as error:
            logger.warning(
                "[%s/%s] failed to post Event %s: %s",
                recording.namespace, recording.name, reason, _reason(error),
            )

    def _post_once(
        self, recordings: list[Recording], reason: str, message: str, *, warning: bool
    ) -> None:
        """Post an Event about each recording, unless the same one was posted about it before."""
        for recording in recordings:
            key = (recording.uid, reason, message)
            if key in self._posted:
                continue
            self._posted.add(key)
            self._post(recording, reason, message, warning=warning)

    def _attach(self) -> str | None:
        """Load and attach the recorder, or resume it from its pins; return why it failed."""
        recorder = Recorder(
            Mode.ALL_CONTAINERS, host_mntns=self.host_mntns, pin_directory=self.settings.pin_dir
        )
        try:
            recorder.start()
        except RecorderError as error:
            logger.error("cannot attach the recorder on node %s: %s", self.settings.node_name, error)
            self._next_attach = time.monotonic() + ATTACH_RETRY
            return str(error)
        self.recorder = recorder
        metrics.RECORDER_ATTACHED.set(1)
        if not recorder.resumed:
            # Fresh maps: whatever the state file says of namespaces is gone with the old maps.
            self.state.namespaces.clear()
            self._dirty = True
        self._learn_live_namespaces()
        logger.info("recorder attached on node %s", self.settings.node_name)
        return None

    def _detach(self) -> None:
        assert self.recorder is not None
        self.recorder.unpin()
        self.recorder.close()
        self.recorder = None
        metrics.clear_recorder_gauges()
        self._attach_reported.clear()
        self.state.namespaces.clear()
        self._dirty = True
        logger.info("no recording is active: recorder detached on node %s", self.settings.node_name)

    def _save(self) -> None:
        try:
            self.state.save(self.state_path)
            self._dirty = False
        except OSError as error:
            logger.error("cannot save the recording state to %s: %s", self.state_path, error)

    # -- namespaces and containers ------------------------------------------------------------

    def _learn_live_namespaces(self) -> None:
        """Map the namespaces of processes that already run, which sent no event to us."""
        for mntns, pid in live_mount_namespaces().items():
            if mntns != self.host_mntns and mntns not in self.state.namespaces:
                self._map(mntns, pid, cgroup_path_of_process(pid) or "")

    def _map(self, mntns: int, pid: int, cgroup: str) -> None:
        """Remember which container (and pod) a namespace belongs to, from a cgroup path or name."""
        container_id = container_id_in(cgroup)
        pod_uid = pod_uid_in(cgroup)
        known = self.state.namespaces.get(mntns)
        if known is not None and container_id is not None and known.container_id not in (None, container_id):
            # The kernel reused the inode of an ended namespace for a new container.
            # NOTE: calls the new container made before this event count for the old one.
            self._collect(mntns)
            known = None
        if known is None:
            self.state.namespaces[mntns] = Namespace(
                container_id=container_id, pid=pid, pod_uid=pod_uid
            )
            self._dirty = True
            return
        if known.container_id is None and container_id is not None:
            known.container_id = container_id
            self._dirty = True
        if known.pod_uid is None and pod_uid is not None:
            known.pod_uid = pod_uid
            self._dirty = True

    def _on_event(self, kind: int, mntns: int, pid: int, cgroup: str) -> None:
        if kind == EventType.CONTAINER_EXITED:
            self._collect(mntns)
            return
        # The full path from /proc also names the pod; the event's name is the fallback
        # for a process that is already gone.
        self._map(mntns, pid, cgroup_path_of_process(pid) or cgroup)

    def _sweep(self) -> None:
        """Collect every recorded namespace that no process uses any more."""
        assert self.recorder is not None
        live = live_mount_namespaces()
        for mntns in self.recorder.namespaces() | set(self.state.namespaces):
            if mntns != self.host_mntns and mntns not in live:
                self._collect(mntns)

    def _collect(self, mntns: int) -> None:
        """Take a finished namespace's calls out of the kernel and queue them for reporting.

        NB: the calls are written to the state file before they are deleted from the
        kernel's maps, so an agent killed at any moment loses none of them.
        """
        assert self.recorder is not None
        namespace = self.state.namespaces.pop(mntns, None)
        self._dirty = True
        kept: Finished | None = None
        reportable = namespace is not None and namespace.container_id is not None and not (
            # Another node's pod, or a container no kubelet started: nothing to report.
            namespace.pod_uid is not None and namespace.pod_uid not in self._pod_uids()
        )
        if reportable:
            assert namespace is not None and namespace.container_id is not None
            recording = self.recorder.snapshot(mntns).get(mntns, NamespaceRecording(mntns))
            if recording.numbers or recording.exec_record is not None:
                kept = Finished(recording, namespace.container_id, time.time() + UNMATCHED_GRACE)
                self.state.finished[f"{mntns}/{namespace.container_id}"] = kept
                self._save()

        latest = self.recorder.collect(mntns)
        if kept is not None:
            # Calls that arrived between the read and the delete.
            for phase, by_abi in latest.numbers.items():
                for abi, numbers in by_abi.items():
                    for number in numbers:
                        kept.recording.add(phase, abi, number)

    def _pod_uids(self) -> set[str]:
        return {(pod.get("metadata") or {}).get("uid", "") for pod in self.pods.objects()}

    # -- reporting --------------------------------------------------------------------------

    def _report_finished(self, containers: dict[str, PodContainer], recordings: list[Recording]) -> None:
        for key, finished in list(self.state.finished.items()):
            container = containers.get(finished.container_id)
            if container is None:
                if time.time() >= finished.deadline:
                    logger.debug(
                        "dropping the calls of container %s: no pod on node %s names it",
                        finished.container_id[:12],
                        self.settings.node_name,
                    )
                    del self.state.finished[key]
                    self._dirty = True
                continue
            done = all(
                self._report(recording, container, finished.recording, final=True)
                for recording in recordings
                if selects(recording, container)
            )
            if done:
                del self.state.finished[key]
                self._dirty = True

    def _snapshot_running(self, containers: dict[str, PodContainer], recordings: list[Recording]) -> None:
        assert self.recorder is not None
        selected = 0
        for mntns, namespace in list(self.state.namespaces.items()):
            container = containers.get(namespace.container_id or "")
            if container is None:
                continue
            chosen = [r for r in recordings if r.active and selects(r, container)]
            if not chosen:
                continue
            selected += 1
            recording = self.recorder.snapshot(mntns).get(mntns)
            if recording is None:
                continue
            for recording_object in chosen:
                self._report(recording_object, container, recording, final=False)
        metrics.RECORDED_CONTAINERS.set(selected)

    def _read_recorder_metrics(self, active: list[Recording]) -> None:
        """Read the maps' fill and the loss counters from the kernel into the metrics.

        New losses are logged and posted as SyscallsLost on the active recordings.
        """
        assert self.recorder is not None
        for name, usage in self.recorder.map_usage().items():
            metrics.MAP_ENTRIES.labels(name).set(usage.entries)
            metrics.MAP_MAX_ENTRIES.labels(name).set(usage.max_entries)
            metrics.MAP_FILL_RATIO.labels(name).set(usage.fill_ratio)
        stats = self.recorder.stats()
        metrics.RECORDER_LOST.update(stats)
        if any(stats.values()) and stats != self._reported_losses:
            self._reported_losses = dict(stats)
            lost = ", ".join(f"{stat.name.lower()}={count}" for stat, count in stats.items() if count)
            message = (
                f"the recorder lost calls ({lost}), so profiles recorded now may miss calls:"
                " record fewer containers at once on this node"
            )
            logger.warning("node %s: %s", self.settings.node_name, message)
            self._post_once(active, status.SYSCALLS_LOST, message, warning=True)

    def _finalize_stopped(self, containers: dict[str, PodContainer], recordings: list[Recording]) -> None:
        """Send a final result for running containers of recordings that stopped."""
        assert self.recorder is not None
        stopped = [r for r in recordings if not r.active]
        if not stopped:
            return
        for mntns, namespace in list(self.state.namespaces.items()):
            container = containers.get(namespace.container_id or "")
            if container is None:
                continue
            for recording_object in stopped:
                key = f"{recording_object.uid}/{container.container_id}"
                if not selects(recording_object, container) or self.state.sent.get(key, Sent()).final:
                    continue
                recording = self.recorder.snapshot(mntns).get(mntns, NamespaceRecording(mntns))
                self._report(recording_object, container, recording, final=True)

    def _report(
        self,
        recording: Recording,
        container: PodContainer,
        recorded: NamespaceRecording,
        *,
        final: bool,
    ) -> bool:
        """Write the result of one container for one recording when it changed; True when done."""
        key = f"{recording.uid}/{container.container_id}"
        sent = self.state.sent.get(key, Sent())
        if sent.final:
            return True

        prefix = self._container_id_prefix(container)
        syscalls = container_syscalls(
            recorded,
            runtime_hint=_runtime_of(prefix),
            no_new_privs_hint=self._no_new_privs(container),
        )
        # Never shrink: a restarted agent may see less than it sent before.
        for architecture, previous in sent.names.items():
            syscalls.names.setdefault(Architecture(architecture), set()).update(previous)
        names = {str(arch): sorted(values) for arch, values in syscalls.names.items()}
        if names == sent.names and not final:
            return True
        if not names:
            return True

        body = result_body(
            recording,
            container,
            runtime_prefix=prefix,
            node=self.settings.node_name,
            recorded=syscalls,
            sequence=sent.sequence + 1,
            final=final,
        )
        failure = self._write_result(body)
        if failure is not None:
            metrics.RESULT_WRITE_FAILURES.inc()
            self._post_once(
                [recording], status.RESULT_WRITE_FAILED,
                f"the result of container {container.container} of pod {container.pod} could"
                f" not be written, and is retried: {failure}", warning=True,
            )
            return False
        self.state.sent[key] = Sent(sequence=sent.sequence + 1, names=names, final=final)
        self._dirty = True
        metrics.RESULTS_WRITTEN.labels("final" if final else "snapshot").inc()
        metrics.RESULT_SYSCALLS.observe(len(syscalls.all_names()))
        if final:
            for architecture, numbers in syscalls.unknown_numbers.items():
                metrics.UNKNOWN_SYSCALLS.labels(str(architecture)).inc(len(numbers))
        logger.info(
            "[%s/%s] %s result %d for container %s of pod %s: %d syscalls",
            recording.namespace,
            recording.name,
            "final" if final else "snapshot",
            sent.sequence + 1,
            container.container,
            container.pod,
            len(syscalls.all_names()),
        )
        return True

    def _container_id_prefix(self, container: PodContainer) -> str:
        pod = self.pods.get(container.namespace, container.pod) or {}
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for entry in status.get(key) or []:
                for value in (
                    entry.get("containerID") or "",
                    ((entry.get("lastState") or {}).get("terminated") or {}).get("containerID") or "",
                ):
                    if value.endswith(container.container_id):
                        return value.partition("://")[0]
        return "containerd"

    def _no_new_privs(self, container: PodContainer) -> bool:
        pod = self.pods.get(container.namespace, container.pod) or {}
        spec = pod.get("spec") or {}
        for entry in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if entry.get("name") == container.container:
                context = entry.get("securityContext") or {}
                return context.get("allowPrivilegeEscalation") is False
        return False

    def _write_result(self, body: dict[str, Any]) -> str | None:
        """Create or update a result; return None when written, else the API's reason."""
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        custom = self.api.custom
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, RECORDING_RESULTS, body)
            return None
        except ApiException as error:
            if error.status != 409:
                logger.error("[%s/%s] cannot create the recording result: %s", namespace, name, _reason(error))
                return _reason(error)
        try:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, RECORDING_RESULTS, name, {"spec": body["spec"]}
            )
            return None
        except ApiException as error:
            logger.error("[%s/%s] cannot update the recording result: %s", namespace, name, _reason(error))
            return _reason(error)


def _reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "").get("message"))
    except (AttributeError, TypeError, ValueError):
        return f"{error.status} {error.reason}"


def _host_mount_namespace() -> int:
    """Return the host's mount namespace: that of PID 1, which hostPID shows the agent."""
    try:
        return mount_namespace_of(1)
    except OSError:
        return mount_namespace_of()

