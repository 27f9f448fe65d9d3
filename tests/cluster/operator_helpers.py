"""Run the operator against the dev cluster's API server, and play the node agents' part.

The tests start `python -m seccomp_recorder.operator` as a subprocess with the settings a
test needs, create SeccompRecordingResults and patch `status.nodeStatuses` by hand as node
agents would, and read what the operator wrote. Every test works in its own namespace,
which `TestNamespace.delete` empties (finalizers and all) and deletes. The operator logs
to a file, which a failing wait prints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
from agent_helpers import GROUP, PATIENCE, VERSION
from kubernetes.client.exceptions import ApiException

from kube_reads import read_or_none
from polling import poll
from seccomp_devcluster.cluster import DevCluster

RECORDINGS = "seccomprecordings"
RESULTS = "seccomprecordingresults"
PROFILES = "seccompprofiles"
API_VERSION = f"{GROUP}/{VERSION}"
AGENT_IMAGE = "registry.example.com/seccomp-recorder:test"
MERGE_PATCH = "application/merge-patch+json"
FINALIZER = "seccomp-recorder.io/finalizer"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class OperatorProcess:
    """One operator process with its own settings; `start` waits until it handles objects.

    A start that fails or times out stops the process before it raises.
    """

    def __init__(self, kubeconfig: Path, log_path: Path, settings: dict[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        environment = {
            key: value for key, value in os.environ.items()
            if not key.startswith("SECCOMP_RECORDER_") and key != "KUBERNETES_SERVICE_HOST"
        }
        environment["KUBECONFIG"] = str(self.kubeconfig)
        environment.update({f"SECCOMP_RECORDER_{key}": value for key, value in self.settings.items()})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seccomp_recorder.operator"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        # kopf logs in after the startup activities and starts its watches right after. An
        # object created from then on is seen at the latest by the watches' first list.
        try:
            self.wait_for_log("Initial authentication has finished", offset)
        except BaseException:
            # A caller whose start raised does not stop the process, so it is stopped here,
            # or it would outlive the test.
            self.stop()
            raise

    def wait_for_log(self, text: str, offset: int = 0) -> None:
        deadline = time.monotonic() + PATIENCE
        while text not in self.log(offset):
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the operator exited with {self.process.returncode}:\n{self.log(offset)}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the operator never logged {text!r}:\n{self.log(offset)}")
            time.sleep(0.05)

    def log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self) -> int:
        """Send SIGTERM, wait for the exit, and return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


class Kube:
    """Plain-JSON requests to the dev cluster, as a test, a user or an agent makes them."""

    def __init__(self, cluster: DevCluster) -> None:
        client = cluster.api_client()
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body["metadata"]["namespace"]
        response: Any = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, _preload_content=False
        )
        created: dict[str, Any] = json.loads(response.data)
        return created

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return read_or_none(lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, _preload_content=False
        ))

    def list(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        response: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(response.data).get("items", [])
        return items

    def patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, patch,
            _content_type=MERGE_PATCH, _preload_content=False,
        )

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status},
            _content_type=MERGE_PATCH, _preload_content=False,
        )

    def delete(self, plural: str, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _preload_content=False
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """Return the Events about the object `kind` `namespace/name`."""
        response: Any = self.core.list_namespaced_event(namespace, _preload_content=False)
        return [
            item
            for item in json.loads(response.data).get("items", [])
            if item.get("involvedObject", {}).get("kind") == kind
            and item["involvedObject"].get("name") == name
        ]

    def reasons(self, namespace: str, kind: str, name: str) -> list[str]:
        return [event["reason"] for event in self.events(namespace, kind, name)]


class TestNamespace:
    """A namespace of one test; `delete` removes it with everything in it."""

    __test__ = False  # Not a test class, although its name starts with Test.

    def __init__(self, kube: Kube, prefix: str = "op") -> None:
        self.kube = kube
        self.name = unique(prefix)
        body: Any = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.name}}
        kube.core.create_namespace(body, _preload_content=False)

    def delete(self) -> None:
        """Delete this project's objects, strip their finalizers, then delete the namespace.

        The objects are deleted before their finalizers go, because a running operator
        puts its finalizer back on an object that is not being deleted.
        """
        for plural in (RECORDINGS, PROFILES, RESULTS):
            for item in self.kube.list(plural, self.name):
                name = item["metadata"]["name"]
                self.kube.delete(plural, self.name, name)
                try:
                    self.kube.patch(plural, self.name, name, {"metadata": {"finalizers": None}})
                except ApiException as error:
                    if error.status != 404:
                        raise
        self.kube.core.delete_namespace(self.name, _preload_content=False)

        def gone() -> bool:
            try:
                self.kube.core.read_namespace(self.name, _preload_content=False)
            except ApiException as error:
                return error.status == 404
            return False

        wait_for(f"namespace {self.name} to be deleted", gone)


