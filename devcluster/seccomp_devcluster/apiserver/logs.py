"""The `pods/log` subresource, served from the files the node stand-in writes.

Contract with the node stand-in (also in devcluster/CONTRACT.md): each container's
output is written, as raw bytes, to
`<log root>/<namespace>_<pod name>_<pod uid>/<container name>.log`, appended while the
container runs. `tailLines`, `limitBytes` and `follow` are honoured; `follow` streams
appended bytes until the pod is gone or the client disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web

from seccomp_devcluster.apiserver import errors

# How often a followed log file is checked for appended bytes, in seconds.
FOLLOW_POLL_SECONDS = 0.1
_CHUNK_BYTES = 64 * 1024


def log_path(log_root: Path, pod: dict[str, Any], container: str) -> Path:
    metadata = pod["metadata"]
    folder = f"{metadata['namespace']}_{metadata['name']}_{metadata['uid']}"
    return log_root / folder / f"{container}.log"


def choose_container(pod: dict[str, Any], requested: str | None) -> str:
    """Return the container a log request is for; raise 400 as the real server does."""
    spec = pod.get("spec") or {}
    names = [container["name"] for container in
             (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    main_names = [container["name"] for container in spec.get("containers") or []]
    pod_name = pod["metadata"]["name"]
    if requested:
        if requested not in names:
            raise errors.bad_request(f"container {requested} is not valid for pod {pod_name}")
        return requested
    if len(main_names) == 1:
        return str(main_names[0])
    raise errors.bad_request(
        f"a container name must be specified for pod {pod_name}, choose one of: "
        f"[{' '.join(main_names)}]")


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


async def serve_log(
    raw_request: aiohttp.web.BaseRequest,
    pod: dict[str, Any],
    log_root: Path | None,
    params: Mapping[str, str],
    pod_exists: Callable[[], bool],
) -> aiohttp.web.StreamResponse:
    container = choose_container(pod, params.get("container"))
    if params.get("previous") in ("true", "1"):
        raise errors.bad_request(
            f'previous terminated container "{container}" in pod "{pod["metadata"]["name"]}" '
            f"not found")
    path = log_path(log_root, pod, container) if log_root is not None else None
    if path is None or not path.exists():
        raise errors.bad_request(
            f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: '
            f"ContainerCreating")
    tail_lines = _int_param(params, "tailLines")
    limit_bytes = _int_param(params, "limitBytes")

    data = path.read_bytes()
    offset = len(data)
    if tail_lines is not None:
        data = _tail(data, tail_lines)
    if limit_bytes is not None:
        data = data[:limit_bytes]
    if params.get("follow") not in ("true", "1"):
        return aiohttp.web.Response(body=data, content_type="text/plain")

    response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(raw_request)
    sent = len(data)
    try:
        await response.write(data)
        while pod_exists() and (limit_bytes is None or sent < limit_bytes):
            with path.open("rb") as file:
                file.seek(offset)
                chunk = file.read(_CHUNK_BYTES)
            if chunk:
                offset += len(chunk)
                if limit_bytes is not None:
                    chunk = chunk[:limit_bytes - sent]
                sent += len(chunk)
                await response.write(chunk)
            else:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        await response.write_eof()
    except (ConnectionResetError, FileNotFoundError):
        pass  # the client went away, or the node removed the pod's logs
    return response
