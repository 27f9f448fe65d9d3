"""Pod volumes and container mounts, as the kubelet's volume plugins set them up.

`prepare_volumes` makes each volume of the pod once, before its first container
starts, and `container_mounts` turns a container's `volumeMounts` into OCI bind
mounts. Supported volume types:

- hostPath, with the type checks Directory, DirectoryOrCreate, File, FileOrCreate,
  Socket, CharDevice and BlockDevice. Every node of the dev cluster shares the one
  machine, so two rules keep nodes apart and the machine unchanged. A path under
  /var/lib/kubelet is served from the node's own kubelet root. A path that does not
  exist on the machine is looked up in, and created in, the node's private host
  folder (`<node state>/host/<path>`). Existing machine paths (/sys/fs/bpf,
  /sys/kernel/btf, /proc) are the machine's own.
- emptyDir, a folder in the pod's state folder.
  NOTE: `medium: Memory` is a folder on disk too, and `sizeLimit` is not enforced.
- configMap, secret, downwardAPI, and projected volumes of those plus
  serviceAccountToken. Their files are written once, when the pod starts, and
  mounted read-only, as the kubelet does.
  NOTE: later changes of a ConfigMap or Secret do not reach running pods.

The service account volume: unless `automountServiceAccountToken` is false on the
pod (or, when the pod does not set it, on its ServiceAccount), every container gets
`/var/run/secrets/kubernetes.io/serviceaccount/` with `token`, `ca.crt` and
`namespace`, as the ServiceAccount admission plugin arranges in a real cluster.
NOTE: the node adds this mount itself; the pod's spec does not show the
kube-api-access volume that the admission plugin would add. The token is an
unsigned JWT naming the service account and pod; the API server emulator accepts
any token, so no signature is needed.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from seccomp_devcluster import oci
from seccomp_devcluster.node.environment import (
    CreateContainerConfigError,
    ObjectLookup,
    PodRuntimeInfo,
    field_value,
    resource_value,
)

SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_VOLUME = "kube-api-access-devcluster"
KUBELET_DEFAULT_ROOT = PurePosixPath("/var/lib/kubelet")
# Seconds a service account token claims to be valid, as the admission plugin's default.
TOKEN_EXPIRATION = 3607
DEFAULT_MODE = 0o644

# ConfigMap, Secret or ServiceAccount reader: (plural, namespace, name) to object or None.
Lookup = ObjectLookup


class VolumeSetupError(Exception):
    """A volume cannot be set up; the message is the kubelet's MountVolume.SetUp error."""


@dataclass(frozen=True)
class HostPaths:
    """Host path resolution of one node; see the module docstring."""

    kubelet_root: Path
    # The node's private folder for host paths that do not exist on the machine.
    private_root: Path

    def resolve(self, path: str) -> Path:
        """Return where the node serves the host path `path` from."""
        requested = PurePosixPath(os.path.normpath(path))
        if requested == KUBELET_DEFAULT_ROOT or requested.is_relative_to(KUBELET_DEFAULT_ROOT):
            return self.kubelet_root / requested.relative_to(KUBELET_DEFAULT_ROOT)
        private = self.private_root / requested.relative_to("/")
        if os.path.lexists(private) or not os.path.lexists(requested):
            return private
        return Path(requested)


@dataclass(frozen=True)
class Volume:
    """A prepared volume: the folder or file on the node and whether it is read-only."""

    name: str
    path: Path
    read_only: bool = False


@dataclass(frozen=True)
class ServiceAccountFiles:
    """Service account volume content besides the token and the namespace."""

    ca_cert: bytes


def _check_host_path(path: Path, kind: str, requested: str) -> None:
    """Check a hostPath against its `type`, creating it for the OrCreate types.

    Raises VolumeSetupError on a mismatch.
    """
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    if kind == "FileOrCreate" and not path.exists():
        if not path.parent.is_dir():
            raise VolumeSetupError(f"hostPath type check failed: {requested}: parent folder "
                                   "does not exist")
        path.touch(mode=0o644)
        return
    checks: dict[str, tuple[Callable[[int], bool], str]] = {
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "DirectoryOrCreate": (stat.S_ISDIR, "is not a directory"),
        "File": (stat.S_ISREG, "is not a file"),
        "FileOrCreate": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    if kind in ("", None):
        return
    if kind not in checks:
        raise VolumeSetupError(f"hostPath type check failed: unknown type {kind!r}")
    test, message = checks[kind]
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise VolumeSetupError(f"hostPath type check failed: {requested} {message}") from None
    if not test(mode):
        raise VolumeSetupError(f"hostPath type check failed: {requested} {message}")


def _write_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for relative, (content, mode) in files.items():
        target = directory / relative
        if not target.resolve().is_relative_to(directory.resolve()):
            raise VolumeSetupError(f"invalid path {relative!r}: it leaves the volume")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)


