"""Reads of the tests' API objects that tell a missing object from a failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException


def read_or_none(read: Callable[[], Any]) -> dict[str, Any] | None:
    """Return the object that `read` (a client call with _preload_content=False) gets.

    Returns None when the API server answers 404 Not Found; other errors propagate.
    """
    try:
        response = read()
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    found: dict[str, Any] = json.loads(response.data)
    return found
