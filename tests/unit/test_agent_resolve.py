"""Resolving a SeccompProfile object: validation, syscall checks and base profile chains."""

from __future__ import annotations

from typing import Any

import pytest
from agent_fakes import allow_spec, profile

from seccomp_recorder.agent import status
from seccomp_recorder.agent.resolve import ProfileRejected, resolve_profile
from seccomp_recorder.models.algebra import allowed_syscalls


def lookup_in(*objects: dict[str, Any]):  # type: ignore[no-untyped-def]
    by_key = {(obj["metadata"]["namespace"], obj["metadata"]["name"]): obj for obj in objects}
    return lambda namespace, name: by_key.get((namespace, name))


def rejected(obj: dict[str, Any], *others: dict[str, Any]) -> ProfileRejected:
    with pytest.raises(ProfileRejected) as raised:
        resolve_profile(obj, lookup_in(obj, *others))
    return raised.value


def test_valid_profile_resolves() -> None:
    resolved = resolve_profile(profile("web"), lookup_in())
    assert allowed_syscalls(resolved.spec) == {"read", "write", "exit_group"}
    assert resolved.warnings == ()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"defaultAction": "SCMP_ACT_BOGUS"}, "invalid action"),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
            "names no syscall",
        ),
        (allow_spec("read", "no_such_call"), '"no_such_call" is not known'),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
            "SCMP_ACT_NOTIFY cannot be loaded",
        ),
        ({"syscalls": []}, "defaultAction"),
    ],
)
def test_invalid_profile_rejected(spec: dict[str, Any], expected: str) -> None:
    error = rejected(profile("web", spec=spec))
    assert error.reason == status.PROFILE_INVALID
    assert expected in error.message


def test_warnings_returned_not_raised() -> None:
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    resolved = resolve_profile(profile("web", spec=spec), lookup_in())
    assert len(resolved.warnings) == 1
    assert "clone3" in resolved.warnings[0]


def test_base_profile_merged() -> None:
    base = profile("base", spec=allow_spec("openat", "close"))
    web = profile("web", spec=allow_spec("read", base="base"))
    resolved = resolve_profile(web, lookup_in(web, base))
    assert allowed_syscalls(resolved.spec) == {"read", "openat", "close"}
    assert resolved.spec.base_profile_name is None
    assert resolved.bases == ("base",)


def test_base_chain_merged_innermost_first() -> None:
    root = profile("root", spec=allow_spec("close"))
    middle = profile("middle", spec=allow_spec("openat", base="root"))
    web = profile("web", spec=allow_spec("read", base="middle"))
    resolved = resolve_profile(web, lookup_in(web, middle, root))
    assert allowed_syscalls(resolved.spec) == {"read", "openat", "close"}
    assert resolved.bases == ("middle", "root")


def test_missing_base_named() -> None:
    error = rejected(profile("web", spec=allow_spec("read", base="absent")))
    assert error.reason == status.BASE_PROFILE_NOT_FOUND
    assert '"absent"' in error.message
    assert "namespace default" in error.message


def test_base_in_other_namespace_not_used() -> None:
    base = profile("base", namespace="other", spec=allow_spec("close"))
    error = rejected(profile("web", spec=allow_spec("read", base="base")), base)
    assert error.reason == status.BASE_PROFILE_NOT_FOUND


def test_invalid_base_named() -> None:
    base = profile("base", spec=allow_spec("not_a_call"))
    error = rejected(profile("web", spec=allow_spec("read", base="base")), base)
    assert error.reason == status.PROFILE_INVALID
    assert 'base profile "base" is invalid' in error.message


def test_base_cycle_rejected() -> None:
    first = profile("first", spec=allow_spec("read", base="second"))
    second = profile("second", spec=allow_spec("write", base="first"))
    error = rejected(first, second)
    assert error.reason == status.PROFILE_INVALID
    assert "cycle" in error.message


def test_incompatible_base_rejected() -> None:
    base = profile("base", spec={**allow_spec("close"), "defaultAction": "SCMP_ACT_KILL_PROCESS"})
    error = rejected(profile("web", spec=allow_spec("read", base="base")), base)
    assert error.reason == status.PROFILE_INVALID
    assert "cannot be merged" in error.message
