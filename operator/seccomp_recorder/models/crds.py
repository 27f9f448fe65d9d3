"""The CustomResourceDefinitions of seccomp-recorder, generated from the pydantic models.

`custom_resource_definitions` builds the three CRD manifests (apiextensions.k8s.io/v1)
and `render_crd_files` renders them as the YAML files committed under `crds/`. Both are
pure. Run `python -m seccomp_recorder.models.crds --write crds/` (`make crds`) after
changing a model, and commit the files: a unit test fails while they differ.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel

from seccomp_recorder.models.meta import API_GROUP
from seccomp_recorder.models.openapi import structural_problems, structural_schema
from seccomp_recorder.models.profile import (
    MAX_PROFILE_NAME_LENGTH,
    SeccompProfileSpec,
    SeccompProfileStatus,
)
from seccomp_recorder.models.recording import (
    MAX_RECORDING_NAME_LENGTH,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
)
from seccomp_recorder.models.result import SeccompRecordingResultSpec

VERSION: Final = "v1alpha1"
CATEGORY: Final = "seccomp-recorder"
GENERATE_COMMAND: Final = "python -m seccomp_recorder.models.crds --write crds/"

_AGE_COLUMN: Final = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class ResourceDefinition:
    """Settings of one kind's CRD: names, models, printer columns and the limit on names."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[BaseModel]
    status: type[BaseModel] | None
    printer_columns: tuple[dict[str, Any], ...]
    max_name_length: int | None = None
    name_limit_reason: str = ""


RESOURCES: Final = (
    ResourceDefinition(
        kind="SeccompProfile",
        plural="seccompprofiles",
        short_name="sprof",
        description="SeccompProfile is a seccomp allow-list profile that the node agents install"
        " on every node, for pods to run under as a Localhost profile.",
        spec=SeccompProfileSpec,
        status=SeccompProfileStatus,
        printer_columns=(
            {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Syscalls", "type": "integer", "jsonPath": ".status.syscallCount"},
            {"name": "Nodes", "type": "string", "jsonPath": ".status.nodes"},
            {"name": "Localhost Profile", "type": "string", "jsonPath": ".status.localhostProfile"},
            _AGE_COLUMN,
        ),
        max_name_length=MAX_PROFILE_NAME_LENGTH,
        name_limit_reason="Nodes store the profile as <name>.json, and a file name has at most"
        " 255 bytes.",
    ),
    ResourceDefinition(
        kind="SeccompRecording",
        plural="seccomprecordings",
        short_name="srec",
        description="SeccompRecording records the syscalls of the containers of the pods that"
        " its selector matches, and turns them into SeccompProfiles.",
        spec=SeccompRecordingSpec,
        status=SeccompRecordingStatus,
        printer_columns=(
            {"name": "Selector", "type": "string", "jsonPath": ".status.selector"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Profiles", "type": "integer", "jsonPath": ".status.profileCount"},
            _AGE_COLUMN,
        ),
        max_name_length=MAX_RECORDING_NAME_LENGTH,
        name_limit_reason="The name is the value of the label seccomp-recorder.io/recording on"
        " the objects that the recording creates, and label values have at most 63 characters.",
    ),
    ResourceDefinition(
        kind="SeccompRecordingResult",
        plural="seccomprecordingresults",
        short_name="srecresult",
        description="SeccompRecordingResult is what a node agent recorded for one container of"
        " one pod. The agent writes it, and the operator merges it into SeccompProfiles.",
        spec=SeccompRecordingResultSpec,
        status=None,
        printer_columns=(
            {"name": "Recording", "type": "string", "jsonPath": ".spec.recording"},
            {"name": "Pod", "type": "string", "jsonPath": ".spec.pod"},
            {"name": "Container", "type": "string", "jsonPath": ".spec.container"},
            {"name": "Node", "type": "string", "jsonPath": ".spec.node"},
            {"name": "Final", "type": "boolean", "jsonPath": ".spec.final"},
            _AGE_COLUMN,
        ),
    ),
)


def custom_resource_definitions() -> dict[str, dict[str, Any]]:
    """Build the CRD manifests, keyed by the file name each is written to under `crds/`.

    Raises SchemaError when a model has no structural form, and ValueError when a built
    schema breaks a rule for structural schemas.
    """
    return {
        f"{resource.plural}.yaml": custom_resource_definition(resource) for resource in RESOURCES
    }


def custom_resource_definition(resource: ResourceDefinition) -> dict[str, Any]:
    """Build the CRD manifest of one kind."""
    schema = _resource_schema(resource)
    problems = structural_problems(schema)
    if problems:
        raise ValueError(f"the schema of {resource.kind} is not structural: " + "; ".join(problems))
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if resource.status is not None:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = [dict(column) for column in resource.printer_columns]
    version["schema"] = {"openAPIV3Schema": schema}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": [resource.short_name],
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def _resource_schema(resource: ResourceDefinition) -> dict[str, Any]:
    metadata: dict[str, Any] = {"type": "object"}
    if resource.max_name_length is not None:
        metadata["properties"] = {
            "name": {
                "description": resource.name_limit_reason,
                "type": "string",
                "maxLength": resource.max_name_length,
            }
        }
    properties: dict[str, Any] = {
        "apiVersion": {
            "description": "Versioned schema of this representation of the object.",
            "type": "string",
        },
        "kind": {
            "description": "REST resource that this object represents.",
            "type": "string",
        },
        "metadata": metadata,
        "spec": structural_schema(resource.spec),
    }
    if resource.status is not None:
        properties["status"] = structural_schema(resource.status)
    return {
        "description": resource.description,
        "type": "object",
        "required": ["spec"],
        "properties": properties,
    }


def render_crd_files() -> dict[str, str]:
    """Render every CRD as the text of its file under `crds/`, keyed by file name."""
    return {name: render_crd(manifest) for name, manifest in custom_resource_definitions().items()}


def render_crd(manifest: dict[str, Any]) -> str:
    """Render a CRD manifest as YAML, behind a comment saying how the file was generated."""
    header = (
        "# Generated from the pydantic models in operator/seccomp_recorder/models by\n"
        f"# `{GENERATE_COMMAND}` (`make crds`). Do not edit.\n"
    )
    body = yaml.dump(
        manifest,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,  # Long descriptions and patterns stay on one line.
    )
    return header + body


class _Dumper(yaml.SafeDumper):
    """A SafeDumper that writes multi-line strings as literal blocks, and no anchors.

    The schemas repeat some lists (the actions, for one), which PyYAML would otherwise
    write once with an anchor and then as aliases.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_string)


def main(argv: Sequence[str] | None = None) -> int:
    """Write or check the CRD files; print them to stdout when given no option."""
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_recorder.models.crds",
        description="Generate the CustomResourceDefinitions of seccomp-recorder from its models.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="DIR", type=Path, help="write the CRD files into DIR")
    action.add_argument(
        "--check",
        metavar="DIR",
        type=Path,
        help="exit with status 1 when the CRD files in DIR differ from the generated ones",
    )
    args = parser.parse_args(argv)
    files = render_crd_files()

    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (args.write / name).write_text(text, encoding="utf-8")
        return 0

    if args.check is not None:
        stale = [name for name, text in files.items() if _read(args.check / name) != text]
        for name in stale:
            print(f"{args.check / name} is out of date: run `make crds`", file=sys.stderr)
        return 1 if stale else 0

    sys.stdout.write("---\n".join(files.values()))
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
