"""kubectl 1.32 against the emulator, through the project's wrapper script."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
import yaml
from apiserver_helpers import WIDGET_CRD, Http, run_kubectl

from seccomp_devcluster.apiserver import ApiServer

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  labels: {team: red}
spec:
  size: 3
"""


def apply_crd(server: ApiServer) -> None:
    run_kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump(WIDGET_CRD))
    run_kubectl(server, "wait", "--for", "condition=Established",
                "crd/widgets.example.com", "--timeout=10s")


def test_apply_crd_and_wait_established(apiserver: ApiServer) -> None:
    applied = run_kubectl(apiserver, "apply", "-f", "-", stdin=yaml.safe_dump(WIDGET_CRD))
    waited = run_kubectl(apiserver, "wait", "--for", "condition=Established",
                         "crd/widgets.example.com", "--timeout=10s")

    assert "created" in applied.stdout
    assert "condition met" in waited.stdout


def test_apply_twice_is_unchanged(apiserver: ApiServer) -> None:
    apply_crd(apiserver)

    first = run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)
    second = run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)
    changed = run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET.replace("size: 3", "size: 4"))

    assert first.stdout.strip() == "widget.example.com/w1 created"
    assert second.stdout.strip() == "widget.example.com/w1 unchanged"
    assert changed.stdout.strip() == "widget.example.com/w1 configured"


def test_get_shows_printer_columns(apiserver: ApiServer) -> None:
    apply_crd(apiserver)
    run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)

    plain = run_kubectl(apiserver, "get", "widgets").stdout.splitlines()
    wide = run_kubectl(apiserver, "get", "wd", "-o", "wide").stdout.splitlines()

    assert plain[0].split() == ["NAME", "SIZE", "PHASE", "AGE"]
    assert plain[1].split()[:2] == ["w1", "3"]
    assert wide[0].split() == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    assert wide[1].split()[:3] == ["w1", "3", "red"]


def test_get_output_yaml(apiserver: ApiServer) -> None:
    apply_crd(apiserver)
    run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)

    widget = yaml.safe_load(run_kubectl(apiserver, "get", "widget", "w1", "-o", "yaml").stdout)

    assert widget["spec"] == {"size": 3, "limit": 10, "color": "red"}
    assert widget["metadata"]["uid"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in widget["metadata"]["annotations"]


def test_label_selectors(apiserver: ApiServer) -> None:
    apply_crd(apiserver)
    run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)
    run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET.replace("w1", "w2").replace("red", "blue"))

    red = run_kubectl(apiserver, "get", "widgets", "-l", "team=red", "-o", "name").stdout.split()
    not_red = run_kubectl(apiserver, "get", "widgets", "-l", "team!=red", "-o", "name").stdout.split()

    assert red == ["widget.example.com/w1"]
    assert not_red == ["widget.example.com/w2"]


def test_delete_waits_for_finalizers(apiserver: ApiServer) -> None:
    apply_crd(apiserver)
    run_kubectl(apiserver, "apply", "-f", "-", stdin=WIDGET)
    run_kubectl(apiserver, "patch", "widget", "w1", "--type=merge",
                "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    environment_command = [str(run_kubectl.__globals__["KUBECTL_WRAPPER"]), "delete", "widget", "w1",
                           "--timeout=30s"]
    deleting = subprocess.Popen(environment_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={"KUBECONFIG": str(apiserver.kubeconfig_path),
                                                "PATH": "/usr/bin:/bin"})
    try:
        http = Http(apiserver.url)
        path = "/apis/example.com/v1/namespaces/default/widgets/w1"
        deadline = time.monotonic() + 20
        while not http.get(path).json()["metadata"].get("deletionTimestamp"):
            assert time.monotonic() < deadline, "kubectl delete did not reach the server"
            time.sleep(0.05)
        assert deleting.poll() is None
        http.patch(path, {"metadata": {"finalizers": None}})
        output, errors = deleting.communicate(timeout=30)
    finally:
        if deleting.poll() is None:
            deleting.kill()
            deleting.communicate()

    assert deleting.returncode == 0, errors
    assert 'widget.example.com "w1" deleted' in output


def test_get_events(apiserver: ApiServer) -> None:
    http = Http(apiserver.url)
    http.post("/api/v1/namespaces/default/events", {
        "metadata": {"name": "e1"}, "type": "Warning", "reason": "ProfileInvalid",
        "message": "unknown syscall", "involvedObject": {"kind": "Widget", "name": "w1",
                                                        "namespace": "default"},
        "lastTimestamp": "2026-01-01T00:00:00Z", "source": {"component": "seccomp-recorder"},
    })

    output = run_kubectl(apiserver, "get", "events").stdout.splitlines()

    assert output[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "ProfileInvalid" in output[1]
    assert "widget/w1" in output[1]


def test_logs(apiserver: ApiServer) -> None:
    http = Http(apiserver.url)
    pod = http.post("/api/v1/namespaces/default/pods", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "main", "image": "x:1"}]}}).json()
    assert apiserver.log_root is not None
    folder = apiserver.log_root / f"default_p_{pod['metadata']['uid']}"
    folder.mkdir(parents=True)
    (folder / "main.log").write_text("one\ntwo\n")

    logs = run_kubectl(apiserver, "logs", "p")
    tail = run_kubectl(apiserver, "logs", "p", "-c", "main", "--tail=1")

    assert logs.stdout == "one\ntwo\n"
    assert tail.stdout == "two\n"


def test_pods_table(apiserver: ApiServer) -> None:
    http = Http(apiserver.url)
    http.post("/api/v1/namespaces/default/pods", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"},
                                                          {"name": "b", "image": "x:1"}]}})
    http.patch("/api/v1/namespaces/default/pods/p/status", {"status": {
        "phase": "Running", "containerStatuses": [{"name": "a", "ready": True, "restartCount": 2},
                                                  {"name": "b", "ready": False, "restartCount": 1}]}})

    output = run_kubectl(apiserver, "get", "pods").stdout.splitlines()

    assert output[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert output[1].split()[:4] == ["p", "1/2", "Running", "3"]


def test_api_resources_lists_custom_resource(apiserver: ApiServer) -> None:
    apply_crd(apiserver)

    output = run_kubectl(apiserver, "api-resources", "--api-group=example.com", "-o", "wide").stdout

    assert "widgets" in output
    assert "wd" in output
    assert json.loads(run_kubectl(apiserver, "get", "--raw", "/version").stdout)["minor"] == "32"
