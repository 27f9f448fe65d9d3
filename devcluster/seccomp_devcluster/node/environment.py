"""Container environment variables, resolved as the kubelet resolves them.

Order and precedence follow the kubelet. First come the image's variables (PATH)
and HOSTNAME, then the `kubernetes` Service variables (KUBERNETES_SERVICE_HOST and
the others, which point at the node's API relay), then the `envFrom` sources in
order, then the `env` entries in order. A later definition of a name replaces an
earlier one. `$(NAME)` references in `env`
values are expanded from the variables defined before them, and `$$` escapes a `$`.

`valueFrom` supports fieldRef (metadata.name, .namespace, .uid, .labels['k'],
.annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP, .podIPs,
.hostIP, .hostIPs), resourceFieldRef (limits and requests of cpu, memory and
ephemeral-storage; a limit that is not set is the node's allocatable amount), and
configMapKeyRef and secretKeyRef. A missing object or key, unless `optional`, fails
the container with CreateContainerConfigError and the kubelet's message.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from seccomp_devcluster import oci

# Reads a ConfigMap or Secret ("configmaps" or "secrets", namespace, name); None if absent.
ObjectLookup = Callable[[str, str, str], dict[str, Any] | None]


class CreateContainerConfigError(Exception):
    """The container's configuration cannot be resolved; the message is the kubelet's."""


@dataclass(frozen=True)
class PodRuntimeInfo:
    """The pod facts that its spec lacks: addresses, node capacity and API relay address."""

    pod_ip: str
    host_ip: str
    # The node's allocatable cpu (cores) and memory (bytes), for resourceFieldRef.
    allocatable_cpu: int = 1
    allocatable_memory: int = 1 << 30
    # KUBERNETES_SERVICE_HOST and _PORT, or None when the node runs no API relay.
    service_host: str | None = None
    service_port: int | None = None


def service_variables(host: str, port: int) -> dict[str, str]:
    """Return the `kubernetes` Service variables that the kubelet gives every container."""
    address = f"tcp://{host}:{port}"
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": address,
        prefix: address,
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": str(port),
        f"{prefix}_ADDR": host,
    }


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_references(value: str, defined: dict[str, str]) -> str:
    """Expand `$(NAME)` from `defined`; unknown names stay as written, `$$` becomes `$`."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined.get(name, match.group(0))

    return _REFERENCE.sub(replace, value)


def _labelled(expression: str, prefix: str, values: dict[str, str]) -> str | None:
    match = re.fullmatch(re.escape(prefix) + r"\['(.+)'\]", expression)
    if match is None:
        return None
    return values.get(match.group(1), "")


def field_value(pod: dict[str, Any], path: str, info: PodRuntimeInfo) -> str:
    """Return the downward API value of `path` for the pod."""
    metadata = pod["metadata"]
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": info.pod_ip,
        "status.podIPs": info.pod_ip,
        "status.hostIP": info.host_ip,
        "status.hostIPs": info.host_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = metadata.get(path.split(".")[1]) or {}
        return "\n".join(f'{key}="{value}"' for key, value in sorted(values.items()))
    for prefix in ("metadata.labels", "metadata.annotations"):
        found = _labelled(path, prefix, metadata.get(prefix.split(".")[1]) or {})
        if found is not None:
            return found
    raise CreateContainerConfigError(f"unsupported fieldPath: {path}")


def resource_value(container: dict[str, Any], reference: dict[str, Any],
                   info: PodRuntimeInfo) -> str:
    """Return a resourceFieldRef value, rounded up to whole divisors as the kubelet does."""
    resource = reference.get("resource", "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory",
                                                           "ephemeral-storage"):
        raise CreateContainerConfigError(f"unsupported container resource: {resource}")
    resources = container.get("resources") or {}
    amount = (resources.get(kind) or {}).get(name)
    if amount is None and kind == "requests":
        amount = (resources.get("limits") or {}).get(name)
    if amount is None:
        allocatable = {"cpu": info.allocatable_cpu, "memory": info.allocatable_memory,
                       "ephemeral-storage": 10 << 30}
        value = Decimal(allocatable[name]) if kind == "limits" else Decimal(0)
    else:
        value = parse_quantity(amount)  # type: ignore[no-untyped-call]
    divisor = parse_quantity(reference.get("divisor") or "1")  # type: ignore[no-untyped-call]
    return str(math.ceil(value / divisor))


