"""Profile statuses recounted when the set of nodes the agents target changes.

A profile's status counts the Ready nodes that match the agent's node selector and
tolerations. Its own events keep it true to the agents' reports, but a node that joins,
leaves or changes readiness touches no profile. One node event handler therefore
recounts every profile, once per change of the targeted set, with one list request and
a status patch only for the profiles whose counts differ.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from kubernetes.client.exceptions import ApiException

from seccomp_recorder.operator import events
from seccomp_recorder.operator.kube import (
    FINALIZER,
    HTTP_CONFLICT,
    HTTP_NOT_FOUND,
    PROFILES,
    ApiClients,
    is_status,
    list_custom_everywhere,
    patch_status,
)
from seccomp_recorder.operator.profile_status import (
    ProfileView,
    compute_status,
    status_events,
    status_patch,
)


class CountedNodes:
    """The targeted node set that every profile's status was last recounted for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.nodes: frozenset[str] | None = None

    @contextmanager
    def held(self) -> Iterator[CountedNodes]:
        """Hold the set while recounting, so two node events never recount at once."""
        with self._lock:
            yield self


def recount_profiles(api: ApiClients, targeted: frozenset[str], *, now: datetime) -> int:
    """Patch the status of every profile whose counts differ under `targeted`.

    Each patch carries the resourceVersion that was listed. A profile that changed or
    went away since gets its own event, which computes its status anyway, so a 409 or
    404 skips it. So does a profile without the operator's finalizer yet: its status
    waits for kopf's first pass, so that it never looks Installed before a deletion
    would wait for its nodes. Returns the number of profiles patched.
    """
    patched = 0
    for body in list_custom_everywhere(api, PROFILES):
        metadata = body["metadata"]
        if FINALIZER not in (metadata.get("finalizers") or []):
            continue  # Not handled by kopf yet; its first pass computes the status.
        profile = ProfileView.from_body(body)
        status = compute_status(profile, targeted, now=now)
        changes = status_patch(body.get("status") or {}, status)
        if not changes:
            continue
        try:
            patch_status(
                api, metadata["namespace"], PROFILES, metadata["name"], changes,
                resource_version=metadata["resourceVersion"],
            )
        except ApiException as error:
            if is_status(error, HTTP_CONFLICT) or is_status(error, HTTP_NOT_FOUND):
                continue
            raise
        events.post(body, status_events(profile.status, status, generation=profile.generation))
        patched += 1
    return patched
