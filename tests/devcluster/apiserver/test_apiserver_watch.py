"""List and watch: selectors, resumption, 410 Expired, timeouts and bookmarks."""

from __future__ import annotations

import json
import threading

import pytest
from apiserver_helpers import Http, read_events

from seccomp_devcluster.apiserver import ApiServer

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def make_labelled(http: Http) -> None:
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}),
                         ("c", {"tier": "web"}), ("d", {})):
        http.post(CONFIGMAPS, {"metadata": {"name": name, "labels": labels}})


@pytest.mark.parametrize("selector, expected", [
    ("tier=web", ["a", "c"]),
    ("tier==web", ["a", "c"]),
    ("tier!=web", ["b", "d"]),
    ("tier in (web,db)", ["a", "b", "c"]),
    ("tier notin (web)", ["b", "d"]),
    ("env", ["a"]),
    ("!env", ["b", "c", "d"]),
    ("tier=web,!env", ["c"]),
])
def test_label_selector_operators(http: Http, selector: str, expected: list[str]) -> None:
    make_labelled(http)

    items = http.get(CONFIGMAPS, params={"labelSelector": selector}).json()["items"]

    assert [item["metadata"]["name"] for item in items] == expected


def test_invalid_label_selector_gets_400(http: Http) -> None:
    response = http.get(CONFIGMAPS, params={"labelSelector": "a in b"})

    assert response.status_code == 400


@pytest.mark.parametrize("selector, expected", [
    ("metadata.name=p1", ["p1"]),
    ("metadata.name!=p1", ["p2", "p3"]),
    ("spec.nodeName=node-1", ["p1", "p2"]),
    ("spec.nodeName=node-1,status.phase=Running", ["p2"]),
    ("status.phase=Pending", ["p1", "p3"]),
])
def test_pod_field_selectors(http: Http, selector: str, expected: list[str]) -> None:
    for name, node in (("p1", "node-1"), ("p2", "node-1"), ("p3", None)):
        spec = {"containers": [{"name": "c", "image": "x:1"}], **({"nodeName": node} if node else {})}
        http.post(PODS, {"metadata": {"name": name}, "spec": spec})
    http.patch(f"{PODS}/p2/status", {"status": {"phase": "Running"}})

    items = http.get(PODS, params={"fieldSelector": selector}).json()["items"]

    assert [item["metadata"]["name"] for item in items] == expected


def test_namespace_field_selector_across_namespaces(http: Http) -> None:
    http.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    http.post("/api/v1/namespaces/other/configmaps", {"metadata": {"name": "b"}})

    items = http.get("/api/v1/configmaps", params={"fieldSelector": "metadata.namespace=other"}).json()["items"]

    assert [item["metadata"]["name"] for item in items] == ["b"]


def test_unsupported_field_selector_gets_400(http: Http) -> None:
    response = http.get(CONFIGMAPS, params={"fieldSelector": "data.x=1"})

    assert response.status_code == 400
    assert "field label not supported" in response.json()["message"]


def test_list_pages_with_continue(http: Http) -> None:
    for index in range(5):
        http.post(CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}})

    first = http.get(CONFIGMAPS, params={"limit": "2"}).json()
    second = http.get(CONFIGMAPS, params={"limit": "10", "continue": first["metadata"]["continue"]}).json()

    assert [item["metadata"]["name"] for item in first["items"]] == ["cm-0", "cm-1"]
    assert first["metadata"]["remainingItemCount"] == 3
    assert [item["metadata"]["name"] for item in second["items"]] == ["cm-2", "cm-3", "cm-4"]
    assert "continue" not in second["metadata"]


def test_watch_without_version_sends_existing(http: Http) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})

    for version in (None, "0"):
        params = {"watch": "true", "timeoutSeconds": "5"}
        if version is not None:
            params["resourceVersion"] = version
        events = read_events(http.get(CONFIGMAPS, params=params, stream=True), lambda event: True)
        assert events[0]["type"] == "ADDED"
        assert events[0]["object"]["metadata"]["name"] == "a"


