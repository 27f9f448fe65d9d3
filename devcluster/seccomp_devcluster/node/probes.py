"""Container probes, run as the kubelet's prober runs them.

One `ProbeLoop` thread per probe (startup, readiness, liveness) runs while the
container runs. It waits `initialDelaySeconds`, then probes every `periodSeconds`
with a limit of `timeoutSeconds`, and reports a new result after
`successThreshold` successes or `failureThreshold` failures in a row. The defaults
are the API's: 0, 10, 1, 1 and 3.

- readiness: the container is ready only after its first success, and not ready
  after `failureThreshold` failures; the pod's Ready condition follows.
- liveness: `failureThreshold` failures in a row kill the container, which then
  restarts under its restartPolicy.
- startup: readiness and liveness wait until it succeeds; `failureThreshold`
  failures kill the container.

Handlers: `exec` runs the command in the container through the runtime's exec, and
exit code 0 is success. `httpGet` succeeds on a status from 200 to 399, and does
not verify HTTPS certificates, as with the kubelet. `tcpSocket` succeeds when a
connection opens. The
kubelet connects from the node to the pod's IP, so the HTTP and TCP handlers open
their socket inside the pod's network namespace.
NOTE: `grpc` probes are not implemented; such a probe always fails, with a message.
NOTE: a liveness or startup failure kills the container at once, without the
grace period that the kubelet would give it.
NOTE: an exec probe gets EXEC_START_ALLOWANCE seconds on top of `timeoutSeconds`,
because the runtime's exec command itself takes that long to start on a loaded
machine, and the kubelet's timeout covers only the command.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seccomp_devcluster.node.netns import call_in_network_namespace

logger = logging.getLogger(__name__)

# Seconds added to an exec probe's timeoutSeconds for the runtime's exec start-up.
EXEC_START_ALLOWANCE = 2.0

ExecFunction = Callable[[list[str], float], "subprocess.CompletedProcess[bytes]"]


@dataclass(frozen=True)
class ProbeTarget:
    """Probe destination of one container: the pod's address and network namespace."""

    pod_ip: str
    # None for a hostNetwork pod: probes connect from the node's own namespace.
    network_namespace: Path | None
    container: dict[str, Any]
    exec_function: ExecFunction


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    message: str = ""


def _port(container: dict[str, Any], port: Any) -> int:
    """Resolve a probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for entry in container.get("ports") or []:
        if entry.get("name") == port:
            return int(entry["containerPort"])
    raise ValueError(f"port {port!r} is not a number and not a named port of the container")


def _connect(target: ProbeTarget, host: str, port: int, timeout: float) -> socket.socket:
    def connect() -> socket.socket:
        return socket.create_connection((host, port), timeout=timeout)

    if target.network_namespace is None:
        return connect()
    return call_in_network_namespace(target.network_namespace, connect)


def _http_get(target: ProbeTarget, action: dict[str, Any], timeout: float) -> ProbeResult:
    host = action.get("host") or target.pod_ip
    port = _port(target.container, action.get("port"))
    path = action.get("path") or "/"
    connection: http.client.HTTPConnection
    raw = _connect(target, host, port, timeout)
    if (action.get("scheme") or "HTTP").upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        connection.sock = context.wrap_socket(raw, server_hostname=host)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.sock = raw
    try:
        headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
        for header in action.get("httpHeaders") or []:
            headers[header["name"]] = header["value"]
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read(10240)
    finally:
        connection.close()
    if 200 <= response.status < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status}")


def run_probe(probe: dict[str, Any], target: ProbeTarget) -> ProbeResult:
    """Run one probe attempt; connection and HTTP errors become a failed result."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            command = list(probe["exec"].get("command") or [])
            try:
                completed = target.exec_function(command, timeout + EXEC_START_ALLOWANCE)
            except subprocess.TimeoutExpired:
                return ProbeResult(False, f"command timed out after {timeout:g}s")
            if completed.returncode == 0:
                return ProbeResult(True)
            output = (completed.stdout + completed.stderr).decode(errors="replace").strip()
            return ProbeResult(False, f"command {command} exited with {completed.returncode}: "
                                      f"{output}")
        if "httpGet" in probe:
            return _http_get(target, probe["httpGet"], timeout)
        if "tcpSocket" in probe:
            action = probe["tcpSocket"]
            host = action.get("host") or target.pod_ip
            _connect(target, host, _port(target.container, action.get("port")), timeout).close()
            return ProbeResult(True)
        if "grpc" in probe:
            return ProbeResult(False, "grpc probes are not implemented by the dev cluster")
        return ProbeResult(False, "the probe has no handler (exec, httpGet or tcpSocket)")
    except (OSError, ValueError, http.client.HTTPException) as error:
        return ProbeResult(False, f"probe failed: {error}")


class ProbeLoop:
    """Runs one probe of a running container until `stop`; see the module docstring.

    `on_result(success, message)` is called when the result changes by the
    thresholds, and the first time a result is known.
    """

    def __init__(self, kind: str, probe: dict[str, Any], target: ProbeTarget,
                 on_result: Callable[[bool, str], None], name: str,
                 wait_for: threading.Event | None = None) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.on_result = on_result
        self.wait_for = wait_for
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{kind}-{name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        if self.wait_for is not None:
            while not self.wait_for.wait(0.1):
                if self._stopping.is_set():
                    return
        period = float(self.probe.get("periodSeconds") or 10)
        success_threshold = int(self.probe.get("successThreshold") or 1)
        failure_threshold = int(self.probe.get("failureThreshold") or 3)
        if self._stopping.wait(float(self.probe.get("initialDelaySeconds") or 0)):
            return
        successes = failures = 0
        reported: bool | None = None
        while not self._stopping.is_set():
            result = run_probe(self.probe, self.target)
            if self._stopping.is_set():
                return
            if result.success:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                logger.debug("%s probe failed: %s", self.kind, result.message)
            outcome: bool | None = None
            if successes >= success_threshold:
                outcome = True
            elif failures >= failure_threshold:
                outcome = False
            if outcome is not None and outcome != reported:
                reported = outcome
                self.on_result(outcome, result.message)
            self._stopping.wait(period)
