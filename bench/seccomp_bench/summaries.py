"""Figures computed from the raw results: the page and the plots read only these.

Every function takes the JSON document that `python -m seccomp_bench run` wrote
and derives medians and spreads from its raw runs, so the page can always be
rendered again from the JSON alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from seccomp_bench.stats import Summary, differences, ratios, summarize

FLOOR = "empty_bpf"
UNTRACED = "untraced"


@dataclass(frozen=True)
class VariantCost:
    """One variant's cost on one loop, over the rounds of part 1."""

    variant: str
    loop: str
    # The variant's nanoseconds per call, and those of the untraced runs next to it.
    ns_per_call: Summary
    baseline: Summary
    # Variant minus untraced, per round.
    added_ns: Summary
    # Variant divided by untraced, per round.
    slowdown: Summary
    # Added cost divided by the empty program's added cost of the same round; None for
    # the floor itself, or when no round had a positive floor.
    floor_multiple: Summary | None
    # Rounds whose floor added nothing or less (noise), left out of floor_multiple.
    rounds_without_floor: int
    # Pairs left out because another job changed the sys_enter programs during them.
    rounds_disturbed: int
    # Links on sys_enter after the variant was set up (max over rounds), and before it.
    links_after_setup: int | None
    foreign_links: int | None


def disturbed(run: dict[str, Any]) -> bool:
    """Tell whether another job attached or detached a sys_enter program during a pair.

    The links counted before the baseline and after the variant's teardown differ then,
    so the baseline and the variant ran under different conditions.
    """
    before = run.get("sys_enter_links_before")
    after = run.get("sys_enter_links_after")
    return before is not None and after is not None and before != after


def _runs_by(section: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in section["runs"]:
        grouped[(run["variant"], run["loop"])].append(run)
    for runs in grouped.values():
        runs.sort(key=lambda run: run["round"])
    return grouped


def _undisturbed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out the disturbed pairs, unless every pair was disturbed."""
    return [run for run in runs if not disturbed(run)] or runs


def _max_or_none(values: list[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def syscall_costs(section: dict[str, Any]) -> list[VariantCost]:
    """Summarize every (variant, loop) of part 1, in the order of the variants' list."""
    grouped = _runs_by(section)
    costs = []
    for loop in section["loops"]:
        floor_added = {
            run["round"]: run["ns_per_call"] - run["baseline_ns_per_call"]
            for run in _undisturbed(grouped.get((FLOOR, loop), []))
        }
        for info in section["variants"]:
            all_runs = grouped.get((info["id"], loop))
            if not all_runs:
                continue
            runs = _undisturbed(all_runs)
            values = [run["ns_per_call"] for run in runs]
            baselines = [run["baseline_ns_per_call"] for run in runs]
            added = differences(values, baselines)
            multiples = [
                cost / floor_added[run["round"]]
                for cost, run in zip(added, runs, strict=True)
                if floor_added.get(run["round"], 0.0) > 0
            ]
            costs.append(
                VariantCost(
                    variant=info["id"],
                    loop=loop,
                    ns_per_call=summarize(values),
                    baseline=summarize(baselines),
                    added_ns=summarize(added),
                    slowdown=summarize(ratios(values, baselines)),
                    floor_multiple=(
                        summarize(multiples) if multiples and info["id"] != FLOOR else None
                    ),
                    rounds_without_floor=len(runs) - len(multiples),
                    rounds_disturbed=sum(1 for run in all_runs if disturbed(run)),
                    links_after_setup=_max_or_none(
                        [run.get("sys_enter_links_after_setup") for run in runs]
                    ),
                    foreign_links=_max_or_none([run.get("sys_enter_links_before") for run in runs]),
                )
            )
    return costs


def untraced_cost(section: dict[str, Any], loop: str) -> Summary:
    """Summarize every untraced baseline of `loop` (one per variant and round)."""
    return summarize(
        [run["baseline_ns_per_call"] for run in section["runs"] if run["loop"] == loop]
    )


@dataclass(frozen=True)
class ThroughputRatio:
    """Recorded over untraced throughput of one server and command, over rounds."""

    server: str
    command: str
    untraced: Summary
    recorded: Summary
    ratio: Summary
    ratios: list[float]


def _pair_rounds(runs: list[dict[str, Any]], value: Any) -> tuple[list[float], list[float]]:
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for run in runs:
        rate = value(run)
        if rate is not None:
            by_round[run["round"]][run["variant"]] = rate
    untraced, recorded = [], []
    for round_index in sorted(by_round):
        pair = by_round[round_index]
        if "untraced" in pair and "recorded" in pair:
            untraced.append(pair["untraced"])
            recorded.append(pair["recorded"])
    return untraced, recorded


def throughput_ratios(section: dict[str, Any]) -> list[ThroughputRatio]:
    """Pair each round's untraced and recorded run of both servers."""
    found = []
    redis = section["redis"]
    # In the order of the benchmark's -t option (the JSON's keys are sorted). Tests are
    # named in upper case, some with a suffix ("LRANGE_100 (first 100 elements)").
    order = [command.upper() for command in redis["commands"]]
    names = {name for run in redis["runs"] for name in run["requests_per_second"]}
    commands = sorted(
        names,
        key=lambda name: next(
            (index for index, prefix in enumerate(order) if name.startswith(prefix)), len(order)
        ),
    )
    for command in commands:
        untraced, recorded = _pair_rounds(
            redis["runs"], lambda run, name=command: run["requests_per_second"].get(name)
        )
        if untraced:
            found.append(_ratio("redis", command, untraced, recorded))
    untraced, recorded = _pair_rounds(
        section["nginx"]["runs"], lambda run: run["requests_per_second"]
    )
    if untraced:
        found.append(_ratio("nginx", "GET /index.html", untraced, recorded))
    return found


def _ratio(
    server: str, command: str, untraced: list[float], recorded: list[float]
) -> ThroughputRatio:
    per_round = ratios(recorded, untraced)
    return ThroughputRatio(
        server, command, summarize(untraced), summarize(recorded), summarize(per_round), per_round
    )
