"""The sizes of one benchmark run: the full configuration (`make bench`) and the quick one.

Both run the same code. The quick configuration only makes every loop shorter,
so CI can check in about a minute that every part still runs end to end. Its
numbers are too noisy to quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PARTS = ("syscall_cost", "workloads", "fidelity", "control_plane")


@dataclass(frozen=True)
class BenchConfig:
    name: str
    # Part 1: calls per run of the micro-benchmark (timed inside the program), and rounds.
    # Every variant is measured once a round, in a rotated order.
    syscall_calls: int
    syscall_rounds: int
    # Calls per run under strace, fewer because each call takes tens of microseconds there.
    strace_calls: int
    # Part 2: rounds of (untraced, recorded) pairs, alternated, per server.
    workload_rounds: int
    redis_requests: int
    redis_clients: int
    redis_commands: tuple[str, ...]
    http_seconds: int
    http_connections: int
    # Part 3: the C workloads of tests/kernel/workloads to compare, and redis's requests.
    fidelity_programs: tuple[str, ...]
    fidelity_redis_requests: int
    # Part 4: simulated nodes (one agent each), profiles installed across them, and
    # samples of each latency.
    cluster_nodes: int
    cluster_profiles: int
    latency_samples: int
    # Seconds to sample resident memory and CPU of idle processes.
    idle_seconds: float
    parts: tuple[str, ...] = field(default=PARTS)


FULL = BenchConfig(
    name="full",
    syscall_calls=1_000_000,
    syscall_rounds=7,
    strace_calls=100_000,
    workload_rounds=7,
    redis_requests=50_000,
    redis_clients=50,
    redis_commands=("set", "get", "incr", "lpush"),
    http_seconds=5,
    http_connections=16,
    fidelity_programs=("threads", "exec_chain", "quick_child", "last_call", "thread_exit_group"),
    fidelity_redis_requests=2_000,
    cluster_nodes=10,
    cluster_profiles=1_000,
    latency_samples=5,
    idle_seconds=10.0,
)

QUICK = BenchConfig(
    name="quick",
    syscall_calls=20_000,
    syscall_rounds=2,
    strace_calls=5_000,
    workload_rounds=1,
    redis_requests=2_000,
    redis_clients=8,
    redis_commands=("set", "get"),
    http_seconds=1,
    http_connections=4,
    fidelity_programs=("last_call",),
    fidelity_redis_requests=200,
    cluster_nodes=2,
    cluster_profiles=20,
    latency_samples=1,
    idle_seconds=1.0,
)

CONFIGS = {config.name: config for config in (FULL, QUICK)}
