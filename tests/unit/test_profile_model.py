"""The profile models: field names, aliases and the validation that needs no syscall table."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from seccomp_recorder.models.errors import describe_validation_error
from seccomp_recorder.models.profile import (
    Action,
    Architecture,
    Flag,
    ObjectMeta,
    Operator,
    SeccompProfile,
    SeccompProfileSpec,
    SyscallArgument,
    SyscallRule,
)

MODELS: list[type[BaseModel]] = [
    SeccompProfile,
    ObjectMeta,
    SeccompProfileSpec,
    SyscallRule,
    SyscallArgument,
]


def spec_with(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO"}
    document.update(fields)
    return document


def allow(*names: str, **fields: Any) -> dict[str, Any]:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", **fields}


def messages_for(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        SeccompProfileSpec.model_validate(document)
    return describe_validation_error(caught.value, MODELS)


def test_spec_reads_camel_case_names() -> None:
    spec = SeccompProfileSpec.model_validate(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "baseProfileName": "runc-base",
            "syscalls": [
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 13,
                    "args": [{"index": 0, "value": 2, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                }
            ],
        }
    )
    assert spec.default_action is Action.ERRNO
    assert spec.default_errno_ret == 1
    assert spec.architectures == (Architecture.X86_64,)
    assert spec.flags == (Flag.LOG,)
    assert spec.base_profile_name == "runc-base"
    assert spec.syscalls[0].errno_ret == 13
    assert spec.syscalls[0].args[0].op is Operator.EQ


def test_spec_accepts_snake_case_names() -> None:
    spec = SeccompProfileSpec(default_action=Action.KILL_PROCESS, base_profile_name="base")
    assert spec.default_action is Action.KILL_PROCESS
    assert spec.base_profile_name == "base"


def test_rule_names_are_sorted() -> None:
    rule = SyscallRule.model_validate(allow("write", "close", "read"))
    assert rule.names == ("close", "read", "write")


def test_errno_ret_accepts_digit_string() -> None:
    # The Security Profiles Operator's v1beta1 API stores errnoRet as a string.
    rule = SyscallRule.model_validate(
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": "38"}
    )
    assert rule.errno_ret == 38


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"defaultAction": "SCMP_ACT_DENY"},
            'defaultAction: invalid action "SCMP_ACT_DENY": use one of SCMP_ACT_KILL,',
        ),
        (
            spec_with(syscalls=[{"names": ["read"], "action": "ALLOW"}]),
            'syscalls[0].action: invalid action "ALLOW"',
        ),
        (
            spec_with(architectures=["SCMP_ARCH_NATIVE"]),
            'architectures[0]: invalid architecture "SCMP_ARCH_NATIVE": use one of',
        ),
        (
            spec_with(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
            'flags[0]: invalid flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"',
        ),
        (
            spec_with(
                syscalls=[allow("read", args=[{"index": 0, "value": 1, "op": "SCMP_CMP_IN"}])]
            ),
            'syscalls[0].args[0].op: invalid operator "SCMP_CMP_IN": use one of SCMP_CMP_NE,',
        ),
        (
            spec_with(
                syscalls=[allow("read", args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])]
            ),
            "syscalls[0].args[0].index: argument index 6 is out of range: use a whole number from 0 to 5",
        ),
        (
            spec_with(
                syscalls=[allow("read", args=[{"index": -1, "value": 1, "op": "SCMP_CMP_EQ"}])]
            ),
            "syscalls[0].args[0].index: argument index -1 is out of range",
        ),
        (
            spec_with(
                syscalls=[allow("read", args=[{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}])]
            ),
            f"syscalls[0].args[0].value: argument value {2**64} is out of range",
        ),
        (
            spec_with(
                syscalls=[allow("read", args=[{"index": True, "value": 1, "op": "SCMP_CMP_EQ"}])]
            ),
            "syscalls[0].args[0].index: invalid argument index True: use a whole number",
        ),
        (
            spec_with(syscalls=[{"names": [], "action": "SCMP_ACT_ALLOW"}]),
            "syscalls[0].names: the rule names no syscall: a rule must name at least one syscall",
        ),
        (
            spec_with(syscalls=[allow("read", "write", "read")]),
            'syscalls[0].names: syscall "read" listed more than once: list each once',
        ),
        (
            spec_with(syscalls=[allow("read", "")]),
            'syscalls[0].names[1]: invalid syscall name "": use the kernel\'s name',
        ),
        (
            spec_with(syscalls=[allow("Read")]),
            'syscalls[0].names[0]: invalid syscall name "Read"',
        ),
        (
            spec_with(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_X86"]),
            'architectures: architecture "SCMP_ARCH_X86" listed more than once',
        ),
        (
            spec_with(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_LOG"]),
            'flags: flag "SECCOMP_FILTER_FLAG_LOG" listed more than once',
        ),
        (
            spec_with(syscalls=[allow("read"), {"names": ["read"], "action": "SCMP_ACT_LOG"}]),
            'syscalls named by more than one rule without args: "read" in syscalls[0], syscalls[1]',
        ),
        (
            spec_with(baseProfileName="Base_Profile"),
            'baseProfileName: invalid name "Base_Profile"',
        ),
        ({"defaultAktion": "SCMP_ACT_ERRNO"}, "defaultAction: required field is missing"),
        (
            {"defaultAktion": "SCMP_ACT_ERRNO"},
            'defaultAktion: unknown field "defaultAktion" (did you mean "defaultAction"?)',
        ),
        (
            spec_with(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoret": 1}]),
            'syscalls[0].errnoret: unknown field "errnoret" (did you mean "errnoRet"?)',
        ),
    ],
)
def test_invalid_spec_is_rejected(document: dict[str, Any], expected: str) -> None:
    messages = messages_for(document)
    assert any(message.startswith(expected) for message in messages), messages


def test_every_invalid_field_is_reported() -> None:
    messages = messages_for(
        {
            "defaultAction": "SCMP_ACT_DENY",
            "architectures": ["SCMP_ARCH_VAX"],
            "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert len(messages) == 3, messages


@pytest.mark.parametrize(
    "action", [action for action in Action if action not in {Action.ERRNO, Action.TRACE}]
)
def test_errno_ret_without_errno_action_is_rejected(action: Action) -> None:
    messages = messages_for(
        spec_with(syscalls=[{"names": ["read"], "action": action.value, "errnoRet": 1}])
    )
    assert messages == [
        (
            f"syscalls[0]: errnoRet 1 is set, but {action.value} returns no errno: remove errnoRet,"
            " or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
        )
    ]


def test_default_errno_ret_without_errno_action_is_rejected() -> None:
    messages = messages_for({"defaultAction": "SCMP_ACT_KILL_PROCESS", "defaultErrnoRet": 1})
    assert messages == [
        (
            "defaultErrnoRet 1 is set, but SCMP_ACT_KILL_PROCESS returns no errno: remove"
            " defaultErrnoRet, or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
        )
    ]


@pytest.mark.parametrize(
    ("action", "errno_ret", "valid"),
    [
        ("SCMP_ACT_ERRNO", 0, True),
        ("SCMP_ACT_ERRNO", 4095, True),
        ("SCMP_ACT_ERRNO", 4096, False),
        ("SCMP_ACT_ERRNO", -1, False),
        ("SCMP_ACT_TRACE", 65535, True),
        ("SCMP_ACT_TRACE", 65536, False),
    ],
)
def test_errno_ret_range_depends_on_action(action: str, errno_ret: int, valid: bool) -> None:
    document = spec_with(syscalls=[{"names": ["read"], "action": action, "errnoRet": errno_ret}])
    if valid:
        assert SeccompProfileSpec.model_validate(document).syscalls[0].errno_ret == errno_ret
    else:
        messages = messages_for(document)
        assert "out of range" in messages[0], messages


def test_errno_ret_range_message_gives_reason() -> None:
    messages = messages_for({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000})
    assert messages == [
        (
            "defaultErrnoRet 5000 is out of range for SCMP_ACT_ERRNO: use an errno from 0 to 4095,"
            " because the kernel caps larger values at 4095"
        )
    ]


def test_conditional_rules_may_share_names() -> None:
    spec = SeccompProfileSpec.model_validate(
        spec_with(
            syscalls=[
                allow("socket", args=[{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]),
                allow("socket", args=[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]),
            ]
        )
    )
    assert len(spec.syscalls) == 2


def test_spec_is_immutable() -> None:
    spec = SeccompProfileSpec(default_action=Action.ERRNO)
    with pytest.raises(ValidationError):
        spec.default_action = Action.ALLOW


def resource(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "redis", "namespace": "db"},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
    }
    document.update(overrides)
    return document


def resource_messages(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        SeccompProfile.model_validate(document)
    return describe_validation_error(caught.value, MODELS)


def test_resource_reads_metadata_and_spec() -> None:
    profile = SeccompProfile.model_validate(
        resource(metadata={"name": "redis", "namespace": "db", "labels": {"app": "redis"}})
    )
    assert profile.metadata.name == "redis"
    assert profile.metadata.namespace == "db"
    assert profile.metadata.labels == {"app": "redis"}
    assert profile.spec.default_action is Action.ERRNO


def test_resource_drops_server_set_fields() -> None:
    profile = SeccompProfile.model_validate(
        resource(
            metadata={"name": "redis", "uid": "0d6c", "resourceVersion": "7", "generation": 2},
            status={"status": "Installed"},  # The Security Profiles Operator's status field.
        )
    )
    assert profile.metadata.name == "redis"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            resource(apiVersion="security-profiles-operator.x-k8s.io/v1beta1"),
            (
                'apiVersion: unsupported apiVersion "security-profiles-operator.x-k8s.io/v1beta1":'
                " use seccomp-recorder.io/v1alpha1"
            ),
        ),
        (resource(kind="SeccompRecording"), 'kind: unsupported kind "SeccompRecording"'),
        (resource(metadata={"name": "Redis"}), 'metadata.name: invalid name "Redis"'),
        (
            resource(metadata={"name": "redis", "namespace": "a.b"}),
            'metadata.namespace: invalid namespace "a.b"',
        ),
        (
            resource(metadata={"name": "redis", "lables": {}}),
            'metadata.lables: unknown field "lables" (did you mean "labels"?)',
        ),
        (
            resource(metadata={"name": "redis", "labels": {"version": 1}}),
            "metadata.labels.version: expected a string",
        ),
        (
            resource(spec={"defaultAktion": "SCMP_ACT_ERRNO"}),
            'spec.defaultAktion: unknown field "defaultAktion"',
        ),
        (resource(specs={}), 'specs: unknown field "specs" (did you mean "spec"?)'),
    ],
)
def test_invalid_resource_is_rejected(document: dict[str, Any], expected: str) -> None:
    messages = resource_messages(document)
    assert any(message.startswith(expected) for message in messages), messages


def test_json_schema_keeps_constraints() -> None:
    # The CRDs are generated from this schema, so the API server enforces the same limits.
    definitions = SeccompProfile.model_json_schema(by_alias=True)["$defs"]
    argument = definitions["SyscallArgument"]["properties"]
    rule = definitions["SyscallRule"]["properties"]
    metadata = definitions["ObjectMeta"]["properties"]
    assert argument["index"]["maximum"] == 5
    assert argument["value"]["maximum"] == 2**64 - 1
    assert rule["names"]["minItems"] == 1
    assert rule["names"]["items"]["pattern"] == "^[a-z0-9_]+$"
    assert metadata["name"]["maxLength"] == 253
    assert "pattern" in metadata["name"]
    assert definitions["SeccompProfileSpec"]["additionalProperties"] is False