def test_watch_from_old_version_gets_410(apiserver: ApiServer, http: Http) -> None:
    start = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    for index in range(apiserver.history_size + 5):
        http.post(CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}})

    response = http.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": start}, stream=True)
    events = read_events(response, lambda event: True)

    assert response.status_code == 200
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


def test_watch_from_current_version_misses_nothing(http: Http) -> None:
    start = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    response = http.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": start,
                                            "timeoutSeconds": "60"}, stream=True)
    writer_http = Http(http.url)

    def write_burst() -> None:
        for index in range(250):
            writer_http.post(CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}})
            writer_http.patch(f"{CONFIGMAPS}/cm-{index}", {"data": {"n": str(index)}})

    writer = threading.Thread(target=write_burst)
    writer.start()
    events = read_events(response, lambda event: event["object"]["metadata"]["name"] == "cm-249"
                         and event["type"] == "MODIFIED")
    writer.join()

    assert len(events) == 500
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(versions)
    assert [event["type"] for event in events[:2]] == ["ADDED", "MODIFIED"]


def test_watch_resumes_after_version(http: Http) -> None:
    first = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})

    response = http.get(CONFIGMAPS, params={"watch": "true", "timeoutSeconds": "5",
                                            "resourceVersion": first["metadata"]["resourceVersion"]},
                        stream=True)
    events = read_events(response, lambda event: True)

    assert events[0]["object"]["metadata"]["name"] == "b"


def test_watch_ends_after_timeout(http: Http) -> None:
    response = http.get(CONFIGMAPS, params={"watch": "true", "timeoutSeconds": "1"}, stream=True)

    events = read_events(response, lambda event: False)

    assert events == []


def test_watch_sends_bookmarks_when_allowed(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    response = http.get(CONFIGMAPS, params={"watch": "true", "allowWatchBookmarks": "true",
                                            "resourceVersion": created["metadata"]["resourceVersion"],
                                            "timeoutSeconds": "10"}, stream=True)

    events = read_events(response, lambda event: event["type"] == "BOOKMARK")

    assert events[-1]["type"] == "BOOKMARK"
    assert events[-1]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_initial_events_end_with_bookmark(http: Http) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.get(CONFIGMAPS, params={"watch": "true", "sendInitialEvents": "true",
                                            "resourceVersionMatch": "NotOlderThan",
                                            "allowWatchBookmarks": "true", "timeoutSeconds": "5"},
                        stream=True)

    events = read_events(response, lambda event: event["type"] == "BOOKMARK")

    assert [event["type"] for event in events] == ["ADDED", "BOOKMARK"]
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations["k8s.io/initial-events-end"] == "true"


def test_watch_sees_selector_transitions(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"team": "x"}}}).json()
    response = http.get(CONFIGMAPS, params={"watch": "true", "labelSelector": "team=x", "timeoutSeconds": "10",
                                            "resourceVersion": created["metadata"]["resourceVersion"]},
                        stream=True)

    http.patch(f"{CONFIGMAPS}/a", {"metadata": {"labels": {"team": "y"}}})
    http.patch(f"{CONFIGMAPS}/a", {"metadata": {"labels": {"team": "x"}}})
    events = read_events(response, lambda event: event["type"] == "ADDED")

    assert [event["type"] for event in events] == ["DELETED", "ADDED"]


def test_watch_of_one_name(http: Http) -> None:
    start = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})

    response = http.get(CONFIGMAPS, params={"watch": "true", "fieldSelector": "metadata.name=b",
                                            "resourceVersion": start, "timeoutSeconds": "5"}, stream=True)
    events = read_events(response, lambda event: True)

    assert json.dumps(events[0]["object"]["metadata"]["name"]) == '"b"'
