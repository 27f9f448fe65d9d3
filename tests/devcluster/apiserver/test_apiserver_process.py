"""The server as its own process, its address checks, and KMock fault injection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kmock
import pytest
import requests

from seccomp_devcluster.apiserver import ApiServer

DEVCLUSTER = Path(__file__).resolve().parents[3] / "devcluster"


def test_module_entry_serves_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "state"
    environment = dict(os.environ, PYTHONPATH=str(DEVCLUSTER))
    process = subprocess.Popen(
        [sys.executable, "-m", "seccomp_devcluster.apiserver", "--state-dir", str(state), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 30
        while not (state / "kubeconfig").exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the server wrote no kubeconfig"
            time.sleep(0.05)
        info = json.loads((state / "apiserver.json").read_text())
        namespaces = requests.get(f"{info['url']}/api/v1/namespaces", timeout=10).json()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert info["pid"] == process.pid
    assert "default" in {item["metadata"]["name"] for item in namespaces["items"]}
    assert f"serving on {info['url']}" in output
    assert process.returncode == 0


def test_non_loopback_host_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        ApiServer(tmp_path, host="0.0.0.0")


def test_kubeconfig_points_at_server(apiserver: ApiServer) -> None:
    text = apiserver.kubeconfig_path.read_text()

    assert f"server: {apiserver.url}" in text
    assert apiserver.url.startswith("http://127.0.0.1:")


def test_kmock_reactions_take_precedence(apiserver: ApiServer) -> None:
    apiserver.handler["get /api/v1/namespaces/default/configmaps"] << kmock.KubernetesError(
        status=503, reason="ServiceUnavailable", message="injected", details={})

    injected = requests.get(f"{apiserver.url}/api/v1/namespaces/default/configmaps", timeout=10)
    untouched = requests.get(f"{apiserver.url}/api/v1/namespaces/default/secrets", timeout=10)

    assert injected.status_code == 503
    assert injected.json()["message"] == "injected"
    assert untouched.status_code == 200
    assert any(request.url.path == "/api/v1/namespaces/default/secrets" for request in apiserver.handler)
