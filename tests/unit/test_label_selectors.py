"""Label selectors: validation, Kubernetes' matching semantics and kubectl's format."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from seccomp_recorder.models.errors import describe_validation_error
from seccomp_recorder.models.selectors import (
    LabelSelector,
    LabelSelectorRequirement,
    SelectorOperator,
    format_selector,
    selector_matches,
)

MODELS = [LabelSelector, LabelSelectorRequirement]


def selector(**fields: Any) -> LabelSelector:
    return LabelSelector.model_validate(fields)


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    document: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        document["values"] = list(values)
    return document


def messages_for(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        LabelSelector.model_validate(document)
    return describe_validation_error(caught.value, MODELS)


REDIS = {"app": "redis", "tier": "cache"}

# (selector fields, labels, expected match), following labels.Requirement.Matches.
MATCH_CASES = [
    ({}, {}, True),
    ({}, REDIS, True),
    ({"matchLabels": {"app": "redis"}}, REDIS, True),
    ({"matchLabels": {"app": "redis"}}, {"app": "web"}, False),
    ({"matchLabels": {"app": "redis"}}, {}, False),
    ({"matchLabels": {"app": "redis", "tier": "db"}}, REDIS, False),
    ({"matchLabels": {"app": ""}}, {"app": ""}, True),
    ({"matchLabels": {"app": ""}}, {}, False),
    ({"matchExpressions": [expression("tier", "In", "cache", "db")]}, REDIS, True),
    ({"matchExpressions": [expression("tier", "In", "db")]}, REDIS, False),
    ({"matchExpressions": [expression("zone", "In", "a")]}, REDIS, False),
    ({"matchExpressions": [expression("tier", "NotIn", "db")]}, REDIS, True),
    ({"matchExpressions": [expression("tier", "NotIn", "cache")]}, REDIS, False),
    # NotIn is satisfied by a missing label, as in Kubernetes.
    ({"matchExpressions": [expression("zone", "NotIn", "a")]}, REDIS, True),
    ({"matchExpressions": [expression("tier", "Exists")]}, REDIS, True),
    ({"matchExpressions": [expression("zone", "Exists")]}, REDIS, False),
    ({"matchExpressions": [expression("zone", "DoesNotExist")]}, REDIS, True),
    ({"matchExpressions": [expression("tier", "DoesNotExist")]}, REDIS, False),
    # Every requirement must hold.
    (
        {
            "matchLabels": {"app": "redis"},
            "matchExpressions": [expression("tier", "In", "cache"), expression("zone", "Exists")],
        },
        REDIS,
        False,
    ),
    (
        {
            "matchLabels": {"app": "redis"},
            "matchExpressions": [
                expression("tier", "In", "cache"),
                expression("canary", "DoesNotExist"),
            ],
        },
        REDIS,
        True,
    ),
    ({"matchLabels": {"example.com/team": "db"}}, {"example.com/team": "db"}, True),
    # Values compare exactly: no case folding, no prefix match.
    ({"matchLabels": {"app": "redis"}}, {"app": "Redis"}, False),
    ({"matchExpressions": [expression("app", "In", "red")]}, {"app": "redis"}, False),
]


@pytest.mark.parametrize(("fields", "labels", "expected"), MATCH_CASES)
def test_selector_matches_as_kubernetes(
    fields: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector(**fields), labels) is expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"matchLabels": {"app": "redis"}}, "app=redis"),
        (
            {
                "matchLabels": {"app": "redis"},
                "matchExpressions": [expression("tier", "In", "cache")],
            },
            "app=redis,tier in (cache)",
        ),
        # Requirements are sorted by key, values of In and NotIn sorted too.
        (
            {
                "matchLabels": {"zone": "a", "app": "redis"},
                "matchExpressions": [expression("tier", "NotIn", "db", "cache")],
            },
            "app=redis,tier notin (cache,db),zone=a",
        ),
        ({"matchExpressions": [expression("canary", "Exists")]}, "canary"),
        ({"matchExpressions": [expression("canary", "DoesNotExist")]}, "!canary"),
        # matchLabels come before an expression on the same key.
        (
            {"matchLabels": {"app": "redis"}, "matchExpressions": [expression("app", "Exists")]},
            "app=redis,app",
        ),
        ({}, "<none>"),
    ],
)
def test_format_selector_as_kubectl(fields: dict[str, Any], expected: str) -> None:
    assert format_selector(selector(**fields)) == expected


def test_selector_reads_camel_case() -> None:
    parsed = selector(
        matchLabels={"app": "redis"}, matchExpressions=[expression("tier", "In", "cache")]
    )

    assert parsed.match_labels == {"app": "redis"}
    assert parsed.match_expressions[0].operator is SelectorOperator.IN
    assert parsed.match_expressions[0].values == ("cache",)
    assert not parsed.is_empty()
    assert LabelSelector().is_empty()


@pytest.mark.parametrize(
    "key",
    ["app", "example.com/app", "a.b-c_d", "A1", "x" * 63, "a" * 253 + "/" + "b" * 63],
)
def test_valid_label_keys_accepted(key: str) -> None:
    assert selector(matchLabels={key: "v"}).match_labels == {key: "v"}


@pytest.mark.parametrize("value", ["", "redis", "v1.2_3-x", "x" * 63])
def test_valid_label_values_accepted(value: str) -> None:
    assert selector(matchLabels={"app": value}).match_labels == {"app": value}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"matchLabels": {"-app": "v"}}, 'matchLabels.-app.[key]: invalid label key "-app"'),
        ({"matchLabels": {"x" * 64: "v"}}, "invalid label key"),
        ({"matchLabels": {"Example.com/app": "v"}}, 'invalid label key "Example.com/app"'),
        ({"matchLabels": {"a" * 254 + "/b": "v"}}, "invalid label key"),
        ({"matchLabels": {"app": "has space"}}, 'matchLabels.app: invalid label value "has space"'),
        ({"matchLabels": {"app": "x" * 64}}, "matchLabels.app: invalid label value"),
        ({"matchLabels": {"app": "-v"}}, 'matchLabels.app: invalid label value "-v"'),
        (
            {"matchExpressions": [expression("tier", "In")]},
            'matchExpressions[0]: operator In on key "tier" needs at least one value',
        ),
        (
            {"matchExpressions": [expression("tier", "NotIn")]},
            'matchExpressions[0]: operator NotIn on key "tier" needs at least one value',
        ),
        (
            {"matchExpressions": [expression("tier", "Exists", "cache")]},
            'matchExpressions[0]: operator Exists on key "tier" takes no values',
        ),
        (
            {"matchExpressions": [expression("tier", "DoesNotExist", "cache")]},
            'matchExpressions[0]: operator DoesNotExist on key "tier" takes no values',
        ),
        (
            {"matchExpressions": [expression("tier", "in", "cache")]},
            (
                'matchExpressions[0].operator: invalid operator "in": use one of In, NotIn,'
                " Exists, DoesNotExist"
            ),
        ),
        (
            {"app": "redis", "tier": "cache"},
            (
                "expected a label selector, got the labels {app: redis, tier: cache}: put them"
                " under matchLabels, as in {matchLabels: {app: redis, tier: cache}}"
            ),
        ),
        ({"matchLabels": {}, "app": "redis"}, 'app: unknown field "app"'),
        ({"matchLabels": ["app=redis"]}, "matchLabels: expected a mapping, got a list"),
    ],
)
def test_invalid_selector_rejected(document: dict[str, Any], expected: str) -> None:
    messages = messages_for(document)

    assert any(message.startswith(expected) or expected in message for message in messages), (
        messages
    )
