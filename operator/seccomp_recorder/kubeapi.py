"""The project's API names and the shared client bundle, used by the operator and the agent.

Objects travel as the API's JSON (`dict`), read with `_preload_content=False`, so no
field is lost to the `kubernetes` client's generated models and custom resources look
the same as built-in ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import kubernetes

from seccomp_recorder.models import meta

KubeObject = dict[str, Any]

GROUP: Final = meta.API_GROUP
API_VERSION: Final = meta.API_VERSION
VERSION: Final = API_VERSION.partition("/")[2]
PROFILES: Final = "seccompprofiles"
RECORDINGS: Final = "seccomprecordings"
RECORDING_RESULTS: Final = "seccomprecordingresults"

MERGE_PATCH: Final = "application/merge-patch+json"
# Seconds a short request (not a watch) may take before it fails.
REQUEST_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class ApiClients:
    """The API clients a process shares: one thread-safe connection pool, one API per group."""

    api_client: kubernetes.client.ApiClient
    core: kubernetes.client.CoreV1Api
    apps: kubernetes.client.AppsV1Api
    custom: kubernetes.client.CustomObjectsApi

    @classmethod
    def from_api_client(cls, api_client: kubernetes.client.ApiClient) -> ApiClients:
        return cls(
            api_client=api_client,
            core=kubernetes.client.CoreV1Api(api_client),
            apps=kubernetes.client.AppsV1Api(api_client),
            custom=kubernetes.client.CustomObjectsApi(api_client),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]


def read_json(response: Any) -> KubeObject:
    """Decode the body of a response read with `_preload_content=False`."""
    decoded: KubeObject = json.loads(response.data)
    return decoded
