"""`helm lint --strict` of the chart, and values.schema.json rejecting invalid values."""

from __future__ import annotations

import pytest
from chart_helpers import CHART, NONDEFAULT_VALUES, run_helm


def test_lint_passes_with_default_values() -> None:
    finished = run_helm("lint", "--strict", str(CHART))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "0 chart(s) failed" in finished.stdout


def test_lint_passes_with_nondefault_values() -> None:
    finished = run_helm("lint", "--strict", str(CHART), "--values", str(NONDEFAULT_VALUES))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "0 chart(s) failed" in finished.stdout


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("unknownKey=1", "Additional property unknownKey is not allowed"),
        ("operator.replicas=0", "operator.replicas: Must be greater than or equal to 1"),
        ("operator.runAsUser=0", "operator.runAsUser: Must be greater than or equal to 1"),
        ("operator.color=blue", "Additional property color is not allowed"),
        ("image.agent.digest=latest", "image.agent.digest: Does not match pattern"),
        ("image.operator.pullPolicy=Sometimes", "image.operator.pullPolicy"),
        ("kubeletRootDir=var/lib/kubelet", "kubeletRootDir: Does not match pattern"),
        ("agent.bpffsPath=/sys/fs/../bpf", "agent.bpffsPath: Must not validate the schema"),
        ("agent.resources.limits.memory=lots", "agent.resources.limits.memory: Does not match"),
        ("agent.resources.limits.cpu=1", "Invalid type. Expected: string, given: integer"),
        ("agent.tolerations[0].operator=In", "agent.tolerations.0.operator"),
        ("recorder.snapshotInterval=0", "recorder.snapshotInterval: Must be greater than 0"),
        ("logging.level=LOUD", "logging.level"),
        ("logging.format=xml", "logging.format"),
        ("metrics.port=70000", "metrics.port: Must be less than or equal to 65535"),
        ("metrics.serviceMonitor.interval=soon", "metrics.serviceMonitor.interval"),
    ],
)
def test_schema_rejects_invalid_value(setting: str, expected: str) -> None:
    finished = run_helm("template", "sr", str(CHART), "--set", setting)
    assert finished.returncode != 0
    assert expected in finished.stderr
