"""Small hand-made results documents for the benchmark suite's rendering tests.

The numbers are chosen so that every derived figure is easy to work out by hand:
untraced runs take 200 ns per call, the empty eBPF program adds 100 ns, and so on.
"""

from __future__ import annotations

from typing import Any

VARIANTS = [
    {"id": "empty_bpf", "label": "empty eBPF program (floor)", "description": "the floor"},
    {"id": "cli_recorded", "label": "recorder, recorded process", "description": "recorded"},
    {"id": "strace", "label": "strace -f", "description": "strace"},
]
# Nanoseconds per call each variant adds, by round.
ADDED = {
    "empty_bpf": [100.0, 120.0, 80.0],
    "cli_recorded": [300.0, 360.0, 160.0],
    "strace": [40_000.0, 36_000.0, 44_000.0],
}
BASELINE = 200.0


def syscall_cost_section() -> dict[str, Any]:
    runs = []
    for round_index in range(3):
        for position, variant in enumerate(VARIANTS):
            for loop in ("getppid", "read"):
                runs.append(
                    {
                        "round": round_index,
                        "position": position,
                        "variant": variant["id"],
                        "loop": loop,
                        "ns_per_call": BASELINE + ADDED[variant["id"]][round_index],
                        "baseline_ns_per_call": BASELINE,
                        "sys_enter_links_before": 0,
                        "sys_enter_links_after_setup": 1 if variant["id"] == "empty_bpf" else 0,
                    }
                )
    return {
        "calls_per_run": 1_000_000,
        "strace_calls_per_run": 200_000,
        "rounds": 3,
        "loops": ["getppid", "read"],
        "variants": [
            {"id": "untraced", "label": "untraced", "description": "nothing attached"},
            *VARIANTS,
        ],
        "runs": runs,
    }


def workloads_section() -> dict[str, Any]:
    redis_runs = []
    nginx_runs = []
    for round_index, (untraced, recorded) in enumerate([(100.0, 90.0), (100.0, 80.0)]):
        for variant, rate in (("untraced", untraced), ("recorded", recorded)):
            redis_runs.append(
                {
                    "round": round_index,
                    "variant": variant,
                    "requests_per_second": {"SET": rate, "GET": rate * 2},
                }
            )
            nginx_runs.append(
                {"round": round_index, "variant": variant, "requests_per_second": rate * 10}
            )
    return {
        "redis": {"requests": 1000, "clients": 4, "commands": ["set", "get"], "runs": redis_runs},
        "nginx": {
            "seconds": 1,
            "connections": 4,
            "wrk_threads": 1,
            "nginx_workers": 1,
            "runs": nginx_runs,
        },
    }


def fidelity_section() -> dict[str, Any]:
    def comparison(calls: int, missing: list[str], extra: list[dict[str, str]]) -> dict[str, Any]:
        return {"calls": calls, "missing": missing, "extra": extra}

    return {
        "docker_default": {
            "source": "docker",
            "architecture": "SCMP_ARCH_X86_64",
            "capabilities": [],
            "names_listed": 370,
            "names_on_architecture": 300,
        },
        "workloads": [
            {
                "name": "last_call",
                "description": "one program",
                "kind": "program",
                "profile_calls": 30,
                "profile_names": [],
                "docker_default_fraction": 0.1,
                "ground_truth": {},
                "unnamed_audit_numbers": [],
                "audit_receive_errors": 0,
                "comparisons": {
                    "strace": comparison(30, [], []),
                    "audit_log": comparison(30, [], []),
                },
            },
            {
                "name": "busybox-runc",
                "description": "a container",
                "kind": "container",
                "profile_calls": 60,
                "profile_names": [],
                "docker_default_fraction": 0.2,
                "ground_truth": {},
                "unnamed_audit_numbers": [],
                "audit_receive_errors": 2,
                "comparisons": {
                    "strace": comparison(
                        50,
                        ["getpid"],
                        [
                            {"name": "futex", "reason": "runtime_post_filter"},
                            {"name": "mystery", "reason": "unexplained"},
                        ],
                    ),
                    "audit_log": comparison(
                        58,
                        [],
                        [
                            {"name": "tgkill", "reason": "runtime_post_filter"},
                        ],
                    ),
                },
            },
        ],
    }


def _usage(operator_cpu: float, agent_cpus: list[float]) -> dict[str, Any]:
    processes = {
        "operator": {"cpu_percent": operator_cpu, "rss_bytes": 100 * 2**20},
        "apiserver": {"cpu_percent": 2 * operator_cpu, "rss_bytes": 200 * 2**20},
    }
    for index, cpu in enumerate(agent_cpus):
        processes[f"agent/node-{index + 1}"] = {
            "cpu_percent": cpu,
            "rss_bytes": (70 + index) * 2**20,
        }
    return processes


def control_plane_section() -> dict[str, Any]:
    return {
        "nodes": 2,
        "operator_settings": {},
        "recorded_command": ["/bin/sh", "-c", "uname"],
        "idle": {"seconds": 10.0, "processes": _usage(1.0, [0.5, 1.5])},
        "apply_latency": [
            {"first_file_seconds": 0.1, "all_files_seconds": 0.2, "installed_seconds": 0.3},
            {"first_file_seconds": 0.2, "all_files_seconds": 0.4, "installed_seconds": 0.5},
            {"first_file_seconds": 0.3, "all_files_seconds": 0.6, "installed_seconds": 1.5},
        ],
        "install": {
            "profiles": 100,
            "nodes": 2,
            "create_seconds": 2.0,
            "all_files_seconds": 4.0,
            "all_installed_seconds": 5.0,
            "timeline": [
                {"seconds": 1.0, "files": 50, "installed": 10},
                {"seconds": 5.0, "files": 200, "installed": 100},
            ],
            "usage": {"seconds": 5.0, "processes": _usage(40.0, [10.0, 20.0])},
        },
        "idle_with_profiles": {"seconds": 10.0, "processes": _usage(2.0, [0.5, 0.5])},
        "recording_latency": [
            {"pod_succeeded_seconds": 0.05, "profile_seconds": 0.25},
            {"pod_succeeded_seconds": 0.07, "profile_seconds": 0.35},
        ],
    }


def results(**sections: dict[str, Any]) -> dict[str, Any]:
    """Return a results document with `sections` (all four sample parts by default)."""
    document: dict[str, Any] = {
        "format": 1,
        "configuration": "full",
        "command": "make bench",
        "started": "2026-12-04T21:00:00+00:00",
        "duration_seconds": 1200.0,
        "part_durations": {"syscall_cost": 600.0, "workloads": 300.0, "fidelity": 300.0},
        "machine": {
            "cpu_model": "Test CPU",
            "cpus": 2,
            "memory_bytes": 8 * 2**30,
            "kernel": "6.1.0",
            "architecture": "x86_64",
            "os": "Debian",
            "virtual_machine": "yes",
        },
        "versions": {"runc": "runc version 1.1.5", "python": "3.11.7", "crun": None},
    }
    document.update(
        sections
        or {
            "syscall_cost": syscall_cost_section(),
            "workloads": workloads_section(),
            "fidelity": fidelity_section(),
            "control_plane": control_plane_section(),
        }
    )
    return document
