"""Conversion of the models' JSON schemas into structural OpenAPI v3 schemas for CRDs.

pydantic writes JSON Schema (draft 2020-12): shared definitions behind `$ref`, optional
fields as `anyOf` with `null`, `const`, numeric `exclusiveMinimum`. A CRD needs a
structural schema in the OpenAPI v3.0 subset that Kubernetes accepts: every node typed,
nothing behind `$ref`, no `anyOf` for optional fields. `structural_schema` converts one
into the other and keeps the descriptions, enums, patterns, limits, scalar defaults and
the `x-kubernetes-*` extensions that the models declare. `structural_problems` checks a
schema against the rules that kube-apiserver applies to a CRD, so a model change that
cannot be expressed fails here rather than when the CRD is applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pydantic import BaseModel

# Kubernetes stores integers as int64. A larger value in an object is decoded as a
# float and fails the type check, so no schema maximum may exceed this.
MAX_INT64: Final = 2**63 - 1

# Formats that kube-apiserver validates or passes on. pydantic writes others (such as
# "uri" or "path") that a model here must not use without deciding how the CRD treats them.
_FORMATS: Final = frozenset({"date-time", "date", "duration", "byte", "int32", "int64", "uuid"})

# Keys of JSON Schema that carry no meaning for the API server and are left out.
_DROPPED: Final = frozenset({"title", "examples", "$defs"})

# The keys of a structural schema node, in the order they are written.
_KEY_ORDER: Final = (
    "description",
    "type",
    "format",
    "nullable",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)
_ALLOWED_KEYS: Final = frozenset(_KEY_ORDER)
_TYPES: Final = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean"})


class SchemaError(ValueError):
    """A model whose JSON schema has no structural OpenAPI form; the message names the path."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Convert `model`'s JSON schema (validation mode, camelCase names) into a structural one.

    Raises SchemaError naming the path of a construct that a CRD cannot express, such as a
    union of two types, a tuple, a recursive model or an unknown format.
    """
    document = model.model_json_schema(by_alias=True, mode="validation")
    definitions = document.pop("$defs", {})
    return _convert(document, definitions, model.__name__, ())


def _convert(
    node: Mapping[str, Any], definitions: Mapping[str, Any], path: str, stack: tuple[str, ...]
) -> dict[str, Any]:
    node, stack = _resolve(node, definitions, path, stack)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            result[key] = {
                name: _convert(child, definitions, f"{path}.{name}", stack)
                for name, child in value.items()
            }
        elif key == "items" and isinstance(value, Mapping):
            result[key] = _convert(value, definitions, f"{path}[]", stack)
        elif key in ("items", "prefixItems"):
            raise SchemaError(f"{path}: tuples have no structural form: use a list of one type")
        elif key == "additionalProperties":
            if isinstance(value, Mapping):
                result[key] = _convert(value, definitions, f"{path}.*", stack)
            elif value is True and node.get("x-kubernetes-preserve-unknown-fields") is True:
                pass  # An opaque object, kept whole by the API server.
            elif value is not False:
                raise SchemaError(f"{path}: free-form objects are not allowed: declare the fields")
            # False is left out: the API server prunes unknown fields instead.
        elif key in ("propertyNames", "patternProperties"):
            # NOTE: map keys are checked by the models only. The API server could check
            # them with a CEL regex, but the schema cannot bound the length of a key, and
            # the server's cost estimate for such a rule may exceed the CRD's budget.
            if key == "patternProperties":
                result["additionalProperties"] = _convert(
                    _single_value_schema(value, path), definitions, f"{path}.*", stack
                )
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema 2020-12 gives the bound itself; OpenAPI v3.0 flags the plain one.
            result["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            result[key] = True
        elif key == "default":
            default = _clean_default(value)
            if default is not None:
                result[key] = default
        elif key == "description":
            result[key] = _unwrap(value)
        elif key == "x-kubernetes-validations":
            result[key] = [_ordered_rule(rule) for rule in value]
        elif key == "format":
            if value not in _FORMATS:
                raise SchemaError(f"{path}: format {value!r} is not one the API server knows")
            result[key] = value
        elif key in ("uniqueItems", "not", "oneOf", "allOf"):
            raise SchemaError(f"{path}: {key} has no structural form here")
        else:
            result[key] = value
    if result.get("type") == "integer" and result.get("maximum", 0) > MAX_INT64:
        # NOTE: a syscall argument value of 2^63 or more, which OCI JSON may contain,
        # therefore cannot be stored in a SeccompProfile object.
        result["maximum"] = MAX_INT64
    return _ordered(result)


def _resolve(
    node: Mapping[str, Any], definitions: Mapping[str, Any], path: str, stack: tuple[str, ...]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """Replace a `$ref` by its definition and an optional `anyOf` by its one non-null type.

    The keys beside them (a field's description, default or CEL rules) are kept and win
    over the definition's, except that CEL rules of both are kept. Returns the node and
    `stack` with the definitions entered, which a recursive model would enter again.
    """
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            raise SchemaError(f"{path}: {name} contains itself, which a CRD cannot express")
        target, stack = _resolve(definitions[name], definitions, path, (*stack, name))
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _merge(target, siblings), stack
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option != {"type": "null"}]
        if len(options) != 1 or len(options) == len(node["anyOf"]):
            raise SchemaError(
                f"{path}: a union of several types has no structural form: use one type,"
                " optionally with None"
            )
        siblings = {key: value for key, value in node.items() if key != "anyOf"}
        target, stack = _resolve(options[0], definitions, path, stack)
        return _merge(target, siblings), stack
    return node, stack


def _single_value_schema(pattern_properties: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """Return the value schema of a map whose keys pydantic constrains with a pattern."""
    if len(pattern_properties) != 1:
        raise SchemaError(f"{path}: a map needs one schema for all its values")
    [value_schema] = pattern_properties.values()
    return dict(value_schema)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **override}
    rules = [
        *base.get("x-kubernetes-validations", []),
        *override.get("x-kubernetes-validations", []),
    ]
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def _clean_default(value: Any) -> Any:
    """Return the default as the CRD should state it, or None for no default.

    Null and empty collections mean the same as an absent field, so they are left out
    instead of being written into every stored object.
    """
    if isinstance(value, Mapping):
        cleaned = {key: _clean_default(item) for key, item in value.items()}
        cleaned = {key: item for key, item in cleaned.items() if item is not None}
        return cleaned or None
    if isinstance(value, list) and not value:
        return None
    return value


def _unwrap(text: str) -> str:
    """Join the lines of each paragraph of a docstring, which wrap only to fit the source."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in paragraphs)


def _ordered_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    order = ("rule", "message", "messageExpression", "reason", "fieldPath")
    return {key: rule[key] for key in order if key in rule}


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: position for position, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def structural_problems(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """List how `schema` breaks the rules for a CRD's structural schema, with paths.

    The rules are those that kube-apiserver checks for `apiextensions.k8s.io/v1`: every
    node has a type, objects have `properties` or `additionalProperties` but not both,
    arrays have one `items` schema, and `metadata` restricts only `name` and
    `generateName`. Stricter than the server, it also rejects keys that this generator
    never writes, such as `anyOf` or `$ref`.
    """
    return list(_problems(schema, path or "openAPIV3Schema", root=True))


def _problems(node: Any, path: str, root: bool = False) -> Iterator[str]:
    if not isinstance(node, Mapping):
        yield f"{path}: expected a schema object, got {type(node).__name__}"
        return
    for key in node:
        if key not in _ALLOWED_KEYS:
            yield f"{path}: key {key!r} is not allowed in a structural schema here"

    node_type = node.get("type")
    if node_type not in _TYPES:
        yield f"{path}: type must be one of {', '.join(sorted(_TYPES))}, got {node_type!r}"
    if root and node_type != "object":
        yield f"{path}: the root must be of type object"
    if node.get("additionalProperties") is not None and "properties" in node:
        yield f"{path}: properties and additionalProperties are mutually exclusive"
    for key, allowed_type in (
        ("properties", "object"),
        ("additionalProperties", "object"),
        ("items", "array"),
    ):
        if key in node and node_type != allowed_type:
            yield f"{path}: {key} is allowed only with type {allowed_type}"
    if node_type == "array" and "items" not in node:
        yield f"{path}: an array needs an items schema"
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], Mapping):
        yield f"{path}: additionalProperties must be a schema, not {node['additionalProperties']!r}"
    if "default" in node and node["default"] is None:
        yield f"{path}: a default of null is not allowed"
    for value in node.get("enum", []):
        if _json_type(value) != node_type and not (
            node_type == "number" and _json_type(value) == "integer"
        ):
            yield f"{path}: enum value {value!r} is not of type {node_type}"

    yield from _list_type_problems(node, path)
    yield from _rule_problems(node, path)

    properties = node.get("properties", {})
    for name in node.get("required", []):
        if name not in properties:
            yield f"{path}: required field {name!r} is not among the properties"
    for name, child in properties.items():
        child_path = f"{path}.properties.{name}"
        if root and name == "metadata":
            yield from _metadata_problems(child, child_path)
        yield from _problems(child, child_path)
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _problems(node["additionalProperties"], f"{path}.additionalProperties")
    if "items" in node:
        yield from _problems(node["items"], f"{path}.items")


