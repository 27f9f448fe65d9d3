"""The agent's settings: flags, SECCOMP_RECORDER_* variables, defaults and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from seccomp_recorder.agent.settings import SettingsError, load_settings
from seccomp_recorder.setting_values import LogFormat

NODE = {"SECCOMP_RECORDER_NODE_NAME": "node-1"}


def test_defaults_with_node_name_only() -> None:
    settings = load_settings([], NODE)
    assert settings.node_name == "node-1"
    assert settings.kubelet_root == Path("/var/lib/kubelet")
    assert settings.seccomp_root == Path("/var/lib/kubelet/seccomp")
    assert settings.state_dir == Path("/var/lib/seccomp-recorder")
    assert settings.pin_dir == Path("/sys/fs/bpf/seccomp-recorder/node-1")
    assert settings.snapshot_interval == 10.0
    assert settings.kubeconfig is None
    assert settings.log_level == "INFO"
    assert settings.log_format is LogFormat.TEXT
    assert settings.metrics_port == 0


def test_environment_sets_every_field(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    environment = {
        "SECCOMP_RECORDER_NODE_NAME": "worker.example",
        "SECCOMP_RECORDER_KUBELET_ROOT": "/srv/kubelet",
        "SECCOMP_RECORDER_STATE_DIR": "/srv/state",
        "SECCOMP_RECORDER_BPFFS_PIN_DIR": "/sys/fs/bpf/custom",
        "SECCOMP_RECORDER_SNAPSHOT_INTERVAL": "2.5",
        "SECCOMP_RECORDER_KUBECONFIG": str(kubeconfig),
        "SECCOMP_RECORDER_LOG_LEVEL": "debug",
        "SECCOMP_RECORDER_LOG_FORMAT": "JSON",
        "SECCOMP_RECORDER_METRICS_PORT": "9100",
    }
    settings = load_settings([], environment)
    assert settings.node_name == "worker.example"
    assert settings.seccomp_root == Path("/srv/kubelet/seccomp")
    assert settings.state_dir == Path("/srv/state")
    assert settings.pin_dir == Path("/sys/fs/bpf/custom")
    assert settings.snapshot_interval == 2.5
    assert settings.kubeconfig == kubeconfig
    assert settings.log_level == "DEBUG"
    assert settings.log_format is LogFormat.JSON
    assert settings.metrics_port == 9100


def test_flag_wins_over_variable() -> None:
    settings = load_settings(["--node-name", "from-flag"], NODE)
    assert settings.node_name == "from-flag"


def test_empty_variable_counts_as_unset() -> None:
    settings = load_settings([], {**NODE, "SECCOMP_RECORDER_KUBELET_ROOT": ""})
    assert settings.kubelet_root == Path("/var/lib/kubelet")


def test_missing_node_name_names_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings([], {})
    assert "SECCOMP_RECORDER_NODE_NAME" in str(raised.value)
    assert "--node-name" in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SECCOMP_RECORDER_NODE_NAME", "Node_1", "invalid node name"),
        ("SECCOMP_RECORDER_NODE_NAME", "../etc", "invalid node name"),
        ("SECCOMP_RECORDER_KUBELET_ROOT", "var/lib/kubelet", "not an absolute path"),
        ("SECCOMP_RECORDER_STATE_DIR", "relative", "not an absolute path"),
        ("SECCOMP_RECORDER_BPFFS_PIN_DIR", "pins", "not an absolute path"),
        ("SECCOMP_RECORDER_SNAPSHOT_INTERVAL", "soon", "invalid number of seconds"),
        ("SECCOMP_RECORDER_SNAPSHOT_INTERVAL", "0", "above 0"),
        ("SECCOMP_RECORDER_SNAPSHOT_INTERVAL", "nan", "above 0"),
        ("SECCOMP_RECORDER_KUBECONFIG", "/nonexistent/kubeconfig", "is not a file"),
        ("SECCOMP_RECORDER_LOG_LEVEL", "loud", "invalid log level"),
        ("SECCOMP_RECORDER_LOG_FORMAT", "xml", "invalid log format"),
        ("SECCOMP_RECORDER_METRICS_PORT", "70000", "invalid port"),
        ("SECCOMP_RECORDER_METRICS_PORT", "http", "invalid port"),
    ],
)
def test_invalid_variable_is_named(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings([], {**NODE, variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert expected in message


def test_invalid_flag_is_named() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(["--snapshot-interval", "-1"], NODE)
    assert str(raised.value).startswith("--snapshot-interval: ")


def test_unknown_flag_exits() -> None:
    with pytest.raises(SystemExit) as raised:
        load_settings(["--no-such-flag"], NODE)
    assert raised.value.code == 2
