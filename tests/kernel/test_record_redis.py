"""A recorded redis-server profile lets the same benchmark pass, and breaks without bind.

redis-server (the Debian package) is recorded on a loopback port while
redis-benchmark sends a fixed number of requests, then stopped with
`redis-cli shutdown nosave`. The same steps then run with redis-server under the
recorded profile through `seccomp-recorder run`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kernel_helpers import COMMAND_TIMEOUT, Cli, Processes

from loopback import LOOPBACK, free_port
from prerequisites import require

pytestmark = pytest.mark.kernel

REQUESTS = 2000
CLIENTS = 4
COMMANDS = ("SET", "GET", "INCR", "LPUSH")
# Seconds redis-server may take to reply to PING after it starts: a guard against hangs.
START_TIMEOUT = 20.0


@pytest.fixture
def redis_tools() -> None:
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (Debian: redis)")


def redis_server_argv(port: int, data_dir: Path) -> list[str]:
    # No RDB snapshots or AOF, so no background save forks at a time that varies.
    return [
        "redis-server",
        "--port", str(port),
        "--bind", LOOPBACK,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
    ]  # fmt: skip


def redis_cli(processes: Processes, port: int, *command: str) -> subprocess.CompletedProcess[str]:
    return processes.run(["redis-cli", "-h", LOOPBACK, "-p", str(port), *command], timeout=10)


def wait_until_ready(
    processes: Processes, server: subprocess.Popen[str], port: int, log: Path
) -> None:
    """Wait until the server replies to PING. Fail if it exits or START_TIMEOUT passes first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"redis-server exited with {server.returncode} before it was ready:\n"
                + log.read_text()
            )
        if redis_cli(processes, port, "ping").stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    pytest.fail(f"redis-server did not reply to PING on port {port} within {START_TIMEOUT} s")


def run_benchmark(processes: Processes, port: int) -> subprocess.CompletedProcess[str]:
    return processes.run(
        [
            "redis-benchmark",
            "-h", LOOPBACK,
            "-p", str(port),
            "-n", str(REQUESTS),
            "-c", str(CLIENTS),
            "-t", ",".join(command.lower() for command in COMMANDS),
        ],
        timeout=120,
    )  # fmt: skip


def assert_benchmark_passed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stdout + result.stderr
    for command in COMMANDS:
        section = result.stdout.split(f"====== {command} ======", 1)
        assert len(section) == 2, f"no {command} section in the benchmark output"
        assert f"{REQUESTS} requests completed" in section[1].split("======", 1)[0]


def benchmark_and_stop(
    processes: Processes, server: subprocess.Popen[str], port: int, log: Path
) -> subprocess.CompletedProcess[str]:
    """Benchmark a started server, shut it down and wait for it to exit."""
    wait_until_ready(processes, server, port, log)
    benchmark = run_benchmark(processes, port)
    shutdown = redis_cli(processes, port, "shutdown", "nosave")
    assert shutdown.returncode == 0, shutdown.stdout + shutdown.stderr
    server.wait(timeout=COMMAND_TIMEOUT)
    return benchmark


def test_redis_runs_under_recorded_profile(
    recording_host: None, redis_tools: None, cli: Cli, processes: Processes, tmp_path: Path
) -> None:
    profile_path = tmp_path / "redis.yaml"
    recorded_log = tmp_path / "recorded.log"
    enforced_log = tmp_path / "enforced.log"

    port = free_port()
    with recorded_log.open("w") as log:
        recorder = cli.start(
            "record", "-o", str(profile_path), "--name", "redis", "--",
            *redis_server_argv(port, tmp_path),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    recorded_benchmark = benchmark_and_stop(processes, recorder, port, recorded_log)

    assert_benchmark_passed(recorded_benchmark)
    assert recorder.returncode == 0, recorded_log.read_text()
    assert profile_path.is_file()

    port = free_port()
    with enforced_log.open("w") as log:
        enforced = cli.start(
            "run", "--profile", str(profile_path), "--",
            *redis_server_argv(port, tmp_path),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    enforced_benchmark = benchmark_and_stop(processes, enforced, port, enforced_log)

    assert_benchmark_passed(enforced_benchmark)
    assert enforced.returncode == 0, enforced_log.read_text()


def test_redis_fails_without_bind(
    recording_host: None, redis_tools: None, cli: Cli, processes: Processes, tmp_path: Path
) -> None:
    profile_path = tmp_path / "redis.yaml"
    recorded_log = tmp_path / "recorded.log"
    port = free_port()
    with recorded_log.open("w") as log:
        recorder = cli.start(
            "record", "-o", str(profile_path), "--", *redis_server_argv(port, tmp_path),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    benchmark_and_stop(processes, recorder, port, recorded_log)
    assert recorder.returncode == 0, recorded_log.read_text()

    document = yaml.safe_load(profile_path.read_text())
    allow_rule = document["spec"]["syscalls"][0]
    assert allow_rule["action"] == "SCMP_ACT_ALLOW"
    assert "bind" in allow_rule["names"]
    # bind puts redis on its port, so without it the server cannot serve at all, and
    # the EPERM stops it at startup with a log line that names the failed call.
    allow_rule["names"].remove("bind")
    broken_path = tmp_path / "redis-without-bind.yaml"
    broken_path.write_text(yaml.safe_dump(document))

    port = free_port()
    server = cli.run(
        "run", "--profile", str(broken_path), "--", *redis_server_argv(port, tmp_path),
        timeout=30,
    )  # fmt: skip
    ping = redis_cli(processes, port, "ping")

    assert server.returncode != 0, server.stdout
    assert "bind: Operation not permitted" in server.stdout
    assert ping.returncode != 0
    assert "Connection refused" in ping.stdout + ping.stderr
