"""Seccomp resolution for pod containers: Moby's default profile and Localhost files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seccomp_devcluster import oci
from seccomp_devcluster.node import seccomp
from seccomp_devcluster.node.seccomp import CreateContainerError


def allowed_names(profile: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for rule in profile["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
            names.update(rule["names"])
    return names


def test_runtime_default_for_x86_64() -> None:
    profile = seccomp.resolve_moby_profile(seccomp._moby_default_profile(),
                                           list(oci.DEFAULT_CAPABILITIES),
                                           machine="x86_64", kernel=(6, 18))

    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert "archMap" not in profile
    assert all("includes" not in rule and "excludes" not in rule
               for rule in profile["syscalls"])


def test_runtime_default_denies_unshare_and_mount() -> None:
    profile = seccomp.runtime_default_profile(list(oci.DEFAULT_CAPABILITIES))

    names = allowed_names(profile)

    assert "unshare" not in names
    assert "mount" not in names
    assert "read" in names
    assert "arch_prctl" in names


def test_cap_sys_admin_includes_its_rules() -> None:
    caps = [*oci.DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]

    profile = seccomp.resolve_moby_profile(seccomp._moby_default_profile(), caps,
                                           machine="x86_64", kernel=(6, 18))

    names = allowed_names(profile)
    assert {"unshare", "mount", "clone3"} <= names
    clone3_errno = [rule for rule in profile["syscalls"]
                    if rule["names"] == ["clone3"] and rule["action"] == "SCMP_ACT_ERRNO"]
    assert clone3_errno == []


def test_default_caps_get_clone3_enosys() -> None:
    profile = seccomp.runtime_default_profile(list(oci.DEFAULT_CAPABILITIES))

    clone3 = [rule for rule in profile["syscalls"] if rule["names"] == ["clone3"]]

    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_arch_includes_follow_machine() -> None:
    arm = seccomp.resolve_moby_profile(seccomp._moby_default_profile(), [],
                                       machine="aarch64", kernel=(6, 1))

    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed_names(arm)
    assert "cacheflush" in allowed_names(arm)


def test_min_kernel_rules() -> None:
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
        {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
    ]}

    old = seccomp.resolve_moby_profile(profile, [], machine="x86_64", kernel=(4, 19))
    new = seccomp.resolve_moby_profile(profile, [], machine="x86_64", kernel=(5, 10))

    assert allowed_names(old) == {"old_call"}
    assert allowed_names(new) == {"new_call"}


def test_unknown_machine_raises() -> None:
    with pytest.raises(ValueError, match="'sparc64' has no seccomp mapping"):
        seccomp.native_architecture("sparc64")


def test_kernel_version_parses_release() -> None:
    assert seccomp.kernel_version("6.18.44-fc-v1272") == (6, 18)
    assert seccomp.kernel_version("5.4.0") == (5, 4)


def test_localhost_profile_loads(tmp_path: Path) -> None:
    (tmp_path / "seccomp" / "team").mkdir(parents=True)
    (tmp_path / "seccomp" / "team" / "p.json").write_text('{"defaultAction": "SCMP_ACT_LOG"}')

    profile = seccomp.load_localhost_profile(tmp_path, "team/p.json")

    assert profile == {"defaultAction": "SCMP_ACT_LOG"}


def test_missing_localhost_profile_message(tmp_path: Path) -> None:
    path = tmp_path / "seccomp" / "absent.json"

    with pytest.raises(CreateContainerError) as raised:
        seccomp.load_localhost_profile(tmp_path, "absent.json")

    assert str(raised.value) == (
        f'failed to create containerd container: cannot load seccomp profile "{path}": '
        f"open {path}: no such file or directory")


def test_localhost_profile_outside_root(tmp_path: Path) -> None:
    (tmp_path / "seccomp").mkdir()
    (tmp_path / "secret.json").write_text("{}")

    with pytest.raises(CreateContainerError, match="outside the seccomp directory"):
        seccomp.load_localhost_profile(tmp_path, "../secret.json")


def test_invalid_localhost_json(tmp_path: Path) -> None:
    (tmp_path / "seccomp").mkdir()
    (tmp_path / "seccomp" / "bad.json").write_text("{not json")

    with pytest.raises(CreateContainerError, match="decoding seccomp profile"):
        seccomp.load_localhost_profile(tmp_path, "bad.json")


def test_container_profile_wins_over_pod() -> None:
    pod_spec = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}
    container = {"name": "c", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}

    assert seccomp.effective_seccomp_profile(pod_spec, container) == {"type": "Unconfined"}
    assert seccomp.effective_seccomp_profile(pod_spec, {"name": "c"}) == {
        "type": "RuntimeDefault"}


@pytest.mark.parametrize(("profile", "seccomp_default", "expect_filter"), [
    (None, False, False),
    (None, True, True),
    ({"type": "Unconfined"}, True, False),
    ({"type": "RuntimeDefault"}, False, True),
])
def test_seccomp_for_container_types(tmp_path: Path, profile: dict[str, str] | None,
                                     seccomp_default: bool, expect_filter: bool) -> None:
    pod_spec: dict[str, Any] = {"securityContext": {"seccompProfile": profile} if profile else {}}

    result = seccomp.seccomp_for_container(
        pod_spec, {"name": "c"}, kubelet_root=tmp_path,
        capabilities=list(oci.DEFAULT_CAPABILITIES), privileged=False,
        seccomp_default=seccomp_default)

    assert (result is not None) == expect_filter


def test_privileged_runs_unconfined(tmp_path: Path) -> None:
    pod_spec = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}

    result = seccomp.seccomp_for_container(pod_spec, {"name": "c"}, kubelet_root=tmp_path,
                                           capabilities=[], privileged=True)

    assert result is None
