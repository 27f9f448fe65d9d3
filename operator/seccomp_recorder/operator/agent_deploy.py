"""Creating or updating the node agent's DaemonSet from the operator's settings.

Called once by the startup handler: the DaemonSet is created when missing and replaced
when a field the operator sets differs (see `daemonset.needs_update`). The replace
keeps labels and annotations that others added, and uses the live resourceVersion as
a precondition, so a concurrent edit makes it read again instead of overwriting.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import Any

from kubernetes.client.exceptions import ApiException

from seccomp_recorder.operator.daemonset import NAME, build_agent_daemonset, needs_update
from seccomp_recorder.operator.kube import (
    CONFLICT_ATTEMPTS,
    HTTP_CONFLICT,
    HTTP_NOT_FOUND,
    REQUEST_TIMEOUT,
    ApiClients,
    ConflictError,
    KubeObject,
    is_status,
    read_json,
)
from seccomp_recorder.operator.settings import OperatorSettings


class DeployOutcome(StrEnum):
    """Outcome of `ensure_agent_daemonset`."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def ensure_agent_daemonset(
    api: ApiClients, settings: OperatorSettings
) -> tuple[DeployOutcome, KubeObject]:
    """Create or update the agent DaemonSet; return what was done and the DaemonSet.

    With `settings.operator_deployment`, that Deployment owns the DaemonSet. Raises
    ApiException when the API server rejects a request (such as 403 without the RBAC
    rules, or 404 when the operator's namespace or Deployment does not exist), and
    ConflictError when the DaemonSet keeps changing under the operator.
    """
    namespace = settings.namespace
    owner = None
    if settings.operator_deployment is not None:
        owner = read_json(
            api.apps.read_namespaced_deployment(
                settings.operator_deployment, namespace,
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT,
            )
        )
    # The client converts a dict body itself; its signature wants the generated model.
    desired: Any = build_agent_daemonset(settings, owner)
    for _ in range(CONFLICT_ATTEMPTS):
        try:
            live = read_json(
                api.apps.read_namespaced_daemon_set(
                    NAME, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as error:
            if not is_status(error, HTTP_NOT_FOUND):
                raise
            try:
                created = api.apps.create_namespaced_daemon_set(
                    namespace, desired, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            except ApiException as create_error:
                if is_status(create_error, HTTP_CONFLICT):
                    continue  # Created by someone else in between: read it and compare.
                raise
            return DeployOutcome.CREATED, read_json(created)

        if not needs_update(live, desired):
            return DeployOutcome.UNCHANGED, live
        body: Any = copy.deepcopy(desired)
        live_metadata = live.get("metadata") or {}
        body["metadata"]["labels"] = {
            **(live_metadata.get("labels") or {}),
            **body["metadata"].get("labels", {}),
        }
        body["metadata"]["annotations"] = {
            **(live_metadata.get("annotations") or {}),
            **body["metadata"].get("annotations", {}),
        }
        body["metadata"]["resourceVersion"] = live_metadata.get("resourceVersion")
        try:
            replaced = api.apps.replace_namespaced_daemon_set(
                NAME, namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as error:
            if is_status(error, HTTP_CONFLICT):
                continue
            raise
        return DeployOutcome.UPDATED, read_json(replaced)
    raise ConflictError(f"daemonset {namespace}/{NAME}")
