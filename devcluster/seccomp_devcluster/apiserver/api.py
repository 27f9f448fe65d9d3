"""Request routing: discovery, OpenAPI, and the verbs on resources and subresources.

`Api.serve` takes one parsed request and returns the aiohttp response. The pieces it
calls own the rules: `objects` the writes, `watching` lists and watches, `tables`
server-side printing, `discovery` the discovery and OpenAPI documents, `logs` the
`pods/log` subresource, `gc` the deletion controllers.

Not served (404): `pods/exec`, `pods/attach`, `pods/portforward`, `pods/eviction`,
`/scale` subresources, and `/openapi/v2`. RBAC objects are stored, never enforced.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml

from seccomp_devcluster.apiserver import (
    discovery,
    errors,
    gc,
    kinds,
    logs,
    objects,
    registry,
    tables,
    watching,
)
from seccomp_devcluster.apiserver.store import DEFAULT_HISTORY_SIZE, Store

logger = logging.getLogger(__name__)

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Namespace subresources: a third path segment after /namespaces/NAME that is not a
# resource name inside the namespace.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class ResourcePath:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None
    watch: bool  # the legacy /watch/ path prefix


def parse_resource_path(path: str) -> ResourcePath | None:
    """Parse `/api/v1/...` and `/apis/GROUP/VERSION/...` paths as the real server does."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace: str | None = None
    if len(rest) > 2 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return ResourcePath(group, version, namespace, plural, name, subresource, watch)


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None,
                  content_type: str = JSON) -> aiohttp.web.Response:
    headers = {"Content-Type": content_type}
    response = aiohttp.web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, headers=headers)
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - {json.dumps(warning)}')
    return response


def error_response(error: kmock.KubernetesError) -> aiohttp.web.Response:
    details = error.details if isinstance(error.details, dict) else None
    body = errors.status_body(error.status, error.reason or "InternalError", error.message or "", details)
    return json_response(body, status=error.status)


def _truthy(value: str | None) -> bool:
    return value in ("true", "1", "True")


def _wants_table(accept: str) -> bool:
    return any("as=Table" in part for part in accept.split(","))


def _check_accept(accept: str) -> None:
    """Reject protobuf-only requests with 406, so that clients fall back to JSON."""
    if not accept:
        return
    media_types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    acceptable = {"application/json", "*/*", "application/*", "application/yaml", "text/plain",
                  "application/json-patch+json", "application/merge-patch+json"}
    if not any(media_type in acceptable for media_type in media_types):
        raise errors.not_acceptable(accept)


