"""List-and-watch caches (informers) over the official `kubernetes` client, one thread each.

An `Informer` lists one resource, keeps every object in an in-memory store, and watches
for changes from the list's resourceVersion, calling its handlers on add, update and
delete. It resumes a watch that ended from the last resourceVersion it saw. When the
server responds with 410 Gone (the version left the server's watch history), it lists again
and turns the difference into handler calls. After a failed request it logs the failure
and waits with an exponential backoff, then resumes the watch or, when the server
rejected it, lists again (see `Informer.run`).

The `kubernetes` client (37.x) ships `kubernetes.informer.SharedInformer`, but it cannot
be used here. It reads list results as generated models, so listing a custom resource
(returned as a plain dict) fails with a TypeError on every try. It retries a failing watch with no delay at all, and it
has no "synced" signal, which the installer needs before it removes anything. So this
module is a small one of its own, built on the client's list functions and its
`iter_resp_lines` watch-stream reader.

Objects are the API's JSON (`dict`). NB: handlers and readers get the stored dicts
themselves, so they must not modify them.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from seccomp_recorder.agent.kube import GROUP, PROFILES, RECORDINGS, VERSION, KubeObject

logger = logging.getLogger(__name__)

# Seconds the server keeps one watch request open; the informer then watches again from
# the last resourceVersion. Real API servers end watches after 30 to 60 minutes anyway.
DEFAULT_WATCH_TIMEOUT: Final = 300
# Seconds to wait for a watch stream beyond its server-side timeout before the read
# fails, so a connection that died without a FIN or RST is noticed.
READ_TIMEOUT_MARGIN: Final = 30.0
CONNECT_TIMEOUT: Final = 10.0

ObjectKey = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects
AddHandler = Callable[[KubeObject], None]
UpdateHandler = Callable[[KubeObject, KubeObject], None]
DeleteHandler = Callable[[KubeObject], None]


def object_key(obj: KubeObject) -> ObjectKey:
    """Return the store key of `obj`: (namespace, name)."""
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


def _resource_version(obj: KubeObject) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


@dataclass
class Backoff:
    """Exponential delay between retries: `initial` seconds, times `factor`, up to `maximum`.

    `jitter` spreads each delay by up to that fraction either way, so that the agents of
    all nodes do not reconnect in step after an API server restart.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    failures: int = 0

    def next_delay(self) -> float:
        """Count one more failure and return the seconds to wait before the next try."""
        delay = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return delay * (1 + self.jitter * (2 * random.random() - 1))

    def reset(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class _Handlers:
    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None


class _WatchExpired(Exception):
    """The watched resourceVersion is no longer in the server's history (410)."""


class WatchError(Exception):
    """The server ended a watch with an ERROR event other than 410 Gone."""


class Informer:
    """An in-memory copy of one resource (a list function plus selectors), kept up to date.

    `list_function` is a client list method that takes `watch=True`, such as
    `CoreV1Api.list_pod_for_all_namespaces`, or a `functools.partial` of
    `CustomObjectsApi.list_cluster_custom_object` with group, version and plural. `name`
    is used in log messages ("pods on node-1").

    Handlers run one at a time on the informer's thread, in the order the changes came
    in. An exception in a handler is logged and does not stop the informer. A relist
    after 410 Gone calls `on_update` only for objects whose resourceVersion changed.
    """

    def __init__(
        self,
        name: str,
        list_function: Callable[..., Any],
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = DEFAULT_WATCH_TIMEOUT,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self._list_function = list_function
        self._selectors: dict[str, str] = {}
        if label_selector:
            self._selectors["label_selector"] = label_selector
        if field_selector:
            self._selectors["field_selector"] = field_selector
        self._watch_timeout = watch_timeout
        self._backoff = backoff or Backoff()

        self._store: dict[ObjectKey, KubeObject] = {}
        self._store_lock = threading.Lock()
        # Held while handlers run, so that `add_handlers` replays the store to a new
        # handler without it missing or seeing twice a change made meanwhile.
        self._dispatch_lock = threading.RLock()
        self._handlers: list[_Handlers] = []

        self._resource_version: str | None = None
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None

    # -- reading ---------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether the first list has completed and the store contains the whole resource."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until the first list has completed or `timeout` seconds passed; return synced."""
        return self._synced.wait(timeout)

    def get(self, namespace: str | None, name: str) -> KubeObject | None:
        """Return the stored object, or None; pass namespace None for cluster-scoped ones."""
        with self._store_lock:
            return self._store.get((namespace or "", name))

    def objects(self) -> list[KubeObject]:
        """Return a snapshot of every stored object."""
        with self._store_lock:
            return list(self._store.values())

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen, where the next watch resumes; None means relist."""
        return self._resource_version

    # -- handlers --------------------------------------------------------------------

    def add_handlers(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register handlers; objects already in the store are passed to `on_add` first.

        The replay runs on the calling thread, before this returns. Later changes reach
        the handlers on the informer's thread.
        """
        handlers = _Handlers(on_add, on_update, on_delete)
        with self._dispatch_lock:
            if on_add is not None:
                for obj in self.objects():
                    self._call(on_add, obj)
            self._handlers.append(handlers)

    def _call(self, handler: Callable[..., None], *objects: KubeObject) -> None:
        try:
            handler(*objects)
        except Exception:
            logger.exception(
                "Handler %s of %s failed on [%s]",
                getattr(handler, "__qualname__", handler),
                self.name,
                "/".join(part for part in object_key(objects[-1]) if part),
            )

    def _dispatch_add(self, obj: KubeObject) -> None:
        for handlers in self._handlers:
            if handlers.on_add is not None:
                self._call(handlers.on_add, obj)

    def _dispatch_update(self, old: KubeObject, new: KubeObject) -> None:
        for handlers in self._handlers:
            if handlers.on_update is not None:
                self._call(handlers.on_update, old, new)

    def _dispatch_delete(self, obj: KubeObject) -> None:
        for handlers in self._handlers:
            if handlers.on_delete is not None:
                self._call(handlers.on_delete, obj)

    # -- store changes ---------------------------------------------------------------

    def _upsert(self, obj: KubeObject) -> None:
        key = object_key(obj)
        with self._store_lock:
            old = self._store.get(key)
            self._store[key] = obj
        if old is None:
            self._dispatch_add(obj)
        elif _resource_version(old) != _resource_version(obj):
            self._dispatch_update(old, obj)

    def _delete(self, obj: KubeObject) -> None:
        with self._store_lock:
            old = self._store.pop(object_key(obj), None)
        if old is not None:
            self._dispatch_delete(obj)

    def _replace(self, items: list[KubeObject]) -> None:
        """Make the store equal to a fresh list, with handler calls for each difference."""
        listed = {object_key(item): item for item in items}
        with self._store_lock:
            vanished = [obj for key, obj in self._store.items() if key not in listed]
        for obj in vanished:
            self._delete(obj)
        for item in items:
            self._upsert(item)

    # -- list and watch --------------------------------------------------------------

    def list_once(self) -> None:
        """List the resource, update the store and handlers, and mark the informer synced."""
        response = self._list_function(
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT_MARGIN),
            **self._selectors,
        )
        listing = json.loads(response.data)
        with self._dispatch_lock:
            self._replace(listing.get("items") or [])
        # An empty resourceVersion would make the next watch start "from now" with an
        # ADDED event for every object, which the store absorbs as updates.
        self._resource_version = (listing.get("metadata") or {}).get("resourceVersion") or None
        if not self._synced.is_set():
            logger.info("Listed %s: %d objects", self.name, len(listing.get("items") or []))
        self._synced.set()

    def watch_once(self) -> None:
        """Watch from the last resourceVersion until the server ends the request.

        Raises `_WatchExpired` on 410 Gone, WatchError on another ERROR event, and the client's
        and urllib3's exceptions when the request fails.
        """
        response = self._list_function(
            watch=True,
            resource_version=self._resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, self._watch_timeout + READ_TIMEOUT_MARGIN),
            **self._selectors,
        )
        self._response = response
        if self._backoff.failures:
            logger.info(
                "Watching %s again after %d failed attempts", self.name, self._backoff.failures
            )
            self._backoff.reset()
        try:
            if self._stopping.is_set():
                return
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                self._handle_event(json.loads(line))
                if self._stopping.is_set():
                    return
        finally:
            self._response = None
            # A stream left unread must not go back to the pool: close it, then release.
            response.close()
            response.release_conn()

    def _handle_event(self, event: KubeObject) -> None:
        kind = event.get("type")
        obj: KubeObject = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _WatchExpired(obj.get("message") or "410 Gone")
            raise WatchError(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        with self._dispatch_lock:
            if kind in ("ADDED", "MODIFIED"):
                self._upsert(obj)
            elif kind == "DELETED":
                self._delete(obj)
            elif kind != "BOOKMARK":
                logger.warning("Ignored a watch event of unknown type %r on %s", kind, self.name)
        version = _resource_version(obj)
        if version is not None:
            self._resource_version = version

    def run(self) -> None:
        """List and watch until `stop` is called; the informer's thread runs this.

        After a transport failure (connection refused or reset, timeout) or a 429 the
        watch resumes from the last resourceVersion. After any other response that rejects
        the watch, such as an ERROR event for a resourceVersion the server does not have
        yet, the informer lists again, as client-go's reflector does.
        """
        while not self._stopping.is_set():
            try:
                if self._resource_version is None:
                    self.list_once()
                    self._backoff.reset()
                self.watch_once()
            except _WatchExpired as gone:
                logger.info("Watch of %s expired (%s); listing again", self.name, gone)
                self._resource_version = None
            except ApiException as error:
                if error.status == 410:
                    logger.info("Watch of %s expired (410 Gone); listing again", self.name)
                    self._resource_version = None
                    continue
                self._wait_after_failure(
                    f"{error.status} {error.reason}", relist=error.status != 429
                )
            except WatchError as error:
                self._wait_after_failure(str(error), relist=True)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                self._wait_after_failure(str(error) or type(error).__name__, relist=False)
            except Exception:
                # A bug in this loop must not end the thread quietly, which would leave
                # the store stale for good: log it with its traceback and retry.
                logger.exception("Informer of %s failed unexpectedly", self.name)
                self._wait_after_failure("unexpected error", relist=True)

    def _wait_after_failure(self, reason: str, *, relist: bool) -> None:
        if self._stopping.is_set():
            return
        delay = self._backoff.next_delay()
        operation = "Listing" if self._resource_version is None else "Watching"
        next_step = "listing again" if relist else "retrying"
        logger.warning(
            "%s %s failed (%s); %s in %.1f s", operation, self.name, reason, next_step, delay
        )
        if relist:
            self._resource_version = None
        self._stopping.wait(delay)

    def start(self) -> None:
        """Start listing and watching on a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"the informer of {self.name} was already started")
        self._thread = threading.Thread(target=self.run, name=f"informer {self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the thread: end the open watch request at once and wait up to `timeout` s."""
        self._stopping.set()
        response = self._response
        if response is not None:
            # Shutting the socket down wakes the thread blocked reading the stream.
            shutdown = getattr(response, "shutdown", None)
            if shutdown is not None:
                shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("The informer of %s did not stop within %g s", self.name, timeout)


def pod_informer(core: kubernetes.client.CoreV1Api, node_name: str, **options: Any) -> Informer:
    """Build the informer of the pods bound to `node_name`, in all namespaces."""
    return Informer(
        f"pods on {node_name}",
        core.list_pod_for_all_namespaces,
        field_selector=f"spec.nodeName={node_name}",
        **options,
    )


def custom_informer(
    custom: kubernetes.client.CustomObjectsApi, plural: str, name: str, **options: Any
) -> Informer:
    """Build the informer of one of the project's custom resources, in all namespaces."""
    return Informer(
        name,
        functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, plural),
        **options,
    )


def profile_informer(custom: kubernetes.client.CustomObjectsApi, **options: Any) -> Informer:
    """Build the informer of every SeccompProfile."""
    return custom_informer(custom, PROFILES, "SeccompProfiles", **options)


def recording_informer(custom: kubernetes.client.CustomObjectsApi, **options: Any) -> Informer:
    """Build the informer of every SeccompRecording."""
    return custom_informer(custom, RECORDINGS, "SeccompRecordings", **options)
