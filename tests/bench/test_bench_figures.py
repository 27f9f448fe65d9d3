"""The benchmark's statistics and the figures it derives from raw runs."""

from __future__ import annotations

import pytest
from bench_samples import syscall_cost_section, workloads_section

from seccomp_bench import summaries
from seccomp_bench.stats import differences, ratios, rotated, summarize


def test_summarize_odd_count() -> None:
    summary = summarize([5.0, 1.0, 3.0, 2.0, 4.0])

    assert summary.median == 3.0
    assert summary.q1 == 2.0
    assert summary.q3 == 4.0
    assert summary.minimum == 1.0
    assert summary.maximum == 5.0
    assert summary.count == 5


def test_summarize_one_value() -> None:
    summary = summarize([7.0])

    assert (summary.median, summary.q1, summary.q3) == (7.0, 7.0, 7.0)
    assert (summary.minimum, summary.maximum) == (7.0, 7.0)


def test_summarize_empty_list_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize([])


def test_pairwise_ratios_and_differences() -> None:
    assert ratios([2.0, 9.0], [1.0, 3.0]) == [2.0, 3.0]
    assert differences([2.0, 9.0], [1.0, 3.0]) == [1.0, 6.0]
    with pytest.raises(ValueError, match="baselines"):
        ratios([1.0], [1.0, 2.0])


def test_rotation_gives_each_item_the_lead() -> None:
    items = ["a", "b", "c"]

    assert [rotated(items, index)[0] for index in range(4)] == ["a", "b", "c", "a"]
    assert sorted(rotated(items, 2)) == items
    assert rotated([], 3) == []


def test_syscall_costs_per_round() -> None:
    costs = {
        (cost.variant, cost.loop): cost for cost in summaries.syscall_costs(syscall_cost_section())
    }

    recorded = costs[("cli_recorded", "getppid")]
    assert recorded.added_ns.median == 300.0
    assert recorded.added_ns.minimum == 160.0
    assert recorded.slowdown.median == 2.5
    # 300/100, 360/120 and 160/80 times the floor of the same round.
    assert recorded.floor_multiple is not None
    assert recorded.floor_multiple.median == 3.0
    assert recorded.floor_multiple.minimum == 2.0
    assert recorded.rounds_without_floor == 0


def test_floor_has_no_multiple_of_itself() -> None:
    costs = {
        (cost.variant, cost.loop): cost for cost in summaries.syscall_costs(syscall_cost_section())
    }

    floor = costs[("empty_bpf", "read")]
    assert floor.floor_multiple is None
    assert floor.links_after_setup == 1


def test_round_without_positive_floor_left_out() -> None:
    section = syscall_cost_section()
    for run in section["runs"]:
        if run["variant"] == "empty_bpf" and run["round"] == 0:
            run["ns_per_call"] = run["baseline_ns_per_call"] - 5.0

    costs = {(cost.variant, cost.loop): cost for cost in summaries.syscall_costs(section)}

    recorded = costs[("cli_recorded", "getppid")]
    assert recorded.rounds_without_floor == 1
    assert recorded.floor_multiple is not None
    assert recorded.floor_multiple.count == 2


def test_untraced_cost_over_all_baselines() -> None:
    untraced = summaries.untraced_cost(syscall_cost_section(), "read")

    assert untraced.median == 200.0
    assert untraced.count == 9


def test_throughput_ratios_pair_rounds() -> None:
    found = summaries.throughput_ratios(workloads_section())

    assert [(ratio.server, ratio.command) for ratio in found] == [
        ("redis", "SET"),
        ("redis", "GET"),
        ("nginx", "GET /index.html"),
    ]
    for ratio in found:
        assert ratio.ratios == pytest.approx([0.9, 0.8])
        assert ratio.ratio.median == pytest.approx(0.85)


def test_throughput_round_without_pair_skipped() -> None:
    section = workloads_section()
    section["nginx"]["runs"] = [
        run
        for run in section["nginx"]["runs"]
        if not (run["round"] == 1 and run["variant"] == "recorded")
    ]

    nginx = [ratio for ratio in summaries.throughput_ratios(section) if ratio.server == "nginx"]

    assert nginx[0].ratios == pytest.approx([0.9])
