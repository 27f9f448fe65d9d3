"""Pod status as the kubelet writes it: phase, conditions and container statuses.

Pure data and functions, filled in by the pod worker and tested without a server.
The phase follows the kubelet's rules: Pending while initialising or while any app
container waits for its first start; Running while any container runs or will be
restarted; Succeeded or Failed once every container has stopped for good.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

StateKind = Literal["waiting", "running", "terminated"]


def now() -> str:
    """Return the current time in the API's RFC 3339 form, with seconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """One of the API's container states: waiting, running or terminated."""

    kind: StateKind
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    container_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        if self.kind == "waiting":
            body: dict[str, Any] = {"reason": self.reason}
            if self.message:
                body["message"] = self.message
        elif self.kind == "running":
            body = {"startedAt": self.started_at}
        else:
            body = {"exitCode": self.exit_code, "reason": self.reason,
                    "startedAt": self.started_at, "finishedAt": self.finished_at}
            if self.message:
                body["message"] = self.message
            if self.signal:
                body["signal"] = self.signal
            if self.container_id:
                body["containerID"] = self.container_id
        return {self.kind: body}


def waiting(reason: str, message: str | None = None) -> ContainerState:
    return ContainerState("waiting", reason=reason, message=message)


@dataclass
class ContainerRecord:
    """State of one container of a pod, kept across its restarts."""

    name: str
    image: str
    state: ContainerState = field(default_factory=lambda: waiting("ContainerCreating"))
    last_state: ContainerState | None = None
    restart_count: int = 0
    container_id: str | None = None
    # True once the container has stopped and will not be started again.
    finished: bool = False
    # Results of the readiness and startup probes of the current run (True without one).
    probe_ready: bool = True
    probe_started: bool = True

    @property
    def running(self) -> bool:
        return self.state.kind == "running"

    @property
    def ready(self) -> bool:
        return self.running and self.probe_ready and self.probe_started

    def to_api(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "state": self.state.to_api(),
            "lastState": self.last_state.to_api() if self.last_state else {},
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.running and self.probe_started,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def _succeeded(record: ContainerRecord) -> bool:
    state = record.state if record.state.kind == "terminated" else record.last_state
    return state is not None and state.kind == "terminated" and state.exit_code == 0


def pod_phase(init: list[ContainerRecord], app: list[ContainerRecord], *, initialized: bool,
              init_failed: bool) -> str:
    """Return the pod phase from its containers' records, by the kubelet's rules.

    A container is `finished` once the restart policy (or the pod's deletion) rules
    out another start, so the policy itself is already applied to the records.
    """
    if init_failed:
        return "Failed"
    if not initialized:
        return "Pending"
    if any(not record.running and record.state.kind != "terminated"
           and record.last_state is None for record in app):
        return "Pending"  # An app container waits for its first start.
    if any(record.running or not record.finished for record in app):
        return "Running"
    if all(_succeeded(record) for record in app):
        return "Succeeded"
    return "Failed"


@dataclass
class Conditions:
    """Pod conditions with the time each last changed status."""

    times: dict[str, tuple[str, str]] = field(default_factory=dict)

    def set(self, kind: str, value: bool) -> str:
        status = "True" if value else "False"
        previous = self.times.get(kind)
        if previous is None or previous[0] != status:
            self.times[kind] = (status, now())
        return self.times[kind][1]


def _names(records: list[ContainerRecord]) -> str:
    return "[" + " ".join(record.name for record in records) + "]"


def pod_status(*, init: list[ContainerRecord], app: list[ContainerRecord], phase: str,
               initialized: bool, sandbox_ready: bool, conditions: Conditions,
               host_ip: str, pod_ip: str | None, start_time: str) -> dict[str, Any]:
    """Return the pod's `status` in the API's JSON form."""
    unready = [record for record in app if not record.ready]
    incomplete = [record for record in init if not _succeeded(record)]
    terminal = phase in ("Succeeded", "Failed")
    containers_ready = not unready and not terminal

    entries: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers",
         "status": "True" if sandbox_ready else "False",
         "lastTransitionTime": conditions.set("PodReadyToStartContainers", sandbox_ready)},
        {"type": "Initialized", "status": "True" if initialized else "False",
         "lastTransitionTime": conditions.set("Initialized", initialized)},
        {"type": "Ready", "status": "True" if containers_ready else "False",
         "lastTransitionTime": conditions.set("Ready", containers_ready)},
        {"type": "ContainersReady", "status": "True" if containers_ready else "False",
         "lastTransitionTime": conditions.set("ContainersReady", containers_ready)},
        {"type": "PodScheduled", "status": "True",
         "lastTransitionTime": conditions.set("PodScheduled", True)},
    ]
    for entry in entries:
        if entry["status"] == "True":
            continue
        if entry["type"] == "Initialized":
            entry["reason"] = "ContainersNotInitialized"
            entry["message"] = f"containers with incomplete status: {_names(incomplete)}"
        elif entry["type"] in ("Ready", "ContainersReady"):
            if terminal:
                entry["reason"] = "PodCompleted"
            else:
                entry["reason"] = "ContainersNotReady"
                entry["message"] = f"containers with unready status: {_names(unready)}"

    status: dict[str, Any] = {
        "phase": phase,
        "conditions": entries,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "qosClass": "BestEffort",
        "containerStatuses": [record.to_api() for record in app],
    }
    if init:
        status["initContainerStatuses"] = [record.to_api() for record in init]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
