"""The Dockerfile: lint, pins that match what the tests ran, and its build steps run here.

No image can be built on the test machines (no Docker engine), so these tests run what
the Dockerfile runs, outside Docker. They run `make bpf` and `pip wheel` on a copy of
the files that the build stage copies. They install the wheel with
requirements/runtime.txt into a fresh venv. They also check that every version the Dockerfile pins is the one the
tests use: the apt packages of this Debian 12 machine, the venv's Python, and the
venv's packages.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from prerequisites import require

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
BUILD_LOCK = ROOT / "requirements" / "build.txt"
BPF_OBJECT = "seccomp_recorder/recorder/bpf/recorder.bpf.o"
COMMANDS = ("seccomp-recorder", "seccomp-recorder-agent", "seccomp-recorder-operator")
# A Debian package pin in an apt-get install line: name=version.
APT_PIN = re.compile(r"^\s+([a-z0-9][a-z0-9.+-]+)=(\S+)\s*\\?$", re.MULTILINE)


def dockerfile() -> str:
    return DOCKERFILE.read_text()


def stage(name: str | None) -> str:
    """Return the text of the build stage `name`, or of the last stage for None."""
    stages = re.split(r"^FROM ", dockerfile(), flags=re.MULTILINE)[1:]
    if name is None:
        return stages[-1]
    (found,) = [text for text in stages if text.split("\n", 1)[0].endswith(f" AS {name}")]
    return found


def read_pins(path: Path) -> dict[str, str]:
    """Return the `name==version` lines of a requirements file, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def runtime_closure(distribution: str) -> dict[str, str]:
    """Return the installed versions of everything `distribution` needs, without extras."""
    found: dict[str, str] = {}
    pending = [distribution]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        found[name] = importlib.metadata.version(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    del found[canonicalize_name(distribution)]
    return found


def run(*command: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600,
        check=False, **options,  # type: ignore[call-overload]
    )
    assert finished.returncode == 0, f"{command} failed:\n{finished.stdout}\n{finished.stderr}"
    return finished  # type: ignore[no-any-return]


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    require(hadolint.is_file(), "hadolint is not installed: install the dev extra")
    finished = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout == ""


def test_apt_pins_match_this_machine() -> None:
    require(Path("/etc/debian_version").read_text().startswith("12."),
            "the apt pins are Debian 12 versions; this machine is not Debian 12")
    pins = dict(APT_PIN.findall(dockerfile()))
    assert set(pins) == {"clang", "libbpf-dev", "make", "libbpf1", "libseccomp2"}
    for package, version in pins.items():
        installed = run("dpkg-query", "-W", "-f=${Version}", package).stdout
        assert version == installed, f"{package}: Dockerfile pins {version}, this machine has {installed}"


def test_base_image_is_venv_python_on_bookworm() -> None:
    (version,) = re.findall(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile(), flags=re.MULTILINE)
    assert version == platform.python_version()
    bases = re.findall(r"^FROM (\S+)", dockerfile(), flags=re.MULTILINE)
    assert bases == ["python:${PYTHON_VERSION}-slim-bookworm"] * 2


def test_runtime_stage_runs_as_non_root() -> None:
    (user,) = re.findall(r"^USER (\S+)$", stage(None), flags=re.MULTILINE)
    assert user == "65532:65532"
    assert "useradd --system --uid 65532" in stage(None)


def test_runtime_lock_matches_the_venv() -> None:
    assert read_pins(RUNTIME_LOCK) == runtime_closure("seccomp-recorder"), (
        "requirements/runtime.txt differs from the venv: run scripts/lock-runtime"
    )


def test_build_lock_satisfies_build_system() -> None:
    pins = read_pins(BUILD_LOCK)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for text in requires:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in {BUILD_LOCK.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} fails {text}"


@pytest.fixture(scope="module", name="wheel")
def wheel_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel as the build stage does, from a copy of what the stage copies."""
    require(shutil.which("clang") is not None, "clang is missing: run scripts/install-deps")
    context = tmp_path_factory.mktemp("context")
    build = stage("build")
    copied = [source for line in re.findall(r"^COPY (?!--)(.+) \S+$", build, flags=re.MULTILINE)
              for source in line.split()]
    assert copied == ["requirements/", "pyproject.toml", "README.md", "Makefile", "operator/"]
    # Files that Git does not ignore, as the build context has them (.dockerignore also
    # leaves out caches and the compiled object).
    files = run("git", "ls-files", "--cached", "--others", "--exclude-standard", *copied,
                cwd=ROOT).stdout.split()
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)

    assert "RUN make bpf" in build
    run("make", "bpf", cwd=context)
    dist = tmp_path_factory.mktemp("dist")
    assert "PIP_CONSTRAINT=requirements/build.txt" in build
    run(sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--quiet",
        "--wheel-dir", dist, context,
        env={**os.environ, "PIP_CONSTRAINT": str(context / "requirements" / "build.txt")})
    (wheel,) = dist.glob("seccomp_recorder-*.whl")
    return wheel


def test_wheel_carries_bpf_object_and_commands(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert BPF_OBJECT in names
    for command in COMMANDS:
        assert f"{command} = " in scripts


def test_wheel_installs_with_runtime_lock(wheel: Path, tmp_path: Path) -> None:
    # The instructions with their continued lines joined.
    build = re.sub(r"\s*\\\n\s*", " ", stage("build"))
    assert "pip install --no-cache-dir --no-deps --requirement requirements/runtime.txt" in build
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    pip = environment / "bin" / "pip"
    run(pip, "install", "--quiet", "--no-deps", "--requirement", RUNTIME_LOCK)
    run(pip, "install", "--quiet", "--no-deps", wheel)
    run(pip, "check")
    for command in COMMANDS:
        assert "usage:" in run(environment / "bin" / command, "--help").stdout
    agent = run(environment / "bin" / "python", "-m", "seccomp_recorder.agent", "--help")
    assert "--node-name" in agent.stdout
