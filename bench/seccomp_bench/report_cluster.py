"""The control plane's part of the page: latencies, install throughput, memory and CPU."""

from __future__ import annotations

import shlex
import statistics
from typing import Any

from seccomp_bench.markdown import table
from seccomp_bench.stats import Summary, summarize

MIB = 2**20


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _latency(samples: list[dict[str, float]], key: str) -> Summary:
    return summarize([sample[key] for sample in samples])


def _range(summary: Summary) -> str:
    return f"{seconds(summary.minimum)} – {seconds(summary.maximum)}"


def _agents(usage: dict[str, dict[str, float]]) -> list[dict[str, float]]:
    return [entry for name, entry in usage.items() if name.startswith("agent/")]


def _rate(count: float, elapsed: float) -> str:
    return f"{count / elapsed:,.0f}"


def headline(section: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return the headline rows of part 4: (measure, median, spread)."""
    applied = _latency(section["apply_latency"], "installed_seconds")
    recorded = _latency(section["recording_latency"], "profile_seconds")
    install = section["install"]
    idle = section["idle"]["processes"]
    agent_rss = statistics.median(entry["rss_bytes"] for entry in _agents(idle)) / MIB
    installed = install["all_installed_seconds"]
    load_label = (
        f"{install['profiles']:,} profiles created at once on {install['nodes']} nodes:"
        " time until all are Installed"
    )
    return [
        (
            f"SeccompProfile create request to phase Installed ({section['nodes']} nodes)",
            seconds(applied.median),
            _range(applied),
        ),
        (
            "Recorded container's exit to its SeccompProfile with the container's calls",
            seconds(recorded.median),
            _range(recorded),
        ),
        (
            load_label,
            f"{seconds(installed)} ({_rate(install['profiles'], installed)} profiles/s)",
            "one run",
        ),
        (
            "Resident memory while idle: operator / one agent (median)",
            f"{idle['operator']['rss_bytes'] / MIB:.0f} MiB / {agent_rss:.0f} MiB",
            "one sample",
        ),
    ]


def _usage_row(label: str, usage: dict[str, dict[str, float]]) -> list[str]:
    operator = usage["operator"]
    agent_cpu = [entry["cpu_percent"] for entry in _agents(usage)]
    agent_rss = [entry["rss_bytes"] / MIB for entry in _agents(usage)]
    # Results of runs before the API server was sampled have no entry for it.
    apiserver = usage.get("apiserver")
    return [
        label,
        f"{operator['cpu_percent']:.1f}",
        f"{operator['rss_bytes'] / MIB:.0f}",
        f"{statistics.median(agent_cpu):.1f} / {max(agent_cpu):.1f}",
        f"{statistics.median(agent_rss):.0f} / {max(agent_rss):.0f}",
        "" if apiserver is None else f"{apiserver['cpu_percent']:.1f}",
    ]


def _latency_rows(section: dict[str, Any]) -> list[list[str]]:
    applies = section["apply_latency"]
    recordings = section["recording_latency"]
    rows = []
    for label, samples, key in (
        ("create request → profile file on the first node", applies, "first_file_seconds"),
        (f"create request → file on all {section['nodes']} nodes", applies, "all_files_seconds"),
        ("create request → status phase Installed", applies, "installed_seconds"),
        ("container exit → pod phase Succeeded seen", recordings, "pod_succeeded_seconds"),
        ("container exit → SeccompProfile with its calls", recordings, "profile_seconds"),
    ):
        summary = _latency(samples, key)
        rows.append([label, seconds(summary.median), _range(summary), str(summary.count)])
    return rows


def section(section: dict[str, Any]) -> list[str]:
    """Return the Markdown lines of part 4."""
    nodes = section["nodes"]
    install = section["install"]
    profiles = install["profiles"]
    files = profiles * install["nodes"]
    command = shlex.join(section["recorded_command"])
    setup = (
        f"The dev cluster runs {nodes} node stand-ins, each with its own kubelet root. Beside"
        " them run one node agent process per node (`python -m seccomp_recorder.agent`,"
        " started by the benchmark with a private bpffs for its pins, as a DaemonSet pod would"
        " run it) and the operator (`python -m seccomp_recorder.operator`, default settings"
        " but for the agent image and namespace). The API server is the dev cluster's emulator, a Python"
        " process on the same CPUs, so these times include its latency and would differ"
        " against a real kube-apiserver. The benchmark polls the files and the API every"
        f" 10 ms. The recorded container runs `{command}` in a busybox pod that a"
        " SeccompRecording selects; its exit time is the /proc/uptime it prints last, on the"
        " benchmark's clock."
    )
    throughput = (
        f"Install throughput: {profiles:,} SeccompProfiles created one after the other"
        f" ({seconds(install['create_seconds'])} of create requests), installed by"
        f" {install['nodes']} agents. All {files:,} files were on disk after"
        f" {seconds(install['all_files_seconds'])}"
        f" ({_rate(files, install['all_files_seconds'])} files/s), and every profile was"
        f" Installed after {seconds(install['all_installed_seconds'])}"
        f" ({_rate(profiles, install['all_installed_seconds'])} profiles/s). One run."
    )
    usage_note = (
        "CPU use (percent of one CPU over the phase) and resident memory (the highest"
        " sample) of the operator and the agents, read from /proc/PID/stat and"
        " /proc/PID/statm. For the agents: the median and the maximum over all of them."
        " The API server emulator's CPU use shows how much of the load is the stand-in"
        " for kube-apiserver. All processes together reach at most 100 % per CPU of the"
        " machine."
    )
    usage_rows = [
        _usage_row(
            f"idle for {section['idle']['seconds']:.0f} s, no profiles",
            section["idle"]["processes"],
        ),
        _usage_row(f"installing {profiles:,} profiles", install["usage"]["processes"]),
        _usage_row(
            f"idle, {profiles:,} profiles installed", section["idle_with_profiles"]["processes"]
        ),
    ]
    return [
        "## 4. Control plane on the dev cluster",
        "",
        setup,
        "",
        *table(["Latency", "Median", "Min – max", "Samples"], _latency_rows(section)),
        "",
        throughput,
        "",
        "![Install progress](benchmarks/control_plane.png)",
        "",
        usage_note,
        "",
        *table(
            [
                "Phase",
                "Operator CPU %",
                "Operator RSS MiB",
                "Agent CPU % (median / max)",
                "Agent RSS MiB (median / max)",
                "API server emulator CPU %",
            ],
            usage_rows,
        ),
    ]
