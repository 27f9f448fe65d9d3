"""List and watch requests.

A watch sends the events after its `resourceVersion` from the store's history, then
live ones. Without a resourceVersion (or with "0"), or with `sendInitialEvents=true`,
it first sends an ADDED event for every existing object. A resourceVersion older than
the history gives a 410 Expired ERROR event in the stream, as on the real server. An
object that stops matching the selectors is sent as DELETED, and one that starts
matching as ADDED. BOOKMARK events are sent every `bookmark_interval` seconds when
`allowWatchBookmarks=true`, and the stream ends after `timeoutSeconds`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import kmock

from seccomp_devcluster.apiserver import errors, selectors
from seccomp_devcluster.apiserver.store import Store, WatchEvent

# The real API server ends a watch after 30 to 60 minutes unless the client asks less.
DEFAULT_WATCH_TIMEOUT_SECONDS = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def parse_resource_version(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": must be an integer') from None
    if number < 0:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": must be non-negative')
    return number


def make_matcher(params: Mapping[str, str], storage_key: tuple[str, str], namespace: str | None,
                 extra_fields: frozenset[str] = frozenset()) -> selectors.Matcher:
    labels = selectors.parse_label_selector(params.get("labelSelector", ""))
    fields = selectors.parse_field_selector(params.get("fieldSelector", ""), storage_key, extra_fields)
    selected = selectors.make_matcher(labels, fields)

    def matches(obj: Mapping[str, Any]) -> bool:
        if namespace is not None and (obj.get("metadata") or {}).get("namespace") != namespace:
            return False
        return selected(obj)
    return matches


def list_objects(
    store: Store,
    storage_key: tuple[str, str],
    namespace: str | None,
    matcher: selectors.Matcher,
    params: Mapping[str, str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return the matching objects (one page of them) and the list metadata."""
    requested = parse_resource_version(params.get("resourceVersion"))
    if params.get("resourceVersionMatch") == "Exact" and requested not in (None, store.resource_version):
        # NOTE: lists are served from the current state only; an exact older version
        # gets 410, which clients treat as "list again from the current state".
        raise errors.expired(requested or 0, store.resource_version)
    items = [obj for obj in store.list_objects(storage_key, namespace) if matcher(obj)]
    metadata: dict[str, Any] = {"resourceVersion": str(store.resource_version)}

    token = params.get("continue")
    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, binascii.Error):
            raise errors.bad_request("continue: Invalid value: the continue token is invalid") from None
        items = [obj for obj in items
                 if [obj["metadata"].get("namespace", ""), obj["metadata"]["name"]] > after]
    limit = parse_resource_version(params.get("limit"))
    if limit and len(items) > limit:
        last = items[limit - 1]["metadata"]
        position = [last.get("namespace", ""), last["name"]]
        metadata["continue"] = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
        metadata["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    return items, metadata


def _encode(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _visible_type(event: WatchEvent, matcher: selectors.Matcher) -> str | None:
    """Return the event type that a filtered watch receives for a stored event, or None."""
    now_matches = matcher(event.object)
    if event.type == "ADDED":
        return "ADDED" if now_matches else None
    if event.type == "DELETED":
        return "DELETED" if now_matches else None
    before_matched = event.old_object is not None and matcher(event.old_object)
    if now_matches and before_matched:
        return "MODIFIED"
    if now_matches:
        return "ADDED"
    if before_matched:
        return "DELETED"
    return None


async def watch_events(
    store: Store,
    storage_key: tuple[str, str],
    namespace: str | None,
    matcher: selectors.Matcher,
    params: Mapping[str, str],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    bookmark: Callable[[str, dict[str, str]], dict[str, Any]],
    bookmark_interval: float,
) -> AsyncGenerator[bytes, None]:
    """Yield the JSON lines of a watch stream."""
    requested = parse_resource_version(params.get("resourceVersion"))
    send_initial = params.get("sendInitialEvents") == "true" or not requested
    allow_bookmarks = params.get("allowWatchBookmarks") == "true"
    timeout = float(params.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout

    if send_initial:
        last = store.resource_version
        for obj in store.list_objects(storage_key, namespace):
            if matcher(obj):
                yield _encode("ADDED", render(obj))
        if params.get("sendInitialEvents") == "true" and allow_bookmarks:
            yield _encode("BOOKMARK", bookmark(str(last), {INITIAL_EVENTS_END: "true"}))
    else:
        assert requested is not None
        last = requested

    next_bookmark = time.monotonic() + bookmark_interval
    while True:
        signal = store.new_events_signal()
        try:
            events = store.events_since(last)
        except kmock.KubernetesError as error:  # 410 Expired: too old for the history
            yield _encode("ERROR", errors.status_body(
                error.status, error.reason or "Expired", error.message or "", None))
            return
        for event in events:
            last = event.resource_version
            if event.storage_key != storage_key:
                continue
            visible = _visible_type(event, matcher)
            if visible is not None:
                yield _encode(visible, render(event.object))

        current = time.monotonic()
        if current >= deadline:
            return
        if allow_bookmarks and current >= next_bookmark:
            yield _encode("BOOKMARK", bookmark(str(last), {}))
            next_bookmark = current + bookmark_interval
        if events:
            continue
        wait = deadline - current
        if allow_bookmarks:
            wait = min(wait, max(next_bookmark - current, 0.0))
        try:
            await asyncio.wait_for(signal.wait(), timeout=wait)
        except TimeoutError:
            pass
