"""The GitOps guide's health checks: the Argo CD Lua script and the Flux CEL expressions.

Both are taken from docs/gitops.md as written there, and run against SeccompProfiles in
each phase: the Lua script with Debian's lua5.1 (Argo CD's gopher-lua is a Lua 5.1), the
CEL expressions with cel-python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import celpy
import pytest
import yaml
from doc_blocks import DOCS, blocks

from prerequisites import require

GUIDE = DOCS / "gitops.md"
HEALTH_KEY = "resource.customizations.health.seccomp-recorder.io_SeccompProfile"


def documents(kind: str) -> list[dict[str, Any]]:
    found = []
    for block in blocks(GUIDE):
        if block.language == "yaml":
            found += [doc for doc in yaml.safe_load_all(block.text) if doc and doc.get("kind") == kind]
    return found


def lua_literal(value: Any) -> str:
    """Write `value`, decoded JSON, as a Lua expression (tables for objects and lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes (\", \\, \n) are valid in Lua strings.
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    items = [f"[{json.dumps(key)}] = {lua_literal(item)}" for key, item in value.items() if item is not None]
    return "{" + ", ".join(items) + "}"


def profile(generation: int = 2, **status: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "redis", "namespace": "redis", "generation": generation},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
    }
    if status:
        document["status"] = status
    return document


def condition(kind: str, status: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": "Test", "message": message}


VALID = condition("Valid", "True", "the profile passed every check")
CASES = [
    ("no status", profile(), "Progressing", "waiting for the operator to report the profile's status"),
    (
        "installed",
        profile(phase="Installed", observedGeneration=2,
                conditions=[VALID, condition("Installed", "True", "installed on all 3 nodes")]),
        "Healthy", "installed on all 3 nodes",
    ),
    (
        "stale generation",
        profile(phase="Installed", observedGeneration=1, conditions=[VALID]),
        "Progressing", "waiting for the operator to check generation 2",
    ),
    (
        "partial",
        profile(phase="Partial", observedGeneration=2,
                conditions=[VALID, condition("Installed", "False", "installed on 1 of 3 nodes")]),
        "Progressing", "installed on 1 of 3 nodes",
    ),
    (
        "invalid",
        profile(phase="Error", observedGeneration=2,
                conditions=[condition("Valid", "False", "unknown syscall \"frobnicate\""),
                            condition("Installed", "False", "the profile is invalid")]),
        "Degraded", "unknown syscall \"frobnicate\"",
    ),
    (
        "node error",
        profile(phase="Error", observedGeneration=2,
                conditions=[VALID, condition("Installed", "False", "installation failed on node-2")]),
        "Degraded", "installation failed on node-2",
    ),
    ("terminating", profile(phase="Terminating", observedGeneration=2), "Progressing", "Terminating"),
]


@pytest.fixture(scope="module")
def health_script() -> str:
    (config_map,) = documents("ConfigMap")
    script: str = config_map["data"][HEALTH_KEY]
    return script


@pytest.mark.parametrize(("case", "obj", "status", "message"), CASES, ids=[case[0] for case in CASES])
def test_argocd_health_check(
    health_script: str, case: str, obj: dict[str, Any], status: str, message: str
) -> None:
    lua = shutil.which("lua5.1")
    require(lua is not None, "lua5.1 is not installed: run scripts/install-deps")
    assert lua is not None
    # Argo CD runs the script as a chunk with the object in the global `obj`.
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local health = (function()\n{health_script}\nend)()\n"
        "io.write(health.status, '\\n', health.message or '', '\\n')\n"
    )

    finished = subprocess.run([lua, "-"], input=program, capture_output=True, text=True, check=False)

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [status, message]


FLUX_CASES = [
    (profile(), "inProgress"),
    (profile(phase="Pending", observedGeneration=2), "inProgress"),
    (profile(phase="Partial", observedGeneration=2), "inProgress"),
    (profile(phase="Installed", observedGeneration=2), "current"),
    (profile(phase="Error", observedGeneration=2), "failed"),
]


@pytest.mark.parametrize(("obj", "expected"), FLUX_CASES)
def test_flux_health_expressions(obj: dict[str, Any], expected: str) -> None:
    (kustomization,) = documents("Kustomization")
    (check,) = kustomization["spec"]["healthCheckExprs"]
    environment = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    # NOTE: before the operator writes a status, Flux finds no `status` at all and waits
    # for the expressions to resolve. Here an empty status stands for that case.
    activation.setdefault("status", celpy.json_to_cel({}))

    outcomes = {}
    for name in ("inProgress", "failed", "current"):
        program = environment.program(environment.compile(check[name]))
        outcomes[name] = bool(program.evaluate(activation))

    assert [name for name, matched in outcomes.items() if matched] == [expected]
