"""Pruning, defaulting and validation of custom resources against structural schemas.

The steps run in the real API server's order: unknown fields are pruned, defaults are
applied, then the object is validated. Validation covers type, nullable, required,
enum, pattern, format (int-or-string only), minimum/maximum (with exclusive forms),
multipleOf, minLength/maxLength, minItems/maxItems, uniqueItems,
minProperties/maxProperties, list-type set/map uniqueness, allOf/anyOf/oneOf/not and
CEL rules in `x-kubernetes-validations`. Messages and cause reasons follow the real
server's, so a test can assert on a field path and a reason.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError
from lark.exceptions import LarkError

from seccomp_devcluster.apiserver import errors

logger = logging.getLogger(__name__)

Causes = list[dict[str, str]]

# Object keys kept at the top level and in embedded resources whatever the schema declares.
_RESOURCE_KEYS = ("apiVersion", "kind", "metadata")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """Render a value as the real server's field errors do."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return '"object"' if isinstance(value, dict) else '"array"'
    return json.dumps(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# Pruning


def prune(schema: dict[str, Any], value: Any, path: str = "", pruned: list[str] | None = None,
          root: bool = True) -> list[str]:
    """Drop fields the schema does not declare, in place; return the dropped paths."""
    pruned = [] if pruned is None else pruned
    if isinstance(value, dict):
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
        properties: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource", False)
        for key in list(value):
            if embedded and key in _RESOURCE_KEYS:
                continue
            if key in properties:
                prune(properties[key], value[key], _join(path, key), pruned, root=False)
            elif isinstance(additional, dict):
                prune(additional, value[key], _join(path, key), pruned, root=False)
            elif additional is True or keep_unknown:
                continue
            else:
                pruned.append(_join(path, key))
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            prune(schema["items"], item, f"{path}[{index}]", pruned, root=False)
    return pruned


# Defaulting


def apply_defaults(schema: dict[str, Any], value: Any) -> None:
    """Set `default` values of absent properties, in place and recursively."""
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties") or {}
        for key, subschema in properties.items():
            if key not in value and "default" in subschema:
                value[key] = copy.deepcopy(subschema["default"])
            if key in value:
                apply_defaults(subschema, value[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in properties:
                    apply_defaults(additional, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


# Validation


def validate(schema: dict[str, Any], value: Any, old_value: Any = None, path: str = "") -> Causes:
    """Return the causes of every schema violation in `value` (empty when valid)."""
    causes: Causes = []
    _validate(schema, value, old_value, path, causes)
    return causes


def _validate(schema: dict[str, Any], value: Any, old: Any, path: str, causes: Causes) -> None:
    if value is None:
        if not schema.get("nullable", False) and schema.get("type"):
            causes.append(errors.cause(
                "FieldValueTypeInvalid", path,
                f'Invalid value: "null": {path} in body must be of type {schema["type"]}: "null"'))
        return

    if not _check_type(schema, value, path, causes):
        return
    _check_scalar(schema, value, path, causes)

    if isinstance(value, dict):
        _check_object(schema, value, old if isinstance(old, dict) else None, path, causes)
    elif isinstance(value, list):
        _check_array(schema, value, old if isinstance(old, list) else None, path, causes)

    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            results = [validate(sub, value, old, path) for sub in schema[combinator]]
            passed = sum(1 for result in results if not result)
            if combinator == "allOf":
                for result in results:
                    causes.extend(result)
            elif combinator == "anyOf" and passed == 0:
                causes.append(errors.cause(
                    "FieldValueInvalid", path,
                    f"Invalid value: {_show(value)}: {path} in body must match at least one schema in anyOf"))
            elif combinator == "oneOf" and passed != 1:
                causes.append(errors.cause(
                    "FieldValueInvalid", path,
                    f"Invalid value: {_show(value)}: {path} in body must match exactly one schema in oneOf"))
    if "not" in schema and not validate(schema["not"], value, old, path):
        causes.append(errors.cause(
            "FieldValueInvalid", path,
            f"Invalid value: {_show(value)}: {path} in body must not validate the schema (not)"))

    for rule in schema.get("x-kubernetes-validations") or []:
        _check_rule(rule, value, old, path, causes)


def _check_type(schema: dict[str, Any], value: Any, path: str, causes: Causes) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            causes.append(errors.cause(
                "FieldValueTypeInvalid", path,
                f"Invalid value: {_show(value)}: {path} in body must be of type integer,string: "
                f'"{_type_name(value)}"'))
            return False
        return True
    expected = schema.get("type")
    if not expected:
        return True
    actual = _type_name(value)
    matches = actual == expected or (expected == "number" and actual == "integer")
    if not matches and expected == "integer" and isinstance(value, float) and value.is_integer():
        matches = True
    if not matches:
        causes.append(errors.cause(
            "FieldValueTypeInvalid", path,
            f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"'))
    return matches


def _check_scalar(schema: dict[str, Any], value: Any, path: str, causes: Causes) -> None:
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_show(item) for item in schema["enum"])
        causes.append(errors.cause(
            "FieldValueNotSupported", path,
            f"Unsupported value: {_show(value)}: supported values: {supported}"))

    if isinstance(value, str):
        pattern = schema.get("pattern")
        if pattern is not None and re.search(pattern, value) is None:
            causes.append(errors.cause(
                "FieldValueInvalid", path,
                f"Invalid value: {_show(value)}: {path} in body should match '{pattern}'"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(errors.cause(
                "FieldValueInvalid", path,
                f"Invalid value: {_show(value)}: {path} in body should be at least "
                f"{schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(errors.cause(
                "FieldValueTooLong", path,
                f"Too long: may not be more than {schema['maxLength']} bytes"))

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(schema, value, path, causes)


def _check_number(schema: dict[str, Any], value: float, path: str, causes: Causes) -> None:
    minimum = schema.get("minimum")
    if minimum is not None:
        exclusive = schema.get("exclusiveMinimum", False)
        if value < minimum or (exclusive and value == minimum):
            relation = "greater than" if exclusive else "greater than or equal to"
            causes.append(errors.cause(
                "FieldValueInvalid", path,
                f"Invalid value: {_show(value)}: {path} in body should be {relation} {minimum}"))
    maximum = schema.get("maximum")
    if maximum is not None:
        exclusive = schema.get("exclusiveMaximum", False)
        if value > maximum or (exclusive and value == maximum):
            relation = "less than" if exclusive else "less than or equal to"
            causes.append(errors.cause(
                "FieldValueInvalid", path,
                f"Invalid value: {_show(value)}: {path} in body should be {relation} {maximum}"))
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        causes.append(errors.cause(
            "FieldValueInvalid", path,
            f"Invalid value: {_show(value)}: {path} in body should be a multiple of {multiple}"))


def _check_object(schema: dict[str, Any], value: dict[str, Any], old: dict[str, Any] | None,
                  path: str, causes: Causes) -> None:
    for key in schema.get("required") or []:
        if key not in value:
            causes.append(errors.cause("FieldValueRequired", _join(path, key), "Required value"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(errors.cause(
            "FieldValueInvalid", path,
            f"Invalid value: {len(value)}: {path} in body should have at least "
            f"{schema['minProperties']} properties"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(errors.cause(
            "FieldValueTooMany", path,
            f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"))

    properties: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        old_item = old.get(key) if old is not None else None
        if key in properties:
            _validate(properties[key], item, old_item, _join(path, key), causes)
        elif isinstance(additional, dict):
            _validate(additional, item, old_item, _join(path, key), causes)


def _check_array(schema: dict[str, Any], value: list[Any], old: list[Any] | None,
                 path: str, causes: Causes) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(errors.cause(
            "FieldValueInvalid", path,
            f"Invalid value: {len(value)}: {path} in body should have at least "
            f"{schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(errors.cause(
            "FieldValueTooMany", path,
            f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))

    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type == "set":
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                causes.append(errors.cause(
                    "FieldValueDuplicate", f"{path}[{index}]", f"Duplicate value: {_show(item)}"))
            seen.append(item)
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: list[tuple[Any, ...]] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            item_key = tuple(item.get(key) for key in keys)
            if item_key in seen_keys:
                shown = ", ".join(f'"{key}"={_show(item.get(key))}' for key in keys)
                causes.append(errors.cause(
                    "FieldValueDuplicate", f"{path}[{index}]", f"Duplicate value: map[{shown}]"))
            seen_keys.append(item_key)

    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            old_item = old[index] if old is not None and index < len(old) else None
            _validate(items, item, old_item, f"{path}[{index}]", causes)


# CEL rules


def _lower_ascii(text: celpy.celtypes.StringType) -> celpy.celtypes.StringType:
    return celpy.celtypes.StringType(text.lower())


def _upper_ascii(text: celpy.celtypes.StringType) -> celpy.celtypes.StringType:
    return celpy.celtypes.StringType(text.upper())


def _trim(text: celpy.celtypes.StringType) -> celpy.celtypes.StringType:
    return celpy.celtypes.StringType(text.strip())


def _is_sorted(items: celpy.celtypes.ListType) -> celpy.celtypes.BoolType:
    values: list[Any] = list(items)
    return celpy.celtypes.BoolType(values == sorted(values))


# Functions of the Kubernetes CEL libraries that the standard CEL environment lacks.
_KUBERNETES_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "trim": _trim,
    "isSorted": _is_sorted,
}

_environment: celpy.Environment | None = None
_programs: dict[str, Any] = {}


def _program(rule: str) -> Any:
    global _environment
    if rule not in _programs:
        if _environment is None:
            _environment = celpy.Environment()
        _programs[rule] = _environment.program(
            _environment.compile(rule), functions=_KUBERNETES_FUNCTIONS)
    return _programs[rule]


def _check_rule(rule: dict[str, Any], value: Any, old: Any, path: str, causes: Causes) -> None:
    expression: str = rule["rule"]
    # Transition rules (those that read oldSelf) run only on updates of an existing value.
    if "oldSelf" in expression and old is None and not rule.get("optionalOldSelf"):
        return
    activation: dict[str, Any] = {"self": json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = json_to_cel(old)
    result: Any
    try:
        result = _program(expression).evaluate(activation)
    except (CELParseError, CELEvalError, LarkError, TypeError, ValueError, KeyError) as error:
        result = error
    if isinstance(result, Exception):
        # NOTE: a rule that uses a Kubernetes CEL function this evaluator lacks (beyond
        # lowerAscii, upperAscii, trim, isSorted) is skipped, not enforced. The real
        # server would enforce it or reject the CRD.
        logger.warning("CEL rule %r at %s was not evaluated: %s", expression, path or "<root>",
                       str(result).splitlines()[0][:200])
        return
    if bool(result):
        return
    field = _join(path, rule["fieldPath"].lstrip(".")) if rule.get("fieldPath") else path
    message = rule.get("message") or f"failed rule: {expression}"
    reason = {
        "FieldValueForbidden": "FieldValueForbidden",
        "FieldValueRequired": "FieldValueRequired",
        "FieldValueDuplicate": "FieldValueDuplicate",
    }.get(rule.get("reason", ""), "FieldValueInvalid")
    causes.append(errors.cause(reason, field, f"Invalid value: {_show(value)}: {message}"))
