"""The patch types the API server accepts, applied to a copy of the stored object.

- JSON patch (RFC 6902) through the `jsonpatch` package. A failed `test` operation gives
  422, as on the real server (kopf relies on that for its finalizer patches).
- JSON merge patch (RFC 7386) through the `json-merge-patch` package.
- Strategic merge patch, written here because no Python package implements it: lists
  with a patch merge key in the Kubernetes API types (containers by name, conditions
  by type, finalizers as a set...) are merged item by item, and the directives kubectl
  sends (`$patch`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`,
  `$retainKeys`) are honoured. Custom resources reject it with 415, as the real server
  does.
"""

from __future__ import annotations

import copy
from typing import Any

import json_merge_patch  # type: ignore[import-untyped]
import jsonpatch
import jsonpointer

from seccomp_devcluster.apiserver import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# List fields merged by a key, as declared by `patchMergeKey` in the Kubernetes API
# types. A field not listed here is replaced as a whole.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "taints": "key",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
    "secrets": "name",
    "readinessGates": "conditionType",
}
# Lists of scalars merged as sets (`patchStrategy: merge` on a primitive list).
MERGED_SCALAR_LISTS = frozenset({"finalizers"})


def apply_patch(content_type: str, current: dict[str, Any], patch: Any, *, custom: bool) -> dict[str, Any]:
    """Apply a patch of the given media type to a copy of `current` and return the result."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == JSON_PATCH:
        return _apply_json_patch(current, patch)
    if media_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        result: dict[str, Any] = json_merge_patch.merge(copy.deepcopy(current), patch)
        return result
    if media_type == STRATEGIC_MERGE_PATCH:
        if custom:
            raise errors.unsupported_media_type(
                f"{media_type}: strategic merge patch is not supported for custom resources")
        if not isinstance(patch, dict):
            raise errors.bad_request("a strategic merge patch must be a JSON object")
        return strategic_merge(copy.deepcopy(current), patch)
    raise errors.unsupported_media_type(content_type)


def _apply_json_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        operations = jsonpatch.JsonPatch(patch)
    except (jsonpatch.InvalidJsonPatch, TypeError) as error:
        raise errors.bad_request(f"invalid JSON patch: {error}") from error
    try:
        result: dict[str, Any] = operations.apply(current)
    except jsonpatch.JsonPatchTestFailed as error:
        raise errors.unprocessable(f"the test operation of the JSON patch failed: {error}") from error
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise errors.unprocessable(f"the JSON patch could not be applied: {error}") from error
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge by containerPort; service ports by port.
        if any(isinstance(item, dict) and "containerPort" in item for item in items):
            return "containerPort"
        return "port"
    return MERGE_KEYS.get(field)


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge a strategic merge patch into `target` (modified in place and returned)."""
    directive = patch.get("$patch")
    if directive == "replace":
        return {key: value for key, value in patch.items() if key != "$patch"}
    if directive == "delete":
        return {}

    retain_keys = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [item for item in target[field] if item not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = strategic_merge(target[key], value)
        elif isinstance(value, dict):
            target[key] = strategic_merge({}, value)
        elif isinstance(value, list):
            target[key] = _merge_list(key, target.get(key), value)
        else:
            target[key] = value

    for field, order in orders.items():
        if isinstance(target.get(field), list):
            target[field] = _reorder(field, target[field], order)
    if isinstance(retain_keys, list):
        for key in list(target):
            if key not in retain_keys:
                del target[key]
    return target


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in MERGED_SCALAR_LISTS:
        merged: list[Any] = current + [item for item in patch if item not in current]
        return merged

    merge_key = _merge_key(field, current + patch)
    if merge_key is None:
        return [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]

    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        key_value = item.get(merge_key)
        index = next(
            (position for position, existing in enumerate(result)
             if isinstance(existing, dict) and existing.get(merge_key) == key_value),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _reorder(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    """Sort a list into the order `$setElementOrder` gives; unlisted items go last."""
    merge_key = _merge_key(field, items)
    if merge_key is None:
        keys = order
        position = {repr(key): index for index, key in enumerate(keys)}
        return sorted(items, key=lambda item: position.get(repr(item), len(keys)))
    order_keys = [entry.get(merge_key) for entry in order if isinstance(entry, dict)]
    position = {repr(key): index for index, key in enumerate(order_keys)}
    return sorted(
        items,
        key=lambda item: position.get(
            repr(item.get(merge_key) if isinstance(item, dict) else None), len(order_keys)),
    )
