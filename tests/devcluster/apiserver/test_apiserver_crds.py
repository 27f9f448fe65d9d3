"""CustomResourceDefinitions: registration, schema checks, updates and deletion."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from apiserver_helpers import WIDGET_CRD, Http, read_events

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, **spec}}


def test_crd_is_established_on_create(http: Http, widgets: str) -> None:
    crd = http.get(f"{CRDS}/widgets.example.com").json()

    conditions = {condition["type"]: condition["status"] for condition in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert http.get(widgets).json()["kind"] == "WidgetList"


def test_invalid_crd_gets_422(http: Http) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "wrong.example.com"

    response = http.post(CRDS, crd)

    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize("spec, field, reason", [
    ({"size": "big"}, "spec.size", "FieldValueTypeInvalid"),
    ({"size": None}, "spec.size", "FieldValueTypeInvalid"),
    ({"size": 0}, "spec.size", "FieldValueInvalid"),
    ({"size": 11}, "spec.size", "FieldValueInvalid"),
    ({"color": "green"}, "spec.color", "FieldValueNotSupported"),
    ({"name": "Abc"}, "spec.name", "FieldValueInvalid"),
    ({"name": "a"}, "spec.name", "FieldValueInvalid"),
    ({"name": "abcdefghi"}, "spec.name", "FieldValueTooLong"),
    ({"tags": []}, "spec.tags", "FieldValueInvalid"),
    ({"tags": ["a", "b", "c"]}, "spec.tags", "FieldValueTooMany"),
    ({"port": 1.5}, "spec.port", "FieldValueTypeInvalid"),
    ({"size": 5, "limit": 3}, "spec", "FieldValueInvalid"),
])
def test_schema_violation_gets_422_with_field(http: Http, widgets: str, spec: dict[str, Any],
                                              field: str, reason: str) -> None:
    response = http.post(widgets, widget(**spec))

    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Widget"
    assert status["details"]["group"] == "example.com"
    assert {"field": field, "reason": reason} in [
        {"field": cause["field"], "reason": cause["reason"]} for cause in status["details"]["causes"]]


def test_missing_required_field(http: Http, widgets: str) -> None:
    body = widget()
    del body["spec"]["size"]

    response = http.post(widgets, body)

    assert response.status_code == 422
    assert response.json()["details"]["causes"][0] == {
        "reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}
    assert response.json()["message"] == 'Widget.example.com "w" is invalid: spec.size: Required value'


def test_cel_rule_message_is_reported(http: Http, widgets: str) -> None:
    response = http.post(widgets, widget(size=5, limit=3))

    assert "size must not exceed limit" in response.json()["message"]


def test_cel_transition_rule_uses_old_self(http: Http, widgets: str) -> None:
    http.post(widgets, widget(size=5))

    shrink = http.patch(f"{widgets}/w", {"spec": {"size": 4}})
    grow = http.patch(f"{widgets}/w", {"spec": {"size": 6}})

    assert shrink.status_code == 422
    assert "size may not shrink" in shrink.json()["message"]
    assert grow.status_code == 200


def test_int_or_string_accepts_both(http: Http, widgets: str) -> None:
    as_number = http.post(widgets, widget(port=80))
    as_text = http.post(widgets, dict(widget(port="http"), metadata={"name": "w2"}))

    assert as_number.status_code == 201
    assert as_text.status_code == 201


def test_defaults_are_applied(http: Http, widgets: str) -> None:
    created = http.post(widgets, widget()).json()

    assert created["spec"] == {"size": 1, "limit": 10, "color": "red"}


def test_unknown_fields_are_pruned_with_warning(http: Http, widgets: str) -> None:
    response = http.post(widgets, widget(unknown=1, extra={"kept": {"deep": True}}))

    assert response.status_code == 201
    assert "unknown" not in response.json()["spec"]
    assert response.json()["spec"]["extra"] == {"kept": {"deep": True}}
    assert 'unknown field \\"spec.unknown\\"' in response.headers["Warning"]


def test_strict_field_validation_rejects_unknown(http: Http, widgets: str) -> None:
    response = http.post(f"{widgets}?fieldValidation=Strict", widget(unknown=1))

    assert response.status_code == 400
    assert 'unknown field "spec.unknown"' in response.json()["message"]


def test_cluster_scoped_custom_resource(http: Http) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gizmos.example.com"
    crd["spec"]["scope"] = "Cluster"
    crd["spec"]["names"] = {"plural": "gizmos", "kind": "Gizmo"}
    http.post(CRDS, crd)

    created = http.post("/apis/example.com/v1/gizmos", {"metadata": {"name": "g"}, "spec": {"size": 1}})
    namespaced = http.get("/apis/example.com/v1/namespaces/default/gizmos")

    assert created.status_code == 201
    assert "namespace" not in created.json()["metadata"]
    assert namespaced.status_code == 404


def test_crd_update_adds_version(http: Http, widgets: str) -> None:
    crd = http.get(f"{CRDS}/widgets.example.com").json()
    new_version = copy.deepcopy(crd["spec"]["versions"][0])
    new_version.update({"name": "v2", "storage": False})
    crd["spec"]["versions"].append(new_version)

    updated = http.put(f"{CRDS}/widgets.example.com", crd)
    http.post(widgets, widget())

    assert updated.status_code == 200
    read = http.get("/apis/example.com/v2/namespaces/default/widgets/w").json()
    assert read["apiVersion"] == "example.com/v2"
    assert read["spec"]["size"] == 1


def test_crd_deletion_deletes_objects(http: Http, widgets: str) -> None:
    http.post(widgets, widget())

    deleted = http.delete(f"{CRDS}/widgets.example.com").json()
    watch = http.get(f"{CRDS}?watch=true&resourceVersion={deleted['metadata']['resourceVersion']}"
                     "&timeoutSeconds=10", stream=True)
    read_events(watch, lambda event: event["type"] == "DELETED")

    assert http.get(f"{CRDS}/widgets.example.com").status_code == 404
    assert http.get(widgets).status_code == 404
    assert http.get("/apis/example.com/v1").status_code == 404


KOPF_PEERING_CRDS = [
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": f"{plural}.kopf.dev"},
     "spec": {"scope": scope, "group": "kopf.dev",
              "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
              "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                  "type": "object", "properties": {"status": {
                      "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    for kind, plural, scope in (("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
                                ("KopfPeering", "kopfpeerings", "Namespaced"))
]


def test_kopf_peering_crds_work(http: Http) -> None:
    for crd in KOPF_PEERING_CRDS:
        assert http.post(CRDS, crd).status_code == 201

    http.post("/apis/kopf.dev/v1/namespaces/default/kopfpeerings", {"metadata": {"name": "default"}})
    patched = http.patch("/apis/kopf.dev/v1/namespaces/default/kopfpeerings/default",
                         {"status": {"operator-1": {"priority": 0, "lifetime": 60}}})

    assert patched.status_code == 200
    assert patched.json()["status"]["operator-1"]["lifetime"] == 60
