"""Names and labels of the objects and files that seccomp-recorder creates.

The operator and the node agent both derive names with these functions, so they agree
on them without talking to each other. Every function returns the same name for the
same input, and a valid one: a name that would be too long is cut and ends in a hash of
the full input instead.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from pydantic_core import PydanticCustomError

from seccomp_recorder.models.meta import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    MAX_LABEL_LENGTH,
    MAX_SUBDOMAIN_LENGTH,
    check_kubernetes_name,
)
from seccomp_recorder.models.profile import MAX_PROFILE_NAME_LENGTH
from seccomp_recorder.models.recording import MergeStrategy
from seccomp_recorder.models.selectors import LABEL_VALUE_PATTERN

# Labels on the SeccompProfiles and SeccompRecordingResults that a recording creates.
RECORDING_LABEL: Final = "seccomp-recorder.io/recording"
CONTAINER_LABEL: Final = "seccomp-recorder.io/container"
# Only on the profiles of a recording with mergeStrategy None, which have one per pod.
POD_LABEL: Final = "seccomp-recorder.io/pod"

# Folder under the kubelet's seccomp directory that contains the installed profiles.
LOCALHOST_PROFILE_ROOT: Final = "seccomp-recorder"

# Hex digits of the SHA-256 that ends a shortened name: 40 bits, so two inputs that share
# a cut prefix get the same name with a probability of about 1 in 10^12.
HASH_LENGTH = 10


def profile_name(
    recording: str, strategy: MergeStrategy, container: str, pod: str | None = None
) -> str:
    """Return the name of the SeccompProfile that a recording makes for a container.

    `<recording>-<container>` for mergeStrategy Containers, `<recording>-<pod>-<container>`
    for None, which needs `pod`. The name is at most 250 characters long (the limit of
    profile names), with a hash suffix when the parts are longer.

    NOTE: the parts are joined with '-', which they may contain too, so two recordings can
    produce the same name (`web` with container `api-db` and `web-api` with container
    `db`). Check the recording label of an existing profile before overwriting it.
    Raises ValueError when a part is not a valid name or `pod` does not fit `strategy`.
    """
    _check_name("recording name", recording, DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN_LENGTH)
    _check_name("container name", container, DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)
    if strategy is MergeStrategy.CONTAINERS:
        if pod is not None:
            raise ValueError(
                f"pod {pod!r} given for mergeStrategy Containers, whose profiles are per"
                " container name: leave pod out"
            )
        parts = [recording, container]
    else:
        if pod is None:
            raise ValueError(
                "mergeStrategy None makes one profile per pod and container: pass the pod name"
            )
        _check_name("pod name", pod, DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN_LENGTH)
        parts = [recording, pod, container]
    return _join_within(parts, MAX_PROFILE_NAME_LENGTH)


def result_name(recording: str, pod_uid: str, container: str) -> str:
    """Return the name of the SeccompRecordingResult for one container of one pod.

    `<recording>-<pod UID>-<container>`, at most 253 characters, with a hash suffix when
    the parts are longer. The pod UID makes the name unique for each pod, also when a pod
    is replaced by one of the same name.
    Raises ValueError when a part is not a valid name.
    """
    _check_name("recording name", recording, DNS_SUBDOMAIN_PATTERN, MAX_SUBDOMAIN_LENGTH)
    _check_name("pod UID", pod_uid, DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)
    _check_name("container name", container, DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)
    return _join_within([recording, pod_uid, container], MAX_SUBDOMAIN_LENGTH)


def localhost_profile(namespace: str, name: str) -> str:
    """Return the `localhostProfile` of a SeccompProfile: `seccomp-recorder/<ns>/<name>.json`.

    Pods set it in `securityContext.seccompProfile`, and the kubelet resolves it relative
    to its seccomp directory. Raises ValueError when a part is not a valid name.
    """
    _check_name("namespace", namespace, DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)
    _check_name("profile name", name, DNS_SUBDOMAIN_PATTERN, MAX_PROFILE_NAME_LENGTH)
    return f"{LOCALHOST_PROFILE_ROOT}/{namespace}/{name}.json"


def label_value(value: str) -> str:
    """Return `value` as a valid label value: unchanged when it is one, else cut and hashed.

    Object names fit label values when they have at most 63 characters. A longer one is
    cut to 52 and ends in '-' and a hash of the whole value.
    """
    if len(value) <= MAX_LABEL_LENGTH and re.fullmatch(LABEL_VALUE_PATTERN, value):
        return value
    cut = re.sub(r"[^-A-Za-z0-9_.]", "", value)[: MAX_LABEL_LENGTH - HASH_LENGTH - 1]
    cut = cut.strip("-_.")
    suffix = _hash([value])
    return f"{cut}-{suffix}" if cut else suffix


def object_labels(recording: str, container: str, pod: str | None = None) -> dict[str, str]:
    """Return the labels of an object that `recording` creates for a container.

    The pod label is set only when `pod` is given, for mergeStrategy None.
    """
    labels = {RECORDING_LABEL: label_value(recording), CONTAINER_LABEL: label_value(container)}
    if pod is not None:
        labels[POD_LABEL] = label_value(pod)
    return labels


def _join_within(parts: list[str], max_length: int) -> str:
    """Join `parts` with '-'; when that is longer than `max_length`, cut it and add a hash."""
    joined = "-".join(parts)
    if len(joined) <= max_length:
        return joined
    # The cut must end in a letter or digit, because a name part cannot end in '-' or '.'.
    cut = joined[: max_length - HASH_LENGTH - 1].rstrip("-.")
    return f"{cut}-{_hash(parts)}"


def _hash(parts: list[str]) -> str:
    # NUL cannot occur in a name, so distinct lists of parts hash distinct inputs.
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:HASH_LENGTH]


def _check_name(what: str, value: str, pattern: str, max_length: int) -> None:
    try:
        check_kubernetes_name(what, pattern, max_length)(value)
    except PydanticCustomError as error:
        raise ValueError(error.message()) from None
