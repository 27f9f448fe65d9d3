"""The generated CRDs: up to date, structural, and declaring what kubectl and the operator use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import celpy
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from seccomp_recorder.models.crds import (
    custom_resource_definitions,
    main,
    render_crd_files,
)
from seccomp_recorder.models.openapi import SchemaError, structural_problems, structural_schema

REPO = Path(__file__).resolve().parents[2]
CRDS = custom_resource_definitions()


def schema_of(plural: str) -> dict[str, Any]:
    version = CRDS[f"{plural}.yaml"]["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def spec_of(plural: str) -> dict[str, Any]:
    spec: dict[str, Any] = schema_of(plural)["properties"]["spec"]
    return spec


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


# The committed files


def test_committed_crds_are_up_to_date() -> None:
    for name, text in render_crd_files().items():
        path = REPO / "crds" / name
        assert path.exists(), f"{path} is missing: run `make crds` and commit crds/"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} differs from what the models generate: run `make crds` and commit crds/"
        )


def test_crd_files_are_the_three_kinds() -> None:
    assert sorted(CRDS) == [
        "seccompprofiles.yaml",
        "seccomprecordingresults.yaml",
        "seccomprecordings.yaml",
    ]


def test_rendering_is_deterministic() -> None:
    assert render_crd_files() == render_crd_files()


def test_rendered_file_names_its_generator() -> None:
    text = render_crd_files()["seccompprofiles.yaml"]

    assert text.startswith("# Generated from the pydantic models")
    assert "python -m seccomp_recorder.models.crds --write crds/" in text
    assert "&id" not in text  # No YAML anchors or aliases.


def test_rendered_file_loads_as_the_manifest() -> None:
    for name, text in render_crd_files().items():
        assert yaml.safe_load(text) == CRDS[name], name


def test_main_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(tmp_path)]) == 1
    assert "run `make crds`" in capsys.readouterr().err

    assert main(["--write", str(tmp_path)]) == 0

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(CRDS)
    assert main(["--check", str(tmp_path)]) == 0


# Names and columns


@pytest.mark.parametrize(
    ("plural", "kind", "short_name", "has_status"),
    [
        ("seccompprofiles", "SeccompProfile", "sprof", True),
        ("seccomprecordings", "SeccompRecording", "srec", True),
        ("seccomprecordingresults", "SeccompRecordingResult", "srecresult", False),
    ],
)
def test_crd_names(plural: str, kind: str, short_name: str, has_status: bool) -> None:
    crd = CRDS[f"{plural}.yaml"]
    spec = crd["spec"]
    version = spec["versions"][0]

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.seccomp-recorder.io"
    assert spec["group"] == "seccomp-recorder.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["seccomp-recorder"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert ("status" in version.get("subresources", {})) is has_status
    assert ("status" in schema_of(plural)["properties"]) is has_status


@pytest.mark.parametrize(
    ("plural", "columns"),
    [
        (
            "seccompprofiles",
            [
                ("Status", "string", ".status.phase"),
                ("Syscalls", "integer", ".status.syscallCount"),
                ("Nodes", "string", ".status.nodes"),
                ("Localhost Profile", "string", ".status.localhostProfile"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "seccomprecordings",
            [
                ("Selector", "string", ".status.selector"),
                ("Phase", "string", ".status.phase"),
                ("Profiles", "integer", ".status.profileCount"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "seccomprecordingresults",
            [
                ("Recording", "string", ".spec.recording"),
                ("Pod", "string", ".spec.pod"),
                ("Container", "string", ".spec.container"),
                ("Node", "string", ".spec.node"),
                ("Final", "boolean", ".spec.final"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
    ],
)
def test_printer_columns(plural: str, columns: list[tuple[str, str, str]]) -> None:
    declared = CRDS[f"{plural}.yaml"]["spec"]["versions"][0]["additionalPrinterColumns"]

    assert [(column["name"], column["type"], column["jsonPath"]) for column in declared] == columns
    assert all(column.get("priority", 0) == 0 for column in declared)


def test_printer_columns_point_at_declared_fields() -> None:
    for name, crd in CRDS.items():
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            if column["jsonPath"].startswith(".metadata."):
                continue
            node = schema
            for part in column["jsonPath"].lstrip(".").split("."):
                assert part in node.get("properties", {}), f"{name}: {column['jsonPath']}"
                node = node["properties"][part]
            assert node["type"] == column["type"], f"{name}: {column['jsonPath']}"


# Structural schemas


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schema_is_structural(name: str) -> None:
    schema = CRDS[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    assert structural_problems(schema) == []


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schema_has_no_json_schema_leftovers(name: str) -> None:
    schema = CRDS[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    for path, node in walk(schema):
        for key in ("$ref", "anyOf", "const", "title", "propertyNames", "patternProperties"):
            assert key not in node, f"{name}{path}: {key}"
        assert node.get("additionalProperties") is not False, f"{name}{path}"
        if path != ".status.kopf":
            # Only kopf's own handler state is kept opaque; every other field is declared.
            assert "x-kubernetes-preserve-unknown-fields" not in node, f"{name}{path}"
        assert node.get("description") or path.endswith(("[]", ".*")) or path in (".metadata",), (
            f"{name}{path} has no description"
        )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "object", "properties": {"a": {"description": "untyped"}}},
            "type must be one of",
        ),
        ({"type": "array"}, "an array needs an items schema"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            },
            "mutually exclusive",
        ),
        (
            {"type": "object", "additionalProperties": False},
            "additionalProperties must be a schema",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "key '$ref' is not allowed"),
        (
            {
                "type": "object",
                "properties": {"a": {"anyOf": [{"type": "string"}], "type": "string"}},
            },
            "key 'anyOf' is not allowed",
        ),
        ({"type": "string"}, "the root must be of type object"),
        (
            {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
                },
            },
            "metadata may only restrict name and generateName, not labels",
        ),
        ({"type": "object", "required": ["a"]}, "required field 'a' is not among the properties"),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["k"],
                    }
                },
            },
            "list map key 'k' must be required or have a default",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "array",
                        "items": {"type": "object"},
                        "x-kubernetes-list-type": "set",
                    }
                },
            },
            "a list of type set needs scalar items",
        ),
        (
            {"type": "object", "x-kubernetes-validations": [{"rule": "true", "fieldPath": ".b"}]},
            "fieldPath '.b' names no property",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "enum": [1]}}},
            "enum value 1 is not of type string",
        ),
    ],
)
def test_structural_problems_found(schema: dict[str, Any], expected: str) -> None:
    problems = structural_problems(schema)

    assert any(expected in problem for problem in problems), problems


# The conversion from JSON Schema


class Inner(BaseModel):
    """An inner model."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    size: int = Field(gt=0, le=2**64)
    """Size of the thing."""


