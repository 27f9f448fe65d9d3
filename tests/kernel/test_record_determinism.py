"""Recording the same workload twice writes byte-identical profiles, in both forms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kernel_helpers import Cli

pytestmark = pytest.mark.kernel

FORMATS = {"kubernetes": "yaml", "oci": "json"}


def record_twice(cli: Cli, program: Path, profile_format: str, tmp_path: Path) -> list[bytes]:
    outputs = []
    for attempt in (1, 2):
        path = tmp_path / f"{attempt}.{FORMATS[profile_format]}"
        result = cli.run("record", "--format", profile_format, "-o", str(path), "--", str(program))
        assert result.returncode == 0, result.stderr
        outputs.append(path.read_bytes())
    return outputs


@pytest.mark.parametrize("profile_format", FORMATS)
@pytest.mark.parametrize("workload", ["threads", "exec_chain"])
def test_same_workload_same_bytes(
    workload: str,
    profile_format: str,
    recording_host: None,
    cli: Cli,
    compile_workload: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    first, second = record_twice(cli, compile_workload(workload), profile_format, tmp_path)

    assert b"SCMP_ACT_ALLOW" in first
    assert first == second


@pytest.mark.parametrize("profile_format", FORMATS)
def test_several_architectures_same_bytes(
    profile_format: str, recording_host: None, cli: Cli, compat_program: Path, tmp_path: Path
) -> None:
    # Three architectures, and unnamed numbers on two of them, so their order is covered too.
    first, second = record_twice(cli, compat_program, profile_format, tmp_path)

    assert b"SCMP_ARCH_X32" in first
    assert first == second
