"""Building allow lists from recorded names, merging profiles and applying base profiles."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from seccomp_recorder.models.algebra import (
    allowed_syscalls,
    apply_base_profile,
    build_allow_list,
    enosys_errno,
    union,
)
from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.profile import (
    Action,
    Architecture,
    SeccompProfileSpec,
    SyscallRule,
)

X86_FAMILY = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def spec(**fields: Any) -> SeccompProfileSpec:
    document: dict[str, Any] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}
    document.update(fields)
    return SeccompProfileSpec.model_validate(document)


def rule(*names: str, action: str = "SCMP_ACT_ALLOW", **fields: Any) -> dict[str, Any]:
    return {"names": list(names), "action": action, **fields}


def clone3_rule(spec: SeccompProfileSpec) -> SyscallRule | None:
    return next((rule for rule in spec.syscalls if "clone3" in rule.names), None)


def test_allow_list_allows_exactly_the_names() -> None:
    built = build_allow_list(["write", "read", "read"], architectures=X86_FAMILY)
    assert built.syscalls[0] == SyscallRule(names=("read", "write"), action=Action.ALLOW)


def test_allow_list_defaults_to_errno_eperm() -> None:
    built = build_allow_list(["read"], architectures=X86_FAMILY)
    assert built.default_action is Action.ERRNO
    assert built.default_errno_ret == errno.EPERM


def test_allow_list_keeps_architectures_in_order() -> None:
    built = build_allow_list(["read"], architectures=X86_FAMILY)
    assert built.architectures == (Architecture.X86_64, Architecture.X86, Architecture.X32)


def test_missing_clone3_is_denied_with_enosys() -> None:
    built = build_allow_list(["read", "clone"], architectures=X86_FAMILY)
    assert clone3_rule(built) == SyscallRule(names=("clone3",), action=Action.ERRNO, errno_ret=38)


def test_recorded_clone3_is_allowed_without_enosys_rule() -> None:
    built = build_allow_list(["read", "clone3"], architectures=X86_FAMILY)
    assert len(built.syscalls) == 1
    assert "clone3" in allowed_syscalls(built)


def test_clone3_gets_enosys_under_kill_default() -> None:
    built = build_allow_list(["read"], architectures=X86_FAMILY, default_action=Action.KILL_PROCESS)
    assert clone3_rule(built) == SyscallRule(names=("clone3",), action=Action.ERRNO, errno_ret=38)


def test_log_default_adds_no_clone3_rule() -> None:
    built = build_allow_list(["read"], architectures=X86_FAMILY, default_action=Action.LOG)
    assert clone3_rule(built) is None


def test_errno_is_dropped_for_kill_default() -> None:
    built = build_allow_list(["read"], architectures=X86_FAMILY, default_action=Action.KILL_PROCESS)
    assert built.default_errno_ret is None


def test_enosys_on_mips_is_89() -> None:
    built = build_allow_list(["read"], architectures=["SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL"])
    rule = clone3_rule(built)
    assert rule is not None
    assert rule.errno_ret == 89


def test_enosys_on_mixed_mips_is_rejected() -> None:
    with pytest.raises(ProfileError) as caught:
        enosys_errno([Architecture.MIPS, Architecture.X86_64])
    assert "ENOSYS is 89 on MIPS but 38 elsewhere" in caught.value.problems[0]


def test_enosys_without_architectures_is_native() -> None:
    assert enosys_errno([]) == errno.ENOSYS


@pytest.mark.parametrize(
    ("names", "options", "expected"),
    [
        ([], {}, "the recording contains no syscall names"),
        (
            ["read"],
            {"default_action": Action.ALLOW},
            "default action SCMP_ACT_ALLOW would allow every syscall",
        ),
        (
            ["read"],
            {"architectures": ["SCMP_ARCH_VAX"]},
            'architectures[0]: invalid architecture "SCMP_ARCH_VAX"',
        ),
        (["Read"], {}, 'syscalls[0].names[0]: invalid syscall name "Read"'),
        (["read"], {"default_errno_ret": 5000}, "defaultErrnoRet 5000 is out of range"),
    ],
)
def test_invalid_allow_list_is_rejected(
    names: list[str], options: dict[str, Any], expected: str
) -> None:
    options.setdefault("architectures", X86_FAMILY)
    with pytest.raises(ProfileError) as caught:
        build_allow_list(names, **options)
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_union_allows_every_recorded_name() -> None:
    first = build_allow_list(["read", "write"], architectures=["SCMP_ARCH_X86_64"])
    second = build_allow_list(["read", "futex"], architectures=["SCMP_ARCH_X86_64"])
    assert allowed_syscalls(union([first, second])) == {"read", "write", "futex"}


def test_union_prefers_allowed_clone3_over_enosys() -> None:
    without = build_allow_list(["read"], architectures=["SCMP_ARCH_X86_64"])
    with_clone3 = build_allow_list(["read", "clone3"], architectures=["SCMP_ARCH_X86_64"])
    merged = union([without, with_clone3])
    assert "clone3" in allowed_syscalls(merged)
    assert len(merged.syscalls) == 1


def test_union_keeps_enosys_when_nobody_allows_clone3() -> None:
    first = build_allow_list(["read"], architectures=["SCMP_ARCH_X86_64"])
    second = build_allow_list(["write"], architectures=["SCMP_ARCH_X86_64"])
    merged = union([first, second])
    assert clone3_rule(merged) == SyscallRule(names=("clone3",), action=Action.ERRNO, errno_ret=38)


def test_union_lists_architectures_of_all() -> None:
    first = build_allow_list(["read"], architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    second = build_allow_list(["read"], architectures=["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86"])
    merged = union([first, second])
    assert merged.architectures == (Architecture.X86_64, Architecture.X86, Architecture.AARCH64)


def test_union_is_independent_of_order() -> None:
    first = build_allow_list(["read", "write"], architectures=["SCMP_ARCH_X86_64"])
    second = build_allow_list(["futex", "clone3"], architectures=["SCMP_ARCH_X86_64"])
    assert union([first, second]) == union([second, first])


def test_union_of_one_spec_is_that_spec() -> None:
    built = build_allow_list(["read"], architectures=["SCMP_ARCH_X86_64"])
    assert union([built]) == built


def test_union_merges_identical_conditional_rules() -> None:
    condition = [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    first = spec(syscalls=[rule("socket", args=condition)])
    second = spec(syscalls=[rule("socketpair", args=condition)])
    merged = union([first, second])
    assert merged.syscalls[0].names == ("socket", "socketpair")
    assert len(merged.syscalls) == 1


def test_union_treats_unset_errno_as_eperm() -> None:
    first = spec(defaultErrnoRet=None)
    second = spec(defaultErrnoRet=1)
    assert union([first, second]).default_errno_ret == 1


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            {"defaultAction": "SCMP_ACT_KILL_PROCESS", "defaultErrnoRet": None},
            (
                "profile 1 has defaultAction SCMP_ACT_KILL_PROCESS, but profile 0 has SCMP_ACT_ERRNO:"
                " profiles merge only when these settings agree"
            ),
        ),
        ({"defaultErrnoRet": 13}, "profile 1 has defaultErrnoRet 13, but profile 0 has 1"),
        (
            {"flags": ["SECCOMP_FILTER_FLAG_LOG"]},
            "profile 1 has flags [SECCOMP_FILTER_FLAG_LOG], but profile 0 has []",
        ),
        (
            {"baseProfileName": "base"},
            'profile 1 has baseProfileName "base", but profile 0 has None',
        ),
    ],
)
def test_union_rejects_different_settings(second: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProfileError) as caught:
        union([spec(), spec(**second)])
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_union_rejects_conflicting_errnos() -> None:
    first = spec(syscalls=[rule("mount", action="SCMP_ACT_ERRNO", errnoRet=1)])
    second = spec(syscalls=[rule("mount", action="SCMP_ACT_ERRNO", errnoRet=38)])
    with pytest.raises(ProfileError) as caught:
        union([first, second])
    assert caught.value.problems == [
        (
            'syscall "mount" has SCMP_ACT_ERRNO with errnoRet 1 and SCMP_ACT_ERRNO with errnoRet 38'
            " in different profiles: make the profiles agree on one errno for it before merging"
        )
    ]


def test_union_rejects_conditional_and_unconditional_mix() -> None:
    first = spec(syscalls=[rule("socket")])
    second = spec(syscalls=[rule("socket", args=[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}])])
    with pytest.raises(ProfileError) as caught:
        union([first, second])
    assert caught.value.problems[0].startswith(
        'syscalls "socket" have argument conditions in one profile'
    )


def test_union_of_nothing_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        union([])


def test_base_profile_rules_are_merged_in() -> None:
    child = spec(baseProfileName="runc-base", syscalls=[rule("read")])
    base = spec(syscalls=[rule("execve", "futex")])
    merged = apply_base_profile(child, base)
    assert allowed_syscalls(merged) == {"read", "execve", "futex"}
    assert merged.base_profile_name is None


def test_base_profile_with_own_base_is_rejected() -> None:
    child = spec(baseProfileName="middle", syscalls=[rule("read")])
    base = spec(baseProfileName="root", syscalls=[rule("execve")])
    with pytest.raises(ProfileError) as caught:
        apply_base_profile(child, base)
    assert caught.value.problems[0].startswith('the base profile is itself based on "root"')


def test_allowed_syscalls_skips_conditional_rules() -> None:
    condition = [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    built = spec(
        syscalls=[
            rule("read"),
            rule("socket", args=condition),
            rule("mount", action="SCMP_ACT_LOG"),
        ]
    )
    assert allowed_syscalls(built) == {"read"}
