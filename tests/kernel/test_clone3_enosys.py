"""clone3 that was not recorded fails with ENOSYS, so glibc falls back to clone.

glibc 2.34 and later create threads with clone3 and call clone only when clone3
fails with ENOSYS. A profile that fails clone3 with EPERM stops every thread
creation, so the recorder writes an ENOSYS rule for clone3 when it was not recorded.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from kernel_helpers import Cli, allowed_names, load_profile, rules_for

from seccomp_recorder.models import algebra
from seccomp_recorder.models.formats import render_oci_json

pytestmark = pytest.mark.kernel


def test_unrecorded_clone3_gets_enosys(
    recording_host: None, cli: Cli, compile_workload: Callable[[str], Path], tmp_path: Path
) -> None:
    profile_path = tmp_path / "last_call.json"

    # A single-threaded program, so glibc never calls clone3.
    result = cli.run(
        "record",
        "--format",
        "oci",
        "-o",
        str(profile_path),
        "--",
        str(compile_workload("last_call")),
    )

    assert result.returncode == 0, result.stderr
    spec = load_profile(profile_path)
    assert "clone3" not in allowed_names(spec)
    assert rules_for(spec, "clone3") == [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}
    ]
    assert spec["defaultErrnoRet"] == errno.EPERM


def test_threads_need_enosys_for_clone3(
    recording_host: None, cli: Cli, compile_workload: Callable[[str], Path], tmp_path: Path
) -> None:
    threads = compile_workload("threads")
    recorded_path = tmp_path / "threads.json"
    result = cli.run("record", "--format", "oci", "-o", str(recorded_path), "--", str(threads))
    assert result.returncode == 0, result.stderr
    recorded = load_profile(recorded_path)
    assert "clone3" in allowed_names(recorded)

    # The recorded calls with clone in place of clone3, built by the function that
    # `record` uses, so the clone3 rule is the one the recorder generates.
    names = (allowed_names(recorded) - {"clone3"}) | {"clone"}
    spec = algebra.build_allow_list(names, architectures=recorded["architectures"])
    enosys_document = json.loads(render_oci_json(spec))
    clone3_rules = rules_for(enosys_document, "clone3")
    assert clone3_rules == [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}
    ]
    enosys_path = tmp_path / "clone3-enosys.json"
    enosys_path.write_text(json.dumps(enosys_document))
    clone3_rules[0]["errnoRet"] = errno.EPERM
    eperm_path = tmp_path / "clone3-eperm.json"
    eperm_path.write_text(json.dumps(enosys_document))

    with_enosys = cli.run("run", "--profile", str(enosys_path), "--", str(threads))
    with_eperm = cli.run("run", "--profile", str(eperm_path), "--", str(threads))

    assert with_enosys.returncode == 0, with_enosys.stderr
    assert with_enosys.stdout == "threads done: 4\n"
    assert with_eperm.returncode == 2
    assert "pthread_create: Operation not permitted" in with_eperm.stderr
    assert with_eperm.stdout == ""