def _data_of(kind: str, found: dict[str, Any]) -> dict[str, bytes]:
    if kind == "secrets":
        return {key: base64.b64decode(value) for key, value in (found.get("data") or {}).items()}
    data = {key: str(value).encode() for key, value in (found.get("data") or {}).items()}
    for key, value in (found.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    return data


def _object_files(lookup: Lookup, kind: str, namespace: str, source: dict[str, Any],
                  default_mode: int) -> dict[str, tuple[bytes, int]]:
    """Return the files of a configMap or secret source (volume or projection)."""
    name = source.get("name") or source.get("secretName") or ""
    found = lookup(kind, namespace, name)
    singular = "configmap" if kind == "configmaps" else "secret"
    if found is None:
        if source.get("optional"):
            return {}
        raise VolumeSetupError(f'{singular} "{name}" not found')
    data = _data_of(kind, found)
    items = source.get("items")
    if items is None:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        key = item["key"]
        if key not in data:
            if source.get("optional"):
                continue
            raise VolumeSetupError(f"configmap references non-existent config key: {key}"
                                   if kind == "configmaps" else
                                   f"references non-existent secret key: {key}")
        files[item["path"]] = (data[key], int(item.get("mode", default_mode)))
    return files


def _downward_files(pod: dict[str, Any], items: list[dict[str, Any]], info: PodRuntimeInfo,
                    default_mode: int) -> dict[str, tuple[bytes, int]]:
    files = {}
    containers = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
    for item in items:
        mode = int(item.get("mode", default_mode))
        try:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""), info)
            else:
                reference = item.get("resourceFieldRef") or {}
                container = containers.get(reference.get("containerName", ""), {})
                value = resource_value(container, reference, info)
        except CreateContainerConfigError as error:
            raise VolumeSetupError(str(error)) from error
        files[item["path"]] = (value.encode(), mode)
    return files


