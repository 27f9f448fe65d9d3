"""Server-set metadata, generateName and namespaces."""

from __future__ import annotations

import uuid

from apiserver_helpers import Http, read_events

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_create_sets_server_metadata(http: Http) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a", "uid": "mine", "resourceVersion": "99"}})
    metadata = response.json()["metadata"]

    assert response.status_code == 201
    assert uuid.UUID(metadata["uid"])
    assert metadata["resourceVersion"] != "99"
    assert metadata["creationTimestamp"].endswith("Z")
    assert metadata["namespace"] == "default"


def test_resource_version_is_one_counter(http: Http, widgets: str) -> None:
    first = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    second = http.post(widgets, {"metadata": {"name": "w"}, "spec": {"size": 1}}).json()
    third = http.post("/api/v1/namespaces", {"metadata": {"name": "n1"}}).json()

    versions = [int(obj["metadata"]["resourceVersion"]) for obj in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3
    listed = http.get(CONFIGMAPS).json()["metadata"]["resourceVersion"]
    assert int(listed) == versions[-1]


def test_generate_name_adds_suffix(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"generateName": "cm-"}}).json()
    name = created["metadata"]["name"]

    assert name.startswith("cm-")
    assert len(name) == len("cm-") + 5
    assert http.get(f"{CONFIGMAPS}/{name}").status_code == 200


def test_missing_name_is_invalid(http: Http) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {}})

    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_invalid_name_is_rejected(http: Http) -> None:
    response = http.post(CONFIGMAPS, {"metadata": {"name": "Not_Valid"}})

    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"


def test_duplicate_name_gets_409(http: Http) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.post(CONFIGMAPS, {"metadata": {"name": "a"}})

    assert response.status_code == 409
    assert response.json()["reason"] == "AlreadyExists"
    assert response.json()["message"] == 'configmaps "a" already exists'


def test_generation_bumps_on_spec_only(http: Http, widgets: str) -> None:
    http.post(widgets, {"metadata": {"name": "w"}, "spec": {"size": 1}})
    path = f"{widgets}/w"

    after_labels = http.patch(path, {"metadata": {"labels": {"a": "b"}}}).json()
    after_status = http.patch(f"{path}/status", {"status": {"phase": "Ready"}}).json()
    after_spec = http.patch(path, {"spec": {"size": 2}}).json()

    assert after_labels["metadata"]["generation"] == 1
    assert after_status["metadata"]["generation"] == 1
    assert after_spec["metadata"]["generation"] == 2


def test_bootstrap_namespaces_exist(http: Http) -> None:
    names = {item["metadata"]["name"] for item in http.get("/api/v1/namespaces").json()["items"]}

    assert {"default", "kube-system"} <= names
    assert http.get("/api/v1/namespaces/default").json()["status"]["phase"] == "Active"


def test_object_in_missing_namespace_gets_404(http: Http) -> None:
    response = http.post("/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "a"}})

    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nowhere" not found'


def test_namespace_deletion_removes_contents(http: Http) -> None:
    assert http.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}}).status_code == 201
    http.post("/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "a"}})

    deleted = http.delete("/api/v1/namespaces/doomed")
    assert deleted.status_code in (200, 202)
    assert deleted.json()["status"]["phase"] == "Terminating"

    watch = http.get("/api/v1/namespaces?watch=true&fieldSelector=metadata.name%3Ddoomed"
                     f"&resourceVersion={deleted.json()['metadata']['resourceVersion']}&timeoutSeconds=10",
                     stream=True)
    events = read_events(watch, lambda event: event["type"] == "DELETED")
    assert events[-1]["type"] == "DELETED"
    assert http.get("/api/v1/namespaces/doomed").status_code == 404
    assert http.get("/api/v1/namespaces/doomed/configmaps/a").status_code == 404


def test_protected_namespace_cannot_be_deleted(http: Http) -> None:
    response = http.delete("/api/v1/namespaces/kube-system")

    assert response.status_code == 403
