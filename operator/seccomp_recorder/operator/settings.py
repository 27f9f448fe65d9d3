"""The operator's settings: read once at start from `SECCOMP_RECORDER_*` environment variables.

`load_settings` checks every variable and raises `SettingsError` at the first invalid
value, naming the variable and the expected form, so the operator stops before it
touches the API server. Nothing here is read at import time; the entry point calls
`load_settings` once and hands the `OperatorSettings` to the handlers through kopf's memo.
The Helm chart (or a Deployment) sets the variables.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Final

from seccomp_recorder import setting_values
from seccomp_recorder.setting_values import LogFormat

ENV_PREFIX: Final = "SECCOMP_RECORDER_"

DEFAULT_NAMESPACE: Final = "seccomp-recorder"
DEFAULT_AGENT_SERVICE_ACCOUNT: Final = "seccomp-recorder-agent"
DEFAULT_KUBELET_ROOT: Final = PurePosixPath("/var/lib/kubelet")
DEFAULT_AGENT_BPFFS_PATH: Final = PurePosixPath("/sys/fs/bpf")
# The agent runs on every Linux node and tolerates every taint, because a pod that
# references a profile can only start on a node where the agent installed the file.
DEFAULT_AGENT_TOLERATIONS: Final[tuple[dict[str, Any], ...]] = ({"operator": "Exists"},)
DEFAULT_AGENT_NODE_SELECTOR: Final[dict[str, str]] = {"kubernetes.io/os": "linux"}
# A starting point, not a measurement: set SECCOMP_RECORDER_AGENT_RESOURCES per cluster.
DEFAULT_AGENT_RESOURCES: Final[dict[str, dict[str, str]]] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
DEFAULT_SNAPSHOT_INTERVAL: Final = 10.0  # seconds, the same as the agent's default
DEFAULT_PROFILE_UPDATE_INTERVAL: Final = 30.0  # seconds
DEFAULT_FINAL_RESULT_TIMEOUT: Final = 60.0  # seconds
DEFAULT_METRICS_PORT: Final = 0  # 0 serves no metrics
DEFAULT_METRICS_ADDRESS: Final = "0.0.0.0"
DEFAULT_HEALTH_PORT: Final = 0  # 0 serves no health endpoint
DEFAULT_HEALTH_ADDRESS: Final = "0.0.0.0"
# Seconds, kopf's default: a replica that sent no keep-alive for this long counts as gone.
DEFAULT_PEERING_LIFETIME: Final = 60


# RFC 1123 label: what Kubernetes requires of namespace names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RFC 1123 subdomain: what Kubernetes requires of most object names.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A resource.Quantity as apimachinery parses it, such as 100m, 64Mi or 1e3.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})


class SettingsError(ValueError):
    """An invalid setting. The message names the environment variable to fix."""




class PullPolicy(StrEnum):
    """imagePullPolicy of the agent's container."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


@dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator reads from its environment, checked and typed."""

    # Image of the node agent. It has no default, because no image is published yet.
    agent_image: str
    # Namespace of the operator, where it deploys the agent DaemonSet.
    namespace: str = DEFAULT_NAMESPACE
    agent_image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    # ServiceAccount the agent pods run as, created with its RBAC rules by whoever
    # installs the operator.
    agent_service_account: str = DEFAULT_AGENT_SERVICE_ACCOUNT
    # The kubelet's root folder on the nodes. Profiles go to <kubelet root>/seccomp/.
    kubelet_root: PurePosixPath = DEFAULT_KUBELET_ROOT
    # The bpffs folder on the nodes where the agents pin their recorders' maps and links.
    # The agent pods see it at /sys/fs/bpf.
    agent_bpffs_path: PurePosixPath = DEFAULT_AGENT_BPFFS_PATH
    agent_tolerations: tuple[dict[str, Any], ...] = DEFAULT_AGENT_TOLERATIONS
    # Labels a node must have to run the agent. Nodes without them get no profile files.
    agent_node_selector: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_AGENT_NODE_SELECTOR)
    )
    # Resource requests and limits of the agent's container (a ResourceRequirements).
    agent_resources: dict[str, dict[str, str]] = field(
        default_factory=lambda: {key: dict(value) for key, value in DEFAULT_AGENT_RESOURCES.items()}
    )
    # Seconds between two snapshots of running containers that an agent sends.
    agent_snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL
    # Minimum seconds between two updates of one SeccompProfile from new snapshots, so a
    # busy recording does not make every agent rewrite the profile's file at every snapshot.
    profile_update_interval: float = DEFAULT_PROFILE_UPDATE_INTERVAL
    # Seconds to wait for the agents' final results after a recording stops. After that
    # the profiles are finalized with what arrived, because an agent may be gone with its node.
    final_result_timeout: float = DEFAULT_FINAL_RESULT_TIMEOUT
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    # Port for Prometheus metrics, 0 for none.
    metrics_port: int = DEFAULT_METRICS_PORT
    # Address the metrics server listens on.
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    # Port of kopf's liveness endpoint, served at /healthz, 0 for none.
    health_port: int = DEFAULT_HEALTH_PORT
    # Address the liveness endpoint listens on.
    health_address: str = DEFAULT_HEALTH_ADDRESS
    # Name of the ClusterKopfPeering object through which replicas of the operator agree
    # that only one of them handles objects. None runs standalone, as the only replica.
    peering_name: str | None = None
    # Seconds after its last keep-alive that a replica counts as gone, so another resumes.
    peering_lifetime: int = DEFAULT_PEERING_LIFETIME
    # Name of the operator's own Deployment in `namespace`. When set, it owns the agent
    # DaemonSet, so deleting the Deployment (helm uninstall) deletes the agents too.
    operator_deployment: str | None = None
    # Port for the agents' Prometheus metrics, served on each agent pod's IP; 0 for none.
    agent_metrics_port: int = DEFAULT_METRICS_PORT


def _dns_label(text: str) -> str:
    if len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise ValueError(
            f"invalid name {text!r}: use at most 63 lower-case letters, digits and '-',"
            " starting and ending with a letter or digit"
        )
    return text


def _dns_subdomain(text: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.fullmatch(text):
        raise ValueError(
            f"invalid name {text!r}: use at most 253 lower-case letters, digits, '-' and '.',"
            " starting and ending with a letter or digit"
        )
    return text


def _image(text: str) -> str:
    if not text.strip() or any(character.isspace() for character in text):
        raise ValueError(
            f"invalid image {text!r}: use an image reference without spaces, such as"
            " registry.example.com/seccomp-recorder:0.1.0"
        )
    return text


def _pull_policy(text: str) -> PullPolicy:
    try:
        return PullPolicy(text)
    except ValueError:
        choices = ", ".join(PullPolicy)
        raise ValueError(f"invalid image pull policy {text!r}: use one of {choices}") from None


def _absolute_path(text: str) -> PurePosixPath:
    path = PurePosixPath(text)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{text!r} is not an absolute path without '..': give the full path")
    return path


def _json(text: str, expected: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error}): use {expected}") from None


def _tolerations(text: str) -> tuple[dict[str, Any], ...]:
    expected = 'a JSON list of tolerations, such as [{"operator": "Exists"}]'
    value = _json(text, expected)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{text!r} is not a list of objects: use {expected}")
    for position, toleration in enumerate(value):
        unknown = sorted(set(toleration) - _TOLERATION_KEYS)
        if unknown:
            raise ValueError(
                f"toleration {position} has unknown fields {', '.join(unknown)}: use only"
                f" {', '.join(sorted(_TOLERATION_KEYS))}"
            )
        if toleration.get("operator", "Equal") not in ("Equal", "Exists"):
            raise ValueError(
                f"toleration {position} has operator {toleration['operator']!r}: use Equal"
                " or Exists"
            )
    return tuple(value)


def _node_selector(text: str) -> dict[str, str]:
    expected = 'a JSON object of label names and values, such as {"kubernetes.io/os": "linux"}'
    value = _json(text, expected)
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ValueError(f"{text!r} is not an object of strings: use {expected}")
    return value


def _resources(text: str) -> dict[str, dict[str, str]]:
    expected = 'a JSON object such as {"requests": {"cpu": "50m"}, "limits": {"memory": "256Mi"}}'
    value = _json(text, expected)
    if not isinstance(value, dict):
        raise TypeError(f"{text!r} is not an object: use {expected}")
    for section, quantities in value.items():
        if section not in ("requests", "limits"):
            raise ValueError(f"unknown field {section!r}: use requests and limits, as {expected}")
        if not isinstance(quantities, dict):
            raise TypeError(f"{section} is not an object: use {expected}")
        for resource, quantity in quantities.items():
            if not isinstance(quantity, str) or not _QUANTITY.fullmatch(quantity):
                raise ValueError(
                    f"invalid quantity {quantity!r} for {section}.{resource}: use a Kubernetes"
                    " quantity string such as \"100m\" or \"128Mi\""
                )
    return value






def _address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f"invalid address {text!r}: use an IP address such as 0.0.0.0 or 127.0.0.1"
        ) from None
    return text


def _positive_whole_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"invalid number of seconds {text!r}: use a whole number such as 60"
        ) from None
    if value <= 0:
        raise ValueError(f"invalid number of seconds {text!r}: use a whole number above 0")
    return value






# Setting attribute -> parser of its variable's text. The variable is the attribute's
# name in upper case after ENV_PREFIX, so SECCOMP_RECORDER_AGENT_IMAGE sets agent_image.
_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    "agent_image": _image,
    "namespace": _dns_label,
    "agent_image_pull_policy": _pull_policy,
    "agent_service_account": _dns_subdomain,
    "kubelet_root": _absolute_path,
    "agent_bpffs_path": _absolute_path,
    "agent_tolerations": _tolerations,
    "agent_node_selector": _node_selector,
    "agent_resources": _resources,
    "agent_snapshot_interval": setting_values.positive_seconds,
    "profile_update_interval": setting_values.positive_seconds,
    "final_result_timeout": setting_values.positive_seconds,
    "log_level": setting_values.log_level,
    "log_format": setting_values.log_format,
    "metrics_port": setting_values.port,
    "metrics_address": _address,
    "health_port": setting_values.port,
    "health_address": _address,
    "peering_name": _dns_subdomain,
    "peering_lifetime": _positive_whole_seconds,
    "operator_deployment": _dns_subdomain,
    "agent_metrics_port": setting_values.port,
}
_REQUIRED: Final = frozenset({"agent_image"})


def variable_name(attribute: str) -> str:
    """Return the environment variable of a setting, such as SECCOMP_RECORDER_AGENT_IMAGE."""
    return ENV_PREFIX + attribute.upper()


def load_settings(environ: Mapping[str, str]) -> OperatorSettings:
    """Read and check the settings from the environment variables in `environ`.

    An empty variable counts as unset. Raises SettingsError for the first missing or
    invalid value, naming its variable and the expected form.
    """
    values: dict[str, Any] = {}
    for attribute, parse in _PARSERS.items():
        variable = variable_name(attribute)
        text = environ.get(variable, "")
        if text == "":
            if attribute in _REQUIRED:
                raise SettingsError(
                    f"missing {attribute.replace('_', ' ')}: set {variable}, such as"
                    f" {variable}=registry.example.com/seccomp-recorder:0.1.0"
                )
            continue
        try:
            values[attribute] = parse(text)
        except (ValueError, TypeError) as error:
            raise SettingsError(f"{variable}: {error}") from None
    return OperatorSettings(**values)
