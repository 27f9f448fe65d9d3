"""Building blocks shared by the custom resource models.

The base model, Kubernetes object names, standard conditions and timestamps, on which
the resource modules (`profile`, `recording`, `result`) build. The CRDs are generated
from the models' JSON schema. So every constraint that a schema can express is declared
as a `Field` constraint, before any validator that gives it a clearer message.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic.alias_generators import to_camel

from seccomp_recorder.models.errors import invalid, quote

API_GROUP: Final = "seccomp-recorder.io"
API_VERSION: Final = "seccomp-recorder.io/v1alpha1"

# RFC 1123 names, as Kubernetes requires for object names and namespaces.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_SUBDOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63


class Model(BaseModel):
    """Base of every model here: camelCase aliases, names accepted too, unknown fields rejected.

    A string literal under a field is its description, and goes into the CRDs.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class StatusModel(Model):
    """Base of the status models, which ignore unknown fields instead of rejecting them.

    Controllers write a status, and an object exported from a cluster may carry fields of
    another version or another controller (the Security Profiles Operator writes
    `status.status`). Such fields must not make the exported profile unreadable.
    """

    model_config = ConfigDict(extra="ignore")


# The operator's framework (kopf) keeps its handler progress in `status.kopf`, which is
# opaque to everything else, so the CRDs preserve it as it is.
KopfState = Annotated[
    dict[str, Any] | None,
    Field(json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


EnumT = TypeVar("EnumT", bound=StrEnum)


def parse_member(enum_type: type[EnumT], what: str) -> Callable[[Any], EnumT]:
    """Build a validator that converts a string to `enum_type` and lists the choices if it fails."""

    def parse(value: Any) -> EnumT:
        if isinstance(value, enum_type):
            return value
        if isinstance(value, str):
            try:
                return enum_type(value)
            except ValueError:
                pass
        choices = ", ".join(enum_type)
        raise invalid(f"invalid_{what}", f"invalid {what} {quote(value)}: use one of {choices}")

    return parse


def check_kubernetes_name(what: str, pattern: str, max_length: int) -> Callable[[Any], Any]:
    """Build a validator that accepts a string matching `pattern` of at most `max_length`."""
    allowed = "'-' or '.'" if "\\." in pattern else "'-'"

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) <= max_length and re.fullmatch(pattern, value):
            return value
        raise invalid(
            "invalid_kubernetes_name",
            f"invalid {what} {quote(value)}: use at most {max_length} lower-case letters,"
            f" digits and {allowed}, starting and ending with a letter or digit",
        )

    return check


def reject_duplicates(what: str) -> Callable[[Any], Any]:
    """Build a validator that rejects a list naming a string more than once."""

    def check(values: Any) -> Any:
        if not isinstance(values, (list, tuple)):
            return values
        counts = Counter(value for value in values if isinstance(value, str))
        duplicates = [value for value, count in counts.items() if count > 1]
        if duplicates:
            listed = ", ".join(quote(value) for value in duplicates)
            raise invalid(
                "duplicate_entries", f"{what} {listed} listed more than once: list each once"
            )
        return values

    return check


# Marks a list as a set for Kubernetes: the API server rejects duplicate items, and
# server-side apply merges the list as a set.
LIST_TYPE_SET: Final = {"x-kubernetes-list-type": "set"}

# NB: each Field comes before its BeforeValidator: pydantic leaves a constraint that
# follows a before-validator out of the JSON schema, and the CRDs need every one.
ObjectName = Annotated[
    str,
    Field(max_length=MAX_SUBDOMAIN_LENGTH, pattern=DNS_SUBDOMAIN_PATTERN),
    BeforeValidator(check_kubernetes_name("name", DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN_LENGTH)),
]
NamespaceName = Annotated[
    str,
    Field(max_length=MAX_LABEL_LENGTH, pattern=DNS_LABEL_PATTERN),
    BeforeValidator(check_kubernetes_name("namespace", DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)),
]
ContainerName = Annotated[
    str,
    Field(max_length=MAX_LABEL_LENGTH, pattern=DNS_LABEL_PATTERN),
    BeforeValidator(check_kubernetes_name("container name", DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)),
]
NodeName = Annotated[
    str,
    Field(max_length=MAX_SUBDOMAIN_LENGTH, pattern=DNS_SUBDOMAIN_PATTERN),
    BeforeValidator(
        check_kubernetes_name("node name", DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN_LENGTH)
    ),
]


def format_timestamp(moment: datetime) -> str:
    """Format a moment as Kubernetes writes metav1.Time: RFC 3339 in UTC, whole seconds.

    For example `2025-01-31T08:15:00Z`.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A point in time with a time zone. It is read from any RFC 3339 string and written as
# Kubernetes writes times: in UTC, to the second, ending in `Z`.
Timestamp = Annotated[AwareDatetime, PlainSerializer(format_timestamp, when_used="json")]

ObservedGeneration = Annotated[int, Field(ge=0)]


class ConditionStatus(StrEnum):
    """Status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# The patterns and limits of metav1.Condition in Kubernetes' apimachinery.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(StatusModel):
    """One aspect of the object's state, as a standard Kubernetes condition (metav1.Condition)."""

    type: Annotated[str, Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of the condition in CamelCase, such as `Valid` or `Installed`."""

    status: Annotated[ConditionStatus, BeforeValidator(parse_member(ConditionStatus, "status"))]
    """Whether the condition holds: True, False or Unknown."""

    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)]
    """Programmatic identifier of the cause of the last transition, in CamelCase."""

    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details of the last transition."""

    last_transition_time: Timestamp
    """Time the condition last changed from one status to another."""

    observed_generation: ObservedGeneration | None = None
    """metadata.generation of the object that the condition was set for."""


def _check_unique_condition_types(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    counts = Counter(condition.type for condition in conditions)
    repeated = sorted(condition_type for condition_type, count in counts.items() if count > 1)
    if repeated:
        listed = ", ".join(quote(condition_type) for condition_type in repeated)
        raise invalid(
            "duplicate_condition",
            f"conditions of type {listed} listed more than once: keep one per type",
        )
    return conditions


# Conditions are a list keyed by type: the API server rejects two of one type, and
# server-side apply merges the list item by item.
Conditions = Annotated[
    tuple[Condition, ...],
    Field(
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    ),
    AfterValidator(_check_unique_condition_types),
]


def check_resource_field(what: str, expected: str) -> Callable[[Any], Any]:
    """Build a validator that accepts only `expected` as the resource's `what` (apiVersion, kind)."""

    def check(value: Any) -> Any:
        if value != expected:
            raise invalid(
                f"unsupported_{what}", f"unsupported {what} {quote(value)}: use {expected}"
            )
        return value

    return check


def check_name_length(what: str, max_length: int, reason: str) -> Callable[[str], str]:
    """Build a validator that limits a name to `max_length` characters, giving `reason`."""

    def check(name: str) -> str:
        if len(name) > max_length:
            raise invalid(
                "name_too_long",
                f"{what} name {quote(name)} is {len(name)} characters long: use at most"
                f" {max_length}, because {reason}",
            )
        return name

    return check
