"""Where profile files live on a node, and the checks that keep every path inside that tree.

A SeccompProfile `<namespace>/<name>` is the file
`<kubelet root>/seccomp/seccomp-recorder/<namespace>/<name>.json`, and pods refer to it as
the Localhost profile `seccomp-recorder/<namespace>/<name>.json`. Names come from
Kubernetes objects, which the API server already restricts to RFC 1123 names. The agent
runs as root and writes where the kubelet reads, so it checks again: each component must
be an RFC 1123 name (which rules out `..`, `/` and NUL), and no symbolic link may lead out
of the tree. This guards against bad names and mistakes on the node, not against
another root process that swaps folders while the agent writes.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from seccomp_recorder.models.meta import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, MAX_LABEL_LENGTH
from seccomp_recorder.models.names import LOCALHOST_PROFILE_ROOT
from seccomp_recorder.models.profile import MAX_PROFILE_NAME_LENGTH

PROFILE_SUBDIRECTORY: Final = LOCALHOST_PROFILE_ROOT
PROFILE_SUFFIX: Final = ".json"

_NAME_PATTERN = re.compile(DNS_SUBDOMAIN_PATTERN)
_NAMESPACE_PATTERN = re.compile(DNS_LABEL_PATTERN)


# Stand-in for the kubelet's seccomp folder when resolving a `localhostProfile` value: only
# the last component matters, because a value may climb out with `..` and back in.
_KUBELET_SECCOMP = "/kubelet/seccomp"


class ProfilePathError(ValueError):
    """A namespace, name or path that would place a profile file outside the profile tree."""


@dataclass(frozen=True)
class ProfileTree:
    """The folder tree of installed profiles: `<seccomp root>/seccomp-recorder/`."""

    seccomp_root: Path

    @property
    def root(self) -> Path:
        return self.seccomp_root / PROFILE_SUBDIRECTORY

    def path_of(self, namespace: str, name: str) -> Path:
        """Return the file of profile `namespace/name`, after checking both names and links.

        Raises ProfilePathError when a name is not an RFC 1123 name, or when an existing
        folder or file on the way is a symbolic link or resolves outside the tree.
        """
        check_namespace(namespace)
        check_name(name)
        path = self.root / namespace / f"{name}{PROFILE_SUFFIX}"
        self.check_inside(path)
        return path

    def check_inside(self, path: Path) -> None:
        """Raise ProfilePathError unless `path` is a regular file name two levels under the root.

        The seccomp root itself may be a symbolic link, because the node's administrator
        sets it up. Below it, the profile folder, the namespace folder and the file must
        not be links, and the resolved folder must be the expected one.
        """
        if path.parent.parent != self.root:
            raise ProfilePathError(f"{path} is not a profile file under {self.root}")
        for step in (self.root, path.parent, path):
            if step.is_symlink():
                raise ProfilePathError(
                    f"{step} is a symbolic link: the agent installs profiles only into real"
                    f" folders under {self.root}, so remove the link"
                )
        expected = Path(os.path.realpath(self.seccomp_root)) / PROFILE_SUBDIRECTORY
        expected = expected / path.parent.name
        if path.parent.exists() and Path(os.path.realpath(path.parent)) != expected:
            raise ProfilePathError(f"{path.parent} resolves outside {self.root}")

    def ensure_folder(self, namespace: str) -> Path:
        """Create the namespace's folder (mode 0755) if missing, and return it, checked."""
        check_namespace(namespace)
        folder = self.root / namespace
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.check_inside(folder / f"check{PROFILE_SUFFIX}")
        return folder

    def installed(self) -> Iterator[tuple[str, str]]:
        """Yield (namespace, name) of every profile file in the tree, skipping anything else.

        Entries that no profile could have written (other names, links, temporaries of
        `write_atomic`) are skipped; `temporaries` lists the leftover temporaries.
        """
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_symlink() or not folder.is_dir() or not is_namespace(folder.name):
                continue
            for entry in sorted(folder.iterdir()):
                name = entry.name.removesuffix(PROFILE_SUFFIX)
                if entry.name == name or not is_name(name) or entry.is_symlink():
                    continue
                if entry.is_file():
                    yield folder.name, name

    def temporaries(self) -> Iterator[Path]:
        """Yield the temporary files that an interrupted `write_atomic` left in the tree."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_symlink() or not folder.is_dir() or not is_namespace(folder.name):
                continue
            for entry in sorted(folder.glob(".*.tmp")):
                if entry.is_file() and not entry.is_symlink():
                    yield entry


def is_name(name: str) -> bool:
    """Tell whether `name` is a valid profile name: an RFC 1123 subdomain of at most 250 characters.

    The limit keeps `<name>.json` within NAME_MAX (255 bytes on Linux).
    """
    return len(name) <= MAX_PROFILE_NAME_LENGTH and _NAME_PATTERN.fullmatch(name) is not None


def is_namespace(namespace: str) -> bool:
    """Tell whether `namespace` is a valid namespace name (RFC 1123 label)."""
    return (
        len(namespace) <= MAX_LABEL_LENGTH
        and _NAMESPACE_PATTERN.fullmatch(namespace) is not None
    )


def check_name(name: str) -> None:
    if not is_name(name):
        raise ProfilePathError(
            f"invalid profile name {name!r}: expected an RFC 1123 name of at most"
            f" {MAX_PROFILE_NAME_LENGTH} characters, so the file stays in its namespace folder"
        )


def check_namespace(namespace: str) -> None:
    if not is_namespace(namespace):
        raise ProfilePathError(
            f"invalid namespace {namespace!r}: expected an RFC 1123 label of at most"
            f" {MAX_LABEL_LENGTH} characters"
        )


def parse_localhost_profile(value: str) -> tuple[str, str] | None:
    """Return (namespace, name) of the project profile that a `localhostProfile` names.

    The kubelet joins the value to its seccomp folder with Go's `filepath.Join`, which
    cleans the result, so `seccomp-recorder//ns/./p.json` and
    `../seccomp/seccomp-recorder/ns/p.json` name the same file as
    `seccomp-recorder/ns/p.json` and are recognised too. Returns None for any file
    outside the project's tree.
    """
    # Go's Join concatenates before cleaning, also when `value` starts with "/", unlike
    # posixpath.join, which would drop the folder.
    cleaned = posixpath.normpath(f"{_KUBELET_SECCOMP}/{value}")
    prefix = f"{_KUBELET_SECCOMP}/{PROFILE_SUBDIRECTORY}/"
    if not cleaned.startswith(prefix):
        return None
    parts = cleaned.removeprefix(prefix).split("/")
    if len(parts) != 2:
        return None
    namespace, file_name = parts
    name = file_name.removesuffix(PROFILE_SUFFIX)
    if name == file_name or not is_namespace(namespace) or not is_name(name):
        return None
    return namespace, name
