"""One pod's life on the node: sandbox, init containers, app containers, termination.

`PodWorker` runs in its own thread per pod, as the kubelet's pod workers do. It
talks to the API only through a `PodReporter` (the Kubernetes client in
production, a recorder in tests), so the whole life cycle runs against real
runtimes without a server.

Sequence: create the pod's network namespace (unless hostNetwork) and record its
path in the pod annotation `devcluster.seccomp-recorder.io/netns`; open the API
relay's listener in it (`relay.py`); set up the pod's volumes (`volumes.py`),
retrying while a ConfigMap or Secret is missing; run the init
containers one by one to completion; start the app containers, each in its own
thread that restarts it as `restartPolicy` requires with a doubling back-off; on a stop
request send SIGTERM, wait up to the grace period, send SIGKILL; write the final
status; close the relay's listener; remove the network namespace and the pod's
cgroup; and, when the pod was deleted, remove the pod object with a delete of
gracePeriodSeconds=0. While a container runs, its probes run in their own threads
(`probes.py`).
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from typing import Any, BinaryIO, Protocol

from seccomp_devcluster import oci
from seccomp_devcluster.cgroups import remove_cgroup
from seccomp_devcluster.node import netns
from seccomp_devcluster.node.environment import (
    CreateContainerConfigError,
    ObjectLookup,
    PodRuntimeInfo,
)
from seccomp_devcluster.node.podspec import (
    NETNS_ANNOTATION,
    ImagePullError,
    NodeContext,
    container_spec_for,
)
from seccomp_devcluster.node.probes import ProbeLoop, ProbeTarget
from seccomp_devcluster.node.relay import ApiRelay
from seccomp_devcluster.node.seccomp import CreateContainerError
from seccomp_devcluster.node.settings import NodeSettings, PodAddresses
from seccomp_devcluster.node.status import (
    Conditions,
    ContainerRecord,
    ContainerState,
    now,
    pod_phase,
    pod_status,
    waiting,
)
from seccomp_devcluster.node.volumes import (
    HostPaths,
    ServiceAccountFiles,
    Volume,
    VolumeSetupError,
    container_mounts,
    prepare_volumes,
)

logger = logging.getLogger(__name__)

# containerd's exit code for a container whose process could not be started.
START_ERROR_EXIT_CODE = 128
# Seconds between attempts to set up a pod's volumes, doubled up to the maximum.
VOLUME_RETRY_DELAY = 0.5
MAX_VOLUME_RETRY_DELAY = 8.0


def _no_lookup(_kind: str, _namespace: str, _name: str) -> dict[str, Any] | None:
    return None


class PodReporter(Protocol):
    """The API calls a pod worker makes, as the kubelet's status manager makes them."""

    def write_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...

    def remove(self, namespace: str, name: str, uid: str) -> None: ...


