"""Pod facts and pod templates shared by the Deployment and DaemonSet controllers.

Pure functions over the API's JSON, tested without a server. They follow
kube-controller-manager where the dev cluster's clients can tell: a pod is active
until it has a deletionTimestamp or a terminal phase, ready with a True Ready
condition, and available once ready for `minReadySeconds`.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import Any

# Characters of the hash suffix in pod names: the API server's name-suffix alphabet.
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv32a(data: bytes) -> int:
    """Return the 32-bit FNV-1a hash of `data`, the hash kube-controller-manager uses."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def template_hash(template: dict[str, Any]) -> str:
    """Return the pod template's hash in the safe alphabet, as in `pod-template-hash`.

    The hash is FNV-1a over the template's canonical JSON, and each decimal digit
    is mapped to the alphabet as the API machinery's SafeEncodeString does, so the
    value has the real one's form. It is not byte-equal to a real cluster's hash.
    """
    digest = fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    return "".join(_HASH_ALPHABET[ord(char) % len(_HASH_ALPHABET)] for char in str(digest))


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_active(pod: dict[str, Any]) -> bool:
    """Tell whether the pod counts toward replicas: not deleting and not finished."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _ready_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            found: dict[str, Any] = condition
            return found
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def is_available(pod: dict[str, Any], min_ready_seconds: int, now: datetime.datetime) -> bool:
    """Tell whether the pod has been ready for at least `min_ready_seconds`."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(condition.get("lastTransitionTime"))
    return since is not None and since + datetime.timedelta(seconds=min_ready_seconds) <= now


def controller_uid(pod: dict[str, Any]) -> str | None:
    """Return the uid of the pod's controlling owner, if it has one."""
    for reference in pod["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            uid: str = reference.get("uid", "")
            return uid
    return None


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_from_template(owner: dict[str, Any], generate_name: str,
                      extra_labels: dict[str, str]) -> dict[str, Any]:
    """Return a new pod for the owner's `spec.template`, owned by the owner."""
    template = owner["spec"].get("template") or {}
    template_metadata = template.get("metadata") or {}
    labels = {**(template_metadata.get("labels") or {}), **extra_labels}
    metadata: dict[str, Any] = {
        "generateName": generate_name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if template_metadata.get("annotations"):
        metadata["annotations"] = dict(template_metadata["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": copy.deepcopy(template.get("spec") or {})}


def scaled_value(value: int | str | None, total: int, *, round_up: bool, default: int) -> int:
    """Resolve an int-or-percent field such as maxUnavailable against `total`."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Tell whether `labels` match a LabelSelector (matchLabels and matchExpressions)."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def deletion_rank(pod: dict[str, Any]) -> tuple[int, int, int, str]:
    """Sort key that puts the pods to delete first when scaling down.

    As the ReplicaSet controller ranks them: unscheduled before scheduled, pending
    before running, not ready before ready, newer before older.
    """
    status = pod.get("status") or {}
    created = pod["metadata"].get("creationTimestamp") or ""
    # Newer first: invert the timestamp's characters so a plain sort puts it first.
    newer_first = "".join(chr(0x10FFFF - ord(char)) for char in created)
    return (1 if (pod.get("spec") or {}).get("nodeName") else 0,
            1 if status.get("phase") == "Running" else 0,
            1 if is_ready(pod) else 0,
            newer_first)
