"""Names and labels of the objects and files that recordings create."""

from __future__ import annotations

import re

import pytest

from seccomp_recorder.models.meta import DNS_SUBDOMAIN_PATTERN
from seccomp_recorder.models.names import (
    CONTAINER_LABEL,
    POD_LABEL,
    RECORDING_LABEL,
    label_value,
    localhost_profile,
    object_labels,
    profile_name,
    result_name,
)
from seccomp_recorder.models.recording import MergeStrategy
from seccomp_recorder.models.selectors import LABEL_VALUE_PATTERN

POD_UID = "0b4a3f1e-6c2d-4c8e-9d5f-3a1b2c4d5e6f"
CONTAINERS = MergeStrategy.CONTAINERS
PER_POD = MergeStrategy.NONE


def is_object_name(name: str, max_length: int = 253) -> bool:
    return len(name) <= max_length and re.fullmatch(DNS_SUBDOMAIN_PATTERN, name) is not None


def test_label_keys() -> None:
    assert RECORDING_LABEL == "seccomp-recorder.io/recording"
    assert CONTAINER_LABEL == "seccomp-recorder.io/container"
    assert POD_LABEL == "seccomp-recorder.io/pod"


def test_profile_name_per_container() -> None:
    assert profile_name("redis", CONTAINERS, "server") == "redis-server"


def test_profile_name_per_pod() -> None:
    assert profile_name("redis", PER_POD, "server", "redis-0") == "redis-redis-0-server"


def test_profile_name_keeps_dots() -> None:
    assert profile_name("web.v2", PER_POD, "app", "web.v2-0") == "web.v2-web.v2-0-app"


def test_profile_name_too_long_is_hashed() -> None:
    pod = "p" * 253

    name = profile_name("redis", PER_POD, "server", pod)

    assert len(name) == 250
    assert is_object_name(name, 250)
    assert name.startswith("redis-ppp")
    assert re.search(r"-[0-9a-f]{10}$", name)
    assert name == profile_name("redis", PER_POD, "server", pod)


def test_profile_name_hash_depends_on_every_part() -> None:
    pod = "p" * 253

    names = {
        profile_name("redis", PER_POD, "server", pod),
        profile_name("redis", PER_POD, "client", pod),
        profile_name("redis", PER_POD, "server", pod[:-1]),
    }

    assert len(names) == 3


def test_profile_name_cut_never_ends_in_separator() -> None:
    # Pod names of many lengths put a '.' or '-' at every position of the cut.
    for length in range(200, 253):
        pod = ("a." * 127)[:length].rstrip(".")

        name = profile_name("rec", PER_POD, "c", pod)

        assert is_object_name(name, 250), name


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("Redis", CONTAINERS, "server", None), 'invalid recording name "Redis"'),
        (("redis", CONTAINERS, "server_1", None), 'invalid container name "server_1"'),
        (("redis", CONTAINERS, "a.b", None), 'invalid container name "a.b"'),
        (
            ("redis", CONTAINERS, "server", "redis-0"),
            "pod 'redis-0' given for mergeStrategy Containers",
        ),
        (("redis", PER_POD, "server", None), "mergeStrategy None makes one profile per pod"),
        (("redis", PER_POD, "server", "Redis-0"), 'invalid pod name "Redis-0"'),
    ],
)
def test_profile_name_rejects_invalid_parts(
    arguments: tuple[str, MergeStrategy, str, str | None], expected: str
) -> None:
    with pytest.raises(ValueError) as caught:
        profile_name(*arguments)

    assert str(caught.value).startswith(expected)


def test_result_name() -> None:
    assert result_name("redis", POD_UID, "server") == f"redis-{POD_UID}-server"


def test_result_name_too_long_is_hashed() -> None:
    recording = "r" * 253

    name = result_name(recording, POD_UID, "server")

    assert len(name) == 253
    assert is_object_name(name)
    assert name == result_name(recording, POD_UID, "server")
    assert name != result_name(recording, POD_UID, "client")


def test_result_name_rejects_invalid_uid() -> None:
    with pytest.raises(ValueError, match='invalid pod UID "UID"'):
        result_name("redis", "UID", "server")


def test_localhost_profile() -> None:
    assert localhost_profile("db", "redis-server") == "seccomp-recorder/db/redis-server.json"


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("db.prod", "redis", 'invalid namespace "db.prod"'),
        ("db", "../redis", 'invalid profile name "../redis"'),
        ("db", "r" * 251, "invalid profile name"),
        ("db", "", 'invalid profile name ""'),
    ],
)
def test_localhost_profile_rejects_invalid_names(namespace: str, name: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        localhost_profile(namespace, name)

    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize("value", ["redis", "redis-0.web", "x" * 63, ""])
def test_label_value_keeps_valid_values(value: str) -> None:
    assert label_value(value) == value


@pytest.mark.parametrize("value", ["x" * 64, "p" * 253, "a." * 40, "-" * 70, "has space"])
def test_label_value_shortens_and_hashes(value: str) -> None:
    shortened = label_value(value)

    assert len(shortened) <= 63
    assert re.fullmatch(LABEL_VALUE_PATTERN, shortened), shortened
    assert re.search(r"[0-9a-f]{10}$", shortened)
    assert shortened == label_value(value)


def test_label_value_distinguishes_long_values() -> None:
    assert label_value("p" * 100) != label_value("p" * 101)


def test_object_labels_per_container() -> None:
    assert object_labels("redis", "server") == {
        RECORDING_LABEL: "redis",
        CONTAINER_LABEL: "server",
    }


def test_object_labels_per_pod() -> None:
    pod = "p" * 100

    labels = object_labels("redis", "server", pod)

    assert labels[POD_LABEL] == label_value(pod)
    assert len(labels[POD_LABEL]) <= 63
