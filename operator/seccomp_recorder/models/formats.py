"""The two text forms of a profile: OCI seccomp JSON and Kubernetes SeccompProfile YAML.

OCI seccomp JSON is the `LinuxSeccomp` object of the OCI runtime spec: the file that runc,
crun, podman and docker read, and that the kubelet hands to the runtime for a Localhost
profile. The Kubernetes form is a SeccompProfile resource whose `spec` has the same fields
plus `baseProfileName`.

Rendering is deterministic, so the same profile always gives byte-identical text. Keys come
in a fixed order and syscall names are sorted (the models keep them sorted). Rules keep
their order, optional fields that are unset or empty are left out, and the text ends in a
newline. Parsing detects the form, rejects unknown fields and duplicate keys, and raises
`ProfileError` listing every problem with its path.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import yaml
from pydantic import ValidationError

from seccomp_recorder.models.errors import ProfileError, describe_validation_error, quote
from seccomp_recorder.models.meta import API_VERSION
from seccomp_recorder.models.profile import (
    KIND,
    ObjectMeta,
    SeccompProfile,
    SeccompProfileSpec,
    SyscallArgument,
    SyscallRule,
)

_MODELS = (SeccompProfile, ObjectMeta, SeccompProfileSpec, SyscallRule, SyscallArgument)


class ProfileForm(StrEnum):
    """Text form of a profile."""

    OCI = "oci"
    KUBERNETES = "kubernetes"


def oci_document(spec: SeccompProfileSpec) -> dict[str, Any]:
    """Build the OCI `LinuxSeccomp` object of `spec`, as plain JSON-ready values.

    Raises ProfileError when `spec` names a base profile, because OCI JSON has no
    `baseProfileName` and a runtime would silently run without the base's rules. Merge
    the base in first with `algebra.apply_base_profile`.
    """
    if spec.base_profile_name is not None:
        raise ProfileError(
            f"baseProfileName: the profile is based on {quote(spec.base_profile_name)},"
            " which OCI seccomp JSON cannot express: merge that base profile in first"
            " (`seccomp-recorder convert --base-profile FILE`) or remove baseProfileName"
        )
    document: dict[str, Any] = {"defaultAction": spec.default_action.value}
    if spec.default_errno_ret is not None:
        document["defaultErrnoRet"] = spec.default_errno_ret
    if spec.architectures:
        document["architectures"] = [architecture.value for architecture in spec.architectures]
    if spec.flags:
        document["flags"] = [flag.value for flag in spec.flags]
    if spec.syscalls:
        document["syscalls"] = [_rule_document(rule) for rule in spec.syscalls]
    return document


def kubernetes_document(profile: SeccompProfile) -> dict[str, Any]:
    """Build the SeccompProfile resource as plain YAML-ready values, in kubectl's key order."""
    metadata: dict[str, Any] = {"name": profile.metadata.name}
    if profile.metadata.namespace is not None:
        metadata["namespace"] = profile.metadata.namespace
    if profile.metadata.labels:
        metadata["labels"] = dict(sorted(profile.metadata.labels.items()))
    if profile.metadata.annotations:
        metadata["annotations"] = dict(sorted(profile.metadata.annotations.items()))
    spec = profile.spec
    # The spec is the OCI document plus baseProfileName, which oci_document rejects.
    document = oci_document(spec.model_copy(update={"base_profile_name": None}))
    if spec.base_profile_name is not None:
        document = {"baseProfileName": spec.base_profile_name, **document}
    return {
        "apiVersion": profile.api_version,
        "kind": profile.kind,
        "metadata": metadata,
        "spec": document,
    }


def render_oci_json(spec: SeccompProfileSpec) -> str:
    """Render `spec` as OCI seccomp JSON: two-space indent, trailing newline."""
    return json.dumps(oci_document(spec), indent=2, ensure_ascii=False) + "\n"


