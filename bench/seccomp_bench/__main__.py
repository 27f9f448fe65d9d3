"""Command line of the benchmark suite.

    python -m seccomp_bench run --config full|quick --output DIR [--command TEXT]
    python -m seccomp_bench render --output DIR

`run` measures, writes DIR/benchmarks/results.json, then renders DIR/benchmarks.md
and DIR/benchmarks/*.png from that file; `render` only renders. `make bench` runs
the full configuration into docs/, `make bench-quick` the quick one into
build/bench-quick/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seccomp_bench import build, environment, fidelity, plots, report, servers, syscall_cost
from seccomp_bench.config import CONFIGS, PARTS, BenchConfig
from seccomp_bench.processes import BenchError

logger = logging.getLogger("seccomp_bench")

RESULTS_FILE = "results.json"
PAGE_FILE = "benchmarks.md"
DATA_DIR = "benchmarks"
# Commands every part needs; scripts/install-deps installs them.
REQUIRED_COMMANDS = (
    "gcc",
    "clang",
    "bpftool",
    "strace",
    "redis-server",
    "redis-benchmark",
    "redis-cli",
    "nginx",
    "wrk",
    "runc",
    "busybox",
    "mount",
)


def results_path(output: Path) -> Path:
    return output / DATA_DIR / RESULTS_FILE


def render(output: Path) -> Path:
    """Render the page and its plots from `output`'s results file; return the page's path."""
    results = json.loads(results_path(output).read_text())
    plots.render_plots(results, output / DATA_DIR)
    page = output / PAGE_FILE
    page.write_text(report.render_page(results))
    return page


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise BenchError(
            "the benchmark needs root (BPF, seccomp audit records, runc): run it with sudo"
        )
    missing = [command for command in REQUIRED_COMMANDS if shutil.which(command) is None]
    if missing:
        raise BenchError(
            f"commands not found: {', '.join(missing)}; install them with scripts/install-deps"
        )


def _part_runners(
    config: BenchConfig, programs: build.Programs, work_dir: Path
) -> dict[str, Callable[[], dict[str, Any]]]:
    # Imported here because part 4 needs the operator, which parts 1 to 3 do not.
    from seccomp_bench import control_plane

    return {
        "syscall_cost": lambda: syscall_cost.measure(config, programs, work_dir / "syscall_cost"),
        "workloads": lambda: servers.measure(config, work_dir / "workloads"),
        "fidelity": lambda: fidelity.measure(config, programs, work_dir / "fidelity"),
        "control_plane": lambda: control_plane.measure(config, work_dir / "control_plane"),
    }


def run(
    config: BenchConfig, output: Path, command: str, work_root: Path | None, keep_work: bool
) -> Path:
    """Measure every part of `config`, write the results, and render the page."""
    _check_prerequisites()
    started = datetime.now(UTC)
    clock = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="seccomp-bench-", dir=work_root))
    logger.info("benchmark %s started; work folder %s", config.name, work_dir)
    results: dict[str, Any] = {
        "format": 1,
        "configuration": config.name,
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "source": environment.source(build.REPOSITORY),
        "machine": environment.machine(),
        "versions": environment.versions(),
        "part_durations": {},
    }
    try:
        programs = build.build_all(work_dir / "build", config.fidelity_programs)
        runners = _part_runners(config, programs, work_dir)
        for part in config.parts:
            part_clock = time.monotonic()
            results[part] = runners[part]()
            results["part_durations"][part] = round(time.monotonic() - part_clock, 1)
            logger.info("part %s took %.0f s", part, results["part_durations"][part])
    except BaseException:
        # The logs of the agents, the operator and the servers are in the work folder.
        logger.error("work folder kept for inspection: %s", work_dir)
        raise
    if keep_work:
        logger.info("work folder kept: %s", work_dir)
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    results["duration_seconds"] = round(time.monotonic() - clock, 1)

    path = results_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    page = render(output)
    logger.info("results in %s, page %s (%.0f s in all)", path, page, results["duration_seconds"])
    return page


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="action", required=True)

    run_parser = commands.add_parser("run", help="measure, then write the results and the page")
    run_parser.add_argument(
        "--config",
        choices=sorted(CONFIGS),
        default="full",
        help="sizes of the run: full (make bench) or quick (make bench-quick)",
    )
    run_parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help=f"folder for {PAGE_FILE} and {DATA_DIR}/ (results and plots)",
    )
    run_parser.add_argument(
        "--command", default=None, help="the command the page names as the one that produced it"
    )
    run_parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {','.join(PARTS)}",
    )
    run_parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="folder to create the temporary work folder in (default: /tmp)",
    )
    run_parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the work folder (logs, profiles, strace output)",
    )

    render_parser = commands.add_parser("render", help="render the page again from the results")
    render_parser.add_argument(
        "--output", type=Path, required=True, help=f"folder that contains {DATA_DIR}/{RESULTS_FILE}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The dev cluster's scheduler and controllers run in this process and log every relist.
    logging.getLogger("seccomp_devcluster").setLevel(logging.WARNING)
    try:
        if arguments.action == "render":
            print(render(arguments.output))
            return 0
        parts = tuple(part for part in arguments.parts.split(",") if part)
        unknown = sorted(set(parts) - set(PARTS))
        if unknown:
            raise BenchError(f"unknown parts {unknown}: choose from {', '.join(PARTS)}")
        config = replace(CONFIGS[arguments.config], parts=parts)
        command = arguments.command or f"python -m seccomp_bench run --config {config.name}"
        print(run(config, arguments.output, command, arguments.work_dir, arguments.keep_work))
    except BenchError as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
