"""Compiling profiles into libseccomp filters, checked in libseccomp's pseudo filter code."""

from __future__ import annotations

import tempfile
from typing import Any

from seccomp_recorder.enforce.seccomp import compile_filter, condition_groups
from seccomp_recorder.models.profile import SeccompProfileSpec, SyscallRule


def spec_of(*rules: dict[str, Any]) -> SeccompProfileSpec:
    return SeccompProfileSpec.model_validate(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": list(rules),
        }
    )


def pseudo_filter_code(spec: SeccompProfileSpec) -> str:
    """Return libseccomp's text form (PFC) of the filter compiled from `spec`."""
    compiled = compile_filter(spec)
    with tempfile.TemporaryFile() as file:
        compiled.filter.export_pfc(file)
        file.seek(0)
        return file.read().decode()


def condition(index: int, value: int, op: str = "SCMP_CMP_EQ") -> dict[str, Any]:
    return {"index": index, "value": value, "op": op}


def test_distinct_indexes_stay_one_rule() -> None:
    rule = SyscallRule.model_validate(
        {
            "names": ["mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "args": [condition(1, 5), condition(2, 6)],
        }
    )

    assert condition_groups(rule) == [list(rule.args)]


def test_repeated_index_splits_every_condition() -> None:
    # runc and crun split all conditions of such a rule, those on other indexes included.
    rule = SyscallRule.model_validate(
        {
            "names": ["mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "args": [condition(2, 0o700), condition(2, 0o711), condition(0, 3)],
        }
    )

    assert condition_groups(rule) == [[argument] for argument in rule.args]


def test_rule_without_conditions_is_one_group() -> None:
    rule = SyscallRule.model_validate({"names": ["read"], "action": "SCMP_ACT_ERRNO"})

    assert condition_groups(rule) == [[]]


def test_repeated_index_compiles_to_alternatives() -> None:
    spec = spec_of(
        {
            "names": ["mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 13,
            "args": [condition(2, 0o700), condition(2, 0o711)],
        }
    )

    code = pseudo_filter_code(spec)

    assert 'filter for syscall "mkdirat"' in code
    assert "if ($a2.lo32 == 448)" in code  # 0o700
    assert "if ($a2.lo32 == 457)" in code  # 0o711
    assert code.count("action ERRNO(13);") == 2


def test_distinct_indexes_compile_to_one_conjunction() -> None:
    spec = spec_of(
        {
            "names": ["mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "args": [condition(0, 3), condition(2, 0o700)],
        }
    )

    code = pseudo_filter_code(spec)

    assert "if ($a0.lo32 == 3)" in code
    assert "if ($a2.lo32 == 448)" in code
    assert code.count("action ERRNO(1);") == 1
