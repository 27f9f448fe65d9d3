"""The node agent's settings: read once at start from flags or environment variables.

Every setting has a flag (`--node-name`) and an environment variable with the prefix
`SECCOMP_RECORDER_` (`SECCOMP_RECORDER_NODE_NAME`). A flag wins over the variable, and
the variable wins over the default. A DaemonSet sets the variables, for example the node
name from the downward API (`fieldRef: spec.nodeName`). `load_settings` raises
`SettingsError` at the first invalid or missing value, naming the flag or variable it
came from, so the agent stops before it touches the API server or the node.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from seccomp_recorder import setting_values
from seccomp_recorder.setting_values import LOG_LEVELS, LogFormat

ENV_PREFIX: Final = "SECCOMP_RECORDER_"

DEFAULT_KUBELET_ROOT: Final = Path("/var/lib/kubelet")
DEFAULT_STATE_DIR: Final = Path("/var/lib/seccomp-recorder")
# The pin directory defaults to a per-node folder under this one, so agents of several
# simulated nodes on one machine (as in the dev cluster) never share pinned maps.
DEFAULT_BPFFS_ROOT: Final = Path("/sys/fs/bpf/seccomp-recorder")
DEFAULT_SNAPSHOT_INTERVAL: Final = 10.0  # seconds
DEFAULT_METRICS_PORT: Final = 0  # 0 serves no metrics
DEFAULT_METRICS_ADDRESS: Final = "0.0.0.0"

# Node names are DNS subdomains (RFC 1123), as Kubernetes requires for Node objects. The
# check also keeps a node name from adding path components to the pin directory.
_NODE_NAME_PATTERN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_NODE_NAME_MAX_LENGTH = 253


class SettingsError(ValueError):
    """An invalid or missing setting; the message names the flag or variable to fix."""






@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent reads from its environment, checked and typed."""

    node_name: str
    # Root of the kubelet's files on this node. Profiles go to <kubelet_root>/seccomp/.
    kubelet_root: Path = DEFAULT_KUBELET_ROOT
    # Where the recording side keeps its state file across agent restarts.
    state_dir: Path = DEFAULT_STATE_DIR
    # bpffs folder where the recording side pins its maps and links.
    bpffs_pin_dir: Path | None = None
    # Seconds between two snapshots of the recording side's state.
    snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL
    # kubeconfig file to connect with. None uses the pod's in-cluster service account.
    kubeconfig: Path | None = None
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    # Port for Prometheus metrics at /metrics, 0 for none.
    metrics_port: int = DEFAULT_METRICS_PORT
    # Address the metrics server listens on; the DaemonSet sets the pod IP.
    metrics_address: str = DEFAULT_METRICS_ADDRESS

    @property
    def seccomp_root(self) -> Path:
        """The kubelet's Localhost profile folder: `<kubelet root>/seccomp`."""
        return self.kubelet_root / "seccomp"

    @property
    def pin_dir(self) -> Path:
        """The bpffs pin folder, `/sys/fs/bpf/seccomp-recorder/<node>` unless set."""
        if self.bpffs_pin_dir is not None:
            return self.bpffs_pin_dir
        return DEFAULT_BPFFS_ROOT / self.node_name


def _node_name(text: str) -> str:
    if len(text) > _NODE_NAME_MAX_LENGTH or not _NODE_NAME_PATTERN.fullmatch(text):
        raise ValueError(
            f"invalid node name {text!r}: use the Node object's name (at most 253 lower-case"
            " letters, digits, '-' and '.')"
        )
    return text


def _absolute_path(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise ValueError(f"{text!r} is not an absolute path: give the full path")
    return path


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"{text!r} is not a file: give the path of a kubeconfig file")
    return path






def _address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f"invalid address {text!r}: use an IP address such as 0.0.0.0 or 127.0.0.1"
        ) from None
    return text






@dataclass(frozen=True)
class _Option:
    """One setting: its attribute, flag, parser and help text."""

    attribute: str
    parse: Callable[[str], Any]
    help: str
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.attribute.replace("_", "-")

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.attribute.upper()


_OPTIONS: Final = (
    _Option("node_name", _node_name, "name of the Node this agent runs on", required=True),
    _Option(
        "kubelet_root",
        _absolute_path,
        f"kubelet root folder; profiles go to its seccomp/ folder (default {DEFAULT_KUBELET_ROOT})",
    ),
    _Option(
        "state_dir",
        _absolute_path,
        f"folder for the recording state kept across restarts (default {DEFAULT_STATE_DIR})",
    ),
    _Option(
        "bpffs_pin_dir",
        _absolute_path,
        f"bpffs folder for pinned maps and links (default {DEFAULT_BPFFS_ROOT}/NODE_NAME)",
    ),
    _Option(
        "snapshot_interval",
        setting_values.positive_seconds,
        f"seconds between snapshots of the recording state (default {DEFAULT_SNAPSHOT_INTERVAL:g})",
    ),
    _Option(
        "kubeconfig",
        _existing_file,
        "kubeconfig file to connect with (default: the pod's in-cluster service account)",
    ),
    _Option("log_level", setting_values.log_level, f"{', '.join(LOG_LEVELS)} (default INFO)"),
    _Option("log_format", setting_values.log_format, "text or json (default text)"),
    _Option(
        "metrics_port",
        setting_values.port,
        "port for Prometheus metrics at /metrics, 0 for none (default 0)",
    ),
    _Option(
        "metrics_address",
        _address,
        f"IP address the metrics server listens on (default {DEFAULT_METRICS_ADDRESS})",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """Build the flag parser; each flag's help names its environment variable."""
    parser = argparse.ArgumentParser(
        prog="seccomp-recorder-agent",
        description="Node agent of seccomp-recorder: installs SeccompProfiles as files on"
        " this node and records the syscalls of selected pods.",
    )
    for option in _OPTIONS:
        parser.add_argument(
            option.flag,
            dest=option.attribute,
            metavar="VALUE",
            help=f"{option.help}; environment variable {option.variable}",
        )
    return parser


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> AgentSettings:
    """Read the settings from `argv` (flags) and `environ` (variables).

    `argv` defaults to the process's arguments and `environ` to `os.environ`. Raises
    SettingsError for the first missing or invalid value, naming its flag or variable.
    argparse itself exits with status 2 on an unknown flag.
    """
    arguments = build_parser().parse_args(argv)
    environment = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        flag_value: str | None = getattr(arguments, option.attribute)
        if flag_value is not None:
            source, text = option.flag, flag_value
        elif environment.get(option.variable, "") != "":
            source, text = option.variable, environment[option.variable]
        elif option.required:
            raise SettingsError(
                f"missing {option.attribute.replace('_', ' ')}: set {option.variable} or pass"
                f" {option.flag}"
            )
        else:
            continue
        try:
            values[option.attribute] = option.parse(text)
        except ValueError as error:
            raise SettingsError(f"{source}: {error}") from None
    return AgentSettings(**values)