class PodWorker:
    """Runs one pod's containers and reports its status; see the module docstring."""

    def __init__(self, pod: dict[str, Any], settings: NodeSettings, reporter: PodReporter,
                 addresses: PodAddresses, *, lookup: ObjectLookup = _no_lookup,
                 relay: ApiRelay | None = None,
                 service_account: ServiceAccountFiles | None = None) -> None:
        """Prepare the worker; `start` runs it.

        `lookup` reads ConfigMaps, Secrets and ServiceAccounts. With `relay`, the
        pod's containers reach the API server through it; with `service_account`
        (the cluster CA), they get the service account files.
        """
        self.pod = pod
        self.settings = settings
        self.reporter = reporter
        self.addresses = addresses
        metadata = pod["metadata"]
        self.namespace: str = metadata["namespace"]
        self.name: str = metadata["name"]
        self.uid: str = metadata["uid"]
        self.key = f"{self.namespace}/{self.name}"
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self.host_network = bool(spec.get("hostNetwork"))
        self.init_records = [ContainerRecord(c["name"], c.get("image", ""),
                                             state=waiting("PodInitializing"))
                             for c in spec.get("initContainers") or []]
        initial = "PodInitializing" if self.init_records else "ContainerCreating"
        self.app_records = [ContainerRecord(c["name"], c.get("image", ""),
                                            state=waiting(initial))
                            for c in spec.get("containers") or []]
        self.workdir = settings.state_dir / "pods" / self.uid
        self.netns_path = settings.state_dir / "netns" / self.uid
        self.log_dir = settings.log_root / f"{self.namespace}_{self.name}_{self.uid}"
        self.cgroup_parent = f"{settings.cgroup_parent}/pod{self.uid}"
        self.context = NodeContext(settings.kubelet_root, settings.seccomp_default,
                                   settings.host_images, settings.host_image_path)
        self.pod_ip = settings.node_ip if self.host_network else addresses.assign(self.uid)
        self.lookup = lookup
        self.relay = relay
        self.service_account = service_account
        self.info = PodRuntimeInfo(
            pod_ip=self.pod_ip, host_ip=settings.node_ip,
            allocatable_cpu=settings.allocatable_cpu,
            allocatable_memory=settings.allocatable_memory,
            service_host=relay.host if relay is not None else None,
            service_port=relay.port if relay is not None else None)
        self.volumes: dict[str, Volume] = {}
        self.start_time = now()

        self._lock = threading.RLock()
        self._status_lock = threading.Lock()
        self._conditions = Conditions()
        self._initialized = not self.init_records
        self._init_failed = False
        self._sandbox_ready = False
        self._stop = threading.Event()
        self._stop_deadline: float | None = None
        self._deleted = False
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.key}", daemon=True)

    # -- control from the node --------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def request_stop(self, grace_period: float, *, deleted: bool) -> bool:
        """Stop the pod's containers within `grace_period` seconds; True on the first request.

        With `deleted`, the pod object is removed once everything has stopped. A
        later request can only shorten the deadline, as the kubelet allows.
        """
        with self._lock:
            first = not self._stop.is_set()
            deadline = time.monotonic() + max(grace_period, 0)
            if self._stop_deadline is None or deadline < self._stop_deadline:
                self._stop_deadline = deadline
            self._deleted = self._deleted or deleted
            self._stop.set()
        return first

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            phase = pod_phase(self.init_records, self.app_records,
                              initialized=self._initialized, init_failed=self._init_failed)
            return pod_status(init=self.init_records, app=self.app_records, phase=phase,
                              initialized=self._initialized, sandbox_ready=self._sandbox_ready,
                              conditions=self._conditions, host_ip=self.settings.node_ip,
                              pod_ip=self.pod_ip, start_time=self.start_time)

    def publish(self) -> None:
        """Write the current status to the API; failures are logged and retried later."""
        with self._status_lock:
            status = self.status()
            try:
                self.reporter.write_status(self.namespace, self.name, status)
            except Exception as error:  # noqa: BLE001 - any client error is retried later
                logger.warning("[%s] Writing the pod status failed: %s", self.key, error)

    # -- life cycle ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._prepare_sandbox()
            if self._prepare_volumes() and self._run_init_containers():
                self._run_app_containers()
            self.publish()
            self._stop.wait()
        except Exception:
            logger.exception("[%s] Pod worker failed", self.key)
        finally:
            self._finish()

    def _prepare_sandbox(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.host_network:
            netns.create_network_namespace(self.netns_path)
            try:
                self.reporter.annotate(self.namespace, self.name,
                                       {NETNS_ANNOTATION: str(self.netns_path)})
            except Exception as error:  # noqa: BLE001 - the pod runs without the annotation
                logger.warning("[%s] Annotating the network namespace failed: %s",
                               self.key, error)
            if self.relay is not None:
                self.relay.open_for(self.key, self.netns_path)
        with self._lock:
            self._sandbox_ready = True
        logger.info("[%s] Sandbox ready (netns %s)", self.key,
                    "host" if self.host_network else self.netns_path)
        self.publish()

    def _prepare_volumes(self) -> bool:
        """Set up the pod's volumes, retrying until they are ready; False when the pod stops."""
        delay = VOLUME_RETRY_DELAY
        while not self._stop.is_set():
            try:
                self.volumes = prepare_volumes(
                    self.pod, self.workdir / "volumes", self.lookup, self.info,
                    HostPaths(self.settings.kubelet_root, self.settings.host_path_root),
                    self.service_account)
                return True
            except (VolumeSetupError, OSError) as error:
                logger.warning("[%s] %s; retrying in %g s", self.key, error, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, MAX_VOLUME_RETRY_DELAY)
        return False

    def _finish(self) -> None:
        with self._lock:
            for record in [*self.init_records, *self.app_records]:
                record.finished = True
            self._sandbox_ready = False
        self.publish()
        if self.relay is not None and not self.host_network:
            try:
                self.relay.close_for(self.key)
            except Exception as error:  # noqa: BLE001 - the namespace is removed anyway
                logger.error("[%s] Closing the API relay listener failed: %s", self.key, error)
        if not self.host_network:
            try:
                netns.delete_network_namespace(self.netns_path)
            except OSError as error:
                logger.error("[%s] Removing network namespace %s failed: %s", self.key,
                             self.netns_path, error)
        remove_cgroup(self.cgroup_parent, levels=1)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.addresses.release(self.uid)
        if self._deleted:
            try:
                self.reporter.remove(self.namespace, self.name, self.uid)
            except Exception as error:  # noqa: BLE001 - the node re-sends on the next event
                logger.error("[%s] Removing the pod object failed: %s", self.key, error)
            shutil.rmtree(self.log_dir, ignore_errors=True)
        logger.info("[%s] Pod stopped%s", self.key, " and removed" if self._deleted else "")
        self._finished.set()

    def _backoff(self, restarts: int) -> float:
        delay = self.settings.crash_loop_backoff * 2 ** max(restarts - 1, 0)
        return float(min(delay, self.settings.max_crash_loop_backoff))

    # -- one container ---------------------------------------------------------------

    def _open_log(self, container: dict[str, Any]) -> BinaryIO:
        return (self.log_dir / f"{container['name']}.log").open("ab")

    def _start(self, record: ContainerRecord,
               container: dict[str, Any]) -> oci.RunningContainer | None:
        """Create and start one container; on failure set its waiting or terminated state."""
        try:
            privileged = bool((container.get("securityContext") or {}).get("privileged"))
            spec = container_spec_for(
                self.pod, container, self.context,
                network_namespace=None if self.host_network else str(self.netns_path),
                cgroup_parent=self.cgroup_parent,
                mounts=container_mounts(container, self.volumes, privileged),
                info=self.info, lookup=self.lookup)
        except ImagePullError as error:
            self._set_state(record, waiting("ErrImagePull", str(error)))
            return None
        except CreateContainerConfigError as error:
            logger.warning("[%s] Container %s: %s", self.key, record.name, error)
            self._set_state(record, waiting("CreateContainerConfigError", str(error)))
            return None
        except CreateContainerError as error:
            logger.warning("[%s] Container %s: %s", self.key, record.name, error)
            self._set_state(record, waiting("CreateContainerError", str(error)))
            return None

        log = self._open_log(container)
        running = oci.RunningContainer(
            spec, self.workdir, stdout=log, stderr=log,
            runtime_root=self.settings.runtime_root / spec.runtime,
            remove_parent_cgroups=False)
        started_at = now()
        try:
            with self._lock:
                if self._stop.is_set():
                    log.close()
                    return None
                record.container_id = f"{spec.runtime}://{running.id}"
            running.create()
            running.start()
        except oci.OciRuntimeError as error:
            log.close()
            running.delete()
            logger.warning("[%s] Container %s failed to start: %s", self.key, record.name, error)
            self._set_state(record, ContainerState(
                "terminated", reason="StartError", message=str(error),
                exit_code=START_ERROR_EXIT_CODE, started_at=started_at, finished_at=now(),
                container_id=record.container_id))
            return None
        except OSError as error:
            # Writing the bundle failed; the kubelet retries such a container later.
            log.close()
            running.delete()
            logger.warning("[%s] Container %s could not be created: %s", self.key, record.name,
                           error)
            self._set_state(record, waiting("CreateContainerError", str(error)))
            return None
        log.close()  # The shim has its own copy of the descriptor.
        logger.info("[%s] Container %s started (%s, pid %s)", self.key, record.name,
                    record.container_id, running.pid)
        with self._lock:
            # Not ready, and not started, until the container's probes succeed.
            record.probe_ready = "readinessProbe" not in container
            record.probe_started = "startupProbe" not in container
        self._set_state(record, ContainerState("running", started_at=started_at))
        return running

    def _wait(self, record: ContainerRecord, running: oci.RunningContainer) -> int:
        """Wait for the container to exit, stopping it when the pod stops; return the code."""
        started_at = self._current_started_at(record)
        probes = self._start_probes(record, running)
        try:
            while True:
                code = running.wait(0.2)
                if code is not None:
                    break
                if self._stop.is_set():
                    code = self._terminate(record, running)
                    break
        finally:
            for probe in probes:
                probe.stop()
        finished_at = now()
        running.delete()
        reason = "Completed" if code == 0 else "Error"
        logger.info("[%s] Container %s exited with code %s", self.key, record.name, code)
        self._set_state(record, ContainerState(
            "terminated", reason=reason, exit_code=code, started_at=started_at,
            finished_at=finished_at, container_id=record.container_id))
        return code

    def _start_probes(self, record: ContainerRecord,
                      running: oci.RunningContainer) -> list[ProbeLoop]:
        """Start the startup, readiness and liveness probes of an app container."""
        container = next((c for c in self.pod["spec"].get("containers") or []
                          if c["name"] == record.name), None)
        if container is None or record not in self.app_records:
            return []
        target = ProbeTarget(self.pod_ip, None if self.host_network else self.netns_path,
                             container, running.exec)
        started = threading.Event()
        name = f"{self.key}/{record.name}"

        def on_startup(success: bool, message: str) -> None:
            if success:
                with self._lock:
                    record.probe_started = True
                started.set()
                self.publish()
            else:
                logger.info("[%s] Container %s failed its startup probe (%s); killing it",
                            self.key, record.name, message)
                running.kill(signal.SIGKILL)

        def on_readiness(success: bool, message: str) -> None:
            logger.info("[%s] Container %s is %s%s", self.key, record.name,
                        "ready" if success else "not ready",
                        "" if success else f": {message}")
            with self._lock:
                record.probe_ready = success
            self.publish()

        def on_liveness(success: bool, message: str) -> None:
            if not success:
                logger.info("[%s] Container %s failed its liveness probe (%s); killing it",
                            self.key, record.name, message)
                running.kill(signal.SIGKILL)

        probes = []
        if "startupProbe" in container:
            probes.append(ProbeLoop("startup", container["startupProbe"], target, on_startup,
                                    name))
        else:
            started.set()
        if "readinessProbe" in container:
            probes.append(ProbeLoop("readiness", container["readinessProbe"], target,
                                    on_readiness, name, wait_for=started))
        if "livenessProbe" in container:
            probes.append(ProbeLoop("liveness", container["livenessProbe"], target,
                                    on_liveness, name, wait_for=started))
        for probe in probes:
            probe.start()
        return probes

    def _terminate(self, record: ContainerRecord, running: oci.RunningContainer) -> int:
        """Send SIGTERM, wait until the pod's stop deadline, then send SIGKILL."""
        logger.info("[%s] Stopping container %s", self.key, record.name)
        running.kill(signal.SIGTERM)
        with self._lock:
            deadline = self._stop_deadline or time.monotonic()
        while True:
            with self._lock:
                deadline = min(deadline, self._stop_deadline or deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            code = running.wait(min(remaining, 0.2))
            if code is not None:
                return code
        logger.info("[%s] Container %s outlived its grace period; sending SIGKILL", self.key,
                    record.name)
        running.kill(signal.SIGKILL)
        code = running.wait(oci.DELETE_TIMEOUT)
        return code if code is not None else 128 + signal.SIGKILL

    def _current_started_at(self, record: ContainerRecord) -> str | None:
        with self._lock:
            return record.state.started_at

    def _set_state(self, record: ContainerRecord, state: ContainerState) -> None:
        with self._lock:
            record.state = state
        self.publish()

    def _restart(self, record: ContainerRecord, reason: str) -> bool:
        """Wait out the back-off before another start; return False when the pod stops."""
        delay = self._backoff(record.restart_count + 1)
        message = (f"back-off {delay:g}s restarting failed container={record.name} "
                   f"pod={self.name}_{self.namespace}({self.uid})")
        with self._lock:
            if record.state.kind == "terminated":
                record.last_state = record.state
                record.state = waiting(reason, message)
        self.publish()
        if self._stop.wait(delay):
            return False
        with self._lock:
            record.restart_count += 1
        return True

    # -- init and app containers -------------------------------------------------------

    def _run_once(self, record: ContainerRecord, container: dict[str, Any],
                  failures: int) -> int | None:
        """Start the container and wait for its exit; return its exit code.

        A start that fails with a waiting reason (CreateContainerError,
        ErrImagePull) waits out a back-off and returns None. A StartError returns
        the code that containerd reports for it.
        """
        running = self._start(record, container)
        if running is not None:
            return self._wait(record, running)
        if record.state.kind == "terminated" and record.state.reason == "StartError":
            return record.state.exit_code
        self._stop.wait(self._backoff(failures))
        return None

    def _run_init_containers(self) -> bool:
        """Run init containers in order; return True once all of them succeeded.

        NOTE: sidecar init containers (`restartPolicy: Always`) run like ordinary
        ones, so a long-running sidecar keeps the pod initializing.
        """
        init_containers = self.pod["spec"].get("initContainers") or []
        for record, container in zip(self.init_records, init_containers, strict=True):
            failures = 0
            while True:
                if self._stop.is_set():
                    return False
                code = self._run_once(record, container, failures + 1)
                if code is None:
                    failures += 1
                    continue
                if self._stop.is_set():
                    return False
                if code == 0:
                    with self._lock:
                        record.finished = True
                    break
                if self.restart_policy == "Never":
                    self._fail_init(record)
                    return False
                if not self._restart(record, "CrashLoopBackOff"):
                    return False
        with self._lock:
            self._initialized = True
            for record in self.app_records:
                if record.state.kind == "waiting":
                    record.state = waiting("ContainerCreating")
        self.publish()
        return True

    def _fail_init(self, record: ContainerRecord) -> None:
        with self._lock:
            self._init_failed = True
            record.finished = True
            for app in self.app_records:
                app.finished = True
        logger.info("[%s] Init container %s failed; the pod failed", self.key, record.name)
        self.publish()

    def _run_app_containers(self) -> None:
        threads = [
            threading.Thread(target=self._app_container_loop, args=(record, container),
                             name=f"container-{self.key}/{record.name}", daemon=True)
            for record, container in zip(self.app_records, self.pod["spec"]["containers"],
                                         strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _app_container_loop(self, record: ContainerRecord, container: dict[str, Any]) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                code = self._run_once(record, container, failures + 1)
                if code is None:
                    failures += 1
                    continue
                failures = 0
                if self._stop.is_set() or not self._should_restart(code):
                    break
                if not self._restart(record, "CrashLoopBackOff"):
                    break
        except Exception:
            logger.exception("[%s] Container %s loop failed", self.key, record.name)
        finally:
            with self._lock:
                record.finished = True
            self.publish()

    def _should_restart(self, code: int | None) -> bool:
        if self.restart_policy == "Always":
            return True
        return self.restart_policy == "OnFailure" and code != 0

