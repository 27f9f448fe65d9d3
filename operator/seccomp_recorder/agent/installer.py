"""The profile installer: every SeccompProfile as an OCI JSON file on this node, and its status.

A profile `<namespace>/<name>`, written by hand, synced from Git or made from a recording,
becomes `<kubelet root>/seccomp/seccomp-recorder/<namespace>/<name>.json`. The installer:

- writes the file atomically (`write_atomic`: temporary file, fsync, rename, fsync of the
  folder) and only then reports `nodeStatuses[<node>]` Installed with the generation and
  the file's SHA-256, because a pod may be scheduled onto the node the moment it says so;
- leaves a file with identical bytes alone;
- merges `baseProfileName` chains, and reinstalls the profiles based on one that changed;
- never writes a profile that fails validation, and reports Error with the reason instead;
- removes the file of a deleted profile once no unfinished pod on this node uses it, then
  reports Removed, and removes files whose profile no longer exists on the same terms;
- starts only after the profile and pod informers have listed everything, so it never
  takes a profile that is merely not listed yet for a deleted one.

Informer handlers only queue keys. One worker thread reconciles each key from the
informers' current state, so the filesystem and the status are never written from two
threads at once. A failure (write error, API server unreachable) is logged and the key is
retried with an exponential backoff. Every reconcile is idempotent, and every key is
reconciled again every `resync_interval` seconds, which repairs files changed by hand.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import ApiException

from seccomp_recorder.agent import kube, metrics, paths, pods, status
from seccomp_recorder.agent.informers import Backoff, Informer, ObjectKey, object_key
from seccomp_recorder.agent.paths import ProfilePathError, ProfileTree
from seccomp_recorder.agent.resolve import ProfileRejected, resolve_profile
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.agent.status import NodeReport
from seccomp_recorder.agent.workqueue import WorkQueue
from seccomp_recorder.atomicfile import fsync_directory, write_atomic
from seccomp_recorder.models.formats import render_oci_json
from seccomp_recorder.models.profile import NodeProfileState

logger = logging.getLogger(__name__)

KubeObject = dict[str, Any]
FileWriter = Callable[[Path, bytes], None]

# Seconds between two reconciles of every profile and file, even when nothing changed.
DEFAULT_RESYNC_INTERVAL: Final = 600.0
# Seconds the worker waits at a time for the informers' first list, between stop checks.
SYNC_POLL_INTERVAL: Final = 0.5


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _label(namespace: str, name: str) -> str:
    return f"[{namespace}/{name}]"


class _RetryLater(Exception):
    """The reconcile failed for a reason that may pass; the key is queued again later."""


class ProfileInstaller:
    """Installs, updates and removes this node's profile files and reports their state.

    `profiles` is the informer of every SeccompProfile and `pods_informer` the informer of
    this node's pods. `start` registers handlers on both, and may be called before or after
    the informers start. `write_file` replaces `write_atomic` in tests.
    """

    def __init__(
        self,
        settings: AgentSettings,
        api: kube.ApiClients,
        profiles: Informer,
        pods_informer: Informer,
        *,
        resync_interval: float = DEFAULT_RESYNC_INTERVAL,
        retry_backoff: Callable[[], Backoff] = Backoff,
        write_file: FileWriter = write_atomic,
    ) -> None:
        self.node_name = settings.node_name
        self.tree = ProfileTree(settings.seccomp_root)
        self.api = api
        self.profiles = profiles
        self.pods = pods_informer
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self._resync_interval = resync_interval
        self._new_backoff = retry_backoff
        self._backoffs: dict[ObjectKey, Backoff] = {}
        self._write_file = write_file
        # The last report this agent sent for each key, with the profile's uid: the
        # informer may not have seen the status patch yet, and the same report must not
        # be sent (and posted as an Event) twice.
        self._reported: dict[ObjectKey, tuple[str, NodeReport]] = {}
        # Files whose current bytes this process wrote or flushed to disk itself.
        self._durable: dict[Path, str] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # set once the start-up reconcile is queued

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Register the informer handlers and start the worker thread."""
        self.register_handlers()
        self._thread = threading.Thread(target=self._run, name="profile installer", daemon=True)
        self._thread.start()

    def register_handlers(self) -> None:
        """Make profile and pod changes queue the keys to reconcile (`start` calls this)."""
        self.profiles.add_handlers(
            on_add=self._profile_changed,
            on_update=lambda old, new: self._profile_changed(new),
            on_delete=self._profile_changed,
        )
        self.pods.add_handlers(
            on_add=self._pod_changed,
            on_update=self._pod_updated,
            on_delete=self._pod_changed,
        )

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the worker after the key it is reconciling, waiting up to `timeout` s."""
        self._stopping.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- informer handlers: queue keys only ------------------------------------------

    def _profile_changed(self, profile: KubeObject) -> None:
        namespace, name = object_key(profile)
        self.queue.add((namespace, name))
        for dependent in self._dependents(namespace, name):
            self.queue.add(dependent)

    def _pod_changed(self, pod: KubeObject) -> None:
        # Only a pod that stops using a profile can unblock a removal, but queuing every
        # profile a changed pod names is simpler and costs one idempotent reconcile.
        for key in pods.project_profiles(pod):
            self.queue.add(key)

    def _pod_updated(self, old: KubeObject, new: KubeObject) -> None:
        self._pod_changed(old)
        self._pod_changed(new)

    def _dependents(self, namespace: str, name: str) -> set[ObjectKey]:
        """Return the profiles whose chain of base profiles includes `namespace/name`."""
        bases: dict[str, str] = {}
        for profile in self.profiles.objects():
            profile_namespace, profile_name = object_key(profile)
            base = (profile.get("spec") or {}).get("baseProfileName")
            if profile_namespace == namespace and isinstance(base, str):
                bases[profile_name] = base
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {child for child, base in bases.items() if base in frontier} - found
            found |= frontier
        return {(namespace, dependent) for dependent in found}

    # -- worker ----------------------------------------------------------------------

    def _run(self) -> None:
        for informer in (self.profiles, self.pods):
            while not informer.wait_for_sync(SYNC_POLL_INTERVAL):
                if self._stopping.is_set():
                    return
        logger.info("Informers synced; reconciling the profiles of node %s", self.node_name)
        self._queue_everything(clean_temporaries=True)
        self.ready.set()
        next_resync = self._now() + self._resync_interval
        while not self._stopping.is_set():
            key = self.queue.get(timeout=max(0.0, next_resync - self._now()))
            if key is None:
                if not self._stopping.is_set():
                    self._queue_everything(clean_temporaries=False)
                    next_resync = self._now() + self._resync_interval
                continue
            self.process(key)

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _queue_everything(self, *, clean_temporaries: bool) -> None:
        """Queue every known profile and every file on disk, so orphans are found too."""
        if clean_temporaries:
            for temporary in self.tree.temporaries():
                logger.info("Removing %s, left by an interrupted write", temporary)
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
        for profile in self.profiles.objects():
            self.queue.add(object_key(profile))
        try:
            for key in self.tree.installed():
                self.queue.add(key)
        except OSError as error:
            logger.error("Failed to list the profile files under %s: %s", self.tree.root, error)

    def process(self, key: ObjectKey) -> None:
        """Reconcile one key; on a failure that may pass, queue it again with a backoff."""
        namespace, name = key
        try:
            with metrics.RECONCILE_DURATION.labels("profile").time():
                self.reconcile(namespace, name)
        except (_RetryLater, ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            self._retry(key, _describe_error(error))
        except ProfilePathError as error:
            # A link or foreign folder in the tree needs a person to remove it. The
            # periodic resync tries again.
            logger.error("%s %s", _label(namespace, name), error)
        except Exception:
            # A bug must not end the worker and with it every later install: log the
            # traceback and retry the key like any other failure.
            logger.exception("%s Reconcile failed unexpectedly", _label(namespace, name))
            self._retry(key, "unexpected error")
        else:
            self._backoffs.pop(key, None)

    def _retry(self, key: ObjectKey, reason: str) -> None:
        backoff = self._backoffs.setdefault(key, self._new_backoff())
        delay = backoff.next_delay()
        logger.error("%s %s; retrying in %.1f s", _label(*key), reason, delay)
        self.queue.add_after(key, delay)

    # -- reconcile -------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        """Bring the file and this node's status of profile `namespace/name` up to date.

        Raises `_RetryLater`, ApiException or OSError when a step failed and should be
        tried again; a profile that is invalid is reported, not retried.
        """
        profile = self.profiles.get(namespace, name)
        if profile is None:
            self._remove_orphan(namespace, name)
        elif (profile.get("metadata") or {}).get("deletionTimestamp"):
            self._remove_deleted(profile)
        else:
            self._install(profile)

    def _install(self, profile: KubeObject) -> None:
        namespace, name = object_key(profile)
        generation = (profile.get("metadata") or {}).get("generation")
        try:
            path = self.tree.path_of(namespace, name)
        except ProfilePathError as error:
            logger.error("%s Rejected the profile's file path: %s", _label(namespace, name), error)
            self._report(
                profile,
                NodeReport(
                    NodeProfileState.ERROR, status.PROFILE_INSTALL_FAILED, str(error), generation
                ),
            )
            return

        try:
            resolved = resolve_profile(profile, self.profiles.get)
        except ProfileRejected as rejected:
            self._reject(profile, path, rejected)
            return

        content = render_oci_json(resolved.spec).encode()
        digest = sha256_hex(content)
        try:
            written = self._put_file(namespace, path, content)
        except (OSError, ProfilePathError) as error:
            self._report(
                profile,
                NodeReport(
                    NodeProfileState.ERROR,
                    status.PROFILE_INSTALL_FAILED,
                    f"writing {path} failed: {_describe_error(error)}",
                    generation,
                    _hash_of_file(path),
                ),
            )
            raise _RetryLater(f"writing {path} failed: {_describe_error(error)}") from error
        if written:
            logger.info("%s Installed %s (sha256 %s)", _label(namespace, name), path, digest)
        message = ""
        if resolved.warnings:
            message = "installed with warnings: " + "; ".join(resolved.warnings)
        report = NodeReport(
            NodeProfileState.INSTALLED, status.PROFILE_INSTALLED, message, generation, digest
        )
        if resolved.warnings and self._is_new(profile, report):
            logger.warning("%s %s", _label(namespace, name), message)
        self._report(profile, report)

    def _reject(self, profile: KubeObject, path: Path, rejected: ProfileRejected) -> None:
        """Report a profile that cannot be installed, and leave any earlier file in place.

        An earlier file of this profile stays as it is, because pods on this node may run
        under it. The kubelet reads the file again at each container start, so removing it
        would make those restarts fail. The invalid spec cannot replace it either.
        """
        namespace, name = object_key(profile)
        previous = _hash_of_file(path)
        message = rejected.message
        if previous is not None:
            message += "; the file installed before is kept unchanged"
        report = NodeReport(
            NodeProfileState.ERROR,
            rejected.reason,
            message,
            (profile.get("metadata") or {}).get("generation"),
            previous,
        )
        if self._is_new(profile, report):
            logger.warning("%s Not installed: %s", _label(namespace, name), message)
        self._report(profile, report)

    def _put_file(self, namespace: str, path: Path, content: bytes) -> bool:
        """Make `path` contain `content` durably; return whether it was written.

        A file that already has these bytes is not rewritten, but it is flushed once per
        process, because an agent that crashed may have renamed it without flushing.
        """
        self.tree.ensure_folder(namespace)
        self.tree.check_inside(path)
        digest = sha256_hex(content)
        try:
            existing = path.read_bytes()
        except FileNotFoundError:
            existing = None
        if existing == content:
            if self._durable.get(path) != digest:
                descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                fsync_directory(path.parent)
                self._durable[path] = digest
            return False
        self._write_file(path, content)
        self._durable[path] = digest
        return True

    def _remove_deleted(self, profile: KubeObject) -> None:
        """Remove the file of a profile being deleted, unless a pod here still uses it."""
        namespace, name = object_key(profile)
        path = self.tree.path_of(namespace, name) if _valid_key(namespace, name) else None
        if path is not None and path.exists():
            users = pods.pods_using(namespace, name, self.pods.objects())
            if users:
                entry = status.current_entry(profile, self.node_name) or {}
                report = NodeReport(
                    NodeProfileState.INSTALLED,
                    status.PROFILE_IN_USE,
                    "the profile is deleted, but its file stays until no pod on this node"
                    f" uses it: {', '.join(users)}",
                    entry.get("observedGeneration"),
                    _hash_of_file(path),
                )
                if self._is_new(profile, report):
                    logger.info(
                        "%s Deleted, but kept while pods use it: %s",
                        _label(namespace, name),
                        ", ".join(users),
                    )
                self._report(profile, report)
                return
            self._remove_file(path)
            logger.info("%s Removed %s", _label(namespace, name), path)
        self._report(
            profile,
            NodeReport(NodeProfileState.REMOVED, status.PROFILE_REMOVED, "", None, None),
        )

    def _remove_orphan(self, namespace: str, name: str) -> None:
        """Remove a file whose profile no longer exists, unless a pod here still uses it."""
        if self._reported.pop((namespace, name), None) is not None:
            self._count_reported()
        if not _valid_key(namespace, name):
            return
        path = self.tree.path_of(namespace, name)
        if not path.exists():
            return
        users = pods.pods_using(namespace, name, self.pods.objects())
        if users:
            logger.info(
                "%s Profile gone, file kept while pods use it: %s",
                _label(namespace, name),
                ", ".join(users),
            )
            return
        self._remove_file(path)
        logger.info("%s Removed %s: its profile no longer exists", _label(namespace, name), path)

    def _remove_file(self, path: Path) -> None:
        self.tree.check_inside(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._durable.pop(path, None)
        fsync_directory(path.parent)
        try:
            path.parent.rmdir()  # Only succeeds once the namespace has no file left.
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise

    # -- status and Events -----------------------------------------------------------

    def _report(self, profile: KubeObject, report: NodeReport) -> None:
        """Patch this node's status entry and post an Event, unless the entry contains `report`."""
        if not self._is_new(profile, report):
            return
        key = object_key(profile)
        uid = str((profile.get("metadata") or {}).get("uid"))
        current = status.current_entry(profile, self.node_name)
        entry = status.node_entry(report, current, kube.now_rfc3339())
        try:
            kube.patch_profile_status(
                self.api, key[0], key[1], status.status_patch(self.node_name, entry)
            )
        except ApiException as error:
            if error.status == 404:
                logger.debug("%s Gone before its status was written", _label(*key))
                return
            raise
        self._reported[key] = (uid, report)
        self._count_reported()
        if report.state is NodeProfileState.ERROR:
            metrics.INSTALL_ERRORS.labels(report.reason).inc()
        logger.debug("%s Reported %s on %s", _label(*key), report.state.value, self.node_name)
        self._post_event(profile, report)

    def _count_reported(self) -> None:
        metrics.count_profile_states(
            {key: report.state for key, (_, report) in self._reported.items()}
        )

    def _is_new(self, profile: KubeObject, report: NodeReport) -> bool:
        """Tell whether `report` differs from the status and from what was last sent."""
        uid = str((profile.get("metadata") or {}).get("uid"))
        if self._reported.get(object_key(profile)) == (uid, report):
            return False
        return not status.is_reported(status.current_entry(profile, self.node_name), report)

    def _post_event(self, profile: KubeObject, report: NodeReport) -> None:
        message = report.message or _default_message(report, self.node_name)
        body = kube.event_body(
            profile,
            reason=report.reason,
            message=status.truncate(f"{message} (node {self.node_name})"),
            warning=report.warning,
            node_name=self.node_name,
        )
        try:
            kube.post_event(self.api, body)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            # Events are informational and the status carries the same message, so a failed
            # post is logged and not retried.
            logger.warning(
                "%s Failed to post Event %s: %s",
                _label(*object_key(profile)),
                report.reason,
                _describe_error(error),
            )


def _default_message(report: NodeReport, node_name: str) -> str:
    if report.state is NodeProfileState.INSTALLED:
        return f"installed with sha256 {report.content_hash}"
    if report.state is NodeProfileState.REMOVED:
        return "file removed"
    return report.state.value


def _valid_key(namespace: str, name: str) -> bool:
    return paths.is_namespace(namespace) and paths.is_name(name)


def _hash_of_file(path: Path) -> str | None:
    """Return the SHA-256 of the file at `path`, or None when it is missing or unreadable."""
    try:
        return sha256_hex(path.read_bytes())
    except OSError:
        return None


def _describe_error(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"API request failed: {error.status} {error.reason}"
    return str(error) or type(error).__name__
