"""Rendering and parsing of OCI seccomp JSON and Kubernetes SeccompProfile YAML."""

from __future__ import annotations

import json

import pytest
import yaml

from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.formats import (
    ProfileForm,
    detect_form,
    load_document,
    parse_profile,
    parse_spec,
    render_kubernetes_yaml,
    render_oci_json,
)
from seccomp_recorder.models.profile import (
    Action,
    ObjectMeta,
    SeccompProfile,
    SeccompProfileSpec,
)

FULL_SPEC = SeccompProfileSpec.model_validate(
    {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["write", "read", "futex"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 2**64 - 1, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"},
                ],
            },
        ],
    }
)

FULL_PROFILE = SeccompProfile(
    metadata=ObjectMeta(
        name="redis",
        namespace="db",
        labels={"team": "cache", "app": "redis"},
        annotations={"note": "recorded"},
    ),
    spec=FULL_SPEC.model_copy(update={"base_profile_name": "runc-base"}),
)

EXPECTED_OCI_JSON = """\
{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32"
  ],
  "flags": [
    "SECCOMP_FILTER_FLAG_LOG"
  ],
  "syscalls": [
    {
      "names": [
        "futex",
        "read",
        "write"
      ],
      "action": "SCMP_ACT_ALLOW"
    },
    {
      "names": [
        "clone3"
      ],
      "action": "SCMP_ACT_ERRNO",
      "errnoRet": 38
    },
    {
      "names": [
        "ptrace"
      ],
      "action": "SCMP_ACT_TRACE",
      "errnoRet": 7
    },
    {
      "names": [
        "socket"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 2,
          "op": "SCMP_CMP_EQ"
        },
        {
          "index": 1,
          "value": 18446744073709551615,
          "valueTwo": 3,
          "op": "SCMP_CMP_MASKED_EQ"
        }
      ]
    }
  ]
}
"""

EXPECTED_KUBERNETES_HEAD = """\
apiVersion: seccomp-recorder.io/v1alpha1
kind: SeccompProfile
metadata:
  name: redis
  namespace: db
  labels:
    app: redis
    team: cache
  annotations:
    note: recorded
spec:
  baseProfileName: runc-base
  defaultAction: SCMP_ACT_ERRNO
  defaultErrnoRet: 1
  architectures:
  - SCMP_ARCH_X86_64
"""


def test_oci_json_matches_expected_text() -> None:
    assert render_oci_json(FULL_SPEC) == EXPECTED_OCI_JSON


def test_kubernetes_yaml_starts_with_expected_text() -> None:
    assert render_kubernetes_yaml(FULL_PROFILE).startswith(EXPECTED_KUBERNETES_HEAD)


def test_rendering_is_byte_identical_for_equal_specs() -> None:
    reordered = SeccompProfileSpec.model_validate(
        {
            **json.loads(EXPECTED_OCI_JSON),
            "syscalls": [
                {"names": ["read", "futex", "write"], "action": "SCMP_ACT_ALLOW"},
                *json.loads(EXPECTED_OCI_JSON)["syscalls"][1:],
            ],
        }
    )
    assert render_oci_json(reordered) == render_oci_json(FULL_SPEC)


def test_renderings_end_with_one_newline() -> None:
    assert render_oci_json(FULL_SPEC).endswith("}\n")
    assert render_kubernetes_yaml(FULL_PROFILE).endswith("SCMP_CMP_MASKED_EQ\n")


def test_minimal_spec_omits_unset_fields() -> None:
    spec = SeccompProfileSpec(default_action=Action.KILL_PROCESS)
    assert render_oci_json(spec) == '{\n  "defaultAction": "SCMP_ACT_KILL_PROCESS"\n}\n'


def test_value_two_zero_is_omitted() -> None:
    spec = SeccompProfileSpec.model_validate(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                }
            ],
        }
    )
    argument = json.loads(render_oci_json(spec))["syscalls"][0]["args"][0]
    assert argument == {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}


def test_oci_json_round_trip_keeps_spec() -> None:
    assert parse_profile(render_oci_json(FULL_SPEC)) == FULL_SPEC


def test_kubernetes_yaml_round_trip_keeps_profile() -> None:
    assert parse_profile(render_kubernetes_yaml(FULL_PROFILE)) == FULL_PROFILE


def test_errno_values_survive_oci_to_kubernetes_to_oci() -> None:
    profile = SeccompProfile(metadata=ObjectMeta(name="redis"), spec=FULL_SPEC)
    spec = parse_spec(render_kubernetes_yaml(profile))
    document = json.loads(render_oci_json(spec))
    assert document["defaultErrnoRet"] == 1
    assert document["syscalls"][1]["errnoRet"] == 38
    assert document["syscalls"][2]["errnoRet"] == 7


