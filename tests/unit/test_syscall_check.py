"""Checks of profile specs against the syscall tables and what runc loads."""

from __future__ import annotations

from typing import Any

from seccomp_recorder.models.algebra import build_allow_list
from seccomp_recorder.models.profile import Architecture, SeccompProfileSpec
from seccomp_recorder.syscalls.check import Problem, Severity, errors, find_problems


def spec(**fields: Any) -> SeccompProfileSpec:
    document: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ALLOW"}],
    }
    document.update(fields)
    return SeccompProfileSpec.model_validate(document)


def allow(*names: str) -> dict[str, Any]:
    return {"names": list(names), "action": "SCMP_ACT_ALLOW"}


def messages(problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems]


def test_recorded_profile_has_no_problems() -> None:
    built = build_allow_list(
        ["read", "write", "socketcall", "arch_prctl"],
        architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    )
    assert find_problems(built) == []


def test_unknown_name_is_reported_with_architecture() -> None:
    problems = find_problems(
        spec(architectures=["SCMP_ARCH_X86_64"], syscalls=[allow("clone3", "foo")])
    )
    assert messages(problems) == [
        (
            'syscalls[0].names: syscall "foo" is not known on SCMP_ARCH_X86_64: correct the name'
            " or remove it, because runtimes skip names an architecture does not have"
        )
    ]


def test_misspelt_name_gets_suggestion() -> None:
    problems = find_problems(
        spec(architectures=["SCMP_ARCH_X86_64"], syscalls=[allow("clone3", "reed")])
    )
    assert '(did you mean "read"?)' in problems[0].message


def test_every_unknown_name_is_reported() -> None:
    problems = find_problems(
        spec(
            architectures=["SCMP_ARCH_X86_64"],
            syscalls=[allow("clone3", "foo"), allow("bar", "baz")],
        )
    )
    assert [problem.message[:13] for problem in problems] == [
        'syscall "foo"',
        'syscall "bar"',
        'syscall "baz"',
    ]
    assert [problem.path for problem in problems] == [
        "syscalls[0].names",
        "syscalls[1].names",
        "syscalls[1].names",
    ]


def test_name_on_some_listed_architectures_is_accepted() -> None:
    # socketcall exists on x86 alone; libseccomp skips it on x86_64 and x32.
    problems = find_problems(
        spec(
            architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            syscalls=[allow("clone3", "socketcall")],
        )
    )
    assert problems == []


def test_name_on_no_listed_architecture_is_reported() -> None:
    problems = find_problems(
        spec(
            architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            syscalls=[allow("clone3", "socketcall")],
        )
    )
    assert problems[0].message.startswith(
        'syscall "socketcall" is not known on any of SCMP_ARCH_X86_64, SCMP_ARCH_X32'
    )


def test_no_architectures_checks_native() -> None:
    aarch64 = find_problems(spec(syscalls=[allow("clone3", "open")]), native=Architecture.AARCH64)
    x86_64 = find_problems(spec(syscalls=[allow("clone3", "open")]), native=Architecture.X86_64)
    assert messages(aarch64)[0].startswith(
        'syscalls[0].names: syscall "open" is not known on SCMP_ARCH_AARCH64'
    )
    assert x86_64 == []


def test_notify_actions_are_errors() -> None:
    problems = find_problems(
        spec(
            defaultAction="SCMP_ACT_NOTIFY",
            syscalls=[allow("clone3"), {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}],
        ),
        native=Architecture.X86_64,
    )
    assert [problem.path for problem in errors(problems)] == ["defaultAction", "syscalls[1].action"]


def test_wait_killable_flag_is_a_warning() -> None:
    problems = find_problems(
        spec(flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), native=Architecture.X86_64
    )
    assert [(problem.path, problem.severity) for problem in problems] == [
        ("flags[0]", Severity.WARNING)
    ]


def test_clone3_denied_with_eperm_is_a_warning() -> None:
    problems = find_problems(spec(syscalls=[allow("read")]), native=Architecture.X86_64)
    assert problems[0].severity is Severity.WARNING
    assert (
        "add a rule with names [clone3], action SCMP_ACT_ERRNO and errnoRet 38"
        in problems[0].message
    )


def test_clone3_enosys_rule_satisfies_check() -> None:
    problems = find_problems(
        spec(
            syscalls=[
                allow("read"),
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ]
        ),
        native=Architecture.X86_64,
    )
    assert problems == []


def test_clone3_killed_by_default_is_a_warning() -> None:
    problems = find_problems(
        spec(defaultAction="SCMP_ACT_KILL_PROCESS", syscalls=[allow("read")]),
        native=Architecture.X86_64,
    )
    assert problems[0].message.startswith(
        "clone3 is denied with SCMP_ACT_KILL_PROCESS by the default action"
    )


def test_clone3_check_skips_enosys_default() -> None:
    problems = find_problems(
        spec(defaultErrnoRet=38, syscalls=[allow("read")]), native=Architecture.X86_64
    )
    assert problems == []


def test_clone3_check_skips_permitting_defaults() -> None:
    for default_action in ["SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW"]:
        problems = find_problems(
            spec(defaultAction=default_action, syscalls=[allow("read")]),
            native=Architecture.X86_64,
        )
        assert problems == [], default_action


def test_problems_come_in_document_order() -> None:
    problems = find_problems(
        spec(
            flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            architectures=["SCMP_ARCH_X86_64"],
            syscalls=[allow("clone3")] + [allow(f"foo{index}") for index in range(11)],
        )
    )
    paths = [problem.path for problem in problems]
    assert paths[0] == "flags[0]"
    assert paths[1:3] == ["syscalls[1].names", "syscalls[2].names"]
    assert paths[-1] == "syscalls[11].names"


def test_warning_text_is_marked() -> None:
    problem = Problem("flags[0]", "text", Severity.WARNING)
    assert str(problem) == "flags[0]: warning: text"


def test_repeated_argument_index_is_a_warning() -> None:
    rule = {
        "names": ["mkdirat"],
        "action": "SCMP_ACT_ALLOW",
        "args": [
            {"index": 2, "value": 448, "op": "SCMP_CMP_GE"},
            {"index": 2, "value": 511, "op": "SCMP_CMP_LE"},
        ],
    }

    problems = find_problems(spec(syscalls=[allow("clone3"), rule]))

    assert [problem.path for problem in problems] == ["syscalls[1].args"]
    assert problems[0].severity is Severity.WARNING
    assert "more than one condition compares argument 2" in problems[0].message
    assert "any one condition holds, not all" in problems[0].message


def test_distinct_argument_indexes_pass() -> None:
    rule = {
        "names": ["mkdirat"],
        "action": "SCMP_ACT_ALLOW",
        "args": [
            {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 511, "op": "SCMP_CMP_LE"},
        ],
    }

    assert find_problems(spec(syscalls=[allow("clone3"), rule])) == []
