"""Entry point of the node agent (`seccomp-recorder-agent`, `python -m seccomp_recorder.agent`).

`main` loads the settings, sets up logging, connects to the API server, and runs an
`Agent` until SIGTERM or SIGINT. The agent starts, in order: the profile installer (which
registers its informer handlers first, so it misses no event), the informers of this
node's pods, of SeccompProfiles and of SeccompRecordings, and the recording side
(`recording.RecordingController`). It stops them in the reverse order.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import kubernetes
from pythonjsonlogger.json import JsonFormatter

from seccomp_recorder.agent import informers, kube, metrics
from seccomp_recorder.agent.installer import ProfileInstaller
from seccomp_recorder.agent.recording import RecordingController
from seccomp_recorder.agent.settings import AgentSettings, SettingsError, load_settings
from seccomp_recorder.setting_values import LogFormat

logger = logging.getLogger(__name__)

PROGRAM = "seccomp-recorder-agent"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(threadName)s"
# The `[namespace/name]` prefix that the agent's log lines about an object start with.
_OBJECT_PREFIX = re.compile(r"^\[(?P<namespace>[a-z0-9.-]+)/(?P<name>[a-z0-9.-]+)\] ")


class ObjectFilter(logging.Filter):
    """Copy a message's `[namespace/name]` prefix into the field `object` of JSON lines.

    The operator's JSON lines (through kopf) carry the object under the same key, so one
    query finds the lines of both processes about an object.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        match = _OBJECT_PREFIX.match(record.getMessage())
        if match is not None:
            record.object = {"namespace": match["namespace"], "name": match["name"]}
        return True


def configure_logging(settings: AgentSettings) -> None:
    """Send log records of `settings.log_level` and above to stderr, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level"}))
        handler.addFilter(ObjectFilter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # The client logs every request at DEBUG, which would drown the agent's own lines.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))


class Agent:
    """The running parts of the agent on one node, started and stopped together."""

    def __init__(self, settings: AgentSettings, api: kube.ApiClients) -> None:
        self.settings = settings
        self.api = api
        self.pods = informers.pod_informer(api.core, settings.node_name)
        self.profiles = informers.profile_informer(api.custom)
        self.recordings = informers.recording_informer(api.custom)
        self.installer = ProfileInstaller(settings, api, self.profiles, self.pods)
        self.recording = RecordingController(settings, api, self.pods, self.recordings)

    def start(self) -> None:
        """Start the installer, the informers and the recording side."""
        self.installer.start()
        for informer in (self.pods, self.profiles, self.recordings):
            informer.start()
        self.recording.start()
        logger.info(
            "Agent started on node %s (profiles in %s)",
            self.settings.node_name,
            self.settings.seccomp_root,
        )

    def stop(self) -> None:
        """Stop everything in the reverse order of `start`; each part is stopped once."""
        self.recording.stop()
        self.installer.stop()
        for informer in (self.recordings, self.profiles, self.pods):
            informer.stop()
        self.api.close()
        logger.info("Agent stopped on node %s", self.settings.node_name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT; return the exit status."""
    try:
        settings = load_settings(argv)
    except SettingsError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        api = kube.connect(settings)
    except kubernetes.config.ConfigException as error:
        logger.error(
            "Failed to load the API server configuration: %s. Outside a pod, set"
            " SECCOMP_RECORDER_KUBECONFIG to a valid kubeconfig file",
            error,
        )
        return 1

    try:
        metrics_server = metrics.serve(settings)
    except OSError as error:
        logger.error(
            "Failed to serve metrics on %s port %d: %s. Choose a free port with"
            " SECCOMP_RECORDER_METRICS_PORT, or 0 for none",
            settings.metrics_address, settings.metrics_port, error,
        )
        api.close()
        return 1
    if metrics_server is not None:
        logger.info(
            "Serving metrics on http://%s:%d/metrics", settings.metrics_address,
            settings.metrics_port,
        )

    stopping = threading.Event()
    received: list[str] = []

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        # Only record the signal here: logging from a signal handler can deadlock on
        # the handler's lock if the main thread was interrupted while logging.
        received.append(signal.Signals(signal_number).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    agent = Agent(settings, api)
    try:
        agent.start()
        # A timed wait lets the main thread run the signal handler promptly.
        while not stopping.wait(1.0):
            pass
        logger.info("Stopping on %s", received[0])
    finally:
        agent.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
