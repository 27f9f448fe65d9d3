"""The API reference page (docs/reference.md), generated from the pydantic models.

Each kind gets a section with its spec and status, and every nested model its own table,
with the field names, types, defaults, limits and descriptions that the models declare.
So the page describes what the CRDs under `crds/` enforce. Run
`python -m seccomp_recorder.models.reference --write docs/reference.md` (`make reference`)
after changing a model, and commit the page: a unit test fails while it differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from seccomp_recorder.models.crds import RESOURCES, VERSION, ResourceDefinition
from seccomp_recorder.models.meta import API_GROUP

GENERATE_COMMAND: Final = "python -m seccomp_recorder.models.reference --write docs/reference.md"

# Kinds documented, in this order; SeccompRecordingResult is internal to the project.
DOCUMENTED_KINDS: Final = ("SeccompRecording", "SeccompProfile", "SeccompRecordingResult")

Schema = Mapping[str, Any]


def _anchor(title: str) -> str:
    """Return the anchor that GitHub and most Markdown renderers give a heading."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _escape(text: str) -> str:
    """Make `text` safe inside a Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())


class _Page:
    """The sections of the page, and the nested models still to describe."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.described: set[str] = set()

    def describe_kind(self, resource: ResourceDefinition) -> None:
        self.lines += [f"## {resource.kind}", "", resource.description, ""]
        self.lines += [
            (
                f"`apiVersion: {API_GROUP}/{VERSION}`, namespaced, short name"
                f" `{resource.short_name}`."
            ),
            "",
        ]
        if resource.max_name_length is not None:
            self.lines += [
                (
                    f"`metadata.name` has at most {resource.max_name_length} characters."
                    f" {resource.name_limit_reason}"
                ),
                "",
            ]
        self.lines += _printer_columns(resource)
        parts = [("spec", resource.spec)]
        if resource.status is not None:
            parts.append(("status", resource.status))
        for part, model in parts:
            schema = model.model_json_schema(by_alias=True, mode="validation")
            definitions = schema.get("$defs", {})
            queue: list[tuple[str, Schema]] = [(f"{resource.kind} {part}", schema)]
            while queue:
                title, node = queue.pop(0)
                queue += self._describe_model(title, node, definitions)

    def _describe_model(
        self, title: str, node: Schema, definitions: Mapping[str, Schema]
    ) -> list[tuple[str, Schema]]:
        """Write the table of one object schema; return the nested models it refers to."""
        self.lines += [f"### {title}", ""]
        description = node.get("description")
        if description:
            self.lines += [" ".join(description.split()), ""]
        properties: Mapping[str, Schema] = node.get("properties", {})
        if not properties:
            self.lines += ["No fields.", ""]
            return []
        required = set(node.get("required", []))

        self.lines += [
            "| Field | Type | Required | Default | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        nested: list[tuple[str, Schema]] = []
        for name, field in properties.items():
            # Nested object models get their own tables, each once on the page.
            type_text, refs = _type_of(field, definitions)
            for ref in refs:
                target = definitions[ref]
                if target.get("type") == "object" and ref not in self.described:
                    self.described.add(ref)
                    nested.append((ref, target))

            default = field.get("default")
            default_text = (
                "" if default is None or default == [] or default == {} else f"`{_json(default)}`"
            )
            text = _escape(field.get("description", ""))
            limits = _limits(_resolved(field, definitions))
            if limits:
                text = f"{text} {limits}".strip()
            self.lines.append(
                f"| `{name}` | {type_text} | {'yes' if name in required else ''} | {default_text} | {text} |"
            )
        self.lines.append("")
        return nested


def _resolved(field: Schema, definitions: Mapping[str, Schema]) -> Schema:
    """Return the schema a field stands for: behind `$ref`, or the non-null branch of anyOf."""
    if "$ref" in field:
        return definitions[field["$ref"].rsplit("/", 1)[-1]]
    branches = [branch for branch in field.get("anyOf", []) if branch.get("type") != "null"]
    if len(branches) == 1:
        return _resolved(branches[0], definitions)
    return field


def _type_of(field: Schema, definitions: Mapping[str, Schema]) -> tuple[str, list[str]]:
    """Describe a field's type in words, with links to nested models; return the models too."""
    if "$ref" in field:
        name = field["$ref"].rsplit("/", 1)[-1]
        target = definitions[name]
        if target.get("type") == "object":
            return f"[{name}](#{_anchor(name)})", [name]
        return _type_of(target, definitions)
    branches = [branch for branch in field.get("anyOf", []) if branch.get("type") != "null"]
    if branches:
        texts, refs = [], []
        for branch in branches:
            text, found = _type_of(branch, definitions)
            texts.append(text)
            refs += found
        return " or ".join(texts), refs
    kind = field.get("type")
    if "enum" in field:
        return "string: " + ", ".join(f"`{value}`" for value in field["enum"]), []
    if kind == "array":
        text, refs = _type_of(field.get("items", {}), definitions)
        return f"list of {text}", refs
    if kind == "object":
        values = field.get("additionalProperties")
        if isinstance(values, Mapping):
            text, refs = _type_of(values, definitions)
            return f"map of string to {text}", refs
        patterns = field.get("patternProperties")
        if isinstance(patterns, Mapping) and patterns:
            text, refs = _type_of(next(iter(patterns.values())), definitions)
            return f"map of string to {text}", refs
        return "object", []
    if field.get("format") == "date-time":
        return "string (RFC 3339 time)", []
    return str(kind or "any"), []


def _limits(field: Schema) -> str:
    """Describe the limits a field declares: lengths, ranges, patterns."""
    parts = []
    for key, words in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "at least {}"),
        ("maximum", "at most {}"),
        ("minItems", "at least {} item"),
        ("maxItems", "at most {} item"),
    ):
        if key in field:
            text = words.format(field[key])
            if key.endswith("Items") and field[key] != 1:
                text += "s"
            parts.append(text)
    items = field.get("items")
    if isinstance(items, Mapping) and "pattern" in items:
        parts.append(f"each item matches `{_escape(items['pattern'])}`")
    if "pattern" in field:
        parts.append(f"matches `{_escape(field['pattern'])}`")
    return f"Limits: {', '.join(parts)}." if parts else ""


