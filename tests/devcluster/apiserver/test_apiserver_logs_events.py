"""Pod logs, Events and server-side Table output."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from apiserver_helpers import Http, read_events

from seccomp_devcluster.apiserver import ApiServer

PODS = "/api/v1/namespaces/default/pods"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def make_pod(http: Http, apiserver: ApiServer, containers: tuple[str, ...] = ("main",)) -> tuple[dict[str, Any], Path]:
    pod = http.post(PODS, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": name, "image": "x:1"} for name in containers]}}).json()
    assert apiserver.log_root is not None
    folder = apiserver.log_root / f"default_p_{pod['metadata']['uid']}"
    folder.mkdir(parents=True)
    return pod, folder


def test_log_options(http: Http, apiserver: ApiServer) -> None:
    _, folder = make_pod(http, apiserver)
    (folder / "main.log").write_bytes(b"one\ntwo\nthree\n")

    assert http.get(f"{PODS}/p/log").text == "one\ntwo\nthree\n"
    assert http.get(f"{PODS}/p/log?tailLines=2").text == "two\nthree\n"
    assert http.get(f"{PODS}/p/log?limitBytes=5").text == "one\nt"


def test_log_container_choice(http: Http, apiserver: ApiServer) -> None:
    _, folder = make_pod(http, apiserver, ("a", "b"))
    (folder / "b.log").write_bytes(b"from b\n")

    unnamed = http.get(f"{PODS}/p/log")
    named = http.get(f"{PODS}/p/log?container=b")
    unknown = http.get(f"{PODS}/p/log?container=c")
    not_started = http.get(f"{PODS}/p/log?container=a")

    assert unnamed.status_code == 400
    assert "choose one of: [a b]" in unnamed.json()["message"]
    assert named.text == "from b\n"
    assert unknown.status_code == 400
    assert not_started.status_code == 400
    assert "waiting to start" in not_started.json()["message"]


def test_log_follow_streams_appended_bytes(http: Http, apiserver: ApiServer) -> None:
    _, folder = make_pod(http, apiserver)
    log = folder / "main.log"
    log.write_bytes(b"first\n")
    response = http.get(f"{PODS}/p/log?follow=true", stream=True)
    received: list[bytes] = []

    def read() -> None:
        for chunk in response.iter_content(chunk_size=None):
            received.append(chunk)
            if b"second" in b"".join(received):
                break

    reader = threading.Thread(target=read)
    reader.start()
    with log.open("ab") as file:
        file.write(b"second\n")
    reader.join(30)
    response.close()

    assert not reader.is_alive()
    assert b"".join(received) == b"first\nsecond\n"


def test_log_follow_ends_when_pod_is_deleted(http: Http, apiserver: ApiServer) -> None:
    _, folder = make_pod(http, apiserver)
    (folder / "main.log").write_bytes(b"x\n")
    response = http.get(f"{PODS}/p/log?follow=true", stream=True)
    time.sleep(0.2)

    http.delete(f"{PODS}/p")

    assert response.content == b"x\n"


def test_core_events_list_and_watch(http: Http) -> None:
    start = http.get("/api/v1/namespaces/default/events").json()["metadata"]["resourceVersion"]
    watch = http.get(f"/api/v1/namespaces/default/events?watch=true&resourceVersion={start}&timeoutSeconds=10",
                     stream=True)

    http.post("/api/v1/namespaces/default/events", {
        "metadata": {"generateName": "kopf-event-"}, "reason": "Created", "type": "Normal",
        "message": "made", "involvedObject": {"kind": "Widget", "name": "w", "uid": "u-1"}})
    events = read_events(watch, lambda event: True)
    selected = http.get("/api/v1/namespaces/default/events",
                        params={"fieldSelector": "involvedObject.name=w,reason=Created"}).json()

    assert events[0]["object"]["reason"] == "Created"
    assert [item["message"] for item in selected["items"]] == ["made"]


def test_new_events_api_lists_core_events(http: Http) -> None:
    http.post("/api/v1/namespaces/default/events", {
        "metadata": {"name": "e"}, "reason": "Created", "message": "made",
        "involvedObject": {"kind": "Pod", "name": "p"}})

    listed = http.get("/apis/events.k8s.io/v1/namespaces/default/events").json()

    assert listed["kind"] == "EventList"
    assert listed["items"][0]["apiVersion"] == "events.k8s.io/v1"
    assert listed["items"][0]["note"] == "made"
    assert listed["items"][0]["regarding"]["name"] == "p"


def test_default_table_has_name_and_age(http: Http) -> None:
    http.post("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "sa"}})
    http.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", {"metadata": {"name": "r"}})

    role_table = http.get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
                          headers={"Accept": TABLE}).json()

    assert role_table["kind"] == "Table"
    assert [column["name"] for column in role_table["columnDefinitions"]] == ["Name", "Age"]
    assert role_table["rows"][0]["cells"][0] == "r"
    assert role_table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_custom_table_columns(http: Http, widgets: str) -> None:
    http.post(widgets, {"metadata": {"name": "w"}, "spec": {"size": 4}})
    http.patch(f"{widgets}/w/status", {"status": {"phase": "Ready"}})

    table = http.get(f"{widgets}/w", headers={"Accept": TABLE}).json()

    columns = [(column["name"], column["type"], column["priority"]) for column in table["columnDefinitions"]]
    assert columns == [("Name", "string", 0), ("Size", "integer", 0), ("Color", "string", 1),
                       ("Phase", "string", 0), ("Age", "date", 0)]
    assert table["rows"][0]["cells"][:4] == ["w", 4, "red", "Ready"]
    assert table["rows"][0]["cells"][4].endswith("s")