def test_errno_values_survive_kubernetes_to_oci_to_kubernetes() -> None:
    profile = SeccompProfile(metadata=ObjectMeta(name="redis"), spec=FULL_SPEC)
    spec = parse_spec(render_oci_json(parse_spec(render_kubernetes_yaml(profile))))
    document = yaml.safe_load(render_kubernetes_yaml(profile.model_copy(update={"spec": spec})))
    assert document["spec"]["defaultErrnoRet"] == 1
    assert document["spec"]["syscalls"][1]["errnoRet"] == 38
    assert document["spec"]["syscalls"][2]["errnoRet"] == 7


def test_unset_default_errno_stays_unset() -> None:
    spec = SeccompProfileSpec(default_action=Action.ERRNO)
    assert parse_spec(render_oci_json(spec)).default_errno_ret is None


def test_oci_json_rejects_base_profile_name() -> None:
    with pytest.raises(ProfileError) as caught:
        render_oci_json(FULL_PROFILE.spec)
    assert caught.value.problems[0].startswith(
        'baseProfileName: the profile is based on "runc-base", which OCI seccomp JSON cannot'
        " express: merge that base profile in first"
    )


def test_oci_json_may_be_written_as_yaml() -> None:
    spec = parse_profile(
        "defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n- {names: [read], action: SCMP_ACT_ALLOW}\n"
    )
    assert isinstance(spec, SeccompProfileSpec)
    assert spec.syscalls[0].names == ("read",)


def test_tab_indented_json_is_read() -> None:
    spec = parse_profile('{\n\t"defaultAction": "SCMP_ACT_LOG"\n}\n')
    assert spec == SeccompProfileSpec(default_action=Action.LOG)


@pytest.mark.parametrize(
    ("document", "form"),
    [
        ({"defaultAction": "SCMP_ACT_ERRNO"}, ProfileForm.OCI),
        (
            {"apiVersion": "seccomp-recorder.io/v1alpha1", "kind": "SeccompProfile"},
            ProfileForm.KUBERNETES,
        ),
        ({"kind": "SeccompProfile"}, ProfileForm.KUBERNETES),
    ],
)
def test_form_is_detected_from_content(document: dict[str, object], form: ProfileForm) -> None:
    assert detect_form(document) is form


def test_kubernetes_typo_is_rejected_with_path() -> None:
    text = render_kubernetes_yaml(FULL_PROFILE).replace("defaultAction:", "defaultAktion:")
    with pytest.raises(ProfileError) as caught:
        parse_profile(text)
    assert (
        'spec.defaultAktion: unknown field "defaultAktion" (did you mean "defaultAction"?):'
        " remove it or correct its spelling" in caught.value.problems
    )


def test_oci_typo_is_rejected_with_path() -> None:
    text = EXPECTED_OCI_JSON.replace('"valueTwo"', '"value2"')
    with pytest.raises(ProfileError) as caught:
        parse_profile(text)
    assert any(
        problem.startswith('syscalls[3].args[1].value2: unknown field "value2"')
        for problem in caught.value.problems
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"defaultAction": "SCMP_ACT_ERRNO",\n "defaultAction": "SCMP_ACT_LOG"}',
            'invalid JSON: found duplicate key "defaultAction"',
        ),
        (
            "defaultAction: SCMP_ACT_ERRNO\ndefaultAction: SCMP_ACT_LOG\n",
            'line 2, column 1: invalid YAML: found duplicate key "defaultAction"',
        ),
        ('{"defaultAction": }', "line 1, column 19: invalid JSON: Expecting value"),
        ("defaultAction: [SCMP_ACT_ERRNO\n", "line 2, column 1: invalid YAML:"),
        ("", "the input contains nothing, not a profile"),
        ("- defaultAction: SCMP_ACT_ERRNO\n", "the input contains list, not a profile"),
        (
            "defaultAction: SCMP_ACT_ERRNO\n---\ndefaultAction: SCMP_ACT_LOG\n",
            "the input contains 2 YAML documents",
        ),
    ],
)
def test_malformed_text_is_rejected(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_document(text)
    assert caught.value.problems[0].startswith(expected), caught.value.problems


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000],
    ids=["yaml-flow-lists", "json-objects"],
)
def test_deep_nesting_is_rejected(text: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_document(text)
    assert caught.value.problems[0].startswith("the input is nested too deeply to be a profile")


def test_yaml_tags_are_not_constructed() -> None:
    with pytest.raises(ProfileError):
        load_document("defaultAction: !!python/object/apply:os.system [true]\n")