def _json(value: Any) -> str:
    """Render a default as it would be written in JSON, leaving out null members."""
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, Mapping):
        value = {key: item for key, item in value.items() if item not in (None, [], {})}
    return json.dumps(value, sort_keys=False)


def _printer_columns(resource: ResourceDefinition) -> list[str]:
    columns = ", ".join(
        f"{column['name'].upper()} (`{column['jsonPath']}`)" for column in resource.printer_columns
    )
    return [f"`kubectl get {resource.short_name}` shows {columns}.", ""]


def _resources() -> Iterator[ResourceDefinition]:
    by_kind = {resource.kind: resource for resource in RESOURCES}
    for kind in DOCUMENTED_KINDS:
        yield by_kind[kind]


def render_reference() -> str:
    """Render the reference page as Markdown."""
    page = _Page()
    page.lines += [
        "<!-- Generated from the pydantic models in operator/seccomp_recorder/models by",
        f"     `{GENERATE_COMMAND}` (`make reference`). Do not edit. -->",
        "",
        "# API reference",
        "",
        (
            f"The custom resources of seccomp-recorder, group `{API_GROUP}`, version `{VERSION}`."
            " Every field name is the one in YAML. The same models generate the CRDs under"
            " `crds/`, so the API server enforces the types, enums and limits listed here;"
            " the operator and the agents check the rest (syscall names per architecture, for"
            " one) and report problems in the status."
        ),
        "",
        "Contents: " + ", ".join(f"[{kind}](#{_anchor(kind)})" for kind in DOCUMENTED_KINDS) + ".",
        "",
    ]
    for resource in _resources():
        page.describe_kind(resource)
    return "\n".join(page.lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write or check the reference page; print it to stdout when given no option."""
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_recorder.models.reference",
        description="Generate the API reference page of seccomp-recorder from its models.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="FILE", type=Path, help="write the page to FILE")
    action.add_argument(
        "--check",
        metavar="FILE",
        type=Path,
        help="exit with status 1 when FILE differs from the generated page",
    )
    args = parser.parse_args(argv)
    text = render_reference()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        return 0
    if args.check is not None:
        try:
            current = args.check.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.check} is out of date: run `make reference`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
