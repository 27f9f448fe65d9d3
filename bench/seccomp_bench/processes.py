"""Processes the benchmark starts: each in its own session, stopped by its pid, never by name.

Every process started here is a child of the benchmark, so its pid cannot be
reused before the benchmark reaps it. `stop` signals only a child that has not
been reaped yet.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# The seccomp-recorder command line, run with this interpreter so the same installed package.
RECORDER_CLI = (sys.executable, "-m", "seccomp_recorder.cli.main")
# Seconds a process gets to exit after SIGTERM before it is sent SIGKILL.
STOP_TIMEOUT = 30.0


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message names the step and where to look."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def start(
    argv: Sequence[str],
    *,
    log: Path | None = None,
    stdout: int | IO[Any] | None = None,
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session; stdout and stderr go to `log` when given."""
    if log is not None:
        with log.open("ab") as output:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(environment) if environment is not None else None,
                start_new_session=True,
            )
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        env=dict(environment) if environment is not None else None,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send `sig` to a child we started, wait for it, and return its exit status.

    SIGKILL follows when it has not exited within STOP_TIMEOUT seconds.
    """
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning(
                "process %d (%r) ignored signal %d; killing it", process.pid, process.args, sig
            )
            process.kill()
            process.wait()
    return process.returncode


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.02,
) -> float:
    """Poll `condition` until it holds; return the seconds it took.

    Raises BenchError when `timeout` seconds pass first, or when `process` exits meanwhile.
    """
    started = time.monotonic()
    while not condition():
        if process is not None and process.poll() is not None:
            raise BenchError(f"{what}: process {process.args!r} exited with {process.returncode}")
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what}: timed out after {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((LOOPBACK, port)) == 0


def run(
    argv: Sequence[str], *, timeout: float, **arguments: Any
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to its end with its output captured; raise BenchError when it fails."""
    try:
        completed = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, **arguments
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{' '.join(argv)} did not finish within {timeout} s") from error
    if completed.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited with {completed.returncode}:\n{completed.stderr[-2000:]}"
        )
    return completed


def read_proc_stat(pid: int) -> tuple[float, int]:
    """Return the CPU seconds (user + system) and the resident bytes of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields after the command name start at field 3 (state); utime and stime are 14 and 15.
    cpu_seconds = (int(fields[11]) + int(fields[12])) / ticks
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return cpu_seconds, resident_pages * os.sysconf("SC_PAGE_SIZE")
