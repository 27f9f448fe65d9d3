"""The official kubernetes client and a small kopf operator against the emulator."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import kubernetes
import pytest
from apiserver_helpers import Http, read_events

from seccomp_devcluster.apiserver import ApiServer

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_client_list_watch_patch(kube: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", {"metadata": {"name": "a", "labels": {"x": "1"}}})

    listed = core.list_namespaced_config_map("default", label_selector="x=1")
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    watch = kubernetes.watch.Watch()
    events = list(watch.stream(core.list_namespaced_config_map, "default",
                               resource_version=listed.metadata.resource_version, timeout_seconds=1))

    assert [item.metadata.name for item in listed.items] == ["a"]
    assert [event["type"] for event in events] == ["MODIFIED"]
    assert events[0]["object"].data == {"k": "v"}


def test_client_errors_are_api_exceptions(kube: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(kube)

    with pytest.raises(kubernetes.client.ApiException) as error:
        core.read_namespaced_config_map("missing", "default")

    assert error.value.status == 404


def test_client_events_v1_are_core_events(kube: kubernetes.client.ApiClient) -> None:
    events_api = kubernetes.client.EventsV1Api(kube)
    events_api.create_namespaced_event("default", {
        "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "seccomp-recorder", "reportingInstance": "op-1", "action": "Install",
        "reason": "Installed", "type": "Normal", "note": "profile installed",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
    })

    core_event = kubernetes.client.CoreV1Api(kube).read_namespaced_event("e1", "default")
    new_event = events_api.read_namespaced_event("e1", "default")

    assert core_event.message == "profile installed"
    assert core_event.involved_object.name == "p"
    assert new_event.note == "profile installed"


@pytest.fixture
def operator(apiserver: ApiServer, widgets: str) -> Iterator[collections.Counter[str]]:
    """Run a small kopf operator for Widgets in a thread; yield its handler call counts."""
    registry = kopf.OperatorRegistry()
    calls: collections.Counter[str] = collections.Counter()
    http = Http(apiserver.url)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=apiserver.url)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.server_timeout = 10

    @kopf.on.create("example.com", "v1", "widgets", registry=registry)
    def create_child(body: kopf.Body, name: str, patch: kopf.Patch, **_: Any) -> None:
        calls["create"] += 1
        child: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": f"{name}-child"}, "data": {"size": "3"}}
        kopf.adopt(child, owner=body)
        response = http.post(CONFIGMAPS, child)
        assert response.status_code == 201, response.text
        patch.status["phase"] = "Ready"
        kopf.info(body, reason="ChildCreated", message=f"created {child['metadata']['name']}")

    @kopf.on.delete("example.com", "v1", "widgets", registry=registry)
    def delete_widget(**_: Any) -> None:
        calls["delete"] += 1

    stop_flag = threading.Event()
    ready_flag = threading.Event()
    thread = threading.Thread(target=kopf.run, name="kopf-operator", kwargs={
        "registry": registry, "standalone": True, "namespaces": ["default"],
        "stop_flag": stop_flag, "ready_flag": ready_flag})
    thread.start()
    try:
        assert ready_flag.wait(30), "kopf did not start"
        yield calls
    finally:
        stop_flag.set()
        thread.join(30)
    assert not thread.is_alive()


def test_kopf_operator_handles_widget(operator: collections.Counter[str], http: Http) -> None:
    http.post(WIDGETS, {"metadata": {"name": "w1"}, "spec": {"size": 3}})

    wait_for(lambda: (http.get(f"{WIDGETS}/w1").json().get("status") or {}).get("phase") == "Ready",
             "the status that the create handler patches")
    child = http.get(f"{CONFIGMAPS}/w1-child").json()
    widget = http.get(f"{WIDGETS}/w1").json()
    assert child["metadata"]["ownerReferences"][0]["uid"] == widget["metadata"]["uid"]
    assert widget["metadata"]["finalizers"]

    deleted = http.delete(f"{WIDGETS}/w1").json()
    since = deleted["metadata"]["resourceVersion"]
    for path in (WIDGETS, CONFIGMAPS):
        name = "w1" if path == WIDGETS else "w1-child"
        watch = http.get(f"{path}?watch=true&fieldSelector=metadata.name%3D{name}&resourceVersion={since}"
                         "&timeoutSeconds=30", stream=True)
        events = read_events(watch, lambda event: event["type"] == "DELETED")
        assert events[-1]["type"] == "DELETED"

    assert operator == {"create": 1, "delete": 1}
    wait_for(lambda: any(event["reason"] == "ChildCreated" for event in
                         http.get("/api/v1/namespaces/default/events").json()["items"]),
             "the event that the create handler posts")
