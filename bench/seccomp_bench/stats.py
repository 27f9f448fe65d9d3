"""Summary statistics of repeated measurements: median, quartiles and range.

The machines are shared and noisy, so every figure the page shows is a median of
rounds, with its spread, of a value taken against a baseline measured in the
same round.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, first and third quartile, minimum and maximum of `count` values."""

    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    count: int


def summarize(values: Sequence[float]) -> Summary:
    """Summarize `values`; the quartiles are the inclusive ones (equal to the range for n=2).

    Raises ValueError for an empty sequence.
    """
    if not values:
        raise ValueError("cannot summarize an empty list of measurements")
    ordered = sorted(values)
    if len(ordered) == 1:
        q1 = q3 = ordered[0]
    else:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Summary(
        median=statistics.median(ordered),
        q1=q1,
        q3=q3,
        minimum=ordered[0],
        maximum=ordered[-1],
        count=len(ordered),
    )


def ratios(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Divide each value by the baseline measured next to it (same round, same position)."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} values but {len(baselines)} baselines")
    return [value / baseline for value, baseline in zip(values, baselines, strict=True)]


def differences(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Subtract from each value the baseline measured next to it."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} values but {len(baselines)} baselines")
    return [value - baseline for value, baseline in zip(values, baselines, strict=True)]


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """Return `items` rotated left by `round_index`, so each item leads one round in turn.

    Rotating the order between rounds spreads slow drifts of the machine (another
    job starting, the CPU clocking down) over every variant instead of one.
    """
    if not items:
        return []
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]
