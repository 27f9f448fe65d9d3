"""Create, update, patch and delete objects with the real API server's rules.

This module owns the write path: metadata (uid, resourceVersion, generation,
creationTimestamp, generateName), resourceVersion preconditions (409 Conflict), the
status subresource kept apart from the rest of the object, custom resource schemas,
finalizers and deletionTimestamp, and graceful pod deletion. The garbage collector
(`gc.py`) calls the same methods that requests do.

Graceful pod deletion, agreed with the node stand-in: a DELETE of a pod that has
`spec.nodeName` and a grace period above zero only sets `deletionTimestamp` and
`deletionGracePeriodSeconds`; the node stops the containers and then sends a DELETE
with `gracePeriodSeconds=0`, which removes the pod once its finalizers are empty. A pod
without a node is removed at once. See devcluster/CONTRACT.md.
"""

from __future__ import annotations

import copy
import datetime
import logging
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

import yaml

from seccomp_devcluster.apiserver import crds, errors, kinds, patching, registry, schema
from seccomp_devcluster.apiserver.store import Store

logger = logging.getLogger(__name__)

ResourceType = registry.ResourceType

# Characters of generated name suffixes, as the real server uses (no vowels, no 0/1/3).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KINDS = frozenset({kinds.NAMESPACES, kinds.SERVICES})
_PATH_SEGMENT_GROUPS = frozenset({"rbac.authorization.k8s.io"})

