"""The profile installer on a temporary kubelet root, with scripted informers and a fake API."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import FakeApi, FakeListFunction, allow_spec, api_error, pod, profile

from seccomp_recorder.agent import status
from seccomp_recorder.agent.informers import Backoff, Informer
from seccomp_recorder.agent.installer import ProfileInstaller
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.atomicfile import write_atomic

NODE = "node-1"
WEB = "seccomp-recorder/default/web.json"


class Cluster:
    """The informers' view of the cluster, which tests change and then relist."""

    def __init__(self) -> None:
        self.profiles: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.version = 0
        self.profile_api = FakeListFunction()
        self.pod_api = FakeListFunction()
        self.profile_informer = Informer("SeccompProfiles", self.profile_api)
        self.pod_informer = Informer("pods", self.pod_api)

    def sync(self) -> None:
        """Relist both informers from the current lists, as after a watch of the changes."""
        self.version += 1
        self.profile_api.lists.append((list(self.profiles), str(self.version)))
        self.pod_api.lists.append((list(self.pods), str(self.version)))
        self.profile_informer.list_once()
        self.pod_informer.list_once()


class Setup:
    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.root = tmp_path / "kubelet"
        self.settings = AgentSettings(node_name=NODE, kubelet_root=self.root)
        self.api = FakeApi()
        self.cluster = Cluster()
        self.writes: list[Path] = []
        self.installer = ProfileInstaller(
            self.settings,
            self.api,  # type: ignore[arg-type]
            self.cluster.profile_informer,
            self.cluster.pod_informer,
            retry_backoff=lambda: Backoff(initial=60, jitter=0),
            write_file=options.get("write_file", self._write),
        )

    def _write(self, path: Path, content: bytes) -> None:
        self.writes.append(path)
        write_atomic(path, content)

    def path(self, name: str = "web", namespace: str = "default") -> Path:
        return self.root / "seccomp" / "seccomp-recorder" / namespace / f"{name}.json"

    def reconcile(self, name: str = "web", namespace: str = "default") -> None:
        self.cluster.sync()
        self.installer.process((namespace, name))


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_install_writes_oci_json(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    document = json.loads(setup.path().read_text())
    assert document["defaultAction"] == "SCMP_ACT_ERRNO"
    assert document["syscalls"][0] == {
        "names": ["exit_group", "read", "write"],
        "action": "SCMP_ACT_ALLOW",
    }
    assert setup.path().stat().st_mode & 0o777 == 0o644


def test_install_reports_generation_and_hash(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web", generation=4))
    setup.reconcile()
    [(namespace, name, body, content_type)] = setup.api.custom.patches
    assert (namespace, name) == ("default", "web")
    assert content_type == "application/merge-patch+json"
    entry = body["status"]["nodeStatuses"][NODE]
    assert entry["state"] == "Installed"
    assert entry["observedGeneration"] == 4
    assert entry["contentHash"] == hashlib.sha256(setup.path().read_bytes()).hexdigest()
    assert setup.api.reasons() == [status.PROFILE_INSTALLED]


def test_file_in_place_before_status(setup: Setup) -> None:
    present_at_patch: list[bool] = []
    original = setup.api.custom.patch_namespaced_custom_object_status

    def patch(*arguments: Any, **options: Any) -> None:
        present_at_patch.append(setup.path().exists())
        original(*arguments, **options)

    setup.api.custom.patch_namespaced_custom_object_status = patch  # type: ignore[method-assign]
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    assert present_at_patch == [True]


def test_identical_bytes_not_rewritten(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    setup.reconcile()
    assert setup.writes == [setup.path()]
    assert len(setup.api.custom.patches) == 1
    assert len(setup.api.core.events) == 1


def test_restart_with_reported_status_sends_nothing(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    entry = setup.api.node_entries()[0]
    restarted = Setup(setup.root.parent)
    restarted.cluster.profiles.append(profile("web", node_statuses={NODE: entry}))
    restarted.reconcile()
    assert restarted.writes == []
    assert restarted.api.custom.patches == []
    assert restarted.api.core.events == []


def test_changed_spec_rewritten(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    setup.cluster.profiles[0] = profile(
        "web", generation=2, resource_version="2", spec=allow_spec("read", "write", "openat")
    )
    setup.reconcile()
    assert "openat" in setup.path().read_text()
    assert [entry["observedGeneration"] for entry in setup.api.node_entries()] == [1, 2]


@pytest.mark.parametrize(
    "spec",
    [
        {"defaultAction": "SCMP_ACT_BOGUS"},
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
        allow_spec("read", "no_such_call"),
    ],
)
def test_invalid_profile_never_written(setup: Setup, spec: dict[str, Any]) -> None:
    setup.cluster.profiles.append(profile("web", spec=spec))
    setup.reconcile()
    assert not setup.path().exists()
    assert setup.writes == []
    [entry] = setup.api.node_entries()
    assert entry["state"] == "Error"
    assert entry["message"].startswith("the profile is invalid")
    assert entry["contentHash"] is None
    assert setup.api.reasons() == [status.PROFILE_INVALID]
    assert setup.api.core.events[0]["type"] == "Warning"
    assert setup.api.core.events[0]["involvedObject"]["name"] == "web"


def test_invalid_update_keeps_previous_file(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    before = setup.path().read_bytes()
    setup.cluster.profiles[0] = profile(
        "web", generation=2, resource_version="2", spec=allow_spec("no_such_call")
    )
    setup.reconcile()
    assert setup.path().read_bytes() == before
    entry = setup.api.node_entries()[-1]
    assert entry["state"] == "Error"
    assert "kept unchanged" in entry["message"]
    assert entry["contentHash"] == hashlib.sha256(before).hexdigest()


def test_missing_base_reports_error(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web", spec=allow_spec("read", base="base")))
    setup.reconcile()
    assert not setup.path().exists()
    [entry] = setup.api.node_entries()
    assert entry["state"] == "Error"
    assert '"base"' in entry["message"]
    assert setup.api.reasons() == [status.BASE_PROFILE_NOT_FOUND]


def test_base_change_reinstalls_dependents(setup: Setup) -> None:
    setup.cluster.profiles += [
        profile("base", spec=allow_spec("close")),
        profile("mid", spec=allow_spec("openat", base="base")),
        profile("web", spec=allow_spec("read", base="mid")),
        profile("other", spec=allow_spec("write")),
    ]
    setup.cluster.sync()
    for name in ("base", "mid", "web", "other"):
        setup.installer.process(("default", name))
    assert "close" in setup.path("web").read_text()

    setup.installer.register_handlers()
    while setup.installer.queue.get(0) is not None:
        pass
    changed = profile("base", generation=2, resource_version="9", spec=allow_spec("fstat"))
    setup.cluster.profiles[0] = changed
    setup.cluster.sync()
    queued = set()
    while (key := setup.installer.queue.get(0)) is not None:
        queued.add(key)
    assert queued == {("default", "base"), ("default", "mid"), ("default", "web")}
    setup.installer.process(("default", "web"))
    assert "fstat" in setup.path("web").read_text()
    assert "close" not in setup.path("web").read_text()


@pytest.mark.parametrize("name", ["../../../../etc/evil", "a/b", ".."])
def test_malicious_name_rejected(setup: Setup, tmp_path: Path, name: str) -> None:
    setup.cluster.profiles.append(profile(name))
    setup.reconcile(name)
    assert setup.writes == []
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == []
    [entry] = setup.api.node_entries()
    assert entry["state"] == "Error"
    assert "invalid profile name" in entry["message"]
    assert setup.api.reasons() == [status.PROFILE_INSTALL_FAILED]


def test_symlinked_namespace_rejected(setup: Setup, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tree_root = setup.root / "seccomp" / "seccomp-recorder"
    tree_root.mkdir(parents=True)
    (tree_root / "default").symlink_to(outside)
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    assert list(outside.iterdir()) == []
    assert setup.api.node_entries()[0]["state"] == "Error"


def test_deleted_profile_kept_while_pod_uses_it(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.cluster.pods.append(pod("user", profile=WEB))
    setup.reconcile()
    setup.cluster.profiles[0] = profile("web", resource_version="2", deleting=True)
    setup.reconcile()
    assert setup.path().exists()
    entry = setup.api.node_entries()[-1]
    assert entry["state"] == "Installed"
    assert "default/user" in entry["message"]
    assert setup.api.reasons()[-1] == status.PROFILE_IN_USE

    setup.cluster.pods.clear()
    setup.reconcile()
    assert not setup.path().exists()
    assert setup.api.node_entries()[-1]["state"] == "Removed"
    assert setup.api.reasons()[-1] == status.PROFILE_REMOVED


def test_finished_pod_does_not_block_removal(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.cluster.pods.append(pod("done", phase="Succeeded", container_profile=WEB))
    setup.reconcile()
    setup.cluster.profiles[0] = profile("web", resource_version="2", deleting=True)
    setup.reconcile()
    assert not setup.path().exists()
    assert setup.api.node_entries()[-1]["state"] == "Removed"


def test_removal_drops_empty_namespace_folder(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    setup.cluster.profiles[0] = profile("web", resource_version="2", deleting=True)
    setup.reconcile()
    assert not setup.path().parent.exists()


def test_deleted_never_installed_reports_removed(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web", deleting=True))
    setup.reconcile()
    assert setup.api.node_entries() == [
        {
            "state": "Removed",
            "message": "",
            "observedGeneration": None,
            "contentHash": None,
            "lastTransitionTime": setup.api.node_entries()[0]["lastTransitionTime"],
        }
    ]


def test_orphan_file_removed(setup: Setup) -> None:
    orphan = setup.path("gone")
    orphan.parent.mkdir(parents=True)
    orphan.write_text("{}")
    setup.reconcile("gone")
    assert not orphan.exists()
    assert setup.api.custom.patches == []


def test_orphan_file_kept_while_used(setup: Setup) -> None:
    orphan = setup.path("gone")
    orphan.parent.mkdir(parents=True)
    orphan.write_text("{}")
    setup.cluster.pods.append(pod("user", profile="seccomp-recorder/default/gone.json"))
    setup.reconcile("gone")
    assert orphan.exists()
    setup.cluster.pods.clear()
    setup.reconcile("gone")
    assert not orphan.exists()


def test_write_failure_reported_and_retried(tmp_path: Path) -> None:
    def failing_write(path: Path, content: bytes) -> None:
        raise OSError(28, "No space left on device")

    setup = Setup(tmp_path, write_file=failing_write)
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    [entry] = setup.api.node_entries()
    assert entry["state"] == "Error"
    assert "No space left on device" in entry["message"]
    assert setup.api.reasons() == [status.PROFILE_INSTALL_FAILED]
    assert len(setup.installer.queue) == 1  # the delayed retry


def test_status_not_found_is_ignored(setup: Setup) -> None:
    setup.api.custom.fail_with = api_error(404, "Not Found")
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    assert setup.path().exists()
    assert len(setup.installer.queue) == 0
    assert setup.api.core.events == []


def test_status_failure_retried(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.api.custom.fail_with = api_error(503, "Service Unavailable")
    setup.cluster.profiles.append(profile("web"))
    setup.reconcile()
    assert len(setup.installer.queue) == 1
    assert any("503" in record.getMessage() for record in caplog.records)
    setup.api.custom.fail_with = None
    setup.installer.process(("default", "web"))
    assert setup.api.node_entries()[0]["state"] == "Installed"


def test_pod_change_queues_its_profiles(setup: Setup) -> None:
    setup.installer.start()
    try:
        setup.installer._pod_changed(
            pod("user", profile=WEB, container_profile="profiles/other.json")
        )
        assert setup.installer.queue.get(0) == ("default", "web")
        assert setup.installer.queue.get(0) is None
    finally:
        setup.installer.stop()


def test_worker_waits_for_sync(setup: Setup) -> None:
    setup.cluster.profiles.append(profile("web"))
    setup.installer.start()
    try:
        time.sleep(0.3)
        assert not setup.path().exists()
        assert not setup.installer.ready.is_set()
        setup.cluster.sync()
        deadline = time.monotonic() + 5
        while not setup.path().exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert setup.path().exists()
    finally:
        setup.installer.stop()


def test_start_cleans_temporaries_and_orphans(setup: Setup) -> None:
    folder = setup.path().parent
    folder.mkdir(parents=True)
    (folder / ".web.json.x1y2.tmp").write_text("partial")
    (folder / "gone.json").write_text("{}")
    setup.cluster.profiles.append(profile("web"))
    setup.cluster.sync()
    setup.installer.start()
    try:
        deadline = time.monotonic() + 5
        while (folder / "gone.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not (folder / "gone.json").exists()
        assert not (folder / ".web.json.x1y2.tmp").exists()
        assert setup.path().exists()
    finally:
        setup.installer.stop()
