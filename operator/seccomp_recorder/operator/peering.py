"""High availability through kopf peering: several operator replicas, one of them active.

With SECCOMP_RECORDER_PEERING_NAME set, every replica writes keep-alives into the
ClusterKopfPeering object of that name, and kopf pauses a replica's handlers, daemons
and timers while another replica with a higher priority is alive. kopf pauses every
replica when two live ones have the same priority, so each replica takes its own
priority from its start time. The earliest-started replica is the active one. A replica
that starts later (a scale-up, a rolling update) waits instead of taking over work in
progress. A replica that stops removes its keep-alive, so the next one resumes
at once; a replica that is killed counts as gone `peering_lifetime` seconds after its
last keep-alive.

kopf creates no peering object itself (the Helm chart ships it), and while it is missing
kopf keeps every replica paused, so `check_peering_object` logs a warning at start.
"""

from __future__ import annotations

import logging
from typing import Final

import kopf
from kubernetes.client.exceptions import ApiException

from seccomp_recorder.operator.kube import (
    HTTP_NOT_FOUND,
    REQUEST_TIMEOUT,
    ApiClients,
    describe_error,
    is_status,
)
from seccomp_recorder.operator.settings import OperatorSettings

PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
CLUSTER_PEERINGS: Final = "clusterkopfpeerings"


def start_priority(started_ns: int) -> int:
    """Return the kopf priority of a replica started at `started_ns` (ns since the epoch).

    An earlier start gives a higher priority. Any priority set by hand above these, such
    as the 666 of `kopf run --dev`, pauses every replica.
    """
    # NOTE: two replicas started within the same microsecond get the same priority, and
    # kopf then pauses both until one of them restarts.
    return -(started_ns // 1000)


def configure_peering(
    kopf_settings: kopf.OperatorSettings, settings: OperatorSettings, started_ns: int
) -> None:
    """Set kopf's peering settings: standalone, or mandatory peering in the named object."""
    peering = kopf_settings.peering
    if settings.peering_name is None:
        peering.standalone = True
        return
    peering.standalone = False
    # Mandatory: without the peering CRD or object, kopf pauses instead of falling back
    # to standalone, which would make every replica active.
    peering.mandatory = True
    peering.name = settings.peering_name
    peering.priority = start_priority(started_ns)
    peering.lifetime = settings.peering_lifetime


def check_peering_object(api: ApiClients, name: str, logger: logging.Logger) -> bool:
    """Return whether the ClusterKopfPeering `name` exists; log a warning when it does not."""
    try:
        api.custom.get_cluster_custom_object(
            PEERING_GROUP, PEERING_VERSION, CLUSTER_PEERINGS, name,
            _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if is_status(error, HTTP_NOT_FOUND):
            logger.warning(
                "The ClusterKopfPeering %r was not found: this replica handles nothing until"
                " it exists. Create it (the Helm chart does), with the CRD"
                " clusterkopfpeerings.kopf.dev, or unset SECCOMP_RECORDER_PEERING_NAME to run"
                " a single replica standalone.", name,
            )
        else:
            logger.warning(
                "Reading the ClusterKopfPeering %r failed: %s. kopf keeps this replica paused"
                " while the object cannot be read.", name, describe_error(error),
            )
        return False
    return True