def service_account_token(pod: dict[str, Any], audience: str | None = None,
                          expiration: int = TOKEN_EXPIRATION) -> str:
    """Return an unsigned JWT for the pod's service account; see the module docstring."""
    metadata = pod["metadata"]
    namespace = metadata.get("namespace", "")
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    issued = int(time.time())
    claims = {
        "aud": [audience or "https://kubernetes.default.svc.cluster.local"],
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": f"system:serviceaccount:{namespace}:{account}",
        "iat": issued, "nbf": issued, "exp": issued + expiration,
        "kubernetes.io": {"namespace": namespace,
                          "serviceaccount": {"name": account},
                          "pod": {"name": metadata.get("name", ""),
                                  "uid": metadata.get("uid", "")}},
    }

    def encode(part: dict[str, Any]) -> str:
        raw = json.dumps(part, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{encode({'alg': 'none', 'typ': 'JWT'})}.{encode(claims)}."


def _projected_files(pod: dict[str, Any], projected: dict[str, Any], lookup: Lookup,
                     info: PodRuntimeInfo, account: ServiceAccountFiles | None,
                     ) -> dict[str, tuple[bytes, int]]:
    namespace = pod["metadata"].get("namespace", "")
    default_mode = int(projected.get("defaultMode", DEFAULT_MODE))
    files: dict[str, tuple[bytes, int]] = {}
    for source in projected.get("sources") or []:
        if "configMap" in source:
            files.update(_object_files(lookup, "configmaps", namespace, source["configMap"],
                                       default_mode))
        elif "secret" in source:
            files.update(_object_files(lookup, "secrets", namespace, source["secret"],
                                       default_mode))
        elif "downwardAPI" in source:
            files.update(_downward_files(pod, source["downwardAPI"].get("items") or [], info,
                                         default_mode))
        elif "serviceAccountToken" in source:
            token_source = source["serviceAccountToken"]
            token = service_account_token(
                pod, token_source.get("audience"),
                int(token_source.get("expirationSeconds", TOKEN_EXPIRATION)))
            files[token_source.get("path", "token")] = (token.encode(), default_mode)
        else:
            raise VolumeSetupError(f"projected source {sorted(source)} is not supported by "
                                   "the dev cluster")
    return files


def automounts_service_account(pod: dict[str, Any], lookup: Lookup) -> bool:
    """Tell whether the pod gets the service account volume: pod field, then account field."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    account = lookup("serviceaccounts", pod["metadata"].get("namespace", ""),
                     spec.get("serviceAccountName") or "default")
    if account is not None and account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def prepare_volumes(pod: dict[str, Any], directory: Path, lookup: Lookup, info: PodRuntimeInfo,
                    host_paths: HostPaths,
                    account: ServiceAccountFiles | None) -> dict[str, Volume]:
    """Set up every volume of the pod under `directory`; return them by name.

    With `account` (the cluster CA), the service account volume is added as
    SERVICE_ACCOUNT_VOLUME when the pod automounts it. Raises VolumeSetupError.
    """
    namespace = pod["metadata"].get("namespace", "")
    volumes: dict[str, Volume] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        target = directory / name
        try:
            volumes[name] = _prepare_one(pod, volume, target, namespace, lookup, info,
                                         host_paths, account)
        except VolumeSetupError as error:
            raise VolumeSetupError(f'MountVolume.SetUp failed for volume "{name}" : '
                                   f"{error}") from error
    if account is not None and automounts_service_account(pod, lookup):
        target = directory / SERVICE_ACCOUNT_VOLUME
        _write_files(target, {
            "token": (service_account_token(pod).encode(), DEFAULT_MODE),
            "ca.crt": (account.ca_cert, DEFAULT_MODE),
            "namespace": (namespace.encode(), DEFAULT_MODE),
        })
        volumes[SERVICE_ACCOUNT_VOLUME] = Volume(SERVICE_ACCOUNT_VOLUME, target, read_only=True)
    return volumes


def _prepare_one(pod: dict[str, Any], volume: dict[str, Any], target: Path, namespace: str,
                 lookup: Lookup, info: PodRuntimeInfo, host_paths: HostPaths,
                 account: ServiceAccountFiles | None) -> Volume:
    name = volume["name"]
    if "hostPath" in volume:
        requested = volume["hostPath"].get("path", "")
        path = host_paths.resolve(requested)
        _check_host_path(path, volume["hostPath"].get("type") or "", requested)
        return Volume(name, path)
    if "emptyDir" in volume:
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o777)
        return Volume(name, target)
    if "configMap" in volume:
        source = volume["configMap"]
        files = _object_files(lookup, "configmaps", namespace, source,
                              int(source.get("defaultMode", DEFAULT_MODE)))
    elif "secret" in volume:
        source = volume["secret"]
        files = _object_files(lookup, "secrets", namespace, source,
                              int(source.get("defaultMode", DEFAULT_MODE)))
    elif "downwardAPI" in volume:
        source = volume["downwardAPI"]
        files = _downward_files(pod, source.get("items") or [], info,
                                int(source.get("defaultMode", DEFAULT_MODE)))
    elif "projected" in volume:
        files = _projected_files(pod, volume["projected"], lookup, info, account)
    else:
        kinds = sorted(key for key in volume if key != "name")
        raise VolumeSetupError(f"volume type {', '.join(kinds)} is not supported by the dev "
                               "cluster")
    _write_files(target, files)
    return Volume(name, target, read_only=True)


PROPAGATION_OPTIONS = {
    None: "rprivate",
    "None": "rprivate",
    "HostToContainer": "rslave",
    "Bidirectional": "rshared",
}


def container_mounts(container: dict[str, Any], volumes: dict[str, Volume],
                     privileged: bool) -> list[oci.Mount]:
    """Return the OCI mounts for the container's volumeMounts and the service account.

    Raises CreateContainerConfigError for a mount of an unknown volume, a subPath
    that leaves its volume, or Bidirectional propagation in an unprivileged container.
    """
    mounts = []
    paths = set()
    for entry in container.get("volumeMounts") or []:
        volume = volumes.get(entry["name"])
        if volume is None:
            raise CreateContainerConfigError(
                f"cannot find volume \"{entry['name']}\" to mount into container "
                f"\"{container['name']}\"")
        source = volume.path
        sub_path = entry.get("subPath")
        if sub_path:
            source = volume.path / sub_path
            if not source.resolve().is_relative_to(volume.path.resolve()):
                raise CreateContainerConfigError(f"subPath {sub_path!r} leaves its volume")
            if not source.exists():
                source.mkdir(parents=True)
        propagation = entry.get("mountPropagation")
        if propagation not in PROPAGATION_OPTIONS:
            raise CreateContainerConfigError(f"invalid mountPropagation {propagation!r}")
        if propagation == "Bidirectional" and not privileged:
            raise CreateContainerConfigError(
                "Bidirectional mount propagation is available only to privileged containers")
        options = ["rbind", PROPAGATION_OPTIONS[propagation]]
        if entry.get("readOnly") or volume.read_only:
            options.append("ro")
        mounts.append(oci.Mount(entry["mountPath"], str(source), "bind", options))
        paths.add(os.path.normpath(entry["mountPath"]))
    account = volumes.get(SERVICE_ACCOUNT_VOLUME)
    if account is not None and SERVICE_ACCOUNT_PATH not in paths:
        mounts.append(oci.Mount(SERVICE_ACCOUNT_PATH, str(account.path), "bind",
                                ["rbind", "rprivate", "ro"]))
    return mounts


def rootfs_propagation(mounts: list[oci.Mount]) -> str | None:
    """Return the root propagation that the mounts need, as containerd chooses it."""
    options = {option for mount in mounts for option in mount.options}
    if "rshared" in options:
        return "rshared"
    if "rslave" in options:
        return "rslave"
    return None
