"""The agent's recording side: a stub that fixes the interface the entry point calls.

The lead fills this module in: attaching the eBPF recorder while a SeccompRecording
selects pods on this node, mapping mount namespaces to containers, and writing
SeccompRecordingResult objects. The entry point (`seccomp_recorder.agent.main`) builds one
`RecordingController` after the informers have started, calls `start()` once, and calls
`stop()` once on SIGTERM or SIGINT, before it stops the informers.
"""

from __future__ import annotations

import logging

from seccomp_recorder.agent.informers import Informer
from seccomp_recorder.agent.kube import ApiClients
from seccomp_recorder.agent.settings import AgentSettings

logger = logging.getLogger(__name__)


class RecordingController:
    """Records the pods that SeccompRecordings select on this node (stub: does nothing yet).

    `pods` is the informer of this node's pods and `recordings` the informer of every
    SeccompRecording; both are started and may still be listing, so `wait_for_sync` them
    before acting on an empty store. Handlers added with `add_handlers` run on the
    informers' threads and must return quickly.
    """

    def __init__(
        self,
        settings: AgentSettings,
        api: ApiClients,
        pods: Informer,
        recordings: Informer,
    ) -> None:
        self.settings = settings
        self.api = api
        self.pods = pods
        self.recordings = recordings

    def start(self) -> None:
        """Start recording; returns once any threads it needs are running."""
        logger.debug("The recording side is not implemented yet")

    def stop(self) -> None:
        """Stop recording and release what `start` acquired; called once at shutdown."""
