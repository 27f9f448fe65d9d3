"""Record a process's requests to the API server and check them against RBAC rules.

The dev cluster's API server does not enforce RBAC. So a test routes one process (the
operator, or an agent) through a `RecordingProxy` and runs it through a scenario. Then
`denied_requests` checks each recorded request against the rules the chart grants that
process. The request-to-attributes mapping follows Kubernetes' own
(k8s.io/apiserver RequestInfoFactory) for the resource requests these processes make.

NOTE: this evaluator is written here because no Python library evaluates RBAC rules. It
covers Roles and ClusterRoles with apiGroups, resources, verbs and resourceNames, not
aggregation or nonResourceURLs. Discovery paths (/api, /apis, /version, /openapi) are
not checked, because every authenticated user may read them (system:discovery).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.web

# Seconds a stopping proxy waits for open responses (watch streams) before closing them.
SHUTDOWN_TIMEOUT = 2.0
# Headers that describe one hop of an HTTP connection, not the request or response.
HOP_HEADERS = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
    "proxy-connection", "te", "trailer",
})


@dataclass(frozen=True)
class Request:
    """The parts of one HTTP request that authorization looks at."""

    method: str
    path: str
    watch: bool


@dataclass(frozen=True)
class Attributes:
    """The attributes of a resource request that RBAC rules match."""

    verb: str
    group: str
    resource: str  # with "/<subresource>" for a subresource
    namespace: str | None
    name: str | None


class RecordingProxy:
    """A plain-HTTP reverse proxy to `upstream` that records every request it forwards.

    It runs on its own event loop in a daemon thread, on a loopback port; `url` is its
    address once `start` returned. Responses are streamed, so watches work through it.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[Request] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: aiohttp.web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        application = aiohttp.web.Application()
        application.router.add_route("*", "/{path:.*}", self._forward)
        # handler_cancellation: a client that leaves a watch also ends its upstream watch.
        self._runner = aiohttp.web.AppRunner(
            application, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        remaining = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in remaining:
            task.cancel()
        await asyncio.gather(*remaining, return_exceptions=True)

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        watch = request.query.get("watch", "") in ("true", "1")
        self.requests.append(Request(request.method, request.path, watch))
        assert self._session is not None
        headers = {key: value for key, value in request.headers.items()
                   if key.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body,
            allow_redirects=False,
        ) as upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_HEADERS:
                    response.headers[key] = value
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # The client or the API server closed the stream (a watch's end).
            await response.write_eof()
            return response


def attributes(request: Request) -> Attributes | None:
    """Map a request to RBAC's attributes; None for a discovery (non-resource) path."""
    parts = [part for part in request.path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None  # The group version's resource list: discovery.
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if name is None:
        verb = {"GET": "watch" if request.watch else "list", "POST": "create",
                "DELETE": "deletecollection"}[request.method]
    else:
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[
            request.method]
    return Attributes(verb, group, resource, namespace, name)


def rule_allows(rule: dict[str, Any], request: Attributes) -> bool:
    """Return whether one PolicyRule allows `request` (no wildcards: the chart has none)."""
    if request.group not in rule.get("apiGroups", []):
        return False
    if request.resource not in rule.get("resources", []):
        return False
    if request.verb not in rule.get("verbs", []):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


def denied_requests(
    requests: list[Request],
    cluster_roles: list[dict[str, Any]],
    roles: list[dict[str, Any]],
) -> list[Attributes]:
    """Return the recorded requests that no rule of the given roles allows, without repeats.

    A ClusterRole's rules apply in every namespace and to cluster-scoped objects; a
    Role's rules only in its own namespace.
    """
    denied: list[Attributes] = []
    for request in requests:
        found = attributes(request)
        if found is None or found in denied:
            continue
        cluster_wide = any(
            rule_allows(rule, found) for role in cluster_roles for rule in role["rules"]
        )
        in_namespace = any(
            rule_allows(rule, found)
            for role in roles
            if role["metadata"]["namespace"] == found.namespace
            for rule in role["rules"]
        )
        if not (cluster_wide or in_namespace):
            denied.append(found)
    return denied
