"""The KMock handler that receives every HTTP request of the API server.

What is taken from KMock 0.8: its handler and DSL, so a test can still inject
responses or faults with KMock's syntax (`server.handler['get /api/v1/pods'] << 500`,
tried before the emulator), the requests log for assertions, `KubernetesError`, and
its bundled discovery data of the built-in kinds (see `registry.py`).

NOTE: KMock's own `KubernetesEmulator` is not used, and neither is its request
parsing. Its parser fails on `/api/v1/namespaces` (a 500), and its emulator applies
every write as a dict merge before any reaction runs, so there is no place for
resourceVersion preconditions, JSON patch, PUT or a separate status. Requests are
parsed here and served by `api.Api`; the listener is aiohttp's own server (see
`server.py`).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp.web
import attrs
import kmock

from seccomp_devcluster.apiserver import api

logger = logging.getLogger(__name__)

# Requests kept for assertions (`list(server.handler)`). KMock keeps every request;
# a long-running dev cluster keeps only the most recent ones.
REQUEST_LOG_SIZE = 1000


@attrs.define(kw_only=True)
class ApiHandler(kmock.KubernetesScaffold):
    """A KMock handler that serves the emulated API unless a test reaction matches."""

    emulator: api.Api = attrs.field()

    def __attrs_post_init__(self) -> None:
        # The scaffold's discovery reactions are replaced by `api.Api`, so skip them.
        pass

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response: aiohttp.web.StreamResponse
        try:
            request = await self._parse(raw_request)
            self._requests.append(request)
            del self._requests[:-REQUEST_LOG_SIZE]
            response = await self._serve(request, raw_request)
        except kmock.KubernetesError as error:
            response = api.error_response(error)
        except Exception as error:  # an unexpected error returns 500, as on the real server
            logger.exception("request %s %s failed", raw_request.method, raw_request.path_qs)
            response = api.error_response(kmock.KubernetesError(
                status=500, reason="InternalError",
                message=f"Internal error occurred: {type(error).__name__}: {error}", details={}))
        logger.debug("%s %s -> %s", raw_request.method, raw_request.path_qs, response.status)
        return response

    async def _serve(self, request: kmock.Request, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if self._payloads:  # reactions that a test added with KMock's DSL
            try:
                return await self._handle(request)
            except NotImplementedError:
                pass  # no reaction matched
        return await self.emulator.serve(request, raw_request)

    async def _parse(self, raw_request: aiohttp.web.BaseRequest) -> kmock.Request:
        """Build KMock's request model with this server's own path parsing."""
        body = await raw_request.read()
        text = body.decode("utf-8", errors="replace")
        parsed = api.parse_resource_path(raw_request.path)
        resource = None
        namespace = name = subresource = None
        if parsed is not None:
            resource = kmock.resource(parsed.group, parsed.version, parsed.plural)
            namespace, name, subresource = parsed.namespace, parsed.name, parsed.subresource
        data: Any = None
        if body and "json" in raw_request.headers.get("Content-Type", "application/json"):
            try:
                data = await raw_request.json()
            except ValueError:
                data = None
        return kmock.Request(
            id=len(self._requests),
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            body=body,
            text=text,
            data=data,
            action=self._action(raw_request.method, parsed, raw_request.query.get("watch")),
            resource=resource,
            namespace=namespace,
            name=name,
            subresource=subresource,
            raw_request=raw_request,
        )

    @staticmethod
    def _action(method: str, parsed: api.ResourcePath | None, watch: str | None) -> kmock.action | None:
        if parsed is None:
            return None
        if method == "GET" and (watch in ("true", "1") or parsed.watch):
            return kmock.action.WATCH
        if parsed.name is None:
            return {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
        return {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "PUT": kmock.action.UPDATE,
                "DELETE": kmock.action.DELETE}.get(method)
