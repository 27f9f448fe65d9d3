"""Kubernetes label selectors (metav1.LabelSelector): the model, matching and formatting.

A SeccompRecording selects pods with a label selector. The node agent and the operator
both match pods against it with `selector_matches`, which implements the semantics of
Kubernetes' apimachinery (`labels.Requirement.Matches`), so both sides select the same
pods as `kubectl get pods -l` would. `format_selector` writes the selector as kubectl
prints selectors, for the recording's status and printer column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, model_validator

from seccomp_recorder.models.errors import invalid, quote
from seccomp_recorder.models.meta import (
    DNS_SUBDOMAIN_PATTERN,
    MAX_LABEL_LENGTH,
    MAX_SUBDOMAIN_LENGTH,
    Model,
    parse_member,
)

# A label key is a qualified name: an optional DNS subdomain prefix and '/', then a name
# of 1 to 63 characters. The pattern bounds the name's length. The validator checks the
# prefix's limit of 253 characters, so a key has at most 253 + 1 + 63 characters.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY_PATTERN = rf"^({DNS_SUBDOMAIN_PATTERN[1:-1]}/)?{_LABEL_NAME}$"
MAX_LABEL_KEY_LENGTH = MAX_SUBDOMAIN_LENGTH + 1 + MAX_LABEL_LENGTH
# A label value is empty, or 1 to 63 characters that start and end with a letter or digit.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def _check_label_key(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(LABEL_KEY_PATTERN, value):
        prefix, _, _ = value.rpartition("/")
        if len(prefix) <= MAX_SUBDOMAIN_LENGTH:
            return value
    raise invalid(
        "invalid_label_key",
        f"invalid label key {quote(value)}: use an optional DNS subdomain prefix of at most"
        f" {MAX_SUBDOMAIN_LENGTH} characters and '/', then a name of at most"
        f" {MAX_LABEL_LENGTH} letters, digits, '-', '_' or '.' that starts and ends with a"
        ' letter or digit, such as "app" or "example.com/tier"',
    )


def _check_label_value(value: Any) -> Any:
    if (
        isinstance(value, str)
        and len(value) <= MAX_LABEL_LENGTH
        and re.fullmatch(LABEL_VALUE_PATTERN, value)
    ):
        return value
    raise invalid(
        "invalid_label_value",
        f"invalid label value {quote(value)}: use at most {MAX_LABEL_LENGTH} letters, digits,"
        " '-', '_' or '.' that start and end with a letter or digit, or an empty string",
    )


LabelKey = Annotated[
    str,
    Field(max_length=MAX_LABEL_KEY_LENGTH, pattern=LABEL_KEY_PATTERN),
    BeforeValidator(_check_label_key),
]
LabelValue = Annotated[
    str,
    Field(max_length=MAX_LABEL_LENGTH, pattern=LABEL_VALUE_PATTERN),
    BeforeValidator(_check_label_value),
]


class SelectorOperator(StrEnum):
    """Operator of a label selector requirement, as metav1.LabelSelectorOperator."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


OPERATORS_WITH_VALUES: Final = frozenset({SelectorOperator.IN, SelectorOperator.NOT_IN})

# The check of LabelSelectorRequirement._check_values, as a CEL rule for the API server.
_VALUES_RULE: Final[JsonValue] = {
    "rule": "self.operator in ['In', 'NotIn']"
    " ? (has(self.values) && size(self.values) > 0)"
    " : (!has(self.values) || size(self.values) == 0)",
    "message": "operators In and NotIn need at least one value, and operators Exists and"
    " DoesNotExist take no values",
    "fieldPath": ".values",
}


