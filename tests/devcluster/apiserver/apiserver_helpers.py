"""Helpers shared by the API server emulator tests: a CRD, plain HTTP, kubectl."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from seccomp_devcluster.apiserver import ApiServer

REPO = Path(__file__).resolve().parents[3]
KUBECTL_WRAPPER = REPO / "devcluster" / "kubectl"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "shortNames": ["wd"], "categories": ["all", "gadgets"]},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "x-kubernetes-validations": [
                            {"rule": "self.size <= self.limit", "message": "size must not exceed limit"},
                            {"rule": "self.size >= oldSelf.size", "message": "size may not shrink"},
                        ],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "limit": {"type": "integer", "default": 10},
                            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                            "name": {"type": "string", "pattern": "^[a-z]+$",
                                     "minLength": 2, "maxLength": 8},
                            "tags": {"type": "array", "minItems": 1, "maxItems": 2,
                                     "items": {"type": "string"}},
                            "port": {"x-kubernetes-int-or-string": True},
                            "extra": {"type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True},
                        },
                    },
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}


class Http:
    """Plain HTTP calls to the server, for behaviour no client library exposes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, patch_type: str = "merge", **kwargs: Any) -> requests.Response:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        return self.request("PATCH", path, json=body, headers={"Content-Type": content_type}, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, json=body, **kwargs)


def run_kubectl(server: ApiServer, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run kubectl through the project's wrapper against `server`."""
    environment = dict(os.environ, KUBECONFIG=str(server.kubeconfig_path))
    result = subprocess.run([str(KUBECTL_WRAPPER), *args], input=stdin, capture_output=True, check=False,
                            text=True, env=environment, timeout=60)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
    return result


def read_events(response: requests.Response, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Read watch events until `stop` returns true for one (or the stream ends)."""
    events: list[dict[str, Any]] = []
    for line in response.iter_lines():
        if not line:
            continue
        event = json.loads(line)
        events.append(event)
        if stop(event):
            break
    response.close()
    return events