def _key_from(lookup: ObjectLookup, kind: str, namespace: str,
              reference: dict[str, Any]) -> str | None:
    """Read one key of a ConfigMap or Secret; None when optional and missing."""
    name = reference.get("name", "")
    key = reference.get("key", "")
    optional = bool(reference.get("optional"))
    label = "ConfigMap" if kind == "configmaps" else "Secret"
    found = lookup(kind, namespace, name)
    if found is None:
        if optional:
            return None
        singular = "configmap" if kind == "configmaps" else "secret"
        raise CreateContainerConfigError(f'{singular} "{name}" not found')
    if kind == "configmaps":
        data = found.get("data") or {}
        if key in data:
            return str(data[key])
        binary = found.get("binaryData") or {}
        if key in binary:
            return base64.b64decode(binary[key]).decode(errors="replace")
    else:
        data = found.get("data") or {}
        if key in data:
            return base64.b64decode(data[key]).decode(errors="replace")
    if optional:
        return None
    raise CreateContainerConfigError(f"couldn't find key {key} in {label} {namespace}/{name}")


def _from_source(lookup: ObjectLookup, namespace: str,
                 source: dict[str, Any]) -> dict[str, str]:
    prefix = source.get("prefix") or ""
    for kind, field in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
        reference = source.get(field)
        if reference is None:
            continue
        found = lookup(kind, namespace, reference.get("name", ""))
        if found is None:
            if reference.get("optional"):
                return {}
            singular = "configmap" if kind == "configmaps" else "secret"
            raise CreateContainerConfigError(f'{singular} "{reference.get("name")}" not found')
        data = found.get("data") or {}
        if kind == "secrets":
            return {prefix + key: base64.b64decode(value).decode(errors="replace")
                    for key, value in data.items()}
        values = {prefix + key: str(value) for key, value in data.items()}
        for key, value in (found.get("binaryData") or {}).items():
            values[prefix + key] = base64.b64decode(value).decode(errors="replace")
        return values
    return {}


def container_environment(pod: dict[str, Any], container: dict[str, Any], info: PodRuntimeInfo,
                          lookup: ObjectLookup, image_path: str | None = None) -> list[str]:
    """Return the container's environment as `NAME=value` strings; see the module docstring.

    `image_path` is the image's PATH, or None for the runtime's default.
    """
    namespace = pod["metadata"].get("namespace", "")
    variables: dict[str, str] = {}
    for entry in oci.DEFAULT_ENV:
        name, _, value = entry.partition("=")
        variables[name] = value
    if image_path is not None:
        variables["PATH"] = image_path
    variables["HOSTNAME"] = (pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"]
    if info.service_host is not None and info.service_port is not None:
        variables.update(service_variables(info.service_host, info.service_port))

    for source in container.get("envFrom") or []:
        variables.update(_from_source(lookup, namespace, source))

    for entry in container.get("env") or []:
        name = entry["name"]
        source = entry.get("valueFrom")
        if source is None:
            variables[name] = expand_references(str(entry.get("value", "")), variables)
        elif "fieldRef" in source:
            variables[name] = field_value(pod, source["fieldRef"].get("fieldPath", ""), info)
        elif "resourceFieldRef" in source:
            variables[name] = resource_value(container, source["resourceFieldRef"], info)
        elif "configMapKeyRef" in source:
            found = _key_from(lookup, "configmaps", namespace, source["configMapKeyRef"])
            if found is not None:
                variables[name] = found
        elif "secretKeyRef" in source:
            found = _key_from(lookup, "secrets", namespace, source["secretKeyRef"])
            if found is not None:
                variables[name] = found
        else:
            raise CreateContainerConfigError(f"unsupported valueFrom for variable {name}")
    return [f"{name}={value}" for name, value in variables.items()]
