"""API errors with the Status bodies, codes, reasons and messages of the real API server.

Each error is a `kmock.KubernetesError`, which KMock renders as a `Status` object.
"""

from __future__ import annotations

from typing import Any

import kmock


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """Build a failure `Status`, as sent in error responses and watch ERROR events."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _details(group_resource: str, name: str | None) -> dict[str, Any]:
    plural, _, group = group_resource.partition(".")
    details: dict[str, Any] = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def not_found(group_resource: str, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=404, reason="NotFound",
        message=f'{group_resource} "{name}" not found',
        details=_details(group_resource, name),
    )


def path_not_found() -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=404, reason="NotFound",
        message="the server could not find the requested resource", details={},
    )


def already_exists(group_resource: str, name: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=409, reason="AlreadyExists",
        message=f'{group_resource} "{name}" already exists',
        details=_details(group_resource, name),
    )


def conflict(group_resource: str, name: str, cause: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=409, reason="Conflict",
        message=f'Operation cannot be fulfilled on {group_resource} "{name}": {cause}',
        details=_details(group_resource, name),
    )


STALE_OBJECT = (
    "the object has been modified; please apply your changes to the latest version "
    "and try again"
)


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> kmock.KubernetesError:
    """Build a 422 Invalid error whose causes carry field paths, as schema checks do."""
    qualified_kind = f"{kind}.{group}" if group else kind
    texts = [
        f"{cause['field']}: {cause['message']}" if cause.get("field") else cause["message"]
        for cause in causes
    ]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return kmock.KubernetesError(
        status=422, reason="Invalid",
        message=f'{qualified_kind} "{name}" is invalid: {summary}',
        details=details,
    )


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    """Build one entry of `details.causes`, with a reason such as FieldValueRequired."""
    return {"reason": reason, "message": message, "field": field}


def unprocessable(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=422, reason="Invalid", message=message, details={})


def bad_request(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=400, reason="BadRequest", message=message, details={})


def forbidden(group_resource: str, name: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=403, reason="Forbidden",
        message=f'{group_resource} "{name}" is forbidden: {message}',
        details=_details(group_resource, name),
    )


def method_not_allowed() -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=405, reason="MethodNotAllowed",
        message="the server does not allow this method on the requested resource", details={},
    )


def not_acceptable(accept: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=406, reason="NotAcceptable",
        message=(
            f"only the following media types are accepted: application/json, "
            f"application/yaml (requested: {accept})"
        ),
        details={},
    )


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=415, reason="UnsupportedMediaType",
        message=f'the body of the request was in an unknown format - accepted media types '
                f'include: application/json, application/yaml (got "{content_type}")',
        details={},
    )


def expired(requested: int, oldest: int) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=410, reason="Expired",
        message=f"too old resource version: {requested} ({oldest})", details={},
    )