def wait_for(
    description: str,
    condition: Callable[[], Any],
    patience: float = PATIENCE,
    operator: OperatorProcess | None = None,
) -> Any:
    """Poll `condition` until it returns a true value, and return that value.

    On timeout the assertion names `description` and shows the operator's log, if given.
    """
    details = None if operator is None else lambda: f"operator log:\n{operator.log()}"
    return poll(description, condition, patience, details=details)


def recording_body(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "SeccompRecording",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": {"app": name}}, **spec},
    }


def result_body(
    recording: dict[str, Any],
    pod: str,
    container: str,
    syscalls: dict[str, list[str]],
    *,
    final: bool = False,
    sequence: int = 1,
    unknown: dict[str, list[int]] | None = None,
    node: str = "node-0",
) -> dict[str, Any]:
    """Build a SeccompRecordingResult for a container, as a node agent writes it."""
    metadata = recording["metadata"]
    pod_uid = f"uid-{pod}"
    return {
        "apiVersion": API_VERSION,
        "kind": "SeccompRecordingResult",
        "metadata": {
            "name": f"{metadata['name']}-{pod_uid}-{container}",
            "namespace": metadata["namespace"],
            "labels": {
                "seccomp-recorder.io/recording": metadata["name"],
                "seccomp-recorder.io/container": container,
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "SeccompRecording",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "recording": metadata["name"],
            "pod": pod,
            "podUID": pod_uid,
            "container": container,
            "containerID": f"runc://{uuid.uuid4().hex}",
            "node": node,
            "final": final,
            "sequence": sequence,
            "syscalls": syscalls,
            "unknownSyscalls": unknown or {},
            "runtime": "runc",
        },
    }


def allowed_names(profile: dict[str, Any] | None) -> set[str]:
    """Return the names that the profile's allow rules list, empty for no profile."""
    if profile is None:
        return set()
    return {
        name
        for rule in profile["spec"].get("syscalls", [])
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }


def condition(obj: dict[str, Any] | None, condition_type: str) -> dict[str, Any]:
    """Return the status condition of `condition_type`, or an empty dict."""
    if obj is None:
        return {}
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == condition_type:
            found: dict[str, Any] = item
            return found
    return {}


class FakeNodes:
    """Node objects with no node behind them, Ready or not, for the profile statuses.

    They carry a label that only this run's operator selects, so the dev cluster's real
    nodes are never targeted.
    """

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.label = unique("nodes")
        self.names: list[str] = []

    @property
    def selector(self) -> str:
        return json.dumps({"seccomp-recorder.io/test-nodes": self.label})

    def add(self, name: str, *, ready: bool = True) -> str:
        name = f"{self.label}-{name}"
        body: Any = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"seccomp-recorder.io/test-nodes": self.label}},
        }
        self.kube.core.create_node(body, _preload_content=False)
        self.names.append(name)
        self.set_ready(name, ready)
        return name

    def set_ready(self, name: str, ready: bool) -> None:
        status: Any = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}
                ]
            }
        }
        self.kube.core.patch_node_status(
            name, status, _content_type=MERGE_PATCH, _preload_content=False
        )

    def remove(self, name: str) -> None:
        try:
            self.kube.core.delete_node(name, _preload_content=False)
        except ApiException as error:
            if error.status != 404:
                raise
        if name in self.names:
            self.names.remove(name)

    def remove_all(self) -> None:
        for name in list(self.names):
            self.remove(name)
