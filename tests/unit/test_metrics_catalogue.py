"""The metrics of the operator and the agent: docs/metrics.md and the code list the same ones."""

from __future__ import annotations

import prometheus_client
import pytest

from metrics_doc import METRICS_DOC, Catalogue, documented_metrics
from seccomp_recorder.agent import metrics as agent_metrics
from seccomp_recorder.models.profile import NodeProfileState
from seccomp_recorder.operator import metrics as operator_metrics
from seccomp_recorder.operator.daemonset import build_agent_daemonset
from seccomp_recorder.operator.settings import load_settings
from seccomp_recorder.recorder.maps import Stat

PREFIXES = (operator_metrics.PREFIX, agent_metrics.PREFIX)
IMAGE = "registry.example.com/seccomp-recorder:0.1.0"


def exposed_name(family: prometheus_client.Metric) -> str:
    """Return the name a family is documented under: counters with their `_total`."""
    return family.name + "_total" if family.type == "counter" else family.name


def declared_labels() -> dict[str, set[str]]:
    """Map the family name of each metric object of both modules to its label names.

    A labelled metric serves no sample before its first use, so the samples alone do
    not show its labels. NB: `_labelnames` is prometheus_client's private attribute.
    """
    declared = {}
    for module in (operator_metrics, agent_metrics):
        for value in vars(module).values():
            if isinstance(value, prometheus_client.metrics.MetricWrapperBase):
                declared[value._name] = set(value._labelnames)
    return declared


def registered_metrics() -> Catalogue:
    """Map each metric of the operator and the agent in the registry to its type and labels."""
    declared = declared_labels()
    found: Catalogue = {}
    for family in prometheus_client.REGISTRY.collect():
        if not family.name.startswith(PREFIXES):
            continue
        labels = {label for sample in family.samples for label in sample.labels}
        labels |= declared.get(family.name, set())
        found[exposed_name(family)] = (family.type, frozenset(labels - {"le"}))
    return found


def test_doc_and_code_list_same_metrics() -> None:
    documented = documented_metrics(METRICS_DOC.read_text(encoding="utf-8"))
    registered = registered_metrics()

    assert sorted(set(registered) - set(documented)) == [], "metrics missing from docs/metrics.md"
    assert sorted(set(documented) - set(registered)) == [], "documented metrics the code lacks"


def test_doc_gives_each_metric_its_type_and_labels() -> None:
    documented = documented_metrics(METRICS_DOC.read_text(encoding="utf-8"))
    registered = registered_metrics()

    for name, (kind, labels) in registered.items():
        assert documented[name][0] == kind, f"type of {name}"
        assert documented[name][1] == labels, f"labels of {name}"


def test_labels_are_bounded() -> None:
    # Names of objects, pods, UIDs and syscalls would grow with the workload.
    unbounded = {"pod", "uid", "name", "namespace", "syscall", "container", "profile", "node"}
    for name, (_, labels) in registered_metrics().items():
        assert not labels & unbounded, name


def test_recordings_are_counted_by_phase() -> None:
    objects = operator_metrics.WatchedObjects()
    objects.observe_recording("default", "web", {
        "phase": "Recording",
        "containers": [{"state": "Recording"}, {"state": "Recording"}, {"state": "Recorded"}],
    })
    objects.observe_recording("default", "db", {"phase": "Completed"})
    objects.observe_recording("default", "db", {"phase": "Failed"})
    families = {family.name: family for family in objects.collect()}

    phases = {s.labels["phase"]: s.value for s in families[operator_metrics.PREFIX + "recordings"].samples}
    states = {
        s.labels["state"]: s.value
        for s in families[operator_metrics.PREFIX + "recorded_containers"].samples
    }
    assert phases == {"Pending": 0, "Recording": 1, "Completed": 0, "Failed": 1}
    assert states == {"Recording": 2, "Recorded": 1, "Failed": 0}


def test_forgotten_profile_is_not_counted() -> None:
    objects = operator_metrics.WatchedObjects()
    objects.observe_profile("default", "web", {
        "phase": "Partial",
        "nodeStatuses": {"node-1": {"state": "Installed"}, "node-2": {"state": "Error"}},
    })
    before = {family.name: family for family in objects.collect()}
    objects.forget_profile("default", "web")
    after = {family.name: family for family in objects.collect()}

    node_states = operator_metrics.PREFIX + "profile_node_states"
    assert {s.labels["state"]: s.value for s in before[node_states].samples}["Error"] == 1
    assert all(sample.value == 0 for sample in after[node_states].samples)
    assert all(sample.value == 0 for sample in after[operator_metrics.PREFIX + "profiles"].samples)


def test_hand_edited_phase_adds_no_series() -> None:
    objects = operator_metrics.WatchedObjects()
    objects.observe_profile("default", "web", {"phase": "Whatever"})
    families = {family.name: family for family in objects.collect()}

    phases = [s.labels["phase"] for s in families[operator_metrics.PREFIX + "profiles"].samples]
    assert "Whatever" not in phases


def test_agent_counts_profiles_by_reported_state() -> None:
    agent_metrics.count_profile_states({
        ("default", "a"): NodeProfileState.INSTALLED,
        ("default", "b"): NodeProfileState.INSTALLED,
        ("default", "c"): NodeProfileState.ERROR,
    })

    value = prometheus_client.REGISTRY.get_sample_value
    assert value(agent_metrics.PREFIX + "profiles", {"state": "Installed"}) == 2
    assert value(agent_metrics.PREFIX + "profiles", {"state": "Error"}) == 1
    assert value(agent_metrics.PREFIX + "profiles", {"state": "Removed"}) == 0


def test_loss_counters_reset_when_detached() -> None:
    agent_metrics.RECORDER_LOST.update({Stat.SET_FULL: 3, Stat.EVENT_DROPPED: 0})
    value = prometheus_client.REGISTRY.get_sample_value
    lost = agent_metrics.KernelLossCounters.NAME + "_total"

    assert value(lost, {"counter": "set_full"}) == 3
    agent_metrics.clear_recorder_gauges()
    assert value(lost, {"counter": "set_full"}) == 0


@pytest.mark.parametrize("port", ["0", "9101"])
def test_daemonset_passes_agent_metrics_port(port: str) -> None:
    settings = load_settings(
        {"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE, "SECCOMP_RECORDER_AGENT_METRICS_PORT": port}
    )
    container = build_agent_daemonset(settings)["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}

    if port == "0":
        assert "SECCOMP_RECORDER_METRICS_PORT" not in env
        assert "ports" not in container
        return
    assert env["SECCOMP_RECORDER_METRICS_PORT"]["value"] == port
    address = env["SECCOMP_RECORDER_METRICS_ADDRESS"]["valueFrom"]
    assert address == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9101, "protocol": "TCP"}]
