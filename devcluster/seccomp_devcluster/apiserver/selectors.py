"""Label and field selectors, parsed and matched as the real API server does.

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
`k>N`, `k<N`, joined by commas (all must match). Field selectors: `f=v`, `f==v`,
`f!=v`, joined by commas, on the fields each kind supports.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from seccomp_devcluster.apiserver import errors

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_PATTERN = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EXISTS_PATTERN = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")
_COMPARE_PATTERN = re.compile(rf"^\s*({_KEY})\s*(==|!=|=|>|<)\s*({_VALUE})\s*$")


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of: in, notin, exists, !exists, =, !=, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return present
            case "!exists":
                return not present
            case "in" | "=":
                return present and value in self.values
            case "notin" | "!=":
                return not present or value not in self.values
            case "gt" | "lt":
                if value is None or not value.lstrip("-").isdigit():
                    return False
                if self.operator == "gt":
                    return int(value) > int(self.values[0])
                return int(value) < int(self.values[0])
        raise AssertionError(f"unknown selector operator {self.operator!r}")


def _split_requirements(text: str) -> list[str]:
    """Split on commas that are outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector; raise a 400 BadRequest error when it is invalid."""
    requirements: list[Requirement] = []
    for part in _split_requirements(text):
        if match := _SET_PATTERN.match(part):
            key, operator, raw_values = match.groups()
            values = tuple(value.strip() for value in raw_values.split(",") if value.strip())
            requirements.append(Requirement(key, operator, values))
        elif match := _COMPARE_PATTERN.match(part):
            key, operator, value = match.groups()
            operator = {"==": "=", ">": "gt", "<": "lt"}.get(operator, operator)
            if operator in ("gt", "lt") and not value.lstrip("-").isdigit():
                raise errors.bad_request(
                    f"unable to parse requirement: for 'gt', 'lt' operators, the value must "
                    f"be an integer: {part.strip()!r}")
            requirements.append(Requirement(key, operator, (value,)))
        elif match := _EXISTS_PATTERN.match(part):
            negation, key = match.groups()
            requirements.append(Requirement(key, "!exists" if negation else "exists"))
        else:
            raise errors.bad_request(f"unable to parse requirement: invalid label selector {part.strip()!r}")
    return requirements


def parse_selector_map(selector: Mapping[str, Any]) -> list[Requirement]:
    """Convert a `LabelSelector` object (matchLabels, matchExpressions) to requirements."""
    requirements = [
        Requirement(key, "=", (str(value),))
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = {"In": "in", "NotIn": "notin", "Exists": "exists",
                    "DoesNotExist": "!exists"}[expression["operator"]]
        requirements.append(Requirement(
            expression["key"], operator, tuple(expression.get("values") or ())))
    return requirements


def labels_match(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(requirement.matches(labels) for requirement in requirements)


# Field selectors: each kind supports a fixed set of fields besides the metadata ones.
_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
SUPPORTED_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "pods"): frozenset({
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    }),
    ("", "events"): frozenset({
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    }),
    ("", "secrets"): frozenset({"type"}),
    ("", "nodes"): frozenset({"spec.unschedulable"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "replicationcontrollers"): frozenset({"status.replicas"}),
    ("apps", "replicasets"): frozenset({"status.replicas"}),
    ("batch", "jobs"): frozenset({"status.successful"}),
    ("certificates.k8s.io", "certificatesigningrequests"): frozenset({"spec.signerName"}),
}


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.field)
        return (actual == self.value) == (self.operator == "=")


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """Return a field's value as the field selector compares it ("" when unset)."""
    if field == "source":  # an Event's source is matched by its component
        value: Any = (obj.get("source") or {}).get("component")
    else:
        value = obj
        for part in field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(
    text: str,
    storage_key: tuple[str, str],
    extra_fields: frozenset[str] = frozenset(),
) -> list[FieldRequirement]:
    """Parse a field selector; unsupported fields give 400 as on the real server."""
    supported = _COMMON_FIELDS | SUPPORTED_FIELDS.get(storage_key, frozenset()) | extra_fields
    requirements: list[FieldRequirement] = []
    for part in _split_requirements(text):
        match = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if match is None:
            raise errors.bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
        field, operator, value = match.groups()
        if field not in supported:
            kind = storage_key[1]
            raise errors.bad_request(
                f'field label not supported: {field} (supported for {kind}: '
                f'{", ".join(sorted(supported))})')
        requirements.append(FieldRequirement(field, "!=" if operator == "!=" else "=", value))
    return requirements


Matcher = Callable[[Mapping[str, Any]], bool]


def make_matcher(labels: list[Requirement], fields: list[FieldRequirement]) -> Matcher:
    def matches(obj: Mapping[str, Any]) -> bool:
        return labels_match(labels, obj) and all(field.matches(obj) for field in fields)
    return matches
