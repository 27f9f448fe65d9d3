"""Start and stop the API server on a loopback port and write its kubeconfig.

Two ways to run it (both keep the same interface, see devcluster/CONTRACT.md):

- in a running event loop: `await server.start()` ... `await server.stop()`, or
  `async with ApiServer(...) as server:`;
- from synchronous code: `server.start_in_thread()` ... `server.stop_in_thread()`, or
  `with ApiServer(...) as server:`, which run the server on its own event loop in a
  daemon thread.

The server speaks plain HTTP with no authentication: kubectl 1.32, kopf and the
`kubernetes` client all accept an `http://` server in a kubeconfig.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import os
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import yaml

from seccomp_devcluster.apiserver import api, handler
from seccomp_devcluster.apiserver.store import DEFAULT_HISTORY_SIZE

logger = logging.getLogger(__name__)

KUBECONFIG_NAME = "kubeconfig"
INFO_NAME = "apiserver.json"
CONTEXT_NAME = "devcluster"
# How long stop() waits for open requests (watches, followed logs) before closing them.
SHUTDOWN_TIMEOUT_SECONDS = 1.0


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def kubeconfig_text(url: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT_NAME, "user": {}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": "default"}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


class ApiServer:
    """A Kubernetes API server emulator listening on a loopback address.

    `state_dir` receives the kubeconfig and `apiserver.json`; objects live in memory.
    `log_root` is where the node stand-in writes container logs for `pods/log`.
    `bookmark_interval` (seconds) spaces BOOKMARK events in watches that allow them;
    `history_size` is how many watch events are kept for watches that resume.
    """

    def __init__(
        self,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        log_root: Path | None = None,
        *,
        bookmark_interval: float = 60.0,
        history_size: int = DEFAULT_HISTORY_SIZE,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host {host!r} is not a loopback address; the dev cluster listens "
                             f"on loopback only (e.g. 127.0.0.1)")
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.log_root = Path(log_root) if log_root is not None else None
        self.bookmark_interval = bookmark_interval
        self.history_size = history_size
        self._api: api.Api | None = None
        self._handler: handler.ApiHandler | None = None
        self._runner: aiohttp.web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the API server is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / KUBECONFIG_NAME

    @property
    def api(self) -> api.Api:
        """The emulated API's state (store, registry), for assertions in tests."""
        if self._api is None:
            raise RuntimeError("the API server is not started; call start() first")
        return self._api

    @property
    def handler(self) -> handler.ApiHandler:
        """The KMock handler: tests can add reactions to it with KMock's DSL."""
        if self._handler is None:
            raise RuntimeError("the API server is not started; call start() first")
        return self._handler

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the API server is already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        self.port = listener.getsockname()[1]

        self._api = api.Api(self.log_root, self.bookmark_interval, self.history_size)
        self._api.server_address = f"{self.host}:{self.port}"
        self._handler = handler.ApiHandler(emulator=self._api)
        await self._handler.__aenter__()
        web_server = aiohttp.web.Server(self._handler, handler_cancellation=True, access_log=None)
        self._runner = aiohttp.web.ServerRunner(web_server, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
        await self._runner.setup()
        await aiohttp.web.SockSite(self._runner, listener).start()
        assert self._api.collector is not None
        self._api.collector.start()

        info = {"url": self.url, "pid": os.getpid()}
        _write_atomically(self.state_dir / INFO_NAME, json.dumps(info) + "\n")
        _write_atomically(self.kubeconfig_path, kubeconfig_text(self.url))
        logger.info("API server serving on %s (kubeconfig %s)", self.url, self.kubeconfig_path)

    async def stop(self) -> None:
        if self._runner is None:
            return
        if self._api is not None and self._api.collector is not None:
            await self._api.collector.stop()
        await self._runner.cleanup()
        if self._handler is not None:
            await self._handler.__aexit__(None, None, None)
        self._runner = None
        logger.info("API server on %s:%s stopped", self.host, self.port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()

    # Running in a thread, for synchronous callers

    def start_in_thread(self, timeout: float = 30.0) -> None:
        """Start the server on its own event loop in a daemon thread; return once it listens."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as error:  # noqa: BLE001 - handed to the caller, who re-raises it
                started.set_exception(error)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="devcluster-apiserver", daemon=True)
        self._thread.start()
        started.result(timeout=timeout)

    def stop_in_thread(self, timeout: float = 30.0) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the API server thread did not stop within {timeout} s")
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop_in_thread()

    def run_coroutine(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's thread loop (thread mode only) and return its result."""
        if self._loop is None:
            raise RuntimeError("the API server is not running in a thread")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)
