"""Turning recording results into profile plans, specs and write decisions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seccomp_recorder.models.algebra import allowed_syscalls
from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.names import RECORDING_LABEL
from seccomp_recorder.models.profile import Action, Architecture, SeccompProfileSpec
from seccomp_recorder.models.recording import ProfileTemplate, SeccompRecordingSpec
from seccomp_recorder.models.result import SeccompRecordingResultSpec
from seccomp_recorder.operator.merging import (
    FINAL_ANNOTATION,
    UNKNOWN_SYSCALLS_ANNOTATION,
    UPDATED_AT_ANNOTATION,
    ExistingProfile,
    ProfilePlan,
    RecordedResult,
    WriteKind,
    build_profile_spec,
    decide_write,
    format_time,
    format_unknown_syscalls,
    is_final,
    parse_time,
    plan_profiles,
)

NOW = datetime(2026, 1, 31, 8, 0, 0, tzinfo=UTC)
X86_64 = "SCMP_ARCH_X86_64"
X86 = "SCMP_ARCH_X86"


def recording_spec(**fields: Any) -> SeccompRecordingSpec:
    document: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "web"}}}
    document.update(fields)
    return SeccompRecordingSpec.model_validate(document)


def result(
    pod: str,
    container: str,
    syscalls: dict[str, list[str]],
    *,
    final: bool = False,
    unknown: dict[str, list[int]] | None = None,
    recording: str = "rec",
) -> RecordedResult:
    uid = f"uid-{pod}"
    spec = SeccompRecordingResultSpec.model_validate(
        {
            "recording": recording,
            "pod": pod,
            "podUID": uid,
            "container": container,
            "containerID": f"runc://{pod}{container}",
            "node": "node-a",
            "final": final,
            "sequence": 1,
            "syscalls": syscalls,
            "unknownSyscalls": unknown or {},
        }
    )
    return RecordedResult(name=f"{recording}-{uid}-{container}", spec=spec)


def template(**fields: Any) -> ProfileTemplate:
    return ProfileTemplate.model_validate(fields)


def stored(
    spec: SeccompProfileSpec,
    *,
    recording: str = "rec",
    written: datetime | None = None,
    final: bool = False,
    deleting: bool = False,
) -> ExistingProfile:
    annotations = {FINAL_ANNOTATION: "true" if final else "false"}
    if written is not None:
        annotations[UPDATED_AT_ANNOTATION] = format_time(written)
    return ExistingProfile(
        labels={RECORDING_LABEL: recording},
        annotations=annotations,
        spec=spec,
        created_at=written,
        deleting=deleting,
    )


def decide(plan: ProfilePlan, existing: ExistingProfile | None, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "recording": "rec", "final": False, "existing": existing, "now": NOW, "min_interval": 30.0,
    }
    arguments.update(options)
    return decide_write(plan, template(), **arguments)


def test_containers_strategy_merges_replicas() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(),
        [
            result("web-1", "app", {X86_64: ["read", "write"]}),
            result("web-2", "app", {X86_64: ["openat", "read"]}),
            result("web-1", "sidecar", {X86_64: ["poll"]}),
        ],
    )
    assert [profile.name for profile in plan.profiles] == ["rec-app", "rec-sidecar"]
    app = plan.profiles[0]
    assert app.names == {"openat", "read", "write"}
    assert len(app.results) == 2
    assert app.labels == {RECORDING_LABEL: "rec", "seccomp-recorder.io/container": "app"}
    assert plan.problems == ()


def test_none_strategy_makes_profile_per_pod() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(mergeStrategy="None"),
        [
            result("web-1", "app", {X86_64: ["read"]}),
            result("web-2", "app", {X86_64: ["write"]}),
        ],
    )
    assert [profile.name for profile in plan.profiles] == ["rec-web-1-app", "rec-web-2-app"]
    assert plan.profiles[0].names == {"read"}
    assert plan.profiles[0].labels["seccomp-recorder.io/pod"] == "web-1"


def test_union_is_kept_per_architecture() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(),
        [
            result("web-1", "app", {X86_64: ["read"], X86: ["socketcall"]}),
            result("web-2", "app", {X86_64: ["write"]}),
        ],
    )
    profile = plan.profiles[0]
    assert profile.syscalls == {
        Architecture.X86_64: frozenset({"read", "write"}),
        Architecture.X86: frozenset({"socketcall"}),
    }
    assert profile.names == {"read", "write", "socketcall"}


def test_union_does_not_depend_on_order() -> None:
    results = [
        result("web-1", "app", {X86_64: ["read", "write"]}),
        result("web-2", "app", {X86_64: ["openat"]}),
        result("web-3", "app", {X86_64: ["close", "read"]}),
    ]
    names = {
        plan_profiles("rec", recording_spec(), order).profiles[0].names
        for order in itertools.permutations(results)
    }
    assert names == {frozenset({"read", "write", "openat", "close"})}


def test_unlisted_containers_are_skipped() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(containers=["app"]),
        [
            result("web-1", "app", {X86_64: ["read"]}),
            result("web-1", "istio-proxy", {X86_64: ["write"]}),
        ],
    )
    assert [profile.name for profile in plan.profiles] == ["rec-app"]
    assert len(plan.skipped) == 1
    assert "istio-proxy" in plan.skipped[0]


def test_colliding_names_in_none_strategy_are_a_problem() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(mergeStrategy="None"),
        [
            result("web-a", "b", {X86_64: ["read"]}),
            result("web", "a-b", {X86_64: ["write"]}),
        ],
    )
    assert plan.profiles == ()
    assert len(plan.problems) == 1
    assert "rec-web-a-b" in plan.problems[0]


def test_unknown_syscalls_are_merged_and_formatted() -> None:
    plan = plan_profiles(
        "rec",
        recording_spec(),
        [
            result("web-1", "app", {X86_64: ["read"]}, unknown={X86_64: [452]}),
            result("web-2", "app", {X86_64: ["read"]}, unknown={X86_64: [451], X86: [460]}),
        ],
    )
    formatted = format_unknown_syscalls(plan.profiles[0].unknown_syscalls)
    assert formatted == "SCMP_ARCH_X86=460;SCMP_ARCH_X86_64=451,452"
    assert format_unknown_syscalls({}) is None


def test_spec_uses_seen_architectures_in_enum_order() -> None:
    spec = build_profile_spec(template(), ["read"], [Architecture.X86_64, Architecture.X86])
    assert spec.architectures == (Architecture.X86, Architecture.X86_64)
    assert allowed_syscalls(spec) == {"read"}


def test_spec_uses_template_settings() -> None:
    spec = build_profile_spec(
        template(
            defaultAction="SCMP_ACT_KILL_PROCESS",
            architectures=["SCMP_ARCH_AARCH64"],
            baseProfileName="runtime-base",
        ),
        ["read", "clone3"],
        [Architecture.X86_64],
    )
    assert spec.default_action is Action.KILL_PROCESS
    assert spec.default_errno_ret is None
    assert spec.architectures == (Architecture.AARCH64,)
    assert spec.base_profile_name == "runtime-base"


def test_spec_denies_clone3_with_enosys_when_unrecorded() -> None:
    spec = build_profile_spec(template(defaultErrnoRet=1), ["read"], [Architecture.X86_64])
    clone3 = [rule for rule in spec.syscalls if "clone3" in rule.names]
    assert len(clone3) == 1
    assert clone3[0].errno_ret == 38
    assert spec.default_errno_ret == 1


def test_spec_without_names_raises() -> None:
    with pytest.raises(ProfileError):
        build_profile_spec(template(), [], [Architecture.X86_64])


def one_plan(*names: str, final: bool = False) -> ProfilePlan:
    plan = plan_profiles(
        "rec", recording_spec(), [result("web-1", "app", {X86_64: list(names)}, final=final)]
    )
    return plan.profiles[0]


def built(*names: str) -> SeccompProfileSpec:
    return build_profile_spec(template(), names, [Architecture.X86_64])


def test_missing_profile_is_created() -> None:
    decision = decide(one_plan("read", "write"), None)
    assert decision.kind is WriteKind.CREATE
    assert decision.spec == built("read", "write")
    assert decision.added == {"read", "write"}
    assert decision.annotations[FINAL_ANNOTATION] == "false"
    assert decision.annotations[UPDATED_AT_ANNOTATION] == format_time(NOW)
    assert decision.annotations[UNKNOWN_SYSCALLS_ANNOTATION] is None


def test_same_syscalls_leave_profile_unchanged() -> None:
    existing = stored(built("read", "write"), written=NOW - timedelta(seconds=5))
    assert decide(one_plan("read", "write"), existing).kind is WriteKind.UNCHANGED


def test_grown_set_is_written_after_interval() -> None:
    existing = stored(built("read"), written=NOW - timedelta(seconds=31))
    decision = decide(one_plan("read", "write"), existing)
    assert decision.kind is WriteKind.UPDATE
    assert decision.added == {"write"}
    assert decision.spec == built("read", "write")
    assert decision.annotations[UPDATED_AT_ANNOTATION] == format_time(NOW)


def test_grown_set_waits_for_interval() -> None:
    existing = stored(built("read"), written=NOW - timedelta(seconds=10))
    decision = decide(one_plan("read", "write"), existing)
    assert decision.kind is WriteKind.WAIT
    assert decision.delay == pytest.approx(20.0)


def test_interval_counts_from_creation_without_annotation() -> None:
    existing = ExistingProfile(
        labels={RECORDING_LABEL: "rec"}, annotations={}, spec=built("read"),
        created_at=NOW - timedelta(seconds=3),
    )
    decision = decide(one_plan("read", "write"), existing)
    assert decision.kind is WriteKind.WAIT
    assert decision.delay == pytest.approx(27.0)


def test_finalizing_skips_the_interval() -> None:
    existing = stored(built("read"), written=NOW - timedelta(seconds=1))
    decision = decide(one_plan("read", "write", final=True), existing, final=True)
    assert decision.kind is WriteKind.UPDATE
    assert decision.finalizes
    assert decision.annotations[FINAL_ANNOTATION] == "true"


def test_final_flag_alone_is_written() -> None:
    existing = stored(built("read"), written=NOW - timedelta(seconds=1))
    decision = decide(one_plan("read"), existing, final=True)
    assert decision.kind is WriteKind.UPDATE
    assert decision.finalizes
    assert decision.added == frozenset()


def test_new_running_result_clears_final_after_interval() -> None:
    existing = stored(built("read"), written=NOW - timedelta(seconds=40), final=True)
    decision = decide(one_plan("read"), existing, final=False)
    assert decision.kind is WriteKind.UPDATE
    assert decision.annotations[FINAL_ANNOTATION] == "false"
    assert not decision.finalizes


def test_profile_never_shrinks() -> None:
    existing = stored(built("read", "write", "openat"), written=NOW - timedelta(minutes=5))
    decision = decide(one_plan("read", "close"), existing)
    assert decision.kind is WriteKind.UPDATE
    assert decision.added == {"close"}
    assert decision.spec is not None
    assert allowed_syscalls(decision.spec) == {"read", "write", "openat", "close"}


def test_smaller_snapshot_leaves_profile_unchanged() -> None:
    existing = stored(built("read", "write"), written=NOW - timedelta(minutes=5))
    assert decide(one_plan("read"), existing).kind is WriteKind.UNCHANGED


def test_template_change_rewrites_profile() -> None:
    existing = stored(built("read"), written=NOW - timedelta(minutes=5))
    plan = one_plan("read")
    decision = decide_write(
        plan, template(defaultAction="SCMP_ACT_LOG"), recording="rec", final=False,
        existing=existing, now=NOW, min_interval=30.0,
    )
    assert decision.kind is WriteKind.UPDATE
    assert decision.spec is not None
    assert decision.spec.default_action is Action.LOG


def test_profile_of_other_recording_is_a_conflict() -> None:
    existing = stored(built("read"), recording="other")
    decision = decide(one_plan("read"), existing)
    assert decision.kind is WriteKind.CONFLICT
    assert "recording 'other'" in decision.message


def test_hand_written_profile_is_a_conflict() -> None:
    existing = ExistingProfile(labels={}, annotations={}, spec=built("read"))
    decision = decide(one_plan("read"), existing)
    assert decision.kind is WriteKind.CONFLICT
    assert "no recording label" in decision.message


def test_deleting_profile_is_waited_for() -> None:
    existing = stored(built("read"), deleting=True)
    decision = decide(one_plan("read", "write"), existing)
    assert decision.kind is WriteKind.WAIT
    assert decision.delay is not None


def test_unparsable_stored_spec_is_rebuilt() -> None:
    existing = ExistingProfile(
        labels={RECORDING_LABEL: "rec"}, annotations={}, spec=None,
        created_at=NOW - timedelta(minutes=5),
    )
    decision = decide(one_plan("read"), existing)
    assert decision.kind is WriteKind.UPDATE
    assert decision.spec == built("read")


def test_profile_is_final_when_all_results_are() -> None:
    assert is_final(one_plan("read", final=True), stopped_at=None, now=NOW, timeout=60)
    assert not is_final(one_plan("read"), stopped_at=None, now=NOW, timeout=60)


def test_profile_is_final_after_stop_timeout() -> None:
    plan = one_plan("read")
    stopped = NOW - timedelta(seconds=61)
    assert is_final(plan, stopped_at=stopped, now=NOW, timeout=60)
    assert not is_final(plan, stopped_at=NOW - timedelta(seconds=59), now=NOW, timeout=60)


def test_time_round_trips_with_microseconds() -> None:
    moment = datetime(2026, 1, 31, 8, 0, 0, 123456, tzinfo=UTC)
    assert format_time(moment) == "2026-01-31T08:00:00.123456Z"
    assert parse_time(format_time(moment)) == moment
    assert parse_time("2026-01-31T08:00:00Z") == datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert parse_time("yesterday") is None
    assert parse_time("2026-01-31T08:00:00") is None
    assert parse_time(None) is None


def test_existing_profile_read_from_body() -> None:
    existing = ExistingProfile.from_body(
        {
            "metadata": {
                "labels": {RECORDING_LABEL: "rec"},
                "creationTimestamp": "2026-01-31T08:00:00Z",
                "deletionTimestamp": "2026-01-31T09:00:00Z",
            },
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "x"}]},
        }
    )
    assert existing.spec is None
    assert existing.deleting
    assert existing.created_at == NOW
