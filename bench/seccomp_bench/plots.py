"""Plots of the page, drawn with matplotlib from the results JSON only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

# The backend is chosen before pyplot is imported.
import matplotlib.pyplot as plt

from seccomp_bench import plots_cluster, summaries

# PNG metadata without matplotlib's version, so the same data gives the same file.
PNG_METADATA = {"Software": None}
DPI = 110


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(figure)
    return path


def syscall_cost(section: dict[str, Any], path: Path) -> Path:
    """Draw each variant's slowdown over untraced, per loop, on a log scale with its range."""
    labels = {info["id"]: info["label"] for info in section["variants"]}
    costs = summaries.syscall_costs(section)
    loops = section["loops"]
    figure, axes = plt.subplots(1, len(loops), figsize=(11, 4.2), sharey=True, squeeze=False)
    for axis, loop in zip(axes[0], loops, strict=True):
        rows = [cost for cost in costs if cost.loop == loop]
        positions = list(range(len(rows)))
        medians = [cost.slowdown.median for cost in rows]
        lower = [cost.slowdown.median - cost.slowdown.minimum for cost in rows]
        upper = [cost.slowdown.maximum - cost.slowdown.median for cost in rows]
        axis.barh(positions, medians, xerr=[lower, upper], color="#4c72b0", capsize=3)
        axis.set_xscale("log")
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_yticks(positions, [labels[cost.variant] for cost in rows])
        axis.invert_yaxis()
        axis.set_title(f"{loop} loop")
        axis.set_xlabel("time per call / untraced time per call (log scale)")
        for position, cost in zip(positions, rows, strict=True):
            median = cost.slowdown.median
            axis.annotate(
                f"{median:.2f}×" if median < 100 else f"{median:.0f}×",
                (cost.slowdown.maximum, position),
                xytext=(5, -3),
                textcoords="offset points",
                fontsize=8,
            )
        axis.set_xlim(right=max(cost.slowdown.maximum for cost in rows) * 4)
    figure.suptitle("Slowdown per syscall: median over rounds, bars show min – max")
    return _save(figure, path)


def workloads(section: dict[str, Any], path: Path) -> Path:
    """Draw every round's recorded / untraced throughput ratio, with the median marked."""
    ratios = summaries.throughput_ratios(section)
    figure, axis = plt.subplots(figsize=(8, 3.8))
    for index, ratio in enumerate(ratios):
        # Matplotlib leaves labels that start with an underscore out of the legend.
        axis.scatter(
            [index] * len(ratio.ratios),
            ratio.ratios,
            color="#4c72b0",
            zorder=3,
            label="one round" if index == 0 else "_round",
        )
        axis.hlines(
            ratio.ratio.median,
            index - 0.3,
            index + 0.3,
            color="#c44e52",
            linewidth=2,
            label="median" if index == 0 else "_median",
        )
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(ratios)), [f"{ratio.server}\n{ratio.command}" for ratio in ratios])
    axis.set_ylabel("recorded / untraced requests per second")
    axis.set_title("Server throughput under seccomp-recorder record")
    axis.legend(loc="lower right")
    return _save(figure, path)


def render_plots(results: dict[str, Any], directory: Path) -> list[Path]:
    """Draw every plot the results have data for into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    drawn = []
    if "syscall_cost" in results:
        drawn.append(syscall_cost(results["syscall_cost"], directory / "syscall_cost.png"))
    if "workloads" in results:
        drawn.append(workloads(results["workloads"], directory / "workloads.png"))
    if "control_plane" in results:
        drawn += plots_cluster.render(results["control_plane"], directory)
    return drawn
