"""Every command in docs/ is run or checked, as its marker requests (see doc_blocks.py).

`make docs-check` runs this file; `make test` runs it with the rest of the suite.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from doc_blocks import IN_REPOSITORY, MODES, ROOT, Block, blocks, pages, script, shell_blocks

from prerequisites import require
from seccomp_recorder.models.profile import SeccompProfile
from seccomp_recorder.models.recording import SeccompRecording
from seccomp_recorder.recorder.recorder import DEFAULT_BTF_PATH, DEFAULT_OBJECT_PATH

# Seconds one page's script may run; `make demo` alone takes about a minute.
SCRIPT_TIMEOUT = 900
VENV_BIN = Path(sys.executable).parent
CHART = ROOT / "charts" / "seccomp-recorder"
# Options of `helm install` that `helm template` does not take, with whether each takes a value.
INSTALL_ONLY_OPTIONS = {
    "--create-namespace": False,
    "--wait": False,
    "--wait-for-jobs": False,
    "--atomic": False,
    "--timeout": True,
    "--install": False,
}
MODELS = {"SeccompProfile": SeccompProfile, "SeccompRecording": SeccompRecording}


def pages_with(mode: str) -> list[Path]:
    return [page for page in pages() if any(block.mode == mode for block in blocks(page))]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def run_script(page: Path, mode: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run the page's blocks of `mode` as one bash script in `directory`."""
    environment = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "CHECK_REPOSITORY": str(ROOT),
        "CHECK_SCRATCH": str(directory),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script(page, mode)],
        cwd=directory, env=environment, capture_output=True, text=True,
        timeout=SCRIPT_TIMEOUT, check=False,
    )


def test_every_shell_block_has_a_marker() -> None:
    unmarked = [block.where for block in shell_blocks() if block.mode not in MODES]
    assert unmarked == [], "add <!-- check: MODE --> before these blocks (see tests/docs)"


def test_markers_use_known_options() -> None:
    for block in shell_blocks():
        assert block.options <= {IN_REPOSITORY}, f"{block.where}: unknown option"
        if IN_REPOSITORY in block.options:
            assert block.mode in ("run", "root"), f"{block.where}: only run blocks have a folder"


@pytest.mark.parametrize("page", pages_with("run"), ids=page_id)
def test_run_blocks_succeed(page: Path, tmp_path: Path) -> None:
    finished = run_script(page, "run", tmp_path)
    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.mark.kernel
@pytest.mark.parametrize("page", pages_with("root"), ids=page_id)
def test_root_blocks_succeed(page: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "these commands load eBPF programs and need root")
    require(DEFAULT_BTF_PATH.is_file(), f"recording needs the kernel's BTF at {DEFAULT_BTF_PATH}")
    require(DEFAULT_OBJECT_PATH.is_file(), "recording needs the BPF object: run `make bpf`")

    finished = run_script(page, "root", tmp_path)

    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.mark.parametrize("mode", ["cluster", "syntax"])
def test_unrun_blocks_parse(mode: str) -> None:
    for page in pages_with(mode):
        finished = subprocess.run(
            ["bash", "-n", "-c", script(page, mode)], capture_output=True, text=True, check=False
        )
        assert finished.returncode == 0, f"{page_id(page)}: {finished.stderr}"


def cluster_commands() -> list[tuple[str, list[str]]]:
    """Return every command of the cluster blocks, split into words, with its location."""
    commands = []
    for block in shell_blocks():
        if block.mode != "cluster":
            continue
        text = block.text.replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append((block.where, shlex.split(line, comments=True)))
    return commands


# kubectl's options that take a value, as the docs write them before the subcommand.
KUBECTL_VALUE_OPTIONS = frozenset({"-n", "--namespace", "--context", "--kubeconfig"})


def kubectl_subcommand(words: list[str]) -> str:
    """Return the subcommand of a kubectl command line, after its global options."""
    index = 1
    while index < len(words) and words[index].startswith("-"):
        takes_value = words[index] in KUBECTL_VALUE_OPTIONS
        index += 2 if takes_value else 1
    return words[index] if index < len(words) else ""


def test_cluster_kubectl_subcommands_exist() -> None:
    kubectl = [(where, words) for where, words in cluster_commands() if words[:1] == ["kubectl"]]
    assert kubectl, "no kubectl command in the cluster blocks"
    for where, words in kubectl:
        subcommand = kubectl_subcommand(words)
        finished = subprocess.run(
            ["kubectl", subcommand, "--help"], capture_output=True, text=True, check=False
        )
        assert finished.returncode == 0, f"{where}: kubectl {subcommand} is no kubectl command"


def template_arguments(words: list[str]) -> list[str]:
    """Turn `helm install|upgrade --install NAME CHART OPTIONS` into `helm template` arguments."""
    rest = words[2:]
    arguments = []
    index = 0
    while index < len(rest):
        word = rest[index]
        option = word.split("=", 1)[0]
        if option in INSTALL_ONLY_OPTIONS:
            index += 2 if INSTALL_ONLY_OPTIONS[option] and "=" not in word else 1
            continue
        arguments.append(word)
        index += 1
    return ["template", *arguments]


def test_cluster_helm_installs_render() -> None:
    installs = [
        (where, words) for where, words in cluster_commands()
        if words[:2] in (["helm", "install"], ["helm", "upgrade"])
    ]
    require(CHART.is_dir(), f"the chart {CHART} is missing")
    helm = VENV_BIN / "helm"
    require(helm.is_file(), "helm is not installed: run scripts/install-helm")
    for where, words in installs:
        finished = subprocess.run(
            [str(helm), *template_arguments(words)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )
        assert finished.returncode == 0, f"{where}: {finished.stderr}"
        assert "kind: Deployment" in finished.stdout, where


def yaml_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page) if block.language in ("yaml", "yml")]


def test_yaml_blocks_parse_and_validate() -> None:
    for block in yaml_blocks():
        try:
            documents = [document for document in yaml.safe_load_all(block.text) if document]
        except yaml.YAMLError as error:
            pytest.fail(f"{block.where}: {error}")
        for document in documents:
            model = MODELS.get(document.get("kind", "")) if isinstance(document, dict) else None
            if model is not None:
                model.model_validate(document)
