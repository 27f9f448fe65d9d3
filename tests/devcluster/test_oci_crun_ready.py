"""crun_ready: crun works inside, the machine's mounts are as before outside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_devcluster import oci

pytestmark = pytest.mark.kernel


def hugetlb_mounts() -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if "hugetlb" in line.split(" - ")[-1]]


@pytest.fixture(autouse=True)
def _root_and_crun() -> None:
    require(os.geteuid() == 0, "needs root to mount cgroup hierarchies")
    require(shutil.which("crun") is not None, "needs the crun binary")


def test_crun_ready_nests_and_restores(tmp_path: Path) -> None:
    before = hugetlb_mounts()

    with oci.crun_ready():
        inside = hugetlb_mounts()
        with oci.crun_ready():
            assert hugetlb_mounts() == inside
            result = oci.run_container(oci.ContainerSpec(["true"], runtime="crun"), tmp_path)
            assert result.exit_code == 0
        assert hugetlb_mounts() == inside

    assert hugetlb_mounts() == before


def test_crun_ready_in_given_directory(tmp_path: Path) -> None:
    target = tmp_path / "hugetlb"

    with oci.crun_ready(target):
        result = oci.run_container(oci.ContainerSpec(["true"], runtime="crun"), tmp_path / "w")
        assert result.exit_code == 0

    assert not target.exists()
