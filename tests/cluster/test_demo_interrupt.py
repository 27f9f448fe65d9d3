"""scripts/demo-cluster stops on Ctrl-C and cleans up, also when Ctrl-C comes twice.

The SIGINTs go to the script's bash alone, not to its process group. For bash this is
the same as a user's Ctrl-C while the command it waits for (kubectl, for one) handles
SIGINT and exits normally. The script's background processes then stop through the
script's own clean-up.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH

pytestmark = pytest.mark.cluster

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO = REPOSITORY / "scripts" / "demo-cluster"
# Seconds for the demo to reach its replicas, and for it to stop after Ctrl-C.
START_TIMEOUT = 180.0
STOP_TIMEOUT = 120.0
WORK_DIRECTORY = re.compile(r"(/tmp/seccomp-recorder-demo\.\w+)/recording\.yaml")


def wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes]) -> str:
    """Return the content of `path` once it contains `text`; fail if the process ends first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            pytest.fail(f"the demo exited with {process.returncode} before {text!r}:\n{content}")
        time.sleep(0.2)
    pytest.fail(f"{text!r} did not appear in {path} within {START_TIMEOUT} s")


def mounted_under(directory: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        targets = [line.split()[4] for line in mountinfo]
    return [target for target in targets if target.startswith(directory)]


def processes_naming(directory: str) -> list[int]:
    """Return the pids whose command line or environment contains `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if directory.encode() in text:
            found.append(int(entry.name))
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Start the demo with its output in a file; remove whatever it leaves behind."""
    require(os.geteuid() == 0, "the demo needs root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    for tool in ("kubectl", "runc", "redis-server", "redis-benchmark", "redis-cli", "nsenter"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    output = tmp_path / "demo.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(DEMO)], cwd=REPOSITORY, stdin=subprocess.DEVNULL, stdout=sink,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield process, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        match = WORK_DIRECTORY.search(output.read_text(errors="replace"))
        if match is not None:
            for pid in processes_naming(match.group(1)):
                os.kill(pid, signal.SIGKILL)
            for target in sorted(mounted_under(match.group(1)), reverse=True):
                subprocess.run(["umount", "-l", target], check=False)
            shutil.rmtree(match.group(1), ignore_errors=True)


def test_demo_interrupted_twice_cleans_up(
    demo: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, output = demo
    content = wait_for_text(output, "== Run three redis replicas", process)
    match = WORK_DIRECTORY.search(content)
    assert match is not None, content
    work = Path(match.group(1))

    # The first Ctrl-C lands while bash waits for a command of the replicas' section.
    os.kill(process.pid, signal.SIGINT)
    # The second one lands in the clean-up, while it waits for the dev cluster to stop.
    wait_for_text(work / "devcluster.log", "Received SIGTERM", process)
    os.kill(process.pid, signal.SIGINT)
    process.wait(timeout=STOP_TIMEOUT)

    log = output.read_text(errors="replace")
    assert process.returncode == 130, log
    assert "== Stop the recording" not in log
    assert mounted_under(str(work)) == []
    assert not work.exists()
    assert processes_naming(str(work)) == []
