"""Which recordings are active, which containers they select, and the results they get.

Pure functions over the API's JSON, used by the recording side of the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from seccomp_recorder.agent.containers import PodContainer
from seccomp_recorder.models.meta import API_VERSION
from seccomp_recorder.models.names import CONTAINER_LABEL, RECORDING_LABEL, label_value, result_name
from seccomp_recorder.models.recording import RecordingPhase, SeccompRecordingSpec
from seccomp_recorder.models.result import KIND as RESULT_KIND
from seccomp_recorder.models.selectors import selector_matches
from seccomp_recorder.recorder.analysis import RecordedSyscalls, describe_sources

logger = logging.getLogger(__name__)

FINISHED_PHASES = frozenset({RecordingPhase.COMPLETED.value, RecordingPhase.FAILED.value})


@dataclass(frozen=True)
class Recording:
    """A SeccompRecording as the agent needs it."""

    namespace: str
    name: str
    uid: str
    spec: SeccompRecordingSpec
    active: bool


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def is_active(obj: Mapping[str, Any], spec: SeccompRecordingSpec, now: datetime) -> bool:
    """Tell whether a recording still records: not deleting, active, unfinished, in time."""
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if metadata.get("deletionTimestamp") or not spec.active:
        return False
    if status.get("phase") in FINISHED_PHASES:
        return False
    duration = spec.duration_seconds()
    if duration is not None:
        started = parse_time(status.get("startedAt")) or parse_time(metadata.get("creationTimestamp"))
        if started is not None and (now - started).total_seconds() >= duration:
            return False
    return True


def parse_recordings(objects: Iterable[Mapping[str, Any]], now: datetime | None = None) -> list[Recording]:
    """Read the recordings an informer holds; invalid ones are skipped with a log line."""
    moment = now or datetime.now(UTC)
    recordings = []
    for obj in objects:
        metadata = obj.get("metadata") or {}
        try:
            spec = SeccompRecordingSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            logger.debug(
                "[%s/%s] recording skipped, its spec is invalid: %s",
                metadata.get("namespace"),
                metadata.get("name"),
                error,
            )
            continue
        recordings.append(
            Recording(
                namespace=metadata.get("namespace", ""),
                name=metadata.get("name", ""),
                uid=metadata.get("uid", ""),
                spec=spec,
                active=is_active(obj, spec, moment),
            )
        )
    return recordings


def selects(recording: Recording, container: PodContainer) -> bool:
    """Tell whether `recording` records `container`."""
    if recording.namespace != container.namespace:
        return False
    if recording.spec.containers is not None and container.container not in recording.spec.containers:
        return False
    return selector_matches(recording.spec.pod_selector, container.labels)


def result_body(
    recording: Recording,
    container: PodContainer,
    *,
    runtime_prefix: str,
    node: str,
    recorded: RecordedSyscalls,
    sequence: int,
    final: bool,
) -> dict[str, Any]:
    """Build the SeccompRecordingResult object for one container of one recording."""
    runtimes = sorted({source.runtime.value for source in recorded.sources if source.runtime})
    no_new_privs = {source.no_new_privs for source in recorded.sources} - {None}
    spec: dict[str, Any] = {
        "recording": recording.name,
        "pod": container.pod,
        "podUID": container.pod_uid,
        "container": container.container,
        "containerID": f"{runtime_prefix}://{container.container_id}",
        "node": node,
        "initContainer": container.init_container,
        "final": final,
        "sequence": sequence,
        "syscalls": {str(arch): sorted(names) for arch, names in sorted(recorded.names.items())},
        "unknownSyscalls": {
            str(arch): sorted(numbers) for arch, numbers in sorted(recorded.unknown_numbers.items())
        },
    }
    if recorded.sources:
        spec["filterPoint"] = describe_sources(recorded)
    if runtimes:
        spec["runtime"] = ",".join(runtimes)
    if len(no_new_privs) == 1:
        spec["noNewPrivileges"] = bool(no_new_privs.pop())
    return {
        "apiVersion": API_VERSION,
        "kind": RESULT_KIND,
        "metadata": {
            "name": result_name(recording.name, container.pod_uid, container.container),
            "namespace": recording.namespace,
            "labels": {
                RECORDING_LABEL: label_value(recording.name),
                CONTAINER_LABEL: label_value(container.container),
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "SeccompRecording",
                    "name": recording.name,
                    "uid": recording.uid,
                }
            ],
        },
        "spec": spec,
    }

