"""In-cluster API access: a TLS relay from every pod's network namespace to the API server.

In a real cluster a pod reaches the API server at the `kubernetes` Service's address
(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT) over HTTPS, and verifies it with
the service account's `ca.crt`. The dev cluster's API server serves plain HTTP on the
host's loopback, and a pod's network namespace has only its own `lo`. So the node runs
a relay that terminates TLS with the cluster's serving certificate
(`seccomp_devcluster.pki`) and forwards the bytes to the API server:

- one listening socket in the host's namespace, on `SERVICE_HOST` and a free port,
  for hostNetwork pods; that port becomes the node's KUBERNETES_SERVICE_PORT;
- one listening socket per pod network namespace on the same address and port,
  created from a thread that entered the namespace (a socket stays in the
  namespace it was made in), opened before the pod's containers start and closed,
  with every connection through it, when the pod stops.

All sockets are served by one asyncio event loop in one thread, which stays in the
host's namespace, so its connections to the API server leave from the host side.
The relay never looks at the bytes: authentication is the API server's business,
and the emulator accepts any token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from seccomp_devcluster.node.netns import call_in_network_namespace
from seccomp_devcluster.pki import SERVICE_HOST

logger = logging.getLogger(__name__)

# Bytes read from one side before they are written to the other.
CHUNK_SIZE = 65536
# Seconds to wait for the event loop to start, or to finish a step run on it.
LOOP_TIMEOUT = 10.0
# Seconds a finished connection gets for its orderly TLS shutdown.
CLOSE_TIMEOUT = 5.0
HOST_KEY = "host"


class ApiRelay:
    """Relays TLS connections from pods to the API server at `upstream`; see the module."""

    def __init__(self, upstream_host: str, upstream_port: int, cert_file: Path,
                 key_file: Path) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = SERVICE_HOST
        self.port = 0
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(cert_file, key_file)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="api-relay", daemon=True)
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: dict[str, set[asyncio.Task[None]]] = {}

    # -- life cycle (called from the node's threads) -----------------------------------

    def start(self) -> None:
        """Start the event loop and listen in the host's namespace on a free port."""
        self._thread.start()
        listener = _listening_socket(self.host, 0)
        self.port = listener.getsockname()[1]
        self._call(self._serve(HOST_KEY, listener))
        logger.info("API relay listening on %s:%d, forwarding to %s:%d", self.host, self.port,
                    self.upstream_host, self.upstream_port)

    def stop(self) -> None:
        """Close every listener and connection, stop the loop and join its thread."""
        if not self._thread.is_alive():
            return
        for key in list(self._servers):
            self.close_for(key)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(LOOP_TIMEOUT)
        self._loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def open_for(self, key: str, network_namespace: Path) -> None:
        """Listen on the relay's address inside the pod's network namespace."""
        listener = call_in_network_namespace(
            network_namespace, lambda: _listening_socket(self.host, self.port))
        self._call(self._serve(key, listener))
        logger.debug("[%s] API relay listening in %s", key, network_namespace)

    def close_for(self, key: str) -> None:
        """Stop listening for the pod and cut its open connections; unknown keys are ignored."""
        if self._thread.is_alive():
            self._call(self._close(key))

    def listener_keys(self) -> list[str]:
        """Return the keys of the open listeners ("host" and pod keys), for tests."""
        return sorted(self._servers)

    # -- inside the event loop ---------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        # Let cancelled connection tasks run their clean-up before the loop closes.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.result(LOOP_TIMEOUT)

    async def _serve(self, key: str, listener: socket.socket) -> None:
        await self._close(key)
        connections: set[asyncio.Task[None]] = set()
        self._connections[key] = connections

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._connections.get(key) is not connections:
                # The TLS handshake ended after the pod stopped: the pod is gone.
                writer.close()
                return
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._relay(key, reader, writer)
            finally:
                connections.discard(task)

        self._servers[key] = await asyncio.start_server(handle, sock=listener, ssl=self._ssl)

    async def _close(self, key: str) -> None:
        server = self._servers.pop(key, None)
        if server is not None:
            server.close()
        tasks = self._connections.pop(key, set())
        for task in tasks:
            task.cancel()
        # NB: Server.wait_closed in Python 3.11 does not wait for connection handlers,
        # so the cancelled handlers are awaited here, and they close their sockets.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, key: str, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        writers = [client_writer]
        pumps: list[asyncio.Future[None]] = []
        cut = False
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port)
            except OSError as error:
                logger.warning("[%s] API relay could not reach the API server at %s:%d: %s",
                               key, self.upstream_host, self.upstream_port, error)
                return
            writers.append(upstream_writer)
            # The client's end of stream is passed on as a half-close, and the API server
            # may still send its response. The API server's end of stream, or an error on
            # either side, closes both, because TLS has no half-close to pass on.
            upward = asyncio.ensure_future(_pump(client_reader, upstream_writer))
            downward = asyncio.ensure_future(_pump(upstream_reader, client_writer))
            pumps = [upward, downward]
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if downward not in done and upward.exception() is None:
                await downward
        except (OSError, ssl.SSLError) as error:
            logger.debug("[%s] API relay connection ended: %s", key, error)
        except asyncio.CancelledError:
            # The pod stopped (`close_for`). Ending normally lets `_close` gather it.
            logger.debug("[%s] API relay connection cut", key)
            cut = True
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in writers:
                if cut:
                    # No TLS close_notify exchange, because the peer may never reply to it.
                    writer.transport.abort()
                    continue
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until end of stream, then half-close the other side."""
    while data := await reader.read(CHUNK_SIZE):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


def _listening_socket(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener
