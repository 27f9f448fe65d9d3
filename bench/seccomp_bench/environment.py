"""The run's setting as the page states it: the machine, the kernel and the tools' versions.

Also counts the BPF programs that other processes have attached to the
sys_enter tracepoint, because the benchmark shares the machine and such a
program makes every syscall slower, the baseline's included.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Each tool's version command; the first line of its output (stdout or stderr) is kept.
VERSION_COMMANDS: dict[str, list[str]] = {
    "runc": ["runc", "--version"],
    "crun": ["crun", "--version"],
    "redis": ["redis-server", "--version"],
    "clang": ["clang", "--version"],
    "gcc": ["gcc", "--version"],
    "strace": ["strace", "-V"],
    "nginx": ["nginx", "-v"],
    "wrk": ["wrk", "-v"],
    "bpftool": ["bpftool", "version"],
}
# Debian packages whose version stands for a library with no version command.
PACKAGE_VERSIONS = {"libbpf": "libbpf1", "libseccomp": "libseccomp2"}
COMMAND_TIMEOUT = 10.0


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning("cannot read the version of %s: %s", argv[0], error)
        return None
    for line in (completed.stdout + "\n" + completed.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def _package_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    completed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _hypervisor() -> str | None:
    try:
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return None
    return "yes" if " hypervisor" in flags else "no"


def machine() -> dict[str, Any]:
    """Describe the CPU, cores, memory, kernel and operating system."""
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count() or 0,
        "memory_bytes": _memory_bytes(),
        "kernel": platform.release(),
        "architecture": platform.machine(),
        "os": _os_name(),
        "virtual_machine": _hypervisor(),
    }


def versions() -> dict[str, str | None]:
    """Return each tool's version line, or None when the tool is not installed."""
    found: dict[str, str | None] = {
        name: _first_line(argv) for name, argv in VERSION_COMMANDS.items()
    }
    for name, package in PACKAGE_VERSIONS.items():
        found[name] = _package_version(package)
    found["python"] = sys.version.split()[0]
    return found


def sys_enter_links() -> int | None:
    """Count the BPF links attached to the sys_enter raw tracepoint (None without bpftool)."""
    if shutil.which("bpftool") is None:
        return None
    completed = subprocess.run(
        ["bpftool", "-j", "link", "list"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        logger.warning("bpftool link list failed: %s", completed.stderr.strip())
        return None
    links = json.loads(completed.stdout or "[]")
    return sum(1 for link in links if link.get("tp_name") == "sys_enter")


def source(repository: Path) -> dict[str, Any] | None:
    """Return the commit the working tree is at, and whether tracked files differ from it."""
    if shutil.which("git") is None:
        return None
    head = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if head.returncode != 0:
        return None
    status = subprocess.run(
        ["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
