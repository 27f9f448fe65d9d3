"""The controllers that finish deletions, as kube-controller-manager does in a cluster.

One background task sweeps all objects whenever an object is removed or starts
deleting:

- owner-reference garbage collection: an object whose owners are all gone is deleted
  (background propagation); references to missing owners are dropped when other
  owners remain;
- foreground deletion: the dependents of an owner with the `foregroundDeletion`
  finalizer are deleted first, then the finalizer is removed;
- orphaning: the dependents of an owner with the `orphan` finalizer lose their
  reference to it, then the finalizer is removed;
- namespace termination: the objects in a deleting namespace are deleted, then the
  namespace goes;
- CRD cleanup: the custom resources of a deleting CRD are deleted, then the CRD goes;
- pod garbage collection: a deleting pod bound to a node that does not exist is
  removed, because no kubelet will ever confirm it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import kmock

from seccomp_devcluster.apiserver import crds, kinds, objects

logger = logging.getLogger(__name__)

Located = tuple[tuple[str, str], dict[str, Any]]


class GarbageCollector:
    """Runs sweeps in the background after deletion-related changes."""

    def __init__(self, store_objects: objects.Objects) -> None:
        self._objects = store_objects
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="apiserver-garbage-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.sweep()
            except Exception:  # a bug here must not stop later sweeps
                logger.exception("garbage collection sweep failed")
            await asyncio.sleep(0)

    def sweep(self) -> None:
        store = self._objects.store
        everything = list(store.all_objects())
        dependents: dict[str, list[Located]] = {}
        for storage_key, obj in everything:
            for reference in obj["metadata"].get("ownerReferences") or []:
                dependents.setdefault(reference.get("uid", ""), []).append((storage_key, obj))

        for storage_key, obj in everything:
            if store.get_by_uid(obj["metadata"].get("uid", "")) is None:
                continue  # removed earlier in this sweep
            metadata = obj["metadata"]
            uid = metadata.get("uid", "")
            if metadata.get("deletionTimestamp"):
                finalizers = metadata.get("finalizers") or []
                if objects.ORPHAN_FINALIZER in finalizers:
                    self._orphan(obj, dependents.get(uid, []), storage_key)
                elif objects.FOREGROUND_FINALIZER in finalizers:
                    self._delete_foreground(obj, dependents.get(uid, []), storage_key)
                if storage_key == crds.CRD_STORAGE:
                    self._clean_up_crd(obj)
                elif storage_key == kinds.NAMESPACES:
                    self._terminate_namespace(obj)
                elif storage_key == kinds.PODS:
                    self._collect_unbound_pod(obj)
            self._collect_orphaned_dependent(storage_key, obj)

    def _delete(self, storage_key: tuple[str, str], obj: dict[str, Any], policy: str) -> None:
        rtypes = self._objects.types.for_storage(storage_key)
        if not rtypes or obj["metadata"].get("deletionTimestamp"):
            return
        metadata = obj["metadata"]
        try:
            self._objects.delete(rtypes[0], metadata.get("namespace"), metadata["name"],
                                 {"propagationPolicy": policy})
        except kmock.KubernetesError as error:  # e.g. removed meanwhile
            logger.debug("collector could not delete %s: %s", metadata["name"], error.message)

    def _orphan(self, owner: dict[str, Any], found: list[Located], storage_key: tuple[str, str]) -> None:
        uid = owner["metadata"]["uid"]
        for dependent_key, dependent in found:
            current = self._objects.store.get_by_uid(dependent["metadata"].get("uid", ""))
            if current is None:
                continue
            metadata = copy.deepcopy(current[1]["metadata"])
            metadata["ownerReferences"] = [
                reference for reference in metadata.get("ownerReferences") or []
                if reference.get("uid") != uid
            ]
            if not metadata["ownerReferences"]:
                del metadata["ownerReferences"]
            self._objects.replace_metadata(dependent_key, current[1], metadata)
        self._refresh_and_remove_finalizer(storage_key, owner, objects.ORPHAN_FINALIZER)

    def _delete_foreground(self, owner: dict[str, Any], found: list[Located],
                           storage_key: tuple[str, str]) -> None:
        remaining = [
            (key, dependent) for key, dependent in found
            if self._objects.store.get_by_uid(dependent["metadata"].get("uid", "")) is not None
        ]
        for dependent_key, dependent in remaining:
            self._delete(dependent_key, dependent, "Foreground")
        if not remaining:
            self._refresh_and_remove_finalizer(storage_key, owner, objects.FOREGROUND_FINALIZER)

    def _refresh_and_remove_finalizer(self, storage_key: tuple[str, str], obj: dict[str, Any],
                                      finalizer: str) -> None:
        current = self._objects.store.get_by_uid(obj["metadata"]["uid"])
        if current is not None:
            self._objects.remove_finalizer(storage_key, current[1], finalizer)

    def _clean_up_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        storage_key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        remaining = self._objects.store.list_objects(storage_key)
        for obj in remaining:
            self._delete(storage_key, obj, "Background")
        if not remaining:
            self._refresh_and_remove_finalizer(crds.CRD_STORAGE, crd, objects.CRD_CLEANUP_FINALIZER)

    def _terminate_namespace(self, namespace: dict[str, Any]) -> None:
        name = namespace["metadata"]["name"]
        remaining = [
            (storage_key, obj) for storage_key, obj in self._objects.store.all_objects()
            if obj["metadata"].get("namespace") == name
        ]
        for storage_key, obj in remaining:
            self._delete(storage_key, obj, "Background")
        if remaining:
            return
        current = self._objects.store.get_by_uid(namespace["metadata"]["uid"])
        if current is None:
            return
        finished = copy.deepcopy(current[1])
        finished.setdefault("spec", {})["finalizers"] = []
        if finished["metadata"].get("finalizers"):
            if finished != current[1]:
                self._objects.store.commit(kinds.NAMESPACES, "MODIFIED", finished, current[1])
            return
        self._objects.remove_now(kinds.NAMESPACES, finished)

    def _collect_unbound_pod(self, pod: dict[str, Any]) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or pod["metadata"].get("finalizers"):
            return
        if self._objects.store.get(kinds.NODES, None, node_name) is None:
            self._objects.remove_now(kinds.PODS, pod)

    def _collect_orphaned_dependent(self, storage_key: tuple[str, str], obj: dict[str, Any]) -> None:
        references = obj["metadata"].get("ownerReferences") or []
        if not references:
            return
        store = self._objects.store
        present = [reference for reference in references if store.get_by_uid(reference.get("uid", ""))]
        if not present:
            self._delete(storage_key, obj, "Background")
        elif len(present) < len(references):
            metadata = copy.deepcopy(obj["metadata"])
            metadata["ownerReferences"] = present
            self._objects.replace_metadata(storage_key, obj, metadata)
