"""In-memory object storage with one cluster-wide resourceVersion counter, as etcd has.

Every committed change gets the next resourceVersion and one watch event, so the
events in the history have consecutive versions. The history is bounded, so a watch
that requests a version older than the history retains gets 410 Expired, as the real
API server does after etcd compaction.

NB: stored objects are never mutated in place. Writers deep-copy, change the copy, and
commit it; the history and the responses share the committed dicts.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

from seccomp_devcluster.apiserver import errors

StorageKey = tuple[str, str]  # (group, plural); all versions of a resource share it
ObjectKey = tuple[str, str]  # (namespace or "", name)

# Watch events retained for watches that resume from a resourceVersion. The real API
# server keeps about 5 minutes of etcd history; a count keeps tests deterministic.
DEFAULT_HISTORY_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    storage_key: StorageKey
    type: str  # ADDED, MODIFIED or DELETED
    object: dict[str, Any]
    old_object: dict[str, Any] | None


def object_key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return (metadata.get("namespace") or "", metadata["name"])


class Store:
    """All objects of all resources, the resourceVersion counter and the event history."""

    def __init__(self, history_size: int = DEFAULT_HISTORY_SIZE) -> None:
        self.resource_version = 0
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._by_uid: dict[str, tuple[StorageKey, ObjectKey]] = {}
        self._history: collections.deque[WatchEvent] = collections.deque(maxlen=history_size)
        # Events with a resourceVersion up to this one are no longer in the history.
        self.compacted_version = 0
        self._new_events = asyncio.Event()

    def get(self, storage_key: StorageKey, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects.get(storage_key, {}).get((namespace or "", name))

    def get_by_uid(self, uid: str) -> tuple[StorageKey, dict[str, Any]] | None:
        location = self._by_uid.get(uid)
        if location is None:
            return None
        storage_key, key = location
        return storage_key, self._objects[storage_key][key]

    def list_objects(self, storage_key: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """List a resource's objects sorted by namespace and name (all namespaces for None)."""
        objects = self._objects.get(storage_key, {})
        keys = sorted(key for key in objects if namespace is None or key[0] == namespace)
        return [objects[key] for key in keys]

    def all_objects(self) -> Iterator[tuple[StorageKey, dict[str, Any]]]:
        for storage_key, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield storage_key, obj

    def commit(
        self,
        storage_key: StorageKey,
        event_type: str,
        obj: dict[str, Any],
        old_object: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store (or for DELETED, remove) an object under the next resourceVersion."""
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        key = object_key(obj)
        objects = self._objects.setdefault(storage_key, {})
        uid = obj["metadata"].get("uid")
        if event_type == "DELETED":
            objects.pop(key, None)
            if uid:
                self._by_uid.pop(uid, None)
        else:
            objects[key] = obj
            if uid:
                self._by_uid[uid] = (storage_key, key)

        if len(self._history) == self._history.maxlen:
            self.compacted_version = self._history[0].resource_version
        self._history.append(WatchEvent(
            self.resource_version, storage_key, event_type, obj, old_object))

        # Wake every waiting watch, and arm a fresh signal for the next commit.
        signal, self._new_events = self._new_events, asyncio.Event()
        signal.set()
        return obj

    def events_since(self, resource_version: int) -> list[WatchEvent]:
        """Return the events after a resourceVersion; raise 410 Expired if it is compacted."""
        if resource_version < self.compacted_version:
            raise errors.expired(resource_version, self.compacted_version + 1)
        start = resource_version - self.compacted_version
        if start >= len(self._history):
            return []
        return list(itertools.islice(self._history, max(start, 0), None))

    def new_events_signal(self) -> asyncio.Event:
        """Return an event that is set by the next commit (take it before reading events)."""
        return self._new_events
