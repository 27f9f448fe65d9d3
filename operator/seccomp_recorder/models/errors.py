"""The profile error type, and the translation of pydantic errors into messages for people.

Every message names where the problem is as a path into the document, such as
`spec.syscalls[2].names[0]`, then what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ErrorType

_PYDANTIC_ERROR_TYPES = frozenset(get_args(ErrorType))


class ProfileError(ValueError):
    """A profile that cannot be read, built or merged; `problems` lists every reason found."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def quote(value: Any) -> str:
    """Quote a value for a message: strings in double quotes, other values as Python writes them."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def invalid(error_type: str, message: str) -> PydanticCustomError:
    """Build a validation error for a validator to raise, with a finished message."""
    return PydanticCustomError(error_type, message)


def format_location(location: Iterable[str | int]) -> str:
    """Format a pydantic error location as a path: `spec.syscalls[0].names[2]`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def describe_validation_error(
    error: ValidationError, models: Iterable[type[BaseModel]], prefix: str = ""
) -> list[str]:
    """Describe each error in `error` as `path: message`.

    `models` are the model classes involved, whose field names are offered as corrections
    for an unknown field. `prefix` is put before every path, for models nested in a larger
    document.
    """
    known_fields = sorted(_field_names(models))
    messages = []
    for detail in error.errors(include_url=False):
        location = (prefix,) + tuple(detail["loc"]) if prefix else tuple(detail["loc"])
        path = format_location(location)
        message = _describe(detail, known_fields)
        messages.append(f"{path}: {message}" if path else message)
    return messages


def _field_names(models: Iterable[type[BaseModel]]) -> set[str]:
    names = set()
    for model in models:
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
    return names


def _describe(detail: Any, known_fields: list[str]) -> str:
    error_type = detail["type"]
    value = detail.get("input")
    if error_type == "missing":
        return "required field is missing: add it"
    if error_type == "extra_forbidden":
        field = str(detail["loc"][-1])
        close = difflib.get_close_matches(field, known_fields, n=1)
        hint = f" (did you mean {quote(close[0])}?)" if close else ""
        return f"unknown field {quote(field)}{hint}: remove it or correct its spelling"
    if error_type in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a mapping, got {_type_name(value)}"
    if error_type in {"tuple_type", "list_type"}:
        return f"expected a list, got {_type_name(value)}"
    if error_type == "string_type":
        return f"expected a string, got {_type_name(value)} {quote(value)}"
    if error_type not in _PYDANTIC_ERROR_TYPES:
        # The project's own errors (built by `invalid`) carry finished messages.
        return str(detail["msg"])
    return f"{detail['msg']} (got {quote(value)})"


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)