class Api:
    """The API server's state and request handling, independent of the HTTP listener."""

    def __init__(self, log_root: Path | None = None, bookmark_interval: float = 60.0,
                 history_size: int = DEFAULT_HISTORY_SIZE) -> None:
        self.log_root = log_root
        self.bookmark_interval = bookmark_interval
        self.server_address = "127.0.0.1:0"
        self.types = registry.Registry()
        self.store = Store(history_size)
        self.collector: gc.GarbageCollector | None = None
        self.objects = objects.Objects(self.store, self.types, self._wake_collector)
        self.collector = gc.GarbageCollector(self.objects)
        namespaces = self.types.get("", "v1", "namespaces")
        assert namespaces is not None
        for name in BOOTSTRAP_NAMESPACES:
            self.objects.create(namespaces, None, {"metadata": {"name": name}})

    def _wake_collector(self) -> None:
        if self.collector is not None:
            self.collector.wake()

    async def serve(self, request: kmock.Request, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        accept = raw.headers.get("Accept", "")
        _check_accept(accept)
        path = raw.path.rstrip("/") or "/"
        if raw.method == "GET":
            response = self._serve_non_resource(path, accept)
            if response is not None:
                return response
        parsed = parse_resource_path(path)
        if parsed is None:
            raise errors.path_not_found()
        rtype = self.types.get(parsed.group, parsed.version, parsed.plural)
        if rtype is None or (parsed.namespace is not None and not rtype.namespaced):
            raise errors.path_not_found()
        if parsed.subresource is not None and parsed.subresource not in rtype.subresources:
            raise errors.path_not_found()
        return await self._serve_resource(rtype, parsed, request, raw, accept)

    # Non-resource paths

    def _serve_non_resource(self, path: str, accept: str) -> aiohttp.web.StreamResponse | None:
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return json_response(discovery.version_info())
        aggregated_type = discovery.wants_aggregated(accept)
        if path in ("/api", "/apis") and aggregated_type is not None:
            api_version = "apidiscovery.k8s.io/" + ("v2" if aggregated_type == discovery.AGGREGATED_V2 else "v2beta1")
            document = discovery.aggregated(self.types, core=path == "/api", api_version=api_version)
            return json_response(document, content_type=aggregated_type)
        if path == "/api":
            return json_response(discovery.api_versions(self.server_address))
        if path == "/apis":
            return json_response(discovery.api_group_list(self.types))
        if path == "/":
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz",
                     "/version"]
            paths += [f"/apis/{group}" for group in self.types.groups() if group]
            return json_response({"paths": sorted(paths)})
        if path == "/openapi/v3":
            return json_response(discovery.openapi_v3_root(self.types))
        if path.startswith("/openapi/v3/"):
            parts = path.split("/")[3:]
            group, version = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else (
                (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else ("", ""))
            openapi = discovery.openapi_v3_document(self.types, group, version) if version else None
            if openapi is None:
                raise errors.path_not_found()
            return json_response(openapi)

        parts = [part for part in path.split("/") if part]
        resource_list: dict[str, Any] | None
        if parts[:1] == ["api"] and len(parts) == 2:
            resource_list = discovery.api_resource_list(self.types, "", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            resource_list = discovery.api_resource_list(self.types, parts[1], parts[2])
        elif parts[:1] == ["apis"] and len(parts) == 2:
            group_document = discovery.api_group(self.types, parts[1])
            if group_document is None:
                raise errors.path_not_found()
            return json_response(group_document)
        else:
            return None
        if resource_list is None:
            raise errors.path_not_found()
        return json_response(resource_list)

    # Resources

    async def _serve_resource(self, rtype: registry.ResourceType, parsed: ResourcePath,
                              request: kmock.Request, raw: aiohttp.web.BaseRequest,
                              accept: str) -> aiohttp.web.StreamResponse:
        params: Mapping[str, str] = request.params
        method = raw.method
        namespace = parsed.namespace
        name = parsed.name

        if method == "GET":
            if parsed.subresource == "log":
                assert name is not None
                pod = self.objects.get(rtype, namespace, name)
                uid = pod["metadata"]["uid"]
                return await logs.serve_log(raw, pod, self.log_root, params,
                                            lambda: self.store.get_by_uid(uid) is not None)
            if parsed.watch or _truthy(params.get("watch")):
                return await self._watch(rtype, namespace, name, params, raw, accept)
            if name is None:
                return self._list(rtype, namespace, params, accept)
            obj = objects.present(rtype, self.objects.get(rtype, namespace, name))
            if _wants_table(accept):
                return json_response(tables.table(
                    rtype, [obj], obj["metadata"]["resourceVersion"],
                    params.get("includeObject", "Metadata")))
            return json_response(obj)

        if not self._allows(rtype, method, name, parsed.subresource):
            raise errors.method_not_allowed()
        body = self._body(raw, request)
        dry_run = params.get("dryRun") == "All"
        validation = params.get("fieldValidation", "Warn")
        strict = validation == "Strict"
        warn = validation == "Warn"

        if method == "POST" and name is None:
            obj, warnings = self.objects.create(rtype, namespace, body, dry_run=dry_run, strict_fields=strict)
            return json_response(objects.present(rtype, obj), 201, warnings if warn else None)
        if method == "POST" and parsed.subresource == "binding" and name is not None:
            return self._bind(rtype, namespace, name, body)
        if method == "PUT" and name is not None:
            obj, warnings = self.objects.update(rtype, namespace, name, body, subresource=parsed.subresource,
                                                dry_run=dry_run, strict_fields=strict)
            return json_response(objects.present(rtype, obj), 200, warnings if warn else None)
        if method == "PATCH" and name is not None:
            content_type = raw.headers.get("Content-Type", "")
            obj, warnings, created = self.objects.patch(
                rtype, namespace, name, content_type, body, subresource=parsed.subresource,
                dry_run=dry_run, strict_fields=strict)
            return json_response(objects.present(rtype, obj), 201 if created else 200,
                                 warnings if warn else None)
        if method == "DELETE":
            options = self._delete_options(body, params)
            if name is None:
                return self._delete_collection(rtype, namespace, params, options)
            obj, gone = self.objects.delete(rtype, namespace, name, options)
            return json_response(objects.present(rtype, obj), 200 if gone else 202)
        raise errors.method_not_allowed()

    @staticmethod
    def _allows(rtype: registry.ResourceType, method: str, name: str | None,
                subresource: str | None) -> bool:
        if subresource is not None:
            verbs = registry.SUBRESOURCE_VERBS.get(subresource, [])
        else:
            verbs = rtype.verbs
        verb = {
            ("POST", False): "create", ("PUT", True): "update", ("PATCH", True): "patch",
            ("DELETE", True): "delete", ("DELETE", False): "deletecollection",
            ("POST", True): "create",
        }.get((method, name is not None))
        return verb in verbs

    @staticmethod
    def _body(raw: aiohttp.web.BaseRequest, request: kmock.Request) -> Any:
        if not request.body:
            return None
        content_type = raw.headers.get("Content-Type", JSON).split(";")[0].strip().lower()
        if "protobuf" in content_type:
            raise errors.unsupported_media_type(content_type)
        if content_type in ("application/yaml", "application/apply-patch+yaml"):
            try:
                return yaml.safe_load(request.text)
            except yaml.YAMLError as error:
                raise errors.bad_request(f"the request body is not valid YAML: {error}") from error
        try:
            return json.loads(request.body)
        except ValueError as error:
            raise errors.bad_request(f"the request body is not valid JSON: {error}") from error

    def _list(self, rtype: registry.ResourceType, namespace: str | None, params: Mapping[str, str],
              accept: str) -> aiohttp.web.Response:
        matcher = watching.make_matcher(params, rtype.storage_key, namespace,
                                        frozenset(rtype.selectable_fields))
        items, metadata = watching.list_objects(self.store, rtype.storage_key, namespace, matcher, params)
        rendered = [objects.present(rtype, obj) for obj in items]
        if _wants_table(accept):
            return json_response(tables.table(
                rtype, rendered, metadata["resourceVersion"], params.get("includeObject", "Metadata"),
                {key: value for key, value in metadata.items() if key != "resourceVersion"}))
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                              "metadata": metadata, "items": rendered})

    async def _watch(self, rtype: registry.ResourceType, namespace: str | None, name: str | None,
                     params: Mapping[str, str], raw: aiohttp.web.BaseRequest,
                     accept: str) -> aiohttp.web.StreamResponse:
        params = dict(params)
        if name is not None:
            selector = params.get("fieldSelector", "")
            params["fieldSelector"] = ",".join(filter(None, [selector, f"metadata.name={name}"]))
        matcher = watching.make_matcher(params, rtype.storage_key, namespace,
                                        frozenset(rtype.selectable_fields))
        as_table = _wants_table(accept)
        include_object = params.get("includeObject", "Metadata")

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            rendered = objects.present(rtype, obj)
            if as_table:
                return tables.table(rtype, [rendered], rendered["metadata"]["resourceVersion"],
                                    include_object)
            return rendered

        def bookmark(resource_version: str, annotations: dict[str, str]) -> dict[str, Any]:
            metadata: dict[str, Any] = {"resourceVersion": resource_version}
            if annotations:
                metadata["annotations"] = annotations
            return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": metadata}

        events: AsyncGenerator[bytes, None] = watching.watch_events(self.store, rtype.storage_key, namespace, matcher, params,
                                       render, bookmark, self.bookmark_interval)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        try:
            async for line in events:
                await response.write(line)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client closed the watch
        finally:
            await events.aclose()
        return response

    @staticmethod
    def _delete_options(body: Any, params: Mapping[str, str]) -> dict[str, Any]:
        options: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
        if "gracePeriodSeconds" in params:
            try:
                options["gracePeriodSeconds"] = int(params["gracePeriodSeconds"])
            except ValueError:
                raise errors.bad_request("gracePeriodSeconds must be an integer") from None
        if "propagationPolicy" in params:
            options["propagationPolicy"] = params["propagationPolicy"]
        if "orphanDependents" in params:
            options["orphanDependents"] = _truthy(params["orphanDependents"])
        if params.get("dryRun") == "All":
            options["dryRun"] = ["All"]
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                f'"Foreground", "Background", "Orphan"')
        return options

    def _delete_collection(self, rtype: registry.ResourceType, namespace: str | None,
                           params: Mapping[str, str], options: dict[str, Any]) -> aiohttp.web.Response:
        matcher = watching.make_matcher(params, rtype.storage_key, namespace,
                                        frozenset(rtype.selectable_fields))
        deleted = []
        for obj in self.store.list_objects(rtype.storage_key, namespace):
            if not matcher(obj):
                continue
            metadata = obj["metadata"]
            try:
                result, _ = self.objects.delete(rtype, metadata.get("namespace"), metadata["name"],
                                                copy.deepcopy(options))
            except kmock.KubernetesError as error:
                if error.status != 404:
                    raise
                continue
            deleted.append(objects.present(rtype, result))
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)},
                              "items": deleted})

    def _bind(self, rtype: registry.ResourceType, namespace: str | None, name: str,
              body: Any) -> aiohttp.web.Response:
        """Bind a pod to a node (`pods/binding`), as the scheduler does."""
        if rtype.storage_key != kinds.PODS or not isinstance(body, dict):
            raise errors.method_not_allowed()
        node = (body.get("target") or {}).get("name")
        if not node:
            raise errors.bad_request("a Binding needs target.name, the node to bind to")
        pod = self.objects.get(rtype, namespace, name)
        if (pod.get("spec") or {}).get("nodeName"):
            raise errors.conflict(
                rtype.group_resource, name,
                f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = node
        self.objects.update(rtype, namespace, name, bound)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 201}, 201)
