"""Discovery documents, the version document and OpenAPI v3 answers.

Both discovery forms are served: the legacy per-group documents (`/api`, `/api/v1`,
`/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`) and the aggregated
`apidiscovery.k8s.io/v2` form that kubectl 1.32 asks for first.

The OpenAPI v3 documents are small: one PATCH operation per resource that declares the
`fieldValidation` query parameter. kubectl reads exactly that to decide that the server
validates fields itself, so plain `kubectl apply` works without `--validate=false`.
NOTE: no schemas are published, so `kubectl explain` has nothing to show, and
`/openapi/v2` gets 404 (kubectl needs it only when field validation is unsupported).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from seccomp_devcluster.apiserver import registry

KUBERNETES_VERSION = {"major": "1", "minor": "32"}
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def version_info() -> dict[str, Any]:
    return {
        **KUBERNETES_VERSION,
        "gitVersion": "v1.32.0-devcluster",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(types: registry.Registry) -> dict[str, Any]:
    groups = [_group_entry(group, versions)
              for group, versions in types.groups().items() if group]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(types: registry.Registry, group: str) -> dict[str, Any] | None:
    versions = types.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entries(rtype: registry.ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": rtype.verbs,
    }
    if rtype.short_names:
        main["shortNames"] = rtype.short_names
    if rtype.categories:
        main["categories"] = rtype.categories
    entries = [main]
    for subresource in rtype.subresources:
        entries.append({
            "name": f"{rtype.plural}/{subresource}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": registry.SUBRESOURCE_KINDS.get(subresource, rtype.kind),
            "verbs": registry.SUBRESOURCE_VERBS[subresource],
        })
    return entries


def api_resource_list(types: registry.Registry, group: str, version: str) -> dict[str, Any] | None:
    rtypes = types.in_group_version(group, version)
    if not rtypes:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rtype in rtypes for entry in _resource_entries(rtype)],
    }


def _aggregated_resource(rtype: registry.ResourceType) -> dict[str, Any]:
    response_kind = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": response_kind,
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": rtype.verbs,
    }
    if rtype.short_names:
        entry["shortNames"] = rtype.short_names
    if rtype.categories:
        entry["categories"] = rtype.categories
    if rtype.subresources:
        entry["subresources"] = [
            {
                "subresource": subresource,
                "responseKind": {
                    "group": rtype.group,
                    "version": rtype.version,
                    "kind": registry.SUBRESOURCE_KINDS.get(subresource, rtype.kind),
                },
                "verbs": registry.SUBRESOURCE_VERBS[subresource],
            }
            for subresource in rtype.subresources
        ]
    return entry


def aggregated(types: registry.Registry, core: bool, api_version: str) -> dict[str, Any]:
    """Build an APIGroupDiscoveryList: the core group for /api, all others for /apis."""
    items = []
    for group, versions in types.groups().items():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group} if group else {},
            "versions": [
                {
                    "version": version,
                    "resources": [_aggregated_resource(rtype)
                                  for rtype in types.in_group_version(group, version)],
                    "freshness": "Current",
                }
                for version in versions
            ],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {},
            "items": items}


def wants_aggregated(accept: str) -> str | None:
    """Return the aggregated discovery media type that the Accept header requests, if any."""
    for part in accept.split(","):
        parameters = {item.strip() for item in part.split(";")[1:]}
        if "as=APIGroupDiscoveryList" in parameters and "g=apidiscovery.k8s.io" in parameters:
            if "v=v2" in parameters:
                return AGGREGATED_V2
            if "v=v2beta1" in parameters:
                return AGGREGATED_V2BETA1
    return None


def _group_version_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _group_version_document(types: registry.Registry, group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rtype in types.in_group_version(group, version):
        if "patch" not in rtype.verbs:
            continue
        path = "/" + _group_version_path(group, version)
        if rtype.namespaced:
            path += "/namespaces/{namespace}"
        path += f"/{rtype.plural}/{{name}}"
        paths[path] = {
            "patch": {
                "operationId": f"patch{rtype.kind}",
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                     "description": "How the server treats unknown or duplicate fields."},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                ],
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version,
                                                    "kind": rtype.kind},
                "responses": {"200": {"description": "OK"}},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_v3_document(types: registry.Registry, group: str, version: str) -> dict[str, Any] | None:
    if not types.in_group_version(group, version):
        return None
    return _group_version_document(types, group, version)


def openapi_v3_root(types: registry.Registry) -> dict[str, Any]:
    """List the per-group-version documents, each with a hash of its content."""
    paths = {}
    for group, versions in types.groups().items():
        for version in versions:
            document = _group_version_document(types, group, version)
            digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64].upper()
            key = _group_version_path(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
