"""Compiling profiles into libseccomp filters, checked in libseccomp's pseudo filter code,
and the messages of filters that fail to load."""

from __future__ import annotations

import errno
import os
import tempfile
from typing import IO, Any

import pytest

from seccomp_recorder.enforce.seccomp import (
    BPF_MAXINSNS,
    CompiledFilter,
    EnforcementError,
    compile_filter,
    condition_groups,
)
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


class RejectedFilter:
    """A libseccomp filter stand-in whose load fails as libseccomp 2.5 reports it."""

    def __init__(self, instructions: int) -> None:
        self.instructions = instructions

    def load(self) -> None:
        raise OSError(errno.ECANCELED, os.strerror(errno.ECANCELED))

    def export_bpf(self, file: IO[bytes]) -> None:
        file.write(b"\0" * 8 * self.instructions)


def test_instruction_count_of_small_filter() -> None:
    compiled = compile_filter(spec_of({"names": ["read", "write"], "action": "SCMP_ACT_ERRNO"}))

    assert 0 < compiled.instruction_count() < BPF_MAXINSNS


def test_oversized_filter_load_names_limit() -> None:
    compiled = CompiledFilter(RejectedFilter(BPF_MAXINSNS + 1))

    with pytest.raises(EnforcementError) as caught:
        compiled.load()

    message = str(caught.value)
    assert message.startswith("installing the seccomp filter failed: [Errno 125]")
    assert "the compiled filter has 4097 BPF instructions" in message
    assert "limit of 4096 (BPF_MAXINSNS)" in message
    assert "use fewer rules with argument conditions" in message


def test_rejected_small_filter_load_names_kernel() -> None:
    compiled = CompiledFilter(RejectedFilter(BPF_MAXINSNS))

    with pytest.raises(EnforcementError) as caught:
        compiled.load()

    assert "the kernel rejected the filter" in str(caught.value)
    assert "BPF_MAXINSNS" not in str(caught.value)