class Outer(BaseModel):
    """An outer model."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    inner: Inner
    """The inner model,
    described on two lines."""
    maybe: Inner | None = None
    kind: Literal["Outer"] = "Outer"
    tags: list[str] = []
    count: int = 3
    mode: dict[str, str] = {"a": "b"}


def test_conversion_inlines_refs_and_optionals() -> None:
    schema = structural_schema(Outer)
    inner = schema["properties"]["inner"]
    maybe = schema["properties"]["maybe"]

    assert inner["type"] == "object"
    assert inner["description"] == "The inner model, described on two lines."
    assert inner["properties"]["size"]["description"] == "Size of the thing."
    assert maybe["type"] == "object"
    assert maybe["description"] == "An inner model."
    assert "default" not in maybe
    assert schema["required"] == ["inner"]
    assert structural_problems(schema) == []


def test_conversion_writes_openapi_forms() -> None:
    schema = structural_schema(Outer)
    size = schema["properties"]["inner"]["properties"]["size"]

    assert size["minimum"] == 0
    assert size["exclusiveMinimum"] is True
    assert size["maximum"] == 2**63 - 1
    assert schema["properties"]["kind"]["enum"] == ["Outer"]
    assert schema["properties"]["kind"]["default"] == "Outer"
    assert "default" not in schema["properties"]["tags"]
    assert schema["properties"]["count"]["default"] == 3
    assert schema["properties"]["mode"]["default"] == {"a": "b"}


class Union(BaseModel):
    value: int | str


class Node(BaseModel):
    children: list[Node] = []


class Pair(BaseModel):
    pair: tuple[int, str]


class Link(BaseModel):
    url: str = Field(json_schema_extra={"format": "uri"})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Union, "Union.value: a union of several types has no structural form"),
        (Node, "Node.children[]: Node contains itself"),
        (Pair, "Pair.pair: tuples have no structural form"),
        (Link, "Link.url: format 'uri' is not one the API server knows"),
    ],
)
def test_conversion_rejects_what_crds_cannot_express(model: type[BaseModel], expected: str) -> None:
    with pytest.raises(SchemaError) as caught:
        structural_schema(model)

    assert str(caught.value).startswith(expected)


# Validation that the API server does


def test_server_defaults_of_recording() -> None:
    properties = spec_of("seccomprecordings")["properties"]

    assert properties["mergeStrategy"]["default"] == "Containers"
    assert properties["mergeStrategy"]["enum"] == ["Containers", "None"]
    assert properties["active"]["default"] is True
    assert properties["profileTemplate"]["default"] == {"defaultAction": "SCMP_ACT_ERRNO"}
    assert (
        properties["profileTemplate"]["properties"]["defaultAction"]["default"] == "SCMP_ACT_ERRNO"
    )
    assert spec_of("seccomprecordings")["required"] == ["podSelector"]


def test_pod_selector_is_a_label_selector() -> None:
    selector = spec_of("seccomprecordings")["properties"]["podSelector"]
    requirement = selector["properties"]["matchExpressions"]["items"]

    assert sorted(selector["properties"]) == ["matchExpressions", "matchLabels"]
    assert selector["properties"]["matchLabels"]["additionalProperties"]["maxLength"] == 63
    assert requirement["required"] == ["key", "operator"]
    assert requirement["properties"]["operator"]["enum"] == [
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
    ]
    assert requirement["properties"]["key"]["maxLength"] == 317
    assert selector["x-kubernetes-map-type"] == "atomic"


def test_name_limits() -> None:
    profile_name = schema_of("seccompprofiles")["properties"]["metadata"]["properties"]["name"]
    recording_name = schema_of("seccomprecordings")["properties"]["metadata"]["properties"]["name"]

    assert profile_name["maxLength"] == 250
    assert recording_name["maxLength"] == 63
    assert "properties" not in schema_of("seccomprecordingresults")["properties"]["metadata"]


def test_conditions_are_a_list_map() -> None:
    for plural in ("seccompprofiles", "seccomprecordings"):
        conditions = schema_of(plural)["properties"]["status"]["properties"]["conditions"]

        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
        assert conditions["items"]["properties"]["lastTransitionTime"]["format"] == "date-time"


def rules_in(plural: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, rule)
        for path, node in walk(schema_of(plural))
        for rule in node.get("x-kubernetes-validations", [])
    ]


ALL_RULES = [
    rule
    for plural in ("seccompprofiles", "seccomprecordings", "seccomprecordingresults")
    for rule in rules_in(plural)
]


@pytest.mark.parametrize(
    ("path", "rule"), ALL_RULES, ids=[f"{path}:{rule['rule'][:30]}" for path, rule in ALL_RULES]
)
def test_cel_rules_compile(path: str, rule: dict[str, Any]) -> None:
    environment = celpy.Environment()

    environment.compile(rule["rule"])

    assert rule["message"], path


def evaluate(rule: str, value: Any) -> bool:
    environment = celpy.Environment()
    program = environment.program(environment.compile(rule))
    return bool(program.evaluate({"self": celpy.json_to_cel(value)}))


def rule_at(plural: str, path: str, fragment: str) -> str:
    for rule_path, rule in rules_in(plural):
        if rule_path == path and fragment in rule["rule"]:
            return str(rule["rule"])
    raise AssertionError(f"no rule with {fragment!r} at {path}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}, True),
        ({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 1}, True),
        ({"defaultAction": "SCMP_ACT_KILL"}, True),
        ({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}, False),
        ({"defaultAction": "SCMP_ACT_LOG", "defaultErrnoRet": 0}, False),
    ],
)
def test_rule_default_errno_needs_errno_action(value: dict[str, Any], expected: bool) -> None:
    rule = rule_at("seccompprofiles", ".spec", "self.defaultAction in")

    assert evaluate(rule, value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4095}, True),
        ({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4096}, False),
        ({"names": ["read"], "action": "SCMP_ACT_TRACE", "errnoRet": 65535}, True),
        ({"names": ["read"], "action": "SCMP_ACT_ALLOW"}, True),
    ],
)
def test_rule_errno_within_max_errno(value: dict[str, Any], expected: bool) -> None:
    rule = rule_at("seccompprofiles", ".spec.syscalls[]", "<= 4095")

    assert evaluate(rule, value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"key": "a", "operator": "In", "values": ["x"]}, True),
        ({"key": "a", "operator": "In"}, False),
        ({"key": "a", "operator": "NotIn", "values": []}, False),
        ({"key": "a", "operator": "Exists"}, True),
        ({"key": "a", "operator": "Exists", "values": []}, True),
        ({"key": "a", "operator": "DoesNotExist", "values": ["x"]}, False),
    ],
)
def test_rule_selector_values(value: dict[str, Any], expected: bool) -> None:
    rule = rule_at("seccomprecordings", ".spec.podSelector.matchExpressions[]", "self.operator")

    assert evaluate(rule, value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"matchLabels": {"app": "redis"}}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, True),
        ({}, False),
        ({"matchLabels": {}, "matchExpressions": []}, False),
    ],
)
def test_rule_selector_not_empty(value: dict[str, Any], expected: bool) -> None:
    rule = rule_at("seccomprecordings", ".spec.podSelector", "matchLabels")

    assert evaluate(rule, value) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("10m", True), ("0s", False), ("0h0m", False), ("0.5s", True)]
)
def test_rule_duration_positive(value: str, expected: bool) -> None:
    rule = rule_at("seccomprecordings", ".spec.duration", "matches")

    assert evaluate(rule, value) is expected


def test_rule_template_rejects_allow() -> None:
    rule = rule_at("seccomprecordings", ".spec.profileTemplate", "SCMP_ACT_ALLOW")

    assert evaluate(rule, {"defaultAction": "SCMP_ACT_ALLOW"}) is False
    assert evaluate(rule, {"defaultAction": "SCMP_ACT_KILL_PROCESS"}) is True
