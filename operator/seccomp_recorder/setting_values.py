"""Parsers of the setting values the operator and the agent share, with messages that name the fix.

Each raises ValueError naming the value and the expected form; the callers add the
name of the variable or flag.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogFormat(StrEnum):
    """Format of the log lines on stderr."""

    TEXT = "text"
    JSON = "json"


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid number of seconds {text!r}: use a number such as 30") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"invalid number of seconds {text!r}: use a number above 0")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"invalid port {text!r}: use a whole number from 0 to 65535") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"invalid port {text!r}: use a whole number from 0 to 65535")
    return value


def log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"invalid log level {text!r}: use one of {', '.join(LOG_LEVELS)}")
    return level


def log_format(text: str) -> LogFormat:
    try:
        return LogFormat(text.lower())
    except ValueError:
        choices = ", ".join(LogFormat)
        raise ValueError(f"invalid log format {text!r}: use one of {choices}") from None
