"""Part 1: what each tracer adds to one syscall, measured on C micro-benchmarks.

Every round runs every variant once, in an order rotated from round to round.
Right before each variant is set up, the same loops run untraced: that pair
(variant, baseline) is what every figure is computed from, so a machine that
slows down between rounds shifts both. Within a variant the two loops also
alternate their order from round to round.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seccomp_bench import agents, environment, tracers
from seccomp_bench.build import Programs
from seccomp_bench.config import BenchConfig
from seccomp_bench.processes import BenchError
from seccomp_bench.stats import rotated

logger = logging.getLogger(__name__)

LOOPS = ("getppid", "read")
_RESULT = re.compile(r"ns_per_call=(?P<median>[0-9.]+) mean_ns_per_call=(?P<mean>[0-9.]+)")
# Seconds for the links of a variant that was torn down to leave the kernel's list.
LINK_SETTLE = 3.0
# Seconds one run may take before it counts as hung: far above the ~20 s of a strace run here.
RUN_TIMEOUT = 600.0


def run_loop(command: list[str]) -> dict[str, float]:
    """Run one micro-benchmark command; return its median-chunk and mean nanoseconds per call."""
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{' '.join(command)} did not finish within {RUN_TIMEOUT} s") from error
    match = _RESULT.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        raise BenchError(
            f"{' '.join(command)} failed with {completed.returncode}:\n"
            f"{completed.stdout[-1000:]}\n{completed.stderr[-2000:]}"
        )
    return {"median": float(match.group("median")), "mean": float(match.group("mean"))}


def _links_settled(expected: int | None) -> int | None:
    """Count the links on sys_enter, giving released ones up to LINK_SETTLE seconds to go."""
    deadline = time.monotonic() + LINK_SETTLE
    while True:
        links = environment.sys_enter_links()
        if links == expected or time.monotonic() > deadline:
            return links
        time.sleep(0.1)


@contextmanager
def _variants(programs: Programs, work_dir: Path) -> Iterator[list[tracers.Variant]]:
    """Yield every variant but the untraced one, with the API server the agent needs."""
    with ExitStack() as stack:
        bpffs = stack.enter_context(agents.bpf_filesystem(work_dir / "bpffs"))
        kubeconfig = stack.enter_context(agents.api_server(work_dir / "apiserver"))
        client = agents.api_client(kubeconfig)
        stack.callback(client.close)
        agents.apply_crds(client)
        agent_dir = work_dir / "agent"
        yield [
            tracers.EmptyBpf(programs.empty_bpf),
            tracers.RecordedByCli(work_dir),
            tracers.CliRecordingAnother(work_dir),
            tracers.AgentIdle(kubeconfig, client, agent_dir, bpffs),
            tracers.AgentRecording(kubeconfig, client, agent_dir, bpffs),
            tracers.AgentAfterRecording(kubeconfig, client, agent_dir, bpffs),
            tracers.AuditLog(programs.audit_exec),
            tracers.Strace(),
        ]


def measure(config: BenchConfig, programs: Programs, work_dir: Path) -> dict[str, Any]:
    """Run every round and return the raw measurements of part 1."""
    work_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with _variants(programs, work_dir) as variants:
        for round_index in range(config.syscall_rounds):
            for position, variant in enumerate(rotated(variants, round_index)):
                logger.info(
                    "syscall cost: round %d/%d, %s",
                    round_index + 1,
                    config.syscall_rounds,
                    variant.info.id,
                )
                runs.extend(_measure_pair(config, programs, variant, round_index, position))
    infos = [tracers.UNTRACED, *(variant.info for variant in variants)]
    return {
        "calls_per_run": config.syscall_calls,
        "strace_calls_per_run": config.strace_calls,
        "rounds": config.syscall_rounds,
        "loops": list(LOOPS),
        "variants": [asdict(info) for info in infos],
        "runs": runs,
    }


def _measure_pair(
    config: BenchConfig,
    programs: Programs,
    variant: tracers.Variant,
    round_index: int,
    position: int,
) -> list[dict[str, Any]]:
    """Run the loops untraced, then under `variant`; return one record per loop."""
    loops = rotated(LOOPS, round_index)
    calls = config.strace_calls if isinstance(variant, tracers.Strace) else config.syscall_calls
    argv = {loop: [str(programs.syscall_loop), loop, str(calls)] for loop in loops}

    foreign_links = environment.sys_enter_links()
    baselines = {loop: run_loop(argv[loop]) for loop in loops}

    records = []
    try:
        variant.start()
        links_after_setup = environment.sys_enter_links()
        for loop in loops:
            value = run_loop(variant.command(argv[loop]))
            records.append(
                {
                    "round": round_index,
                    "position": position,
                    "variant": variant.info.id,
                    "loop": loop,
                    "ns_per_call": value["median"],
                    "mean_ns_per_call": value["mean"],
                    "baseline_ns_per_call": baselines[loop]["median"],
                    "baseline_mean_ns_per_call": baselines[loop]["mean"],
                    "sys_enter_links_before": foreign_links,
                    "sys_enter_links_after_setup": links_after_setup,
                    **variant.after_run(),
                }
            )
    finally:
        variant.stop()
    # Another job attaching or detaching a program meanwhile changes what the pair compares.
    links_after = _links_settled(foreign_links)
    for record in records:
        record["sys_enter_links_after"] = links_after
    return records
