"""Seccomp profiles for pod containers, resolved as the kubelet and containerd do.

- The container's `securityContext.seccompProfile` wins over the pod's.
- `Localhost` reads `<kubelet root>/seccomp/<localhostProfile>` at every container
  start. A missing or unreadable file fails the container with CreateContainerError
  and containerd's message.
- `RuntimeDefault` is Docker/Moby's default profile, resolved for this machine's
  architecture, the container's capabilities and the running kernel.
- `Unconfined`, or no profile at all, means no filter. The kubelet's
  `--seccomp-default` flag (the node's `seccomp_default` setting) makes RuntimeDefault
  the default instead.
- A privileged container runs unconfined whatever profile it sets, as in containerd.
"""

from __future__ import annotations

import json
import os
import platform
from functools import cache
from pathlib import Path
from typing import Any

MOBY_DEFAULT_PROFILE = Path(__file__).parent.parent / "data" / "docker-default-seccomp.json"

# `uname -m` to Go's GOARCH, the architecture names that Moby's `includes.arches` use.
GO_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loongarch64": "loong64",
}

# GOARCH to libseccomp's architecture token, as Moby's seccomp loader maps them.
SECCOMP_ARCHITECTURES = {
    "amd64": "SCMP_ARCH_X86_64",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "386": "SCMP_ARCH_X86",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "mips64": "SCMP_ARCH_MIPS64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
}


class CreateContainerError(Exception):
    """The container cannot be created; the message is what the kubelet reports."""


def _go_error_text(error: OSError) -> str:
    """Format an OSError as Go's os package does: `open PATH: no such file or directory`."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    return f"open {error.filename}: {reason[:1].lower()}{reason[1:]}"


def load_localhost_profile(kubelet_root: Path, localhost_profile: str) -> dict[str, Any]:
    """Read a Localhost profile from `<kubelet_root>/seccomp/`.

    Raises CreateContainerError with containerd's wording when the file is missing,
    unreadable, not JSON, or resolves outside the seccomp directory.
    """
    seccomp_root = (kubelet_root / "seccomp").resolve()
    path = seccomp_root / localhost_profile
    prefix = "failed to create containerd container: cannot load seccomp profile"
    if not path.resolve().is_relative_to(seccomp_root):
        raise CreateContainerError(
            f"{prefix} {str(path)!r}: the path is outside the seccomp directory {seccomp_root}")
    try:
        text = path.read_text()
    except OSError as error:
        raise CreateContainerError(f'{prefix} "{path}": {_go_error_text(error)}') from error
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as error:
        raise CreateContainerError(
            f'failed to create containerd container: decoding seccomp profile "{path}" '
            f"failed: {error}") from error
    if not isinstance(profile, dict):
        raise CreateContainerError(
            f'failed to create containerd container: seccomp profile "{path}" is not a '
            "JSON object")
    return profile


def native_architecture(machine: str | None = None) -> str:
    """Return the GOARCH name of `machine` (default: this machine's `uname -m`)."""
    machine = machine or platform.machine()
    try:
        return GO_ARCHITECTURES[machine]
    except KeyError:
        raise ValueError(f"machine architecture {machine!r} has no seccomp mapping; add it "
                         "to GO_ARCHITECTURES and SECCOMP_ARCHITECTURES") from None


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """Return (major, minor) of a kernel release string such as "6.18.44-fc"."""
    release = release or platform.release()
    major, minor = release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _parse_min_kernel(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def _rule_applies(rule: dict[str, Any], arch: str, capabilities: set[str],
                  kernel: tuple[int, int]) -> bool:
    """Apply Moby's `includes` (all must hold) and `excludes` (any one drops the rule)."""
    excludes = rule.get("excludes") or {}
    if arch in excludes.get("arches", []):
        return False
    if capabilities & set(excludes.get("caps", [])):
        return False
    if "minKernel" in excludes and kernel >= _parse_min_kernel(excludes["minKernel"]):
        return False

    includes = rule.get("includes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if not set(includes.get("caps", [])) <= capabilities:
        return False
    return "minKernel" not in includes or kernel >= _parse_min_kernel(includes["minKernel"])


def resolve_moby_profile(profile: dict[str, Any], capabilities: list[str], *,
                         machine: str | None = None,
                         kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """Turn a profile in Moby's format into a plain OCI LinuxSeccomp section.

    `architectures` come from the `archMap` entry of the native architecture (with
    its sub-architectures), and each rule is kept only when its `includes` and
    `excludes` match the architecture, the capabilities and the kernel version.
    """
    arch = native_architecture(machine)
    running_kernel = kernel or kernel_version()
    caps = set(capabilities)

    architectures: list[str] = []
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == SECCOMP_ARCHITECTURES[arch]:
            architectures = [entry["architecture"], *entry.get("subArchitectures", [])]

    syscalls = []
    for rule in profile.get("syscalls", []):
        if not _rule_applies(rule, arch, caps, running_kernel):
            continue
        resolved: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        for key in ("args", "errnoRet"):
            if rule.get(key) is not None:
                resolved[key] = rule[key]
        syscalls.append(resolved)

    result: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    for key in ("defaultErrnoRet", "listenerPath", "listenerMetadata", "flags"):
        if profile.get(key) is not None:
            result[key] = profile[key]
    if architectures:
        result["architectures"] = architectures
    result["syscalls"] = syscalls
    return result


@cache
def _moby_default_profile() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(MOBY_DEFAULT_PROFILE.read_text())
    return result


def runtime_default_profile(capabilities: list[str]) -> dict[str, Any]:
    """Return the RuntimeDefault profile for a container with `capabilities`."""
    return resolve_moby_profile(_moby_default_profile(), capabilities)


def effective_seccomp_profile(pod_spec: dict[str, Any],
                              container: dict[str, Any]) -> dict[str, Any] | None:
    """Return the seccompProfile that applies to `container` (container level wins)."""
    container_context = container.get("securityContext") or {}
    if container_context.get("seccompProfile"):
        profile: dict[str, Any] = container_context["seccompProfile"]
        return profile
    pod_context = pod_spec.get("securityContext") or {}
    pod_profile: dict[str, Any] | None = pod_context.get("seccompProfile")
    return pod_profile or None


def seccomp_for_container(pod_spec: dict[str, Any], container: dict[str, Any], *,
                          kubelet_root: Path, capabilities: list[str], privileged: bool,
                          seccomp_default: bool = False) -> dict[str, Any] | None:
    """Return the OCI seccomp section for `container`, or None for no filter.

    Raises CreateContainerError for a Localhost profile that cannot be loaded.
    """
    if privileged:
        return None
    profile = effective_seccomp_profile(pod_spec, container)
    if profile is not None:
        kind = profile.get("type")
    elif seccomp_default:
        kind = "RuntimeDefault"
    else:
        kind = None
    if kind is None or kind == "Unconfined":
        return None
    if kind == "RuntimeDefault":
        return runtime_default_profile(capabilities)
    if kind == "Localhost":
        assert profile is not None
        name = profile.get("localhostProfile")
        if not name:
            raise CreateContainerError(
                "failed to create containerd container: localhostProfile must be set for a "
                "Localhost seccomp profile")
        return load_localhost_profile(kubelet_root, name)
    raise CreateContainerError(
        f"failed to create containerd container: unknown seccomp profile type {kind!r}")
