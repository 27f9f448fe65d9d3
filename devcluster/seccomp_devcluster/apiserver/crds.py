"""CustomResourceDefinitions: checks on create, the served resource types, and status.

A CRD is registered the moment it is stored and gets `NamesAccepted` and `Established`
conditions at once, so `kubectl wait --for condition=Established` returns at once.
"""

from __future__ import annotations

from typing import Any

from seccomp_devcluster.apiserver import errors, registry

CRD_KIND = "CustomResourceDefinition"
CRD_GROUP = "apiextensions.k8s.io"
CRD_STORAGE = (CRD_GROUP, "customresourcedefinitions")


def check_spec(crd: dict[str, Any], existing: registry.Registry) -> None:
    """Reject a CRD whose names or versions the real server would reject (422)."""
    name = crd["metadata"]["name"]
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    causes: list[dict[str, str]] = []

    if not group:
        causes.append(errors.cause("FieldValueRequired", "spec.group", "Required value"))
    if not names.get("plural"):
        causes.append(errors.cause("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(errors.cause("FieldValueRequired", "spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(errors.cause(
            "FieldValueNotSupported", "spec.scope",
            f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", "Namespaced"'))
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        causes.append(errors.cause(
            "FieldValueInvalid", "metadata.name",
            f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))

    versions = spec.get("versions") or []
    if not versions:
        causes.append(errors.cause("FieldValueRequired", "spec.versions", "Required value"))
    storage = [version for version in versions if version.get("storage")]
    if versions and len(storage) != 1:
        causes.append(errors.cause(
            "FieldValueInvalid", "spec.versions",
            "Invalid value: []: must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        if version.get("served", True) and not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(errors.cause(
                "FieldValueRequired", f"spec.versions[{index}].schema.openAPIV3Schema",
                "Required value: schemas are required"))

    if group and names.get("plural"):
        for rtype in existing:
            if rtype.group == group and rtype.plural == names["plural"] and not rtype.is_custom:
                causes.append(errors.cause(
                    "FieldValueInvalid", "spec.group",
                    f'Invalid value: "{group}": the group and plural are served by a built-in resource'))
                break

    if causes:
        raise errors.invalid(CRD_KIND, CRD_GROUP, name, causes)


def resource_types(crd: dict[str, Any]) -> list[registry.ResourceType]:
    """Build the resource types a CRD serves (one per served version)."""
    spec = crd["spec"]
    names = spec["names"]
    result: list[registry.ResourceType] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or spec.get("subresources") or {}
        columns = version.get("additionalPrinterColumns") or spec.get("additionalPrinterColumns") or []
        result.append(registry.ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope") == "Namespaced",
            verbs=list(registry.ALL_VERBS),
            short_names=list(names.get("shortNames") or []),
            categories=list(names.get("categories") or []),
            subresources=["status"] if "status" in subresources else [],
            list_kind=names.get("listKind") or f"{names['kind']}List",
            schema=(version.get("schema") or {}).get("openAPIV3Schema") or {},
            printer_columns=list(columns),
            selectable_fields=[
                field["jsonPath"].lstrip(".") for field in version.get("selectableFields") or []
            ],
            crd_uid=crd["metadata"]["uid"],
        ))
    return result


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """Compute the status the CRD controllers of a real cluster converge to."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    old_status = crd.get("status") or {}
    stored = list(old_status.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if version.get("storage") and version["name"] not in stored:
            stored.append(version["name"])
    conditions = [
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
         "message": "no conflicts found", "lastTransitionTime": now},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
         "message": "the initial names have been accepted", "lastTransitionTime": now},
    ]
    if crd["metadata"].get("deletionTimestamp"):
        conditions.append({
            "type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress",
            "message": "CustomResource deletion is in progress", "lastTransitionTime": now,
        })
    old_times = {
        condition.get("type"): condition.get("lastTransitionTime")
        for condition in old_status.get("conditions") or []
    }
    for condition in conditions:
        condition["lastTransitionTime"] = old_times.get(condition["type"]) or now
    return {"conditions": conditions, "acceptedNames": names, "storedVersions": stored}
