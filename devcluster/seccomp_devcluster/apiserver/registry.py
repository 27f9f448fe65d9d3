"""The resource types that the API server serves: built-in kinds and custom resources.

Built-in kinds come from the discovery data that KMock bundles (taken from a real
cluster), so verbs, short names, categories and subresources match what kubectl and
kopf expect. Custom resources are added and removed as CustomResourceDefinitions are
created, updated and deleted (see `crds.py`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any

import kmock

# Groups in KMock's bundled discovery data that a plain cluster does not serve
# (they come from CRDs or aggregated API servers there).
NOT_BUILT_IN_GROUPS = frozenset({"gateway.networking.k8s.io", "metrics.k8s.io"})

# Groups are listed in /apis in this order, as the real API server does for these.
BUILT_IN_GROUP_ORDER = (
    "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
)

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# The subresources this server implements, with the verbs discovery lists for them.
SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "log": ["get"],
    "binding": ["create"],
}
SUBRESOURCE_KINDS = {"binding": "Binding"}
SERVED_SUBRESOURCES = frozenset(SUBRESOURCE_VERBS)


@dataclasses.dataclass
class ResourceType:
    """One served resource: a plural name in one group and version."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    verbs: list[str]
    short_names: list[str] = dataclasses.field(default_factory=list)
    categories: list[str] = dataclasses.field(default_factory=list)
    subresources: list[str] = dataclasses.field(default_factory=list)
    list_kind: str = ""
    # Custom resources only: the version's schema and printer columns, the CRD's uid.
    schema: dict[str, Any] | None = None
    printer_columns: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    selectable_fields: list[str] = dataclasses.field(default_factory=list)
    crd_uid: str | None = None

    def __post_init__(self) -> None:
        if not self.list_kind:
            self.list_kind = f"{self.kind}List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Where objects are stored: all versions of a group's resource share it.

        The two Event APIs (core v1 and events.k8s.io/v1) share one storage too,
        as in the real API server.
        """
        if self.group == "events.k8s.io" and self.plural == "events":
            return ("", "events")
        return (self.group, self.plural)

    @property
    def is_custom(self) -> bool:
        return self.crd_uid is not None

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def group_resource(self) -> str:
        """The `plural.group` form used in error messages (`pods`, `deployments.apps`)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def url(self, namespace: str | None, name: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)


# Kubernetes version names sort as: GA > beta > alpha, then by number.
_VERSION_PATTERN = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Return a sort key that puts the version the real server prefers first."""
    match = _VERSION_PATTERN.match(version)
    if match is None:
        return (3, 0, 0)  # non-conventional names sort last
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -int(major), -int(minor or 0))


class Registry:
    """The set of served resource types, with lookup by name, kind and short name."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._load_built_ins()

    def _load_built_ins(self) -> None:
        for rtype in _built_in_types():
            self.add(copy.deepcopy(rtype))

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_crd(self, crd_uid: str) -> None:
        for key, rtype in list(self._types.items()):
            if rtype.crd_uid == crd_uid:
                del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types.values())

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.version == version and rtype.kind == kind:
                return rtype
        return None

    def for_storage(self, storage_key: tuple[str, str]) -> list[ResourceType]:
        return [rtype for rtype in self._types.values() if rtype.storage_key == storage_key]

    def groups(self) -> dict[str, list[str]]:
        """Map each group to its versions, preferred version first, in /apis order."""
        versions: dict[str, set[str]] = {}
        for rtype in self._types.values():
            versions.setdefault(rtype.group, set()).add(rtype.version)
        custom = sorted(group for group in versions if group not in BUILT_IN_GROUP_ORDER)
        order = [""] + [group for group in BUILT_IN_GROUP_ORDER if group in versions] + custom
        return {
            group: sorted(versions[group], key=version_priority)
            for group in order
            if group in versions
        }

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rtype for rtype in self._types.values()
             if rtype.group == group and rtype.version == version),
            key=lambda rtype: rtype.plural,
        )


@functools.cache
def _built_in_types() -> tuple[ResourceType, ...]:
    """Read KMock's bundled discovery data (from a real cluster) once per process."""
    bundled = kmock.ResourcesArray()
    bundled.load_bundled()
    result = []
    for resource in bundled:
        info = bundled[resource]
        group, version, plural = resource.group, resource.version, resource.plural
        if group is None or version is None or plural is None or group in NOT_BUILT_IN_GROUPS:
            continue
        result.append(ResourceType(
            group=group,
            version=version,
            plural=plural,
            kind=info.kind or plural.capitalize(),
            singular=info.singular or plural,
            namespaced=bool(info.namespaced),
            verbs=sorted(info.verbs),
            short_names=sorted(info.shortnames),
            categories=sorted(info.categories),
            subresources=sorted(info.subresources & SERVED_SUBRESOURCES),
        ))
    return tuple(result)