def render_kubernetes_yaml(profile: SeccompProfile) -> str:
    """Render `profile` as a Kubernetes YAML manifest, ending in a newline."""
    return yaml.dump(
        kubernetes_document(profile),
        Dumper=yaml.SafeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,  # Long annotation values stay on one line instead of folding.
    )


def _rule_document(rule: SyscallRule) -> dict[str, Any]:
    document: dict[str, Any] = {"names": list(rule.names), "action": rule.action.value}
    if rule.errno_ret is not None:
        document["errnoRet"] = rule.errno_ret
    if rule.args:
        document["args"] = [_argument_document(argument) for argument in rule.args]
    return document


def _argument_document(argument: SyscallArgument) -> dict[str, Any]:
    document: dict[str, Any] = {"index": argument.index, "value": argument.value}
    if argument.value_two:
        document["valueTwo"] = argument.value_two
    document["op"] = argument.op.value
    return document


def parse_profile(text: str) -> SeccompProfileSpec | SeccompProfile:
    """Parse a profile in either form: the spec for OCI JSON, the resource for Kubernetes YAML.

    The form is detected from the content: a document with `apiVersion` or `kind` is a
    Kubernetes resource, any other mapping is OCI seccomp JSON. JSON is valid YAML, so both
    forms may be written in either syntax. Raises ProfileError with every problem found.
    """
    document = load_document(text)
    form = detect_form(document)
    try:
        if form is ProfileForm.KUBERNETES:
            return SeccompProfile.model_validate(document)
        return SeccompProfileSpec.model_validate(document)
    except ValidationError as error:
        raise ProfileError(*describe_validation_error(error, _MODELS)) from error


def parse_spec(text: str) -> SeccompProfileSpec:
    """Parse a profile in either form and return its spec."""
    parsed = parse_profile(text)
    return parsed.spec if isinstance(parsed, SeccompProfile) else parsed


def detect_form(document: dict[str, Any]) -> ProfileForm:
    """Tell which form a loaded document is in."""
    if "apiVersion" in document or "kind" in document:
        return ProfileForm.KUBERNETES
    return ProfileForm.OCI


def load_document(text: str) -> dict[str, Any]:
    """Load one JSON or YAML document that must be a mapping; reject duplicate keys.

    Text that starts with `{` is read as JSON, because JSON indented with tabs is not valid
    YAML; anything else is read as YAML. Raises ProfileError naming the line and column of a
    syntax error, and for nesting deeper than the parsers' recursion allows.
    """
    try:
        if text.lstrip().startswith("{"):
            document = _load_json(text)
        else:
            document = _load_yaml(text)
    except RecursionError:
        # Both parsers recurse once per level of nesting, so deep input exhausts the stack.
        raise ProfileError(
            "the input is nested too deeply to be a profile: check that this is the intended file"
        ) from None
    if not isinstance(document, dict):
        kind = "nothing" if document is None else type(document).__name__
        raise ProfileError(
            f"the input contains {kind}, not a profile: expected a mapping with"
            f" defaultAction (OCI JSON) or apiVersion {API_VERSION} and kind {KIND}"
        )
    return document


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ProfileError(
            f"line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}"
        ) from error


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ProfileError(f"invalid JSON: found duplicate key {quote(key)}: keep one")
        document[key] = value
    return document


def _load_yaml(text: str) -> Any:
    try:
        documents = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.MarkedYAMLError as error:
        raise ProfileError(_describe_yaml_error(error)) from error
    except yaml.YAMLError as error:
        raise ProfileError(f"invalid YAML: {error}") from error
    if len(documents) > 1:
        raise ProfileError(
            f"the input contains {len(documents)} YAML documents: put exactly one profile in each file"
        )
    return documents[0] if documents else None


def _describe_yaml_error(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = error.problem or str(error)
    context = f" ({error.context})" if error.context else ""
    return f"{where}invalid YAML: {problem}{context}"


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key repeated in one mapping instead of keeping the last.

    A repeated key, such as two `defaultAction` lines, is almost always a mistake, and
    silently keeping one of them would hide it.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {quote(key)}: keep one",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
