"""Discovery, version, OpenAPI and content negotiation."""

from __future__ import annotations

import pytest
from apiserver_helpers import Http

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def test_core_discovery_has_group_version_v1(http: Http) -> None:
    versions = http.get("/api").json()
    resources = http.get("/api/v1").json()

    assert versions["versions"] == ["v1"]
    assert resources["groupVersion"] == "v1"
    names = {resource["name"] for resource in resources["resources"]}
    assert {"namespaces", "pods", "pods/status", "pods/log", "pods/binding", "nodes",
            "nodes/status", "configmaps", "secrets", "events", "serviceaccounts",
            "services"} <= names
    assert "pods/exec" not in names


@pytest.mark.parametrize("group_version, plural, kind", [
    ("apps/v1", "daemonsets", "DaemonSet"),
    ("apps/v1", "deployments", "Deployment"),
    ("coordination.k8s.io/v1", "leases", "Lease"),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition"),
    ("events.k8s.io/v1", "events", "Event"),
    ("rbac.authorization.k8s.io/v1", "roles", "Role"),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding"),
])
def test_group_discovery_lists_built_in(http: Http, group_version: str, plural: str, kind: str) -> None:
    group = group_version.split("/")[0]
    groups = {entry["name"]: entry for entry in http.get("/apis").json()["groups"]}
    resources = http.get(f"/apis/{group_version}").json()

    assert groups[group]["preferredVersion"]["groupVersion"] == group_version
    assert http.get(f"/apis/{group}").json()["name"] == group
    assert resources["groupVersion"] == group_version
    assert {resource["name"]: resource["kind"] for resource in resources["resources"]}[plural] == kind


def test_unknown_group_gets_404(http: Http) -> None:
    response = http.get("/apis/nothing.example.com/v1")

    assert response.status_code == 404
    assert response.json()["kind"] == "Status"
    assert response.json()["reason"] == "NotFound"


def test_aggregated_discovery_when_requested(http: Http, widgets: str) -> None:
    response = http.get("/apis", headers={"Accept": AGGREGATED})

    assert response.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    document = response.json()
    assert document["kind"] == "APIGroupDiscoveryList"
    groups = {item["metadata"]["name"]: item for item in document["items"]}
    widget = groups["example.com"]["versions"][0]["resources"][0]
    assert widget["resource"] == "widgets"
    assert widget["scope"] == "Namespaced"
    assert widget["shortNames"] == ["wd"]
    assert widget["categories"] == ["all", "gadgets"]
    assert widget["subresources"][0]["subresource"] == "status"

    core = http.get("/api", headers={"Accept": AGGREGATED}).json()
    assert core["items"][0]["versions"][0]["version"] == "v1"


def test_custom_resource_in_legacy_discovery(http: Http, widgets: str) -> None:
    resources = http.get("/apis/example.com/v1").json()["resources"]
    main = next(resource for resource in resources if resource["name"] == "widgets")

    assert main["kind"] == "Widget"
    assert main["namespaced"] is True
    assert main["shortNames"] == ["wd"]
    assert main["categories"] == ["all", "gadgets"]
    assert "widgets/status" in {resource["name"] for resource in resources}


def test_version_document(http: Http) -> None:
    version = http.get("/version").json()

    assert version["major"] == "1"
    assert version["minor"] == "32"


def test_openapi_v3_declares_field_validation(http: Http, widgets: str) -> None:
    root = http.get("/openapi/v3").json()
    url = root["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    document = http.get(url).json()

    operation = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert operation["x-kubernetes-group-version-kind"]["kind"] == "Widget"
    assert "fieldValidation" in {parameter["name"] for parameter in operation["parameters"]}
    assert "api/v1" in root["paths"]


def test_protobuf_only_accept_gets_406(http: Http) -> None:
    response = http.get("/api/v1/namespaces", headers={"Accept": "application/vnd.kubernetes.protobuf"})

    assert response.status_code == 406
    assert response.json()["reason"] == "NotAcceptable"


def test_protobuf_with_json_fallback_gets_json(http: Http) -> None:
    response = http.get("/api/v1/namespaces",
                        headers={"Accept": "application/vnd.kubernetes.protobuf, application/json"})

    assert response.status_code == 200
    assert response.json()["kind"] == "NamespaceList"


def test_protobuf_body_gets_415(http: Http) -> None:
    response = http.request("POST", "/api/v1/namespaces", data=b"k8s\x00\x0a",
                            headers={"Content-Type": "application/vnd.kubernetes.protobuf"})

    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
