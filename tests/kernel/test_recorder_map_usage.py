"""The recorder's map usage: entries and capacity of the maps that can fill up."""

from __future__ import annotations

import subprocess

import pytest

from seccomp_recorder.recorder.recorder import FILLING_MAPS, MapUsage, Mode, Recorder

pytestmark = pytest.mark.kernel


def test_usage_counts_followed_tasks(recording_host: None) -> None:
    with Recorder(Mode.COMMAND_TREE) as recorder:
        idle = recorder.map_usage()
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            recorder.track(sleeper.pid)
            busy = recorder.map_usage()
            tracked = recorder.tracked_tasks()
        finally:
            sleeper.kill()
            sleeper.wait()

    assert set(idle) == set(FILLING_MAPS)
    assert idle["task_states"].entries == 0
    assert busy["task_states"].entries == tracked
    assert busy["task_states"].entries >= 1
    # The capacities declared in bpf/recorder.bpf.c.
    assert busy["task_states"].max_entries == 65536
    assert busy["syscall_sets"].max_entries == 8192


def test_usage_counts_recorded_namespaces(recording_host: None) -> None:
    with Recorder(Mode.COMMAND_TREE) as recorder:
        child = subprocess.Popen(["sleep", "0.5"])
        recorder.track(child.pid)
        child.wait()
        usage = recorder.map_usage()
        recorded = recorder.snapshot()

    # One key per mount namespace, phase and ABI that made calls.
    keys = sum(
        1 for recording in recorded.values() for by_abi in recording.numbers.values()
        for numbers in by_abi.values() if numbers
    )
    assert usage["syscall_sets"].entries == keys


def test_fill_ratio_divides_entries_by_capacity() -> None:
    assert MapUsage(entries=2048, max_entries=8192).fill_ratio == 0.25
    assert MapUsage(entries=0, max_entries=0).fill_ratio == 0.0
