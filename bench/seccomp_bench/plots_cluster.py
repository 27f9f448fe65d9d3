"""Plots of the control plane's part of the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt


def install_progress(section: dict[str, Any], path: Path) -> Path:
    """Draw how many profiles were on disk (averaged over nodes) and Installed over time."""
    install = section["install"]
    timeline = install["timeline"]
    seconds = [point["seconds"] for point in timeline]
    figure, axis = plt.subplots(figsize=(8, 3.8))
    axis.plot(
        seconds,
        [point["files"] / install["nodes"] for point in timeline],
        label="profile files on disk / nodes",
    )
    axis.plot(seconds, [point["installed"] for point in timeline], label="status phase Installed")
    axis.axvline(
        install["create_seconds"], color="gray", linestyle=":", label="last create request sent"
    )
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.set_xlabel("seconds since the first create request")
    axis.set_ylabel("profiles")
    axis.set_title(f"{install['profiles']:,} SeccompProfiles on {install['nodes']} nodes")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return path


def render(section: dict[str, Any], directory: Path) -> list[Path]:
    return [install_progress(section, directory / "control_plane.png")]
