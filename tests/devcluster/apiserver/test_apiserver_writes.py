"""PUT, the patch types, conflicts, the status subresource, deletion and garbage collection."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from apiserver_helpers import Http, read_events

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def pod(name: str, node: str | None = None, **metadata: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox:1.36"},
                                           {"name": "side", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, **metadata}, "spec": spec}


def owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "blockOwnerDeletion": True}


def wait_until_gone(http: Http, collection: str, name: str, since: str) -> None:
    watch = http.get(f"{collection}?watch=true&fieldSelector=metadata.name%3D{name}"
                     f"&resourceVersion={since}&timeoutSeconds=10", stream=True)
    read_events(watch, lambda event: event["type"] == "DELETED")
    assert http.get(f"{collection}/{name}").status_code == 404


def test_put_replaces_whole_object(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}}).json()
    created["data"] = {"z": "3"}

    replaced = http.put(f"{CONFIGMAPS}/a", created)

    assert replaced.status_code == 200
    assert replaced.json()["data"] == {"z": "3"}
    assert replaced.json()["metadata"]["uid"] == created["metadata"]["uid"]


def test_put_with_stale_version_gets_409(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"x": "1"}}).json()
    http.patch(f"{CONFIGMAPS}/a", {"data": {"x": "2"}})

    response = http.put(f"{CONFIGMAPS}/a", created)

    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert "the object has been modified" in response.json()["message"]


def test_concurrent_stale_updates_get_409(http: Http) -> None:
    base = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"n": "0"}}).json()
    statuses: list[int] = []
    lock = threading.Lock()

    def update(value: int) -> None:
        body = dict(base, data={"n": str(value)})
        status = Http(http.url).put(f"{CONFIGMAPS}/a", body).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=update, args=(value,)) for value in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [409] * 7


def test_merge_patch_with_stale_version_gets_409(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    http.patch(f"{CONFIGMAPS}/a", {"data": {"x": "1"}})

    response = http.patch(f"{CONFIGMAPS}/a", {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
                                              "data": {"x": "2"}})

    assert response.status_code == 409


def test_json_patch_applies_operations(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"x": "1"}}).json()
    version = created["metadata"]["resourceVersion"]

    response = http.patch(f"{CONFIGMAPS}/a", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/keep"]},
        {"op": "replace", "path": "/data/x", "value": "2"},
    ], patch_type="json")

    assert response.status_code == 200
    assert response.json()["metadata"]["finalizers"] == ["example.com/keep"]
    assert response.json()["data"] == {"x": "2"}


def test_json_patch_failed_test_gets_422(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    http.patch(f"{CONFIGMAPS}/a", {"data": {"x": "1"}})

    response = http.patch(f"{CONFIGMAPS}/a", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ], patch_type="json")

    assert response.status_code == 422
    assert "finalizers" not in http.get(f"{CONFIGMAPS}/a").json()["metadata"]


def test_merge_patch_removes_null_fields(http: Http) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"a": "1", "b": "2"}}})

    patched = http.patch(f"{CONFIGMAPS}/a", {"metadata": {"labels": {"a": None}}}).json()

    assert patched["metadata"]["labels"] == {"b": "2"}


def test_strategic_patch_merges_containers_by_name(http: Http) -> None:
    http.post(PODS, pod("p"))

    patched = http.patch(f"{PODS}/p", {"spec": {"containers": [{"name": "side", "image": "busybox:1.37"}]},
                                       "metadata": {"finalizers": ["a/b"]}},
                         patch_type="strategic").json()

    images = {container["name"]: container["image"] for container in patched["spec"]["containers"]}
    assert images == {"main": "busybox:1.36", "side": "busybox:1.37"}
    assert patched["metadata"]["finalizers"] == ["a/b"]


def test_strategic_patch_merges_finalizers_and_conditions(http: Http) -> None:
    http.post(PODS, pod("p", finalizers=["a/one"]))
    http.patch(f"{PODS}/p/status", {"status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}},
        patch_type="strategic")

    http.patch(f"{PODS}/p", {"metadata": {"finalizers": ["a/two"]}}, patch_type="strategic")
    status = http.patch(f"{PODS}/p/status", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                        patch_type="strategic").json()

    assert http.get(f"{PODS}/p").json()["metadata"]["finalizers"] == ["a/one", "a/two"]
    conditions = {item["type"]: item["status"] for item in status["status"]["conditions"]}
    assert conditions == {"Ready": "True", "Initialized": "True"}


def test_strategic_patch_directives(http: Http) -> None:
    http.post(PODS, pod("p", finalizers=["a/one", "a/two"]))

    patched = http.patch(f"{PODS}/p", {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]},
        "spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
                 "containers": [{"name": "main", "$patch": "delete"}]},
    }, patch_type="strategic").json()

    assert patched["metadata"]["finalizers"] == ["a/two"]
    assert [container["name"] for container in patched["spec"]["containers"]] == ["side"]


def test_strategic_patch_on_custom_resource_gets_415(http: Http, widgets: str) -> None:
    http.post(widgets, {"metadata": {"name": "w"}, "spec": {"size": 1}})

    response = http.patch(f"{widgets}/w", {"spec": {"size": 2}}, patch_type="strategic")

    assert response.status_code == 415


def test_no_op_patch_keeps_resource_version(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"x": "1"}}).json()

    patched = http.patch(f"{CONFIGMAPS}/a", {"data": {"x": "1"}}).json()

    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_main_resource_write_ignores_status(http: Http, widgets: str) -> None:
    http.post(widgets, {"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"phase": "Made-up"}})
    http.patch(f"{widgets}/w/status", {"status": {"phase": "Ready"}})

    patched = http.patch(f"{widgets}/w", {"spec": {"size": 2}, "status": {"phase": "Ignored"}}).json()

    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"]["size"] == 2


def test_status_write_changes_only_status(http: Http) -> None:
    http.post(PODS, pod("p"))

    patched = http.patch(f"{PODS}/p/status", {"status": {"phase": "Running"}, "spec": {"nodeName": "x"},
                                              "metadata": {"labels": {"a": "b"}}}).json()
    replaced = http.put(f"{PODS}/p/status", dict(patched, status={"phase": "Succeeded"},
                                                 spec={"containers": []})).json()

    assert patched["status"]["phase"] == "Running"
    assert "nodeName" not in patched["spec"]
    assert "labels" not in patched["metadata"]
    assert replaced["status"] == {"phase": "Succeeded"}
    assert len(replaced["spec"]["containers"]) == 2


@pytest.mark.parametrize("collection, body", [
    ("/api/v1/nodes", {"metadata": {"name": "n1"}, "spec": {}}),
    (DEPLOYMENTS, {"metadata": {"name": "d1"}, "spec": {"selector": {}, "template": {}}}),
    ("/apis/apps/v1/namespaces/default/daemonsets", {"metadata": {"name": "ds1"},
                                                     "spec": {"selector": {}, "template": {}}}),
])
def test_built_in_status_is_separate(http: Http, collection: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    http.post(collection, body)
    http.patch(f"{collection}/{name}/status", {"status": {"observedGeneration": 7}})

    patched = http.patch(f"{collection}/{name}", {"status": {"observedGeneration": 99},
                                                  "metadata": {"labels": {"x": "y"}}}).json()

    assert patched["status"]["observedGeneration"] == 7
    assert patched["metadata"]["labels"] == {"x": "y"}


def test_pods_start_pending(http: Http) -> None:
    created = http.post(PODS, dict(pod("p"), status={"phase": "Running"})).json()

    assert created["status"]["phase"] == "Pending"


def test_delete_with_finalizer_sets_deletion_timestamp(http: Http) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "finalizers": ["example.com/hold"]}})

    deleted = http.delete(f"{CONFIGMAPS}/a")
    held = http.get(f"{CONFIGMAPS}/a").json()
    added = http.patch(f"{CONFIGMAPS}/a", {"metadata": {"finalizers": ["example.com/hold", "new"]}})
    released = http.patch(f"{CONFIGMAPS}/a", {"metadata": {"finalizers": None}})

    assert deleted.status_code == 202
    assert held["metadata"]["deletionTimestamp"]
    assert added.status_code == 422
    assert released.status_code == 200
    assert http.get(f"{CONFIGMAPS}/a").status_code == 404


def test_delete_preconditions(http: Http) -> None:
    created = http.post(CONFIGMAPS, {"metadata": {"name": "a"}}).json()
    http.patch(f"{CONFIGMAPS}/a", {"data": {"x": "1"}})

    wrong_version = http.delete(f"{CONFIGMAPS}/a", {"preconditions": {
        "resourceVersion": created["metadata"]["resourceVersion"]}})
    wrong_uid = http.delete(f"{CONFIGMAPS}/a", {"preconditions": {"uid": "other"}})
    right_uid = http.delete(f"{CONFIGMAPS}/a", {"preconditions": {"uid": created["metadata"]["uid"]}})

    assert wrong_version.status_code == 409
    assert wrong_uid.status_code == 409
    assert right_uid.status_code == 200


def test_delete_collection_by_label(http: Http) -> None:
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        http.post(CONFIGMAPS, {"metadata": {"name": name, "labels": {"team": team}}})

    response = http.delete(f"{CONFIGMAPS}?labelSelector=team%3Dx")

    assert sorted(item["metadata"]["name"] for item in response.json()["items"]) == ["a", "b"]
    assert [item["metadata"]["name"] for item in http.get(CONFIGMAPS).json()["items"]] == ["c"]


def test_dry_run_stores_nothing(http: Http) -> None:
    response = http.post(f"{CONFIGMAPS}?dryRun=All", {"metadata": {"name": "a"}})

    assert response.status_code == 201
    assert http.get(f"{CONFIGMAPS}/a").status_code == 404


def test_pod_on_node_waits_for_node_confirmation(http: Http) -> None:
    http.post("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    http.post(PODS, pod("p", node="node-1"))

    first = http.delete(f"{PODS}/p")
    still_there = http.get(f"{PODS}/p")
    confirmed = http.delete(f"{PODS}/p", {"gracePeriodSeconds": 0})

    assert first.status_code == 202
    assert first.json()["metadata"]["deletionGracePeriodSeconds"] == 30
    assert still_there.status_code == 200
    assert still_there.json()["metadata"]["deletionTimestamp"]
    assert confirmed.status_code == 200
    assert http.get(f"{PODS}/p").status_code == 404


def test_pod_status_update_does_not_remove_deleting_pod(http: Http) -> None:
    http.post("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    http.post(PODS, pod("p", node="node-1"))
    http.delete(f"{PODS}/p?gracePeriodSeconds=5")

    http.patch(f"{PODS}/p/status", {"status": {"phase": "Succeeded"}})

    assert http.get(f"{PODS}/p").json()["status"]["phase"] == "Succeeded"


def test_pod_without_node_is_removed_at_once(http: Http) -> None:
    http.post(PODS, pod("p"))

    response = http.delete(f"{PODS}/p")

    assert response.status_code == 200
    assert http.get(f"{PODS}/p").status_code == 404


def test_deleting_pod_on_missing_node_is_collected(http: Http) -> None:
    created = http.post(PODS, pod("p", node="ghost")).json()

    http.delete(f"{PODS}/p")

    wait_until_gone(http, PODS, "p", created["metadata"]["resourceVersion"])


def test_binding_sets_node_name(http: Http) -> None:
    http.post(PODS, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"kind": "Node", "name": "node-1"}}

    first = http.post(f"{PODS}/p/binding", binding)
    second = http.post(f"{PODS}/p/binding", binding)

    assert first.status_code == 201
    assert http.get(f"{PODS}/p").json()["spec"]["nodeName"] == "node-1"
    assert second.status_code == 409


def test_background_deletion_collects_dependents(http: Http) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [owner_reference(owner)]}})

    http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Background"})

    wait_until_gone(http, CONFIGMAPS, "child", owner["metadata"]["resourceVersion"])


def test_foreground_deletion_waits_for_dependents(http: Http) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "child", "finalizers": ["example.com/hold"],
                                        "ownerReferences": [owner_reference(owner)]}})

    deleted = http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Foreground"}).json()
    watch = http.get(f"{CONFIGMAPS}?watch=true&fieldSelector=metadata.name%3Dchild"
                     f"&resourceVersion={deleted['metadata']['resourceVersion']}&timeoutSeconds=10", stream=True)
    read_events(watch, lambda event: bool(event["object"]["metadata"].get("deletionTimestamp")))

    assert "foregroundDeletion" in http.get(f"{CONFIGMAPS}/owner").json()["metadata"]["finalizers"]
    http.patch(f"{CONFIGMAPS}/child", {"metadata": {"finalizers": None}})
    wait_until_gone(http, CONFIGMAPS, "owner", deleted["metadata"]["resourceVersion"])


def test_orphan_deletion_keeps_dependents(http: Http) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [owner_reference(owner)]}})

    http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Orphan"})
    wait_until_gone(http, CONFIGMAPS, "owner", owner["metadata"]["resourceVersion"])

    child = http.get(f"{CONFIGMAPS}/child").json()
    assert "ownerReferences" not in child["metadata"]


def test_server_side_apply_creates_then_merges(http: Http) -> None:
    headers = {"Content-Type": "application/apply-patch+yaml"}
    first = http.request("PATCH", f"{CONFIGMAPS}/a?fieldManager=test",
                         data="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: '1'\n",
                         headers=headers)
    second = http.request("PATCH", f"{CONFIGMAPS}/a?fieldManager=test",
                          data="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  y: '2'\n",
                          headers=headers)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["data"] == {"x": "1", "y": "2"}


def test_secret_string_data_is_encoded(http: Http) -> None:
    created = http.post("/api/v1/namespaces/default/secrets",
                        {"metadata": {"name": "s"}, "stringData": {"k": "v"}}).json()

    assert created["data"] == {"k": "dg=="}
    assert "stringData" not in created
    assert created["type"] == "Opaque"
