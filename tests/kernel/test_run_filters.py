"""Filters that `run` installs for profiles with argument conditions, checked in the kernel.

The commands are coreutils run under the filter. `validate` must accept each profile
that `run` enforces, so both commands run on the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kernel_helpers import Cli

pytestmark = pytest.mark.kernel

EACCES = 13


def write_profile(path: Path, *rules: dict[str, Any]) -> Path:
    document = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}
    path.write_text(json.dumps(document))
    return path


def mkdir_denied_for_modes(*modes: int) -> list[dict[str, Any]]:
    """Rules that fail mkdir and mkdirat with EACCES when the mode is one of `modes`.

    coreutils mkdir calls mkdir on x86_64 and mkdirat where mkdir does not exist.
    """
    return [
        {
            "names": [name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": EACCES,
            "args": [{"index": index, "value": mode, "op": "SCMP_CMP_EQ"} for mode in modes],
        }
        for name, index in (("mkdir", 1), ("mkdirat", 2))
    ]


def test_repeated_argument_index_any_condition_applies(cli: Cli, tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile.json", *mkdir_denied_for_modes(0o700, 0o711))

    validated = cli.run("validate", str(profile))
    results = {
        mode: cli.run(
            "run", "--profile", str(profile), "--", "mkdir", "-m", mode, str(tmp_path / mode)
        )
        for mode in ("700", "711", "755")
    }

    assert validated.returncode == 0, validated.stdout
    assert (
        "syscalls[0].args: warning: more than one condition compares argument 1" in validated.stdout
    )
    assert (
        "syscalls[1].args: warning: more than one condition compares argument 2" in validated.stdout
    )
    for mode in ("700", "711"):
        assert results[mode].returncode == 1, results[mode].stderr
        assert "Permission denied" in results[mode].stderr
        assert not (tmp_path / mode).exists()
    assert results["755"].returncode == 0, results["755"].stderr
    assert (tmp_path / "755").is_dir()


def test_oversized_filter_fails_with_cause(cli: Cli, tmp_path: Path) -> None:
    # One rule per ioctl request number compiles to about one BPF instruction each.
    rules = [
        {
            "names": ["ioctl"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": request, "op": "SCMP_CMP_EQ"}],
        }
        for request in range(5000)
    ]
    profile = write_profile(tmp_path / "profile.json", *rules)
    marker = tmp_path / "marker"

    validated = cli.run("validate", str(profile))
    result = cli.run("run", "--profile", str(profile), "--", "touch", str(marker))

    assert validated.returncode == 0, validated.stdout
    assert "syscalls: warning: the compiled filter has" in validated.stdout
    assert result.returncode == 125, result.stderr
    assert "installing the seccomp filter failed: [Errno 125] Operation canceled" in result.stderr
    assert "more than the kernel's limit of 4096 (BPF_MAXINSNS)" in result.stderr
    assert "use fewer rules with argument conditions" in result.stderr
    assert not marker.exists()
