"""The agent's informer against a scripted API: store, handlers, resume, relist, backoff."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import urllib3
from agent_fakes import (
    FakeListFunction,
    api_error,
    bookmark,
    event,
    gone_event,
    pod,
)

from seccomp_recorder.agent import informers
from seccomp_recorder.agent.informers import Backoff, Informer


class Recorder:
    """Handlers that record every call as (kind, name)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.calls.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.calls.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.calls.append(("delete", obj["metadata"]["name"]))


def make_informer(api: FakeListFunction, **options: Any) -> tuple[Informer, Recorder]:
    informer = Informer(
        "pods", api, backoff=Backoff(initial=0.001, maximum=0.001, jitter=0), **options
    )
    api.when_exhausted = informer.stop
    recorder = Recorder()
    informer.add_handlers(
        on_add=recorder.on_add, on_update=recorder.on_update, on_delete=recorder.on_delete
    )
    return informer, recorder


def test_list_fills_store_and_calls_add() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a"), pod("b")], "10"))
    informer, recorder = make_informer(api)
    informer.run()
    assert recorder.calls == [("add", "a"), ("add", "b")]
    assert informer.synced
    assert informer.get("default", "a") is not None
    assert sorted(obj["metadata"]["name"] for obj in informer.objects()) == ["a", "b"]


def test_watch_events_reach_handlers_and_store() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a")], "10"))
    api.watches.append(
        [
            event("ADDED", pod("b", resource_version="11")),
            event("MODIFIED", pod("a", resource_version="12")),
            event("DELETED", pod("b", resource_version="13")),
        ]
    )
    informer, recorder = make_informer(api)
    informer.run()
    assert recorder.calls == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")]
    assert informer.get("default", "b") is None
    stored = informer.get("default", "a")
    assert stored is not None
    assert stored["metadata"]["resourceVersion"] == "12"


def test_watch_resumes_from_last_version() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    api.watches.append([event("ADDED", pod("a", resource_version="11"))])
    api.watches.append([bookmark("15")])
    informer, _ = make_informer(api)
    informer.run()
    versions = [call["resource_version"] for call in api.watch_calls()]
    assert versions == ["10", "11", "15"]
    assert len(api.list_calls()) == 1


def test_bookmark_calls_no_handler() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    api.watches.append([bookmark("20")])
    informer, recorder = make_informer(api)
    informer.run()
    assert recorder.calls == []
    assert informer.resource_version == "20"


def test_watch_requests_bookmarks_and_timeout() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    informer, _ = make_informer(api, watch_timeout=7)
    informer.run()
    watch = api.watch_calls()[0]
    assert watch["allow_watch_bookmarks"] is True
    assert watch["timeout_seconds"] == 7
    assert watch["_preload_content"] is False


def test_gone_event_relists_and_diffs() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a"), pod("b"), pod("c")], "10"))
    api.watches.append([gone_event()])
    # After the relist: a is unchanged, b changed, c vanished, d is new.
    api.lists.append(
        ([pod("a"), pod("b", resource_version="30"), pod("d", resource_version="31")], "40")
    )
    informer, recorder = make_informer(api)
    informer.run()
    after_relist = recorder.calls[3:]
    assert ("delete", "c") in after_relist
    assert ("update", "b") in after_relist
    assert ("add", "d") in after_relist
    assert ("update", "a") not in after_relist
    assert len(api.list_calls()) == 2
    assert api.watch_calls()[-1]["resource_version"] == "40"


def test_gone_status_on_request_relists() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    api.watches.append(api_error(410, "Gone"))
    api.lists.append(([pod("a")], "50"))
    informer, recorder = make_informer(api)
    informer.run()
    assert len(api.list_calls()) == 2
    assert recorder.calls == [("add", "a")]