class LabelSelectorRequirement(Model):
    """A requirement on one label: the key, an operator, and the values the operator uses."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_VALUES_RULE]})

    key: LabelKey
    """Label key that the requirement applies to."""

    operator: Annotated[
        SelectorOperator, BeforeValidator(parse_member(SelectorOperator, "operator"))
    ]
    """Relation of the label to the values: In, NotIn, Exists or DoesNotExist."""

    values: tuple[LabelValue, ...] = ()
    """Values for In and NotIn (at least one); empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _check_values(self) -> LabelSelectorRequirement:
        if self.operator in OPERATORS_WITH_VALUES and not self.values:
            raise invalid(
                "selector_values_missing",
                f"operator {self.operator.value} on key {quote(self.key)} needs at least one"
                " value: add values, or use Exists or DoesNotExist",
            )
        if self.operator not in OPERATORS_WITH_VALUES and self.values:
            raise invalid(
                "selector_values_not_allowed",
                f"operator {self.operator.value} on key {quote(self.key)} takes no values:"
                " remove values, or use In or NotIn",
            )
        return self


class LabelSelector(Model):
    """A label selector (metav1.LabelSelector): every requirement must hold.

    An empty selector matches every set of labels.
    """

    # Kubernetes treats a LabelSelector as one value in server-side apply.
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Labels that must be present with exactly these values."""

    match_expressions: tuple[LabelSelectorRequirement, ...] = ()
    """Further requirements on labels."""

    @model_validator(mode="before")
    @classmethod
    def _reject_plain_labels(cls, data: Any) -> Any:
        # `podSelector: {app: redis}` is a common slip: the labels belong under matchLabels.
        if (
            isinstance(data, dict)
            and data
            and not data.keys() & {"matchLabels", "matchExpressions"}
            and all(isinstance(value, str) for value in data.values())
        ):
            labels = ", ".join(f"{key}: {value}" for key, value in data.items())
            raise invalid(
                "labels_instead_of_selector",
                f"expected a label selector, got the labels {{{labels}}}: put them under"
                f" matchLabels, as in {{matchLabels: {{{labels}}}}}",
            )
        return data

    def is_empty(self) -> bool:
        """Tell whether the selector has no requirement, so it matches every set of labels."""
        return not self.match_labels and not self.match_expressions


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Tell whether `labels` satisfy every requirement of `selector`.

    The semantics are Kubernetes': In needs the label with one of the values, NotIn is
    satisfied by a missing label too, Exists and DoesNotExist test the key only, and an
    empty selector matches everything.
    """
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    return all(
        _requirement_matches(requirement, labels) for requirement in selector.match_expressions
    )


def _requirement_matches(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    match requirement.operator:
        case SelectorOperator.IN:
            return present and labels[requirement.key] in requirement.values
        case SelectorOperator.NOT_IN:
            return not present or labels[requirement.key] not in requirement.values
        case SelectorOperator.EXISTS:
            return present
        case SelectorOperator.DOES_NOT_EXIST:
            return not present


def format_selector(selector: LabelSelector) -> str:
    """Write `selector` as kubectl prints selectors: `app=redis,tier in (cache)`.

    Requirements are sorted by key, matchLabels before expressions on the same key, and
    the values of In and NotIn are sorted. An empty selector is written `<none>`, as
    kubectl writes it, although it matches every pod.
    """
    terms: list[tuple[str, str]] = [
        (key, f"{key}={value}") for key, value in selector.match_labels.items()
    ]
    terms.extend(
        (requirement.key, _format_requirement(requirement))
        for requirement in selector.match_expressions
    )
    # A stable sort on the key alone, as apimachinery orders requirements.
    terms.sort(key=lambda term: term[0])
    return ",".join(text for _, text in terms) or "<none>"


def _format_requirement(requirement: LabelSelectorRequirement) -> str:
    values = ",".join(sorted(requirement.values))
    match requirement.operator:
        case SelectorOperator.IN:
            return f"{requirement.key} in ({values})"
        case SelectorOperator.NOT_IN:
            return f"{requirement.key} notin ({values})"
        case SelectorOperator.EXISTS:
            return requirement.key
        case SelectorOperator.DOES_NOT_EXIST:
            return f"!{requirement.key}"