# Namespaces that the real server refuses to delete.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
DEFAULT_POD_GRACE_SECONDS = 30


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Render a stored object in the group and version of the request."""
    if rtype.group == "events.k8s.io":
        return kinds.event_from_core(obj)
    result = dict(obj)
    result["apiVersion"] = rtype.api_version
    result["kind"] = rtype.kind
    return result


def _to_storage(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rtype.group == "events.k8s.io":
        return kinds.event_to_core(obj)
    return obj


def _spec_part(obj: dict[str, Any], custom_without_status: bool) -> dict[str, Any]:
    ignored = {"metadata", "apiVersion", "kind"} | (set() if custom_without_status else {"status"})
    return {key: value for key, value in obj.items() if key not in ignored}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    result = dict(obj)
    metadata = dict(result.get("metadata") or {})
    metadata.pop("resourceVersion", None)
    metadata.pop("managedFields", None)
    result["metadata"] = metadata
    return result


class Objects:
    """The write and read operations on stored objects."""

    def __init__(self, store: Store, types: registry.Registry,
                 on_deletion_change: Callable[[], None]) -> None:
        self.store = store
        self.types = types
        # Called whenever an object is removed or starts deleting, to wake the collector.
        self._on_deletion_change = on_deletion_change

    # Reads

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace if rtype.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rtype.group_resource, name)
        return obj

    # Create

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, *,
               dry_run: bool = False, strict_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
        """Create an object; return it with the warnings about pruned fields."""
        obj = self._checked_body(rtype, body)
        obj = copy.deepcopy(_to_storage(rtype, obj))
        if rtype.group != "events.k8s.io":
            obj["apiVersion"] = rtype.api_version
            obj["kind"] = rtype.kind
        metadata = obj.setdefault("metadata", {})
        namespace = self._object_namespace(rtype, namespace, metadata)

        if not metadata.get("name"):
            if not metadata.get("generateName"):
                raise errors.invalid(rtype.kind, rtype.group, "", [errors.cause(
                    "FieldValueRequired", "metadata.name", "Required value: name or generateName is required")])
            metadata["name"] = self._generate_name(rtype, namespace, metadata["generateName"])
        self._check_name(rtype, metadata["name"])
        if namespace is not None:
            self._check_namespace_open(rtype, namespace, metadata["name"])
        if self.store.get(rtype.storage_key, namespace, metadata["name"]) is not None:
            raise errors.already_exists(rtype.group_resource, metadata["name"])

        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "managedFields", "selfLink"):
            metadata.pop(field, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now()
        if rtype.has_status and not kinds.keeps_status_on_create(rtype.storage_key):
            obj.pop("status", None)
        if kinds.tracks_generation(rtype.storage_key, rtype.is_custom, rtype.has_status):
            metadata["generation"] = 1

        warnings: list[str] = []
        if rtype.is_custom:
            warnings = self._check_custom(rtype, obj, None, strict_fields)
        else:
            kinds.prepare_create(rtype.storage_key, obj)
        if rtype.storage_key == crds.CRD_STORAGE:
            crds.check_spec(obj, self.types)
            metadata.setdefault("finalizers", [])
            if CRD_CLEANUP_FINALIZER not in metadata["finalizers"]:
                metadata["finalizers"].append(CRD_CLEANUP_FINALIZER)
            obj["status"] = crds.established_status(obj, now())

        if dry_run:
            return obj, warnings
        self.store.commit(rtype.storage_key, "ADDED", obj)
        if rtype.storage_key == crds.CRD_STORAGE:
            self._register_crd(obj)
        logger.debug("created %s %s/%s", rtype.group_resource, namespace or "", metadata["name"])
        return obj, warnings

    def _checked_body(self, rtype: ResourceType, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if kind and kind != rtype.kind:
            raise errors.bad_request(
                f"the kind of the object ({kind}) does not match the kind of the URL ({rtype.kind})")
        if api_version and api_version != rtype.api_version:
            raise errors.bad_request(
                f"the API version of the object ({api_version}) does not match the URL "
                f"({rtype.api_version})")
        return body

    def _object_namespace(self, rtype: ResourceType, namespace: str | None,
                          metadata: dict[str, Any]) -> str | None:
        if not rtype.namespaced:
            metadata.pop("namespace", None)
            return None
        if namespace is None:
            raise errors.path_not_found()
        if metadata.get("namespace") and metadata["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request")
        metadata["namespace"] = namespace
        return namespace

    def _check_namespace_open(self, rtype: ResourceType, namespace: str, name: str) -> None:
        found = self.store.get(kinds.NAMESPACES, None, namespace)
        if found is None:
            raise errors.not_found("namespaces", namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rtype.group_resource, name,
                f"unable to create new content in namespace {namespace} because it is being "
                f"terminated")

    def _generate_name(self, rtype: ResourceType, namespace: str | None, prefix: str) -> str:
        for _ in range(100):
            suffix = "".join(random.choices(_SUFFIX_ALPHABET, k=5))
            name = f"{prefix[:58]}{suffix}"
            if self.store.get(rtype.storage_key, namespace, name) is None:
                return name
        raise errors.already_exists(rtype.group_resource, prefix)

    def _check_name(self, rtype: ResourceType, name: str) -> None:
        if rtype.group in _PATH_SEGMENT_GROUPS or rtype.storage_key == kinds.EVENTS:
            valid = name not in (".", "..") and "/" not in name and "%" not in name
            description = "may not contain '/' or '%' and may not be '.' or '..'"
        elif rtype.storage_key in _LABEL_KINDS:
            valid = len(name) <= 63 and _LABEL.match(name) is not None
            description = (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                "characters or '-', and must start and end with an alphanumeric character")
        else:
            valid = len(name) <= 253 and _SUBDOMAIN.match(name) is not None
            description = (
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character")
        if not valid:
            raise errors.invalid(rtype.kind, rtype.group, name, [errors.cause(
                "FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {description}')])

    def _check_custom(self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                      strict_fields: bool) -> list[str]:
        """Prune, default and validate a custom resource; return pruning warnings."""
        structural = rtype.schema or {}
        pruned = schema.prune(structural, obj)
        if pruned and strict_fields:
            fields = ", ".join(f'unknown field "{field}"' for field in pruned)
            raise errors.bad_request(f"strict decoding error: {fields}")
        schema.apply_defaults(structural, obj)
        checked = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")}
        old_checked = None
        if old is not None:
            old_checked = {key: value for key, value in old.items()
                           if key not in ("apiVersion", "kind", "metadata")}
        causes = schema.validate(structural, checked, old_checked)
        if causes:
            raise errors.invalid(rtype.kind, rtype.group, obj["metadata"].get("name", ""), causes)
        return [f'unknown field "{field}"' for field in pruned]

    def _register_crd(self, crd: dict[str, Any]) -> None:
        self.types.remove_crd(crd["metadata"]["uid"])
        for rtype in crds.resource_types(crd):
            self.types.add(rtype)

    # Update and patch

    def update(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, *,
               subresource: str | None = None, dry_run: bool = False,
               strict_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
        """Replace an object (PUT); a resourceVersion in the body is a precondition."""
        obj = copy.deepcopy(_to_storage(rtype, self._checked_body(rtype, body)))
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the "
                f"URL ({name})")
        current = self.get(rtype, namespace, name)
        expected_version = metadata.get("resourceVersion")
        if expected_version and expected_version != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group_resource, name, errors.STALE_OBJECT)
        return self._replace(rtype, current, obj, subresource=subresource, dry_run=dry_run,
                             strict_fields=strict_fields)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str,
              patch: Any, *, subresource: str | None = None, dry_run: bool = False,
              strict_fields: bool = False) -> tuple[dict[str, Any], list[str], bool]:
        """Patch an object; return it, the warnings, and whether it was created (apply)."""
        media_type = content_type.split(";")[0].strip().lower()
        current = self.store.get(rtype.storage_key, namespace if rtype.namespaced else None, name)
        if media_type == patching.APPLY_PATCH:
            return self._apply(rtype, namespace, name, patch, current, dry_run, strict_fields)
        if current is None:
            raise errors.not_found(rtype.group_resource, name)
        patched = patching.apply_patch(
            content_type, present(rtype, current), patch, custom=rtype.is_custom)
        patched = copy.deepcopy(_to_storage(rtype, patched))
        expected_version = (patched.get("metadata") or {}).get("resourceVersion")
        if expected_version and expected_version != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group_resource, name, errors.STALE_OBJECT)
        obj, warnings = self._replace(rtype, current, patched, subresource=subresource,
                                      dry_run=dry_run, strict_fields=strict_fields)
        return obj, warnings, False

    def _apply(self, rtype: ResourceType, namespace: str | None, name: str, patch: Any,
               current: dict[str, Any] | None, dry_run: bool,
               strict_fields: bool) -> tuple[dict[str, Any], list[str], bool]:
        # NOTE: server-side apply is approximated: the applied configuration is merged
        # into the object (strategic merge for built-ins, merge patch for custom
        # resources). Field ownership is not tracked, so fields dropped from a later
        # applied configuration are not removed, and there are no apply conflicts.
        if isinstance(patch, (str, bytes)):
            patch = yaml.safe_load(patch)
        if not isinstance(patch, dict):
            raise errors.bad_request("the applied configuration must be an object")
        if current is None:
            patch.setdefault("metadata", {})["name"] = name
            obj, warnings = self.create(rtype, namespace, patch, dry_run=dry_run,
                                        strict_fields=strict_fields)
            return obj, warnings, True
        content_type = patching.MERGE_PATCH if rtype.is_custom else patching.STRATEGIC_MERGE_PATCH
        patch = {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")}
        obj, warnings, _ = self.patch(rtype, namespace, name, content_type, patch,
                                      dry_run=dry_run, strict_fields=strict_fields)
        return obj, warnings, False

    def _replace(self, rtype: ResourceType, current: dict[str, Any], new: dict[str, Any], *,
                 subresource: str | None, dry_run: bool,
                 strict_fields: bool) -> tuple[dict[str, Any], list[str]]:
        old_metadata = current["metadata"]
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(current)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            new_metadata = new.setdefault("metadata", {})
            for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                if field in old_metadata:
                    new_metadata[field] = old_metadata[field]
                else:
                    new_metadata.pop(field, None)
            if rtype.has_status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        new["apiVersion"] = current.get("apiVersion", rtype.api_version)
        new["kind"] = current.get("kind", rtype.kind)
        self._check_new_finalizers(rtype, current, new)

        warnings: list[str] = []
        if rtype.is_custom:
            warnings = self._check_custom(rtype, new, current, strict_fields)
        else:
            kinds.prepare_write(rtype.storage_key, new)
        if rtype.storage_key == crds.CRD_STORAGE:
            crds.check_spec(new, self.types)
            new["status"] = crds.established_status(new, now())

        custom_without_status = rtype.is_custom and not rtype.has_status
        if "generation" in old_metadata and (
                _spec_part(new, custom_without_status) != _spec_part(current, custom_without_status)):
            new["metadata"]["generation"] = old_metadata["generation"] + 1

        if _comparable(new) == _comparable(current):
            return current, warnings  # a no-op write changes nothing, as on the real server
        if dry_run:
            return new, warnings
        self.store.commit(rtype.storage_key, "MODIFIED", new, current)
        if rtype.storage_key == crds.CRD_STORAGE:
            self._register_crd(new)
        if new["metadata"].get("deletionTimestamp"):
            self._on_deletion_change()
            # As on the real server, an update removes the object only once its grace
            # period is over (zero) and its last finalizer is gone.
            grace = int(new["metadata"].get("deletionGracePeriodSeconds") or 0)
            if not new["metadata"].get("finalizers") and grace == 0:
                self.remove_now(rtype.storage_key, new)
        return new, warnings

    def _check_new_finalizers(self, rtype: ResourceType, current: dict[str, Any],
                              new: dict[str, Any]) -> None:
        if not current["metadata"].get("deletionTimestamp"):
            return
        old_finalizers = set(current["metadata"].get("finalizers") or [])
        added = [item for item in new["metadata"].get("finalizers") or [] if item not in old_finalizers]
        if added:
            shown = ", ".join(f'"{item}"' for item in added)
            raise errors.invalid(rtype.kind, rtype.group, current["metadata"]["name"], [errors.cause(
                "FieldValueForbidden", "metadata.finalizers",
                f"Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{shown}}}")])

    # Delete

    def delete(self, rtype: ResourceType, namespace: str | None, name: str,
               options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Delete an object; return its last state and whether it is gone already."""
        current = self.get(rtype, namespace, name)
        metadata = current["metadata"]
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != metadata.get("uid"):
            raise errors.conflict(
                rtype.group_resource, name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in "
                f"object meta: {metadata.get('uid')}")
        expected_version = preconditions.get("resourceVersion")
        if expected_version and expected_version != metadata.get("resourceVersion"):
            raise errors.conflict(
                rtype.group_resource, name,
                f"Precondition failed: ResourceVersion in precondition: {expected_version}, "
                f"ResourceVersion in object meta: {metadata.get('resourceVersion')}")
        if rtype.storage_key == kinds.NAMESPACES and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", name, "this namespace may not be deleted")
        dry_run = bool(options.get("dryRun"))

        grace = options.get("gracePeriodSeconds")
        if rtype.storage_key == kinds.PODS:
            if grace is None:
                grace = (current.get("spec") or {}).get("terminationGracePeriodSeconds",
                                                        DEFAULT_POD_GRACE_SECONDS)
            if not (current.get("spec") or {}).get("nodeName"):
                grace = 0
        grace = int(grace or 0)

        new = copy.deepcopy(current)
        new_metadata = new["metadata"]
        finalizers: list[str] = new_metadata.setdefault("finalizers", [])
        if not metadata.get("deletionTimestamp"):
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is True:
                policy = "Orphan"
            if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
                finalizers.append(ORPHAN_FINALIZER)
            elif policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
                finalizers.append(FOREGROUND_FINALIZER)
        if not finalizers:
            del new_metadata["finalizers"]

        pending_grace = rtype.storage_key == kinds.PODS and grace > 0
        if not finalizers and not pending_grace and rtype.storage_key != kinds.NAMESPACES:
            if dry_run:
                return new, True
            return self.remove_now(rtype.storage_key, new), True

        # The object stays until its finalizers are removed or its grace period ends.
        if metadata.get("deletionTimestamp"):
            shortened = rtype.storage_key == kinds.PODS and grace < int(
                metadata.get("deletionGracePeriodSeconds") or 0)
            if not shortened and new == current:
                return current, False
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
        if not metadata.get("deletionTimestamp") or pending_grace:
            new_metadata["deletionTimestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        new_metadata["deletionGracePeriodSeconds"] = grace
        if rtype.storage_key == kinds.NAMESPACES:
            new["status"] = {"phase": "Terminating"}
        if dry_run:
            return new, False
        if rtype.storage_key == crds.CRD_STORAGE:
            new["status"] = crds.established_status(new, now())
        self.store.commit(rtype.storage_key, "MODIFIED", new, current)
        self._on_deletion_change()
        return new, False

    def remove_now(self, storage_key: tuple[str, str], obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        self.store.commit(storage_key, "DELETED", obj)
        if storage_key == crds.CRD_STORAGE:
            self.types.remove_crd(obj["metadata"]["uid"])
        logger.debug("removed %s %s/%s", "/".join(storage_key),
                     obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self._on_deletion_change()
        return obj

    def remove_finalizer(self, storage_key: tuple[str, str], obj: dict[str, Any], finalizer: str) -> None:
        """Remove one finalizer (as a controller does), deleting the object if it was the last."""
        rtypes = self.types.for_storage(storage_key)
        if not rtypes:
            return
        new = copy.deepcopy(obj)
        finalizers = [item for item in new["metadata"].get("finalizers") or [] if item != finalizer]
        new["metadata"]["finalizers"] = finalizers
        if not finalizers:
            del new["metadata"]["finalizers"]
        self._replace(rtypes[0], obj, new, subresource=None, dry_run=False, strict_fields=False)

    def replace_metadata(self, storage_key: tuple[str, str], obj: dict[str, Any],
                         metadata: dict[str, Any]) -> None:
        """Store new metadata for an object (used by the collector to drop owner references)."""
        rtypes = self.types.for_storage(storage_key)
        if not rtypes:
            return
        new = copy.deepcopy(obj)
        new["metadata"] = metadata
        self._replace(rtypes[0], obj, new, subresource=None, dry_run=False, strict_fields=False)
