"""The node's TLS relay from pod network namespaces to a plain HTTP API server."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_devcluster import pki
from seccomp_devcluster.node import netns
from seccomp_devcluster.node.relay import ApiRelay

pytestmark = pytest.mark.kernel


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Path]:
    require(os.geteuid() == 0, "needs root to create network namespaces")
    require(shutil.which("unshare") is not None, "needs util-linux unshare")
    path = tmp_path / "netns"
    netns.create_network_namespace(path)
    try:
        yield path
    finally:
        netns.delete_network_namespace(path)


@pytest.fixture
def relay(tmp_path: Path, upstream: int) -> Iterator[tuple[ApiRelay, pki.ClusterPki]]:
    paths = pki.create_cluster_pki(tmp_path / "pki")
    running = ApiRelay("127.0.0.1", upstream, paths.serving_cert, paths.serving_key)
    running.start()
    try:
        yield running, paths
    finally:
        running.stop()
    assert not running.running


def get_in(namespace: Path | None, port: int, path: str, cafile: Path) -> str:
    """Send GET over TLS from inside `namespace` (None: this one) and return the body."""
    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=10)

    raw = connect() if namespace is None else netns.call_in_network_namespace(namespace,
                                                                               connect)
    context = ssl.create_default_context(cafile=str(cafile))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
        connection.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        response = b""
        while chunk := connection.recv(4096):
            response += chunk
    return response.split(b"\r\n\r\n", 1)[1].decode()


def test_relay_serves_pod_namespace(relay: tuple[ApiRelay, pki.ClusterPki],
                                    namespace: Path) -> None:
    running, paths = relay
    running.open_for("ns/pod", namespace)

    body = get_in(namespace, running.port, "/api/v1/pods", paths.ca_cert)

    assert body == "/api/v1/pods"
    assert running.listener_keys() == ["host", "ns/pod"]


def test_relay_serves_host_namespace(relay: tuple[ApiRelay, pki.ClusterPki]) -> None:
    running, paths = relay

    assert get_in(None, running.port, "/version", paths.ca_cert) == "/version"


def test_relay_rejects_other_ca(relay: tuple[ApiRelay, pki.ClusterPki],
                                tmp_path: Path) -> None:
    running, _ = relay
    other = pki.create_cluster_pki(tmp_path / "other")

    with pytest.raises(ssl.SSLCertVerificationError):
        get_in(None, running.port, "/", other.ca_cert)


def test_relay_close_cuts_connections(relay: tuple[ApiRelay, pki.ClusterPki],
                                      namespace: Path) -> None:
    running, paths = relay
    running.open_for("ns/pod", namespace)
    raw = netns.call_in_network_namespace(
        namespace, lambda: socket.create_connection(("127.0.0.1", running.port), timeout=10))
    context = ssl.create_default_context(cafile=str(paths.ca_cert))
    connection = context.wrap_socket(raw, server_hostname="127.0.0.1")

    running.close_for("ns/pod")

    try:
        assert connection.recv(1) == b""
    finally:
        connection.close()
    assert running.listener_keys() == ["host"]
    with pytest.raises(ConnectionRefusedError):
        netns.call_in_network_namespace(
            namespace, lambda: socket.create_connection(("127.0.0.1", running.port), timeout=10))
