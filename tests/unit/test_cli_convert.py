"""The `seccomp-recorder convert` subcommand."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import stat
from pathlib import Path

import pytest
import yaml

from seccomp_recorder import atomicfile
from seccomp_recorder.cli.main import main

OCI_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}

KUBERNETES_PROFILE = {
    "apiVersion": "seccomp-recorder.io/v1alpha1",
    "kind": "SeccompProfile",
    "metadata": {"name": "redis", "namespace": "db"},
    "spec": OCI_PROFILE,
}


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def write_yaml(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_oci_converts_to_kubernetes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    assert main(["convert", str(source)]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["apiVersion"] == "seccomp-recorder.io/v1alpha1"
    assert document["metadata"] == {"name": "redis"}
    assert document["spec"] == OCI_PROFILE


def test_kubernetes_converts_to_oci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_yaml(tmp_path / "redis.yaml", KUBERNETES_PROFILE)
    assert main(["convert", str(source)]) == 0
    assert json.loads(capsys.readouterr().out) == OCI_PROFILE


def test_round_trip_gives_same_bytes(tmp_path: Path) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    first = tmp_path / "first.json"
    manifest = tmp_path / "redis.yaml"
    second = tmp_path / "second.json"
    assert main(["convert", "--to", "oci", str(source), "-o", str(first)]) == 0
    assert main(["convert", str(first), "--name", "redis", "-o", str(manifest)]) == 0
    assert main(["convert", str(manifest), "-o", str(second)]) == 0
    assert second.read_bytes() == first.read_bytes()


def test_name_and_namespace_options_set_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_yaml(tmp_path / "redis.yaml", KUBERNETES_PROFILE)
    exit_status = main(
        ["convert", "--to", "kubernetes", "--name", "cache", "--namespace", "prod", str(source)]
    )
    assert exit_status == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["metadata"] == {"name": "cache", "namespace": "prod"}


def test_stdin_is_read_for_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OCI_PROFILE)))
    assert main(["convert", "--name", "redis", "-"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metadata"]["name"] == "redis"


def test_output_file_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_yaml(tmp_path / "redis.yaml", KUBERNETES_PROFILE)
    output = tmp_path / "out" / "redis.json"
    output.parent.mkdir()
    assert main(["convert", str(source), "-o", str(output)]) == 0
    assert json.loads(output.read_text()) == OCI_PROFILE
    assert capsys.readouterr().out == ""


def test_base_profile_is_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    child = {**KUBERNETES_PROFILE, "spec": {**OCI_PROFILE, "baseProfileName": "runc-base"}}
    source = write_yaml(tmp_path / "redis.yaml", child)
    base = {
        **KUBERNETES_PROFILE,
        "metadata": {"name": "runc-base"},
        "spec": {**OCI_PROFILE, "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"}]},
    }
    base_file = write_yaml(tmp_path / "base.yaml", base)
    assert main(["convert", str(source), "--base-profile", str(base_file)]) == 0
    allowed = json.loads(capsys.readouterr().out)["syscalls"][0]
    assert allowed == {"names": ["execve", "read", "write"], "action": "SCMP_ACT_ALLOW"}


def test_base_profile_without_merge_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    child = {**KUBERNETES_PROFILE, "spec": {**OCI_PROFILE, "baseProfileName": "runc-base"}}
    source = write_yaml(tmp_path / "redis.yaml", child)
    output = tmp_path / "redis.json"
    assert main(["convert", str(source), "-o", str(output)]) == 1
    assert "which OCI seccomp JSON cannot express" in errors_logged(caplog)[0]
    assert not output.exists()


def test_base_profile_with_other_name_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child = {**KUBERNETES_PROFILE, "spec": {**OCI_PROFILE, "baseProfileName": "runc-base"}}
    source = write_yaml(tmp_path / "redis.yaml", child)
    base_file = write_yaml(tmp_path / "base.yaml", KUBERNETES_PROFILE)
    assert main(["convert", str(source), "--base-profile", str(base_file)]) == 2
    assert 'the file contains the profile "redis"' in errors_logged(caplog)[0]


# Each failure must leave no output file behind, so an existing output stays untouched.
@pytest.mark.parametrize(
    ("content", "expected_status", "expected_message"),
    [
        ('{"defaultAction": "SCMP_ACT_ERRNO",', 1, "invalid JSON: Expecting"),
        ("defaultAction: [SCMP_ACT_ERRNO\n", 1, "invalid YAML:"),
        (
            json.dumps(
                {**OCI_PROFILE, "syscalls": [{"names": ["foo"], "action": "SCMP_ACT_ALLOW"}]}
            ),
            1,
            'syscalls[0].names: syscall "foo" is not known on SCMP_ARCH_X86_64',
        ),
        (
            json.dumps({**OCI_PROFILE, "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}),
            1,
            "syscalls[0].names: the rule names no syscall",
        ),
        (
            json.dumps({**OCI_PROFILE, "defaultAktion": "SCMP_ACT_LOG"}),
            1,
            'defaultAktion: unknown field "defaultAktion"',
        ),
    ],
)
def test_invalid_input_writes_nothing(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: str,
    expected_status: int,
    expected_message: str,
) -> None:
    source = tmp_path / "input.json"
    source.write_text(content)
    output = tmp_path / "output.yaml"
    output.write_text("previous")
    assert main(["convert", str(source), "--name", "redis", "-o", str(output)]) == expected_status
    assert any(expected_message in message for message in errors_logged(caplog)), caplog.text
    assert output.read_text() == "previous"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["input.json", "output.yaml"]


@pytest.mark.parametrize("make_input", ["missing", "directory"])
def test_unreadable_input_is_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make_input: str
) -> None:
    source = tmp_path / "input.json"
    if make_input == "directory":
        source.mkdir()
    output = tmp_path / "output.yaml"
    assert main(["convert", str(source), "-o", str(output)]) == 2
    assert errors_logged(caplog)[0].startswith(f"{source}: cannot read the file:")
    assert not output.exists()


def test_unwritable_output_is_usage_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    output = tmp_path / "missing" / "redis.yaml"
    assert main(["convert", str(source), "-o", str(output)]) == 2
    assert "cannot write the output file" in errors_logged(caplog)[0]
    assert errors_logged(caplog)[0].endswith("check that the directory exists and is writable")


@pytest.mark.parametrize(
    ("number", "fix"),
    [
        (errno.ENOSPC, "the disk is full, so free space on it and run the command again"),
        (errno.EDQUOT, "the disk quota is used up, so free space and run the command again"),
        (errno.EROFS, "the file system is read-only, so choose a path on another one"),
    ],
    ids=["disk-full", "quota", "read-only"],
)
def test_write_failure_names_its_fix(
    number: int,
    fix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail(path: str, _data: str) -> None:
        raise OSError(number, os.strerror(number), path)

    monkeypatch.setattr(atomicfile, "save_file", fail)
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    output = tmp_path / "redis.yaml"

    assert main(["convert", str(source), "-o", str(output)]) == 2
    assert errors_logged(caplog) == [
        f"{output}: cannot write the output file: {os.strerror(number)}: {fix}"
    ]


def test_name_for_oci_output_is_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write_yaml(tmp_path / "redis.yaml", KUBERNETES_PROFILE)
    assert main(["convert", "--to", "oci", "--name", "x", str(source)]) == 2
    assert errors_logged(caplog)[0].startswith("--name and --namespace set Kubernetes metadata")


def test_stdin_without_name_is_usage_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OCI_PROFILE)))
    assert main(["convert", "-"]) == 2
    assert "pass --name" in errors_logged(caplog)[0]


def test_invalid_file_name_asks_for_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write_json(tmp_path / "My_Profile.json", OCI_PROFILE)
    assert main(["convert", str(source)]) == 2
    assert errors_logged(caplog)[0].startswith('metadata.name: invalid name "My_Profile"')
    assert errors_logged(caplog)[0].endswith("pass a valid --name or --namespace")


def test_unknown_form_is_usage_error(tmp_path: Path) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    with pytest.raises(SystemExit) as caught:
        main(["convert", "--to", "docker", str(source)])
    assert caught.value.code == 2


def test_warning_is_logged_but_converts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    without_enosys = {**OCI_PROFILE, "syscalls": OCI_PROFILE["syscalls"][:1]}  # type: ignore[index]
    source = write_json(tmp_path / "redis.json", without_enosys)
    assert main(["convert", str(source)]) == 0
    warnings = [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]
    assert "clone3 is denied with errno 1" in warnings[0]
    assert capsys.readouterr().out.startswith("apiVersion:")


def test_help_documents_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = capsys.readouterr().out
    assert "exit status:" in help_text
    assert "2  the command could not run" in help_text


def test_output_symlink_writes_target(tmp_path: Path) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)
    target = tmp_path / "profiles" / "redis.yaml"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o600)
    link = tmp_path / "redis.yaml"
    link.symlink_to(target)

    assert main(["convert", str(source), "-o", str(link)]) == 0

    assert link.is_symlink()
    assert yaml.safe_load(target.read_text())["spec"] == OCI_PROFILE
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-o", ""], "argument -o/--output: the path is empty"),
        (["--name", ""], 'argument --name: invalid name ""'),
        (["--namespace", ""], 'argument --namespace: invalid namespace ""'),
    ],
    ids=["empty-output", "empty-name", "empty-namespace"],
)
def test_empty_option_value_is_usage_error(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_json(tmp_path / "redis.json", OCI_PROFILE)

    with pytest.raises(SystemExit) as caught:
        main(["convert", *arguments, str(source)])

    assert caught.value.code == 2
    assert f"seccomp-recorder convert: error: {message}" in capsys.readouterr().err