def test_failed_watch_resumes_after_backoff(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    api.watches.append([event("ADDED", pod("a", resource_version="11"))])
    api.watches.append(urllib3.exceptions.ProtocolError("connection reset"))
    api.watches.append(api_error(429, "Too Many Requests"))
    with caplog.at_level(logging.INFO, logger="seccomp_recorder.agent.informers"):
        informer, _ = make_informer(api)
        informer.run()
    assert len(api.list_calls()) == 1
    versions = [call["resource_version"] for call in api.watch_calls()]
    assert versions == ["10", "11", "11", "11"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("connection reset" in message for message in messages)
    assert any("429" in message for message in messages)
    assert "Watching pods again after 2 failed attempts" in messages


def test_rejected_watch_relists() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a")], "10"))
    api.watches.append(api_error(500, "Internal Server Error"))
    api.lists.append(([pod("a"), pod("b")], "20"))
    informer, recorder = make_informer(api)
    informer.run()
    assert len(api.list_calls()) == 2
    assert recorder.calls == [("add", "a"), ("add", "b")]
    assert api.watch_calls()[-1]["resource_version"] == "20"


def test_failed_list_retries_before_sync() -> None:
    api = FakeListFunction()
    api.lists.append(api_error(503, "Service Unavailable"))
    api.lists.append(([pod("a")], "10"))
    informer, recorder = make_informer(api)
    informer.run()
    assert len(api.list_calls()) == 2
    assert informer.synced
    assert recorder.calls == [("add", "a")]


def test_other_error_event_relists() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    # What a real API server sends for a resourceVersion it does not have yet.
    api.watches.append(
        [event("ERROR", {"kind": "Status", "code": 504, "reason": "Timeout",
                         "message": "Too large resource version"})]
    )
    api.lists.append(([], "12"))
    informer, _ = make_informer(api)
    informer.run()
    assert len(api.list_calls()) == 2
    assert [call["resource_version"] for call in api.watch_calls()] == ["10", "12"]


def test_selectors_reach_list_and_watch() -> None:
    api = FakeListFunction()
    api.lists.append(([], "10"))
    informer, _ = make_informer(
        api, label_selector="app=web", field_selector="spec.nodeName=node-1"
    )
    informer.run()
    for call in api.calls:
        assert call["label_selector"] == "app=web"
        assert call["field_selector"] == "spec.nodeName=node-1"


def test_failing_handler_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a"), pod("b")], "10"))
    informer = Informer("pods", api)
    api.when_exhausted = informer.stop
    seen: list[str] = []

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handlers(on_add=broken)
    informer.add_handlers(on_add=lambda obj: seen.append(obj["metadata"]["name"]))
    with caplog.at_level(logging.ERROR, logger="seccomp_recorder.agent.informers"):
        informer.run()
    assert seen == ["a", "b"]
    assert sum("handler bug" in (record.exc_text or "") for record in caplog.records) == 2


def test_late_handler_gets_existing_objects() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a"), pod("b")], "10"))
    informer = Informer("pods", api)
    api.when_exhausted = informer.stop
    informer.run()
    recorder = Recorder()
    informer.add_handlers(on_add=recorder.on_add)
    assert sorted(recorder.calls) == [("add", "a"), ("add", "b")]


def test_replayed_event_calls_no_update() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a", resource_version="5")], "10"))
    api.watches.append([event("ADDED", pod("a", resource_version="5"))])
    informer, recorder = make_informer(api)
    informer.run()
    assert recorder.calls == [("add", "a")]


def test_start_and_stop_thread() -> None:
    api = FakeListFunction()
    api.lists.append(([pod("a")], "10"))
    informer = Informer("pods", api)
    informer.start()
    assert informer.wait_for_sync(5)
    informer.stop(timeout=5)
    assert not informer._thread.is_alive()  # type: ignore[union-attr]


def test_backoff_grows_to_maximum_and_resets() -> None:
    backoff = Backoff(initial=1, maximum=5, factor=2, jitter=0)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_backoff_jitter_stays_in_range() -> None:
    backoff = Backoff(initial=10, maximum=10, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(200)]
    assert min(delays) >= 8
    assert max(delays) <= 12


def test_custom_informer_lists_project_resources() -> None:
    calls: list[tuple[Any, ...]] = []

    class Custom:
        def list_cluster_custom_object(self, *arguments: Any, **options: Any) -> None:
            calls.append(arguments)

    informer = informers.profile_informer(Custom())  # type: ignore[arg-type]
    informer._list_function()
    assert calls == [("seccomp-recorder.io", "v1alpha1", "seccompprofiles")]


def test_pod_informer_selects_node() -> None:
    class Core:
        def list_pod_for_all_namespaces(self, **options: Any) -> None:
            pass

    informer = informers.pod_informer(Core(), "node-7")  # type: ignore[arg-type]
    assert informer._selectors == {"field_selector": "spec.nodeName=node-7"}
