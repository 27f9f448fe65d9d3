"""Operator replicas with kopf peering: one handles objects, another resumes when it goes.

Two operator processes share a ClusterKopfPeering object on the dev cluster. Which
replica handled a SeccompProfile shows in the replicas' logs, which name every object a
handler ran for as [namespace/name].
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from operator_fixtures import (  # noqa: F401 (fixtures are found by their registered names)
    StartOperator,
    kube_fixture,
    namespace_fixture,
    start_operator_fixture,
)
from operator_helpers import FINALIZER, PROFILES, Kube, OperatorProcess, unique, wait_for

from seccomp_devcluster.cluster import DevCluster

pytestmark = pytest.mark.cluster

PEERING_CRD = Path(__file__).resolve().parents[2] / "charts/seccomp-recorder/crds/clusterkopfpeerings.yaml"
PEERING = ("kopf.dev", "v1", "clusterkopfpeerings")
RESUMING = "Resuming operations after the pause"


@pytest.fixture(name="peering_crd")
def peering_crd_fixture(devcluster: DevCluster) -> None:
    """Install the chart's ClusterKopfPeering CRD, unless it is installed already."""
    extensions = kubernetes.client.ApiextensionsV1Api(devcluster.api_client())
    try:
        extensions.create_custom_resource_definition(
            yaml.safe_load(PEERING_CRD.read_text()), _preload_content=False
        )
    except ApiException as error:
        if error.status != 409:
            raise


@pytest.fixture(name="peering_objects")
def peering_objects_fixture(kube: Kube, peering_crd: None) -> Iterator[list[str]]:
    """Return a list to which a test adds the peering objects it made; delete them after."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            kube.custom.delete_cluster_custom_object(*PEERING, name, _preload_content=False)


@pytest.fixture(name="peering")
def peering_fixture(kube: Kube, peering_objects: list[str]) -> str:
    """Create a ClusterKopfPeering for the test and return its name."""
    name = unique("peering")
    create_peering(kube, name, peering_objects)
    return name


def create_peering(kube: Kube, name: str, created: list[str]) -> None:
    body: Any = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    kube.custom.create_cluster_custom_object(*PEERING, body, _preload_content=False)
    created.append(name)


def peers(kube: Kube, name: str) -> dict[str, Any]:
    """Return the keep-alives in the peering object's status, by replica identity."""
    response: Any = kube.custom.get_cluster_custom_object(*PEERING, name, _preload_content=False)
    status: dict[str, Any] = json.loads(response.data).get("status") or {}
    return status


def create_profile(kube: Kube, namespace: str, name: str) -> None:
    kube.create(PROFILES, {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
        },
    })


def wait_until_handled(kube: Kube, namespace: str, name: str, operator: OperatorProcess) -> None:
    """Wait until an operator added its finalizer and wrote the profile's status."""

    def handled() -> bool:
        profile = kube.get(PROFILES, namespace, name) or {}
        return FINALIZER in profile.get("metadata", {}).get("finalizers", []) and bool(
            profile.get("status", {}).get("observedGeneration")
        )

    wait_for(f"an operator to handle profile {name}", handled, operator=operator)


def mentions(operator: OperatorProcess, namespace: str, name: str) -> bool:
    return f"[{namespace}/{name}]" in operator.log()


def start_replica(start_operator: StartOperator, peering: str, **settings: str) -> OperatorProcess:
    return start_operator(PEERING_NAME=peering, PEERING_LIFETIME="60", **settings)


def test_first_replica_handles_until_it_stops(
    kube: Kube, namespace: str, peering: str, start_operator: StartOperator
) -> None:
    first = start_replica(start_operator, peering)
    first.wait_for_log(RESUMING)
    second = start_replica(start_operator, peering)
    wait_for("both replicas' keep-alives", lambda: len(peers(kube, peering)) == 2)

    create_profile(kube, namespace, "while-first-runs")
    wait_until_handled(kube, namespace, "while-first-runs", first)
    assert mentions(first, namespace, "while-first-runs")
    assert not mentions(second, namespace, "while-first-runs")
    assert RESUMING not in second.log()

    assert first.stop() == 0
    second.wait_for_log(RESUMING)
    assert len(peers(kube, peering)) == 1

    create_profile(kube, namespace, "after-first-stopped")
    wait_until_handled(kube, namespace, "after-first-stopped", second)
    assert mentions(second, namespace, "after-first-stopped")


def test_killed_replica_is_replaced_after_lifetime(
    kube: Kube, namespace: str, peering: str, start_operator: StartOperator
) -> None:
    first = start_operator(PEERING_NAME=peering, PEERING_LIFETIME="3")
    first.wait_for_log(RESUMING)
    second = start_operator(PEERING_NAME=peering, PEERING_LIFETIME="3")
    wait_for("both replicas' keep-alives", lambda: len(peers(kube, peering)) == 2)

    # SIGKILL: the first replica cannot remove its keep-alive, so the second one resumes
    # only once that keep-alive is older than the lifetime.
    assert first.process is not None
    first.process.kill()
    first.process.wait()
    first.process = None
    second.wait_for_log(RESUMING)

    create_profile(kube, namespace, "after-first-killed")
    wait_until_handled(kube, namespace, "after-first-killed", second)
    assert mentions(second, namespace, "after-first-killed")
    wait_for("the dead replica's keep-alive to be removed", lambda: len(peers(kube, peering)) == 1)


def test_replica_waits_for_missing_peering_object(
    kube: Kube, namespace: str, peering_objects: list[str], start_operator: StartOperator
) -> None:
    name = unique("late")
    waiting = start_replica(start_operator, name)
    waiting.wait_for_log("was not found: this replica handles nothing until it exists")
    create_profile(kube, namespace, "before-peering")
    assert RESUMING not in waiting.log()

    create_peering(kube, name, peering_objects)
    waiting.wait_for_log(RESUMING)
    wait_until_handled(kube, namespace, "before-peering", waiting)
    assert mentions(waiting, namespace, "before-peering")
