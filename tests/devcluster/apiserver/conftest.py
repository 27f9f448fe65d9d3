"""Fixtures that start the API server emulator and talk to it.

Each test gets its own server on a free loopback port, run in a thread, and stopped
even when the test fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from apiserver_helpers import WIDGET_CRD, Http

from seccomp_devcluster.apiserver import ApiServer


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(tmp_path / "state", log_root=tmp_path / "logs",
                       bookmark_interval=0.2, history_size=1000)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop_in_thread()


@pytest.fixture
def http(apiserver: ApiServer) -> Http:
    return Http(apiserver.url)


@pytest.fixture
def kube(apiserver: ApiServer) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(apiserver.kubeconfig_path))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def widgets(http: Http) -> str:
    """Register the Widget CRD; return the collection path in the default namespace."""
    response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    assert response.status_code == 201, response.text
    return "/apis/example.com/v1/namespaces/default/widgets"
