"""The operator's settings: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from seccomp_recorder.operator.settings import (
    PullPolicy,
    SettingsError,
    load_settings,
)
from seccomp_recorder.setting_values import LogFormat

IMAGE = "registry.example.com/seccomp-recorder:0.1.0"


def load(**variables: str) -> object:
    environ = {"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE}
    environ.update({f"SECCOMP_RECORDER_{key}": value for key, value in variables.items()})
    return load_settings(environ)


def test_defaults_need_only_the_agent_image() -> None:
    settings = load_settings({"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE})
    assert settings.agent_image == IMAGE
    assert settings.namespace == "seccomp-recorder"
    assert settings.kubelet_root == PurePosixPath("/var/lib/kubelet")
    assert settings.agent_image_pull_policy is PullPolicy.IF_NOT_PRESENT
    assert settings.agent_tolerations == ({"operator": "Exists"},)
    assert settings.agent_node_selector == {"kubernetes.io/os": "linux"}
    assert settings.profile_update_interval == 30.0
    assert settings.log_format is LogFormat.TEXT
    assert settings.metrics_port == 0
    assert settings.health_port == 0
    assert settings.peering_name is None
    assert settings.peering_lifetime == 60
    assert settings.agent_bpffs_path == PurePosixPath("/sys/fs/bpf")


def test_missing_agent_image_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="SECCOMP_RECORDER_AGENT_IMAGE"):
        load_settings({})


def test_empty_variable_counts_as_unset() -> None:
    settings = load_settings({"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE, "SECCOMP_RECORDER_LOG_LEVEL": ""})
    assert settings.log_level == "INFO"


def test_every_variable_is_parsed() -> None:
    settings = load_settings(
        {
            "SECCOMP_RECORDER_AGENT_IMAGE": IMAGE,
            "SECCOMP_RECORDER_NAMESPACE": "security",
            "SECCOMP_RECORDER_AGENT_IMAGE_PULL_POLICY": "Always",
            "SECCOMP_RECORDER_AGENT_SERVICE_ACCOUNT": "agent",
            "SECCOMP_RECORDER_KUBELET_ROOT": "/data/kubelet",
            "SECCOMP_RECORDER_AGENT_TOLERATIONS": '[{"key": "gpu", "operator": "Exists"}]',
            "SECCOMP_RECORDER_AGENT_NODE_SELECTOR": '{"role": "worker"}',
            "SECCOMP_RECORDER_AGENT_RESOURCES": '{"limits": {"memory": "1Gi", "cpu": "0.5"}}',
            "SECCOMP_RECORDER_AGENT_SNAPSHOT_INTERVAL": "5",
            "SECCOMP_RECORDER_PROFILE_UPDATE_INTERVAL": "2.5",
            "SECCOMP_RECORDER_FINAL_RESULT_TIMEOUT": "120",
            "SECCOMP_RECORDER_LOG_LEVEL": "debug",
            "SECCOMP_RECORDER_LOG_FORMAT": "JSON",
            "SECCOMP_RECORDER_METRICS_PORT": "9090",
            "SECCOMP_RECORDER_METRICS_ADDRESS": "127.0.0.1",
            "SECCOMP_RECORDER_AGENT_BPFFS_PATH": "/run/bpf",
            "SECCOMP_RECORDER_HEALTH_PORT": "8081",
            "SECCOMP_RECORDER_HEALTH_ADDRESS": "::",
            "SECCOMP_RECORDER_PEERING_NAME": "seccomp-recorder",
            "SECCOMP_RECORDER_PEERING_LIFETIME": "15",
            "SECCOMP_RECORDER_OPERATOR_DEPLOYMENT": "seccomp-recorder-operator",
        }
    )
    assert settings.namespace == "security"
    assert settings.agent_image_pull_policy is PullPolicy.ALWAYS
    assert settings.agent_service_account == "agent"
    assert settings.kubelet_root == PurePosixPath("/data/kubelet")
    assert settings.agent_tolerations == ({"key": "gpu", "operator": "Exists"},)
    assert settings.agent_node_selector == {"role": "worker"}
    assert settings.agent_resources == {"limits": {"memory": "1Gi", "cpu": "0.5"}}
    assert settings.agent_snapshot_interval == 5.0
    assert settings.profile_update_interval == 2.5
    assert settings.final_result_timeout == 120.0
    assert settings.log_level == "DEBUG"
    assert settings.log_format is LogFormat.JSON
    assert settings.metrics_port == 9090
    assert settings.metrics_address == "127.0.0.1"
    assert settings.agent_bpffs_path == PurePosixPath("/run/bpf")
    assert settings.health_port == 8081
    assert settings.health_address == "::"
    assert settings.peering_name == "seccomp-recorder"
    assert settings.peering_lifetime == 15
    assert settings.operator_deployment == "seccomp-recorder-operator"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NAMESPACE", "Security", "invalid name"),
        ("AGENT_IMAGE", "bad image", "invalid image"),
        ("AGENT_IMAGE_PULL_POLICY", "sometimes", "Always, IfNotPresent, Never"),
        ("KUBELET_ROOT", "var/lib/kubelet", "not an absolute path"),
        ("KUBELET_ROOT", "/var/lib/../kubelet", "without '..'"),
        ("AGENT_TOLERATIONS", "[{", "invalid JSON"),
        ("AGENT_TOLERATIONS", '{"operator": "Exists"}', "not a list of objects"),
        ("AGENT_TOLERATIONS", '[{"operator": "Exists", "keys": "a"}]', "unknown fields keys"),
        ("AGENT_TOLERATIONS", '[{"operator": "In"}]', "Equal or Exists"),
        ("AGENT_NODE_SELECTOR", '{"role": 1}', "not an object of strings"),
        ("AGENT_RESOURCES", '{"request": {}}', "unknown field 'request'"),
        ("AGENT_RESOURCES", '{"limits": {"memory": "lots"}}', "invalid quantity 'lots'"),
        ("AGENT_RESOURCES", '["limits"]', "is not an object"),
        ("AGENT_SNAPSHOT_INTERVAL", "soon", "invalid number of seconds"),
        ("PROFILE_UPDATE_INTERVAL", "0", "above 0"),
        ("FINAL_RESULT_TIMEOUT", "inf", "above 0"),
        ("LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR"),
        ("LOG_FORMAT", "xml", "text, json"),
        ("METRICS_PORT", "70000", "from 0 to 65535"),
        ("METRICS_PORT", "http", "whole number"),
        ("METRICS_ADDRESS", "localhost", "IP address"),
        ("AGENT_BPFFS_PATH", "sys/fs/bpf", "not an absolute path"),
        ("HEALTH_PORT", "-1", "from 0 to 65535"),
        ("HEALTH_ADDRESS", "any", "IP address"),
        ("PEERING_NAME", "Operators", "invalid name"),
        ("PEERING_LIFETIME", "0", "above 0"),
        ("PEERING_LIFETIME", "1.5", "whole number"),
        ("OPERATOR_DEPLOYMENT", "Operator", "invalid name"),
    ],
)
def test_invalid_value_names_variable_and_form(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load(**{variable: value})
    message = str(raised.value)
    assert message.startswith(f"SECCOMP_RECORDER_{variable}: ")
    assert expected in message
