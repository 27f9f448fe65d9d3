"""docs/examples/: the GitHub Actions workflow is a valid workflow that our CLI accepts."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import yaml
from doc_blocks import DOCS

from seccomp_recorder.cli.main import build_parser

WORKFLOW = DOCS / "examples" / "github-actions.yml"


def load_workflow() -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return document


def steps() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for job in load_workflow()["jobs"].values():
        found += job["steps"]
    return found


def test_workflow_has_trigger_and_jobs() -> None:
    workflow = load_workflow()
    # YAML 1.1, which PyYAML reads, turns the key `on` into True.
    assert True in workflow or "on" in workflow
    assert workflow["jobs"]
    for job in workflow["jobs"].values():
        assert job["runs-on"]
        assert job["steps"]


def test_every_step_uses_or_runs() -> None:
    for step in steps():
        assert ("uses" in step) != ("run" in step), step.get("name")
        assert step.get("name"), step


def test_run_steps_parse_as_bash() -> None:
    for step in steps():
        if "run" in step:
            finished = subprocess.run(
                ["bash", "-n", "-c", step["run"]], capture_output=True, text=True, check=False
            )
            assert finished.returncode == 0, f"{step['name']}: {finished.stderr}"


def test_recorder_commands_parse() -> None:
    parser = build_parser()
    commands = []
    for step in steps():
        text = step.get("run", "").replace("\\\n", " ")
        for line in text.splitlines():
            words = shlex.split(line)
            if "seccomp-recorder" in words:
                commands.append(words[words.index("seccomp-recorder") + 1:])
    subcommands = [command[0] for command in commands]
    assert "record" in subcommands
    assert "diff" in subcommands
    for command in commands:
        parser.parse_args(command)
