"""List-then-watch over the official `kubernetes` client, for the node and the scheduler.

`list_and_watch` does what client-go's reflector does in its simplest form: list,
hand every object to the callback, watch from the list's resourceVersion, and list
again after an ERROR event (410 Gone) or a failed request. Objects stay the API's
JSON (`_preload_content=False`), so no field is lost to the client's models.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

logger = logging.getLogger(__name__)

# Seconds a watch request stays open before it is renewed; bounds the stop latency too.
WATCH_TIMEOUT = 2
# Seconds to wait after a failed list or watch before trying again.
RETRY_DELAY = 1.0

EventHandler = Callable[[str, dict[str, Any]], None]


def list_and_watch(list_function: Callable[..., Any], handle: EventHandler,
                   stopping: threading.Event, *, synced: threading.Event | None = None,
                   **selectors: str) -> None:
    """Call `handle(event_type, object)` for every object and change until `stopping` is set.

    `list_function` is a client list method such as `CoreV1Api.list_pod_for_all_namespaces`;
    `selectors` go to it unchanged (`field_selector=...`, `label_selector=...`). Listed
    objects arrive as "ADDED"; BOOKMARK events only move the resourceVersion on.
    `synced` is set once the objects of the first list have been handled.

    NOTE: a list after a failed watch hands over the objects that exist, but sends no
    DELETED event for those removed while the watch was down, so a caller's cache
    keeps them; with the emulator's 10,000-event history this needs a long outage.
    """
    resource_version: str | None = None
    while not stopping.is_set():
        try:
            if resource_version is None:
                listing = json.loads(list_function(_preload_content=False, **selectors).data)
                for item in listing.get("items", []):
                    handle("ADDED", item)
                resource_version = listing["metadata"].get("resourceVersion")
                if synced is not None:
                    synced.set()
            response: Any = list_function(
                watch=True, resource_version=resource_version, allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT, _preload_content=False,
                _request_timeout=WATCH_TIMEOUT + 5, **selectors)
            try:
                for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                    event = json.loads(line)
                    item = event["object"]
                    if event["type"] == "ERROR":
                        logger.info("Watch ended with %s; listing again",
                                    item.get("message", item))
                        resource_version = None
                        break
                    version = (item.get("metadata") or {}).get("resourceVersion")
                    if version:
                        resource_version = version
                    if event["type"] != "BOOKMARK":
                        handle(event["type"], item)
                    if stopping.is_set():
                        break
            finally:
                response.release_conn()
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            if stopping.is_set():
                break
            logger.warning("Listing or watching failed: %s; retrying in %g s", error,
                           RETRY_DELAY)
            resource_version = None
            stopping.wait(RETRY_DELAY)