def _list_type_problems(node: Mapping[str, Any], path: str) -> Iterator[str]:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        if "x-kubernetes-list-map-keys" in node:
            yield f"{path}: x-kubernetes-list-map-keys needs x-kubernetes-list-type map"
        return
    items = node.get("items", {})
    if node.get("type") != "array":
        yield f"{path}: x-kubernetes-list-type is allowed only on arrays"
    elif list_type == "set" and items.get("type") not in _SCALAR_TYPES:
        yield f"{path}: a list of type set needs scalar items"
    elif list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys") or []
        if not keys:
            yield f"{path}: a list of type map needs x-kubernetes-list-map-keys"
        item_properties = items.get("properties", {})
        for key in keys:
            key_schema = item_properties.get(key, {})
            if key_schema.get("type") not in _SCALAR_TYPES:
                yield f"{path}: list map key {key!r} must be a scalar property of the items"
            elif key not in items.get("required", []) and "default" not in key_schema:
                yield f"{path}: list map key {key!r} must be required or have a default"
    elif list_type != "atomic" and list_type != "set":
        yield f"{path}: x-kubernetes-list-type must be atomic, set or map, got {list_type!r}"


def _rule_problems(node: Mapping[str, Any], path: str) -> Iterator[str]:
    for index, rule in enumerate(node.get("x-kubernetes-validations", [])):
        rule_path = f"{path}.x-kubernetes-validations[{index}]"
        if not isinstance(rule, Mapping) or not isinstance(rule.get("rule"), str):
            yield f"{rule_path}: a validation rule needs a CEL expression in rule"
            continue
        unknown = set(rule) - {"rule", "message", "messageExpression", "reason", "fieldPath"}
        if unknown:
            yield f"{rule_path}: unknown keys {sorted(unknown)}"
        field_path = rule.get("fieldPath")
        if field_path is not None:
            field = field_path.removeprefix(".")
            if field not in node.get("properties", {}):
                yield f"{rule_path}: fieldPath {field_path!r} names no property of this object"


def _metadata_problems(node: Mapping[str, Any], path: str) -> Iterator[str]:
    for key in node:
        if key not in ("type", "properties", "description"):
            yield f"{path}: metadata may only restrict name and generateName, not {key}"
    for name in node.get("properties", {}):
        if name not in ("name", "generateName"):
            yield f"{path}: metadata may only restrict name and generateName, not {name}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Mapping) else "array"
