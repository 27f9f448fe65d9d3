"""The benchmark page and its plots are rendered from the results JSON alone."""

from __future__ import annotations

import json
from pathlib import Path

from bench_samples import results, syscall_cost_section

from prerequisites import require
from seccomp_bench import plots, report
from seccomp_bench.__main__ import main as bench_main

REPOSITORY = Path(__file__).resolve().parents[2]
COMMITTED_PAGE = REPOSITORY / "docs" / "benchmarks.md"
COMMITTED_RESULTS = REPOSITORY / "docs" / "benchmarks" / "results.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(page: str, first_cell: str) -> list[str]:
    """Return the cells of the first table row whose first cell is `first_cell`."""
    for line in page.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starts with {first_cell!r}")


def test_page_states_run_and_machine() -> None:
    page = report.render_page(results())

    assert page.startswith("# Benchmarks\n")
    assert "Run on 2026-12-04 (21:00 UTC) with `make bench`" in page
    assert "which took 20.0 minutes" in page
    assert _row(page, "CPU") == ["CPU", "Test CPU, 2 CPUs (virtual machine)"]
    assert _row(page, "Memory") == ["Memory", "8.0 GiB"]
    assert _row(page, "crun") == ["crun", "not installed"]
    assert "not a full run" not in page


def test_page_names_measured_commit() -> None:
    document = results()
    document["source"] = {"commit": "0123456789ab", "dirty": True}

    page = report.render_page(document)

    assert "It measured commit 0123456789ab with uncommitted changes in the working tree." in page


def test_page_marks_quick_run() -> None:
    document = results()
    document["configuration"] = "quick"

    assert "**This is not a full run" in report.render_page(document)


def test_headline_from_raw_runs() -> None:
    page = report.render_page(results())

    floor = _row(page, "Empty eBPF program on sys_enter (the floor), getppid: added time per call")
    assert floor[1] == "+100 ns (1.50× untraced)"
    assert floor[2] == "80.0 – 120 ns"
    recorded = _row(page, "recorder, recorded process, getppid: added time per call")
    assert recorded[1] == "+300 ns; 3.00× the floor"
    strace = _row(page, "strace -f, getppid: added time per call")
    assert strace[1] == "+40,000 ns; 400× the floor"
    assert _row(page, "redis throughput recorded / untraced (SET)")[1:] == [
        "0.85×",
        "0.80× – 0.90×",
    ]


def test_headline_counts_missing_calls() -> None:
    page = report.render_page(results())

    assert (
        _row(page, "Calls strace -f saw that a recorded profile lacks")[1] == "1 (in 2 workloads)"
    )
    assert (
        _row(page, "Calls SCMP_ACT_LOG saw that a recorded profile lacks")[1]
        == "0 (in 2 workloads)"
    )
    unexplained = _row(
        page, "Calls a recorded profile allows that no ground truth saw, with no known cause"
    )
    assert unexplained[1] == "1 (in 1 of 2 workloads)"
    docker = _row(page, "Profile size / calls Docker's default profile allows (300)")
    assert docker[1] == "10% – 20%"


def test_syscall_tables_per_loop() -> None:
    page = report.render_page(results())

    assert "### `getppid` loop" in page
    assert "### `read` loop" in page
    untraced = _row(page, "untraced")
    assert untraced[1] == "200"
    recorded = _row(page, "recorder, recorded process")
    assert recorded[1:5] == ["500", "+300", "230 – 330; 160 – 360", "2.50×"]
    assert recorded[5:7] == ["3.00×", "2.00× – 3.00×"]
    assert recorded[8] == "0"
    assert "200,000 under strace" in page


def test_fidelity_lists_reasons() -> None:
    page = report.render_page(results())

    assert _row(page, "busybox-runc")[1:] == ["60", "20%", "50 / 1 / 2", "58 / 0 / 1"]
    assert "missing getpid; extra futex (runc makes it after installing" in page
    assert "mystery (no ground truth run saw it and no known cause covers it)" in page
    assert "tgkill (in runc's measured post-filter set" in page
    assert "overflowed 2 times during the SCMP_ACT_LOG run" in page


def test_control_plane_latencies_and_usage() -> None:
    page = report.render_page(results())

    assert _row(page, "create request → status phase Installed")[1:] == [
        "500 ms",
        "300 ms – 1.50 s",
        "3",
    ]
    assert _row(page, "container exit → SeccompProfile with its calls")[1:] == [
        "300 ms",
        "250 ms – 350 ms",
        "2",
    ]
    assert "All 200 files were on disk after 4.00 s (50 files/s)" in page
    assert "every profile was Installed after 5.00 s (20 profiles/s)" in page
    assert _row(page, "installing 100 profiles")[1:] == [
        "40.0", "100", "15.0 / 20.0", "70 / 71", "80.0",
    ]


def test_control_plane_headline() -> None:
    page = report.render_page(results())

    assert _row(page, "SeccompProfile create request to phase Installed (2 nodes)")[1] == "500 ms"
    assert _row(page, "Resident memory while idle: operator / one agent (median)")[1] == (
        "100 MiB / 70 MiB"
    )


def test_disturbed_round_left_out() -> None:
    section = syscall_cost_section()
    for run in section["runs"]:
        run["sys_enter_links_after"] = run["sys_enter_links_before"]
        if run["variant"] == "cli_recorded" and run["round"] == 2:
            run["sys_enter_links_after"] = 1

    page = report.render_page(results(syscall_cost=section))

    recorded = _row(page, "recorder, recorded process")
    assert recorded[2] == "+330"
    assert recorded[8] == "1"


def test_page_without_parts() -> None:
    page = report.render_page(results(syscall_cost=syscall_cost_section()))

    assert "## 1. Recorder overhead per syscall" in page
    assert "## 2." not in page
    assert "## 3." not in page
    assert "## 4." not in page


def test_plots_written_as_png(tmp_path: Path) -> None:
    drawn = plots.render_plots(results(), tmp_path)

    assert sorted(path.name for path in drawn) == [
        "control_plane.png",
        "syscall_cost.png",
        "workloads.png",
    ]
    for path in drawn:
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_render_command_rewrites_page(tmp_path: Path) -> None:
    data_dir = tmp_path / "benchmarks"
    data_dir.mkdir()
    (data_dir / "results.json").write_text(json.dumps(results()))

    status = bench_main(["render", "--output", str(tmp_path)])

    assert status == 0
    assert (tmp_path / "benchmarks.md").read_text() == report.render_page(results())
    assert (data_dir / "syscall_cost.png").is_file()
    assert (data_dir / "workloads.png").is_file()


def test_committed_page_matches_results() -> None:
    require(COMMITTED_RESULTS.is_file(), f"{COMMITTED_RESULTS} is missing: run make bench")
    document = json.loads(COMMITTED_RESULTS.read_text())

    assert COMMITTED_PAGE.read_text() == report.render_page(document), (
        "docs/benchmarks.md differs from what its results.json renders: run"
        " `PYTHONPATH=bench:devcluster .venv/bin/python -m seccomp_bench render --output docs`"
    )
    for name in ("syscall_cost.png", "workloads.png", "control_plane.png"):
        assert (COMMITTED_RESULTS.parent / name).is_file(), f"plot {name} is not committed"
