"""oci.py against the real runc and crun: bundles, seccomp, exit codes, clean-up."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_devcluster import oci

pytestmark = pytest.mark.kernel

DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


@pytest.fixture(params=oci.RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Iterator[oci.Runtime]:
    name: oci.Runtime = request.param
    require(os.geteuid() == 0, "needs root to run OCI containers")
    require(shutil.which(name) is not None, f"needs the {name} binary")
    require(oci.BUSYBOX.exists(), "needs busybox-static at /usr/bin/busybox")
    if name == "crun":
        with oci.crun_ready():
            yield name
    else:
        yield name


def leftover_cgroups(container_id: str) -> list[Path]:
    return [path for path in Path("/sys/fs/cgroup").rglob(container_id)]


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_echo_runs(runtime: oci.Runtime, no_new_privileges: bool, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["echo", "hello"], runtime=runtime,
                             no_new_privileges=no_new_privileges)

    result = oci.run_container(spec, tmp_path)

    assert result.exit_code == 0
    assert result.stdout == b"hello\n"
    assert re.fullmatch(r"[0-9a-f]{64}", result.container_id)


def test_no_new_privileges_flag_reaches_process(runtime: oci.Runtime, tmp_path: Path) -> None:
    for setting, expected in ((True, b"NoNewPrivs:\t1"), (False, b"NoNewPrivs:\t0")):
        spec = oci.ContainerSpec(["grep", "NoNewPrivs", "/proc/self/status"], runtime=runtime,
                                 no_new_privileges=setting)

        result = oci.run_container(spec, tmp_path)

        assert result.stdout.strip() == expected


def test_exit_code_and_stderr(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["sh", "-c", "echo oops >&2; exit 7"], runtime=runtime)

    result = oci.run_container(spec, tmp_path)

    assert result.exit_code == 7
    assert result.stderr == b"oops\n"
    assert result.stdout == b""


def test_seccomp_denies_mkdir(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["mkdir", "/made"], runtime=runtime, seccomp=DENY_MKDIR)

    result = oci.run_container(spec, tmp_path)

    assert result.exit_code == 1
    assert b"Operation not permitted" in result.stderr


def test_mkdir_works_without_seccomp(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["mkdir", "/made"], runtime=runtime)

    result = oci.run_container(spec, tmp_path)

    assert result.exit_code == 0, result.stderr


def test_host_rootfs_runs_redis(runtime: oci.Runtime, tmp_path: Path) -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server")
    spec = oci.ContainerSpec(["redis-server", "--version"], runtime=runtime, rootfs="host")

    result = oci.run_container(spec, tmp_path)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(b"Redis server v=")


def test_host_rootfs_is_read_only_with_writable_tmp(runtime: oci.Runtime,
                                                    tmp_path: Path) -> None:
    spec = oci.ContainerSpec(
        ["/usr/bin/busybox", "sh", "-c",
         "touch /tmp/scratch && echo tmp-ok; touch /usr/should-fail || echo usr-read-only"],
        runtime=runtime, rootfs="host")

    result = oci.run_container(spec, tmp_path)

    assert result.stdout.split() == [b"tmp-ok", b"usr-read-only"]
    assert not Path("/usr/should-fail").exists()


def test_new_network_namespace_has_only_lo(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["sh", "-c", "ls /sys/class/net"], runtime=runtime)

    result = oci.run_container(spec, tmp_path)

    assert result.stdout.split() == [b"lo"]


def test_cgroup_path_ends_in_container_id(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["cat", "/proc/self/cgroup"], runtime=runtime,
                             cgroup_parent="seccomp-devcluster-test/podx")

    result = oci.run_container(spec, tmp_path)

    lines = result.stdout.decode().splitlines()
    pids_line = next(line for line in lines if ":pids:" in line)
    assert pids_line.endswith(f"/seccomp-devcluster-test/podx/{result.container_id}")


def test_run_leaves_nothing_behind(runtime: oci.Runtime, tmp_path: Path) -> None:
    parent = f"seccomp-devcluster-test-{oci.new_container_id()[:8]}"
    spec = oci.ContainerSpec(["true"], runtime=runtime, cgroup_parent=f"{parent}/pod")

    result = oci.run_container(spec, tmp_path)

    assert leftover_cgroups(result.container_id) == []
    assert [path for path in Path("/sys/fs/cgroup").rglob(parent)] == []
    assert list(tmp_path.iterdir()) == []


def test_timeout_kills_and_cleans_up(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["sleep", "60"], runtime=runtime)

    with pytest.raises(TimeoutError, match="did not exit within 0.5 s"):
        oci.run_container(spec, tmp_path, name="timeout-" + oci.new_container_id()[:8],
                          timeout=0.5)

    assert list(tmp_path.iterdir()) == []


def test_running_container_lifecycle(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"],
                             runtime=runtime)
    with oci.RunningContainer(spec, tmp_path) as container:
        container.create()
        assert container.state()["status"] == "created"
        assert container.pid is not None

        container.start()
        assert container.state()["status"] == "running"
        assert Path(f"/proc/{container.pid}/cgroup").read_text().rstrip().endswith(container.id)

        container.kill(signal.SIGTERM)
        assert container.wait(10) == 42
        container_id = container.id

    assert oci.list_containers(tmp_path / "runtime" / runtime, runtime) == []
    assert leftover_cgroups(container_id) == []
    assert list(tmp_path.iterdir()) == []


def test_sigkill_gives_exit_code_137(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["sleep", "60"], runtime=runtime)
    with oci.RunningContainer(spec, tmp_path) as container:
        container.create()
        container.start()

        container.kill(signal.SIGKILL)

        assert container.wait(10) == 137


def test_delete_of_created_container(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["true"], runtime=runtime)
    container = oci.RunningContainer(spec, tmp_path)
    container.create()

    container.delete()
    container.delete()

    assert leftover_cgroups(container.id) == []
    assert list(tmp_path.iterdir()) == []


def test_joins_given_network_namespace(runtime: oci.Runtime, tmp_path: Path) -> None:
    require(shutil.which("unshare") is not None, "needs util-linux unshare")
    netns = tmp_path / "netns"
    netns.touch()
    subprocess.run(["unshare", f"--net={netns}", "true"], check=True)
    try:
        spec = oci.ContainerSpec(["readlink", "/proc/self/ns/net"], runtime=runtime,
                                 network_namespace=str(netns))

        result = oci.run_container(spec, tmp_path / "work")

        assert result.stdout.strip() == f"net:[{netns.stat().st_ino}]".encode()
    finally:
        subprocess.run(["umount", str(netns)], check=True)


def test_failed_create_raises_with_runtime_message(runtime: oci.Runtime, tmp_path: Path) -> None:
    spec = oci.ContainerSpec(["true"], runtime=runtime,
                             network_namespace="/nonexistent/netns")

    with pytest.raises(oci.OciRuntimeError, match=f"{runtime} create of container"):
        oci.run_container(spec, tmp_path)

    assert list(tmp_path.iterdir()) == []
