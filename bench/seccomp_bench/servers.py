"""Part 2: server throughput untraced and under `seccomp-recorder record`, alternated.

redis-server is driven by redis-benchmark (a fixed number of requests per
command) and nginx by wrk (a fixed duration), both on 127.0.0.1. Each round
runs the server once untraced and once recorded, in an order that alternates
between rounds, and every figure is the ratio of the two throughputs of one
round.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seccomp_bench import processes
from seccomp_bench.config import BenchConfig
from seccomp_bench.processes import LOOPBACK, RECORDER_CLI, BenchError
from seccomp_bench.stats import rotated

logger = logging.getLogger(__name__)

VARIANTS = ("untraced", "recorded")
# Seconds for a server to accept connections, and for a load generator to finish.
SERVER_START_TIMEOUT = 60.0
LOAD_TIMEOUT = 600.0
_WRK_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/client-body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen {address}:{port};
        root {work}/www;
    }}
}}
"""
# A page of the size of nginx's own welcome page.
INDEX_HTML = (
    "<!DOCTYPE html>\n<html><body>\n"
    + "<p>seccomp-recorder benchmark</p>\n" * 18
    + "</body></html>\n"
)


def _wrapped(argv: Sequence[str], variant: str, profile: Path) -> list[str]:
    if variant == "recorded":
        return [*RECORDER_CLI, "record", "--format", "oci", "-o", str(profile), "--", *argv]
    return list(argv)


@contextmanager
def _server(
    argv: list[str], port: int, log: Path, stop_command: list[str] | None
) -> Iterator[None]:
    server = processes.start(argv, log=log)
    try:
        processes.wait_until(
            lambda: processes.port_open(port),
            f"{argv[0]} on port {port}",
            SERVER_START_TIMEOUT,
            process=server,
        )
        yield
    finally:
        if stop_command is not None and server.poll() is None:
            subprocess.run(stop_command, capture_output=True, timeout=30, check=False)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop after %s", argv, stop_command)
        processes.stop(server)


def parse_redis_csv(text: str) -> dict[str, float]:
    """Return requests per second by command from `redis-benchmark --csv` output."""
    rates: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("test") and row.get("rps"):
            rates[row["test"]] = float(row["rps"])
    if not rates:
        raise BenchError(f"no result in redis-benchmark's output:\n{text[-1000:]}")
    return rates


def parse_wrk(text: str) -> float:
    match = _WRK_RATE.search(text)
    if match is None:
        raise BenchError(f"no Requests/sec in wrk's output:\n{text[-1000:]}")
    return float(match.group(1))


def redis_round(config: BenchConfig, work_dir: Path, variant: str) -> dict[str, float]:
    """Serve one redis-benchmark run and return its requests per second by command."""
    port = processes.free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work_dir),
        "--logfile",
        str(work_dir / "redis.log"),
    ]
    command = _wrapped(argv, variant, work_dir / "redis-profile.json")
    stop = ["redis-cli", "-h", LOOPBACK, "-p", str(port), "shutdown", "nosave"]
    with _server(command, port, work_dir / f"redis-{variant}.log", stop):
        completed = processes.run(
            [
                "redis-benchmark",
                "-h",
                LOOPBACK,
                "-p",
                str(port),
                "-n",
                str(config.redis_requests),
                "-c",
                str(config.redis_clients),
                "-t",
                ",".join(config.redis_commands),
                "--csv",
            ],
            timeout=LOAD_TIMEOUT,
        )
    return parse_redis_csv(completed.stdout)


def nginx_round(config: BenchConfig, work_dir: Path, variant: str) -> float:
    """Serve one wrk run from nginx and return its requests per second."""
    port = processes.free_port()
    (work_dir / "www").mkdir(parents=True, exist_ok=True)
    (work_dir / "www" / "index.html").write_text(INDEX_HTML)
    config_path = work_dir / "nginx.conf"
    config_path.write_text(NGINX_CONFIG.format(work=work_dir, address=LOOPBACK, port=port))

    argv = [
        "nginx",
        "-p",
        f"{work_dir}/",
        "-e",
        str(work_dir / "nginx-error.log"),
        "-c",
        str(config_path),
    ]
    command = _wrapped(argv, variant, work_dir / "nginx-profile.json")

    # No stop command: SIGTERM reaches nginx directly or through the recorder, which passes
    # it on, and nginx's master stops its worker.
    with _server(command, port, work_dir / f"nginx-{variant}.log", None):
        completed = processes.run(
            [
                "wrk",
                "-t1",
                f"-c{config.http_connections}",
                f"-d{config.http_seconds}s",
                f"http://{LOOPBACK}:{port}/index.html",
            ],
            timeout=LOAD_TIMEOUT,
        )
    return parse_wrk(completed.stdout)


def measure(config: BenchConfig, work_dir: Path) -> dict[str, Any]:
    """Run every round of both servers and return the raw throughputs of part 2."""
    work_dir.mkdir(parents=True, exist_ok=True)
    redis_runs: list[dict[str, Any]] = []
    nginx_runs: list[dict[str, Any]] = []
    for round_index in range(config.workload_rounds):
        for variant in rotated(VARIANTS, round_index):
            logger.info(
                "workloads: round %d/%d, redis %s", round_index + 1, config.workload_rounds, variant
            )
            rates = redis_round(config, work_dir, variant)
            redis_runs.append(
                {"round": round_index, "variant": variant, "requests_per_second": rates}
            )
        for variant in rotated(VARIANTS, round_index + 1):
            logger.info(
                "workloads: round %d/%d, nginx %s", round_index + 1, config.workload_rounds, variant
            )
            rate = nginx_round(config, work_dir, variant)
            nginx_runs.append(
                {"round": round_index, "variant": variant, "requests_per_second": rate}
            )
    return {
        "redis": {
            "requests": config.redis_requests,
            "clients": config.redis_clients,
            "commands": list(config.redis_commands),
            "runs": redis_runs,
        },
        "nginx": {
            "seconds": config.http_seconds,
            "connections": config.http_connections,
            "wrk_threads": 1,
            "nginx_workers": 1,
            "runs": nginx_runs,
        },
    }
