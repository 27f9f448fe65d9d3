"""Which profiles a pod uses: pod and container level, init and ephemeral, finished pods."""

from __future__ import annotations

from typing import Any

from agent_fakes import pod

from seccomp_recorder.agent import pods

WEB = "seccomp-recorder/default/web.json"


def with_container(field: str, profile: str) -> dict[str, Any]:
    obj = pod("p")
    obj["spec"][field] = [
        {
            "name": "extra",
            "securityContext": {
                "seccompProfile": {"type": "Localhost", "localhostProfile": profile}
            },
        }
    ]
    return obj


def test_pod_level_profile_found() -> None:
    assert pods.localhost_profiles(pod("p", profile=WEB)) == {WEB}


def test_container_level_profile_found() -> None:
    assert pods.localhost_profiles(pod("p", container_profile=WEB)) == {WEB}


def test_init_container_profile_found() -> None:
    assert pods.localhost_profiles(with_container("initContainers", WEB)) == {WEB}


def test_ephemeral_container_profile_found() -> None:
    assert pods.localhost_profiles(with_container("ephemeralContainers", WEB)) == {WEB}


def test_pod_level_counts_when_containers_override() -> None:
    obj = pod("p", profile=WEB, container_profile="seccomp-recorder/default/other.json")
    assert pods.project_profiles(obj) == {("default", "web"), ("default", "other")}


def test_other_profile_types_ignored() -> None:
    obj = pod("p")
    obj["spec"]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    obj["spec"]["containers"][0]["securityContext"] = {
        "seccompProfile": {"type": "Unconfined"}
    }
    assert pods.localhost_profiles(obj) == set()


def test_foreign_localhost_profile_not_project() -> None:
    obj = pod("p", profile="profiles/audit.json")
    assert pods.localhost_profiles(obj) == {"profiles/audit.json"}
    assert pods.project_profiles(obj) == set()


def test_pod_without_spec_uses_nothing() -> None:
    assert pods.localhost_profiles({"metadata": {"name": "p"}}) == set()


def test_pods_using_lists_unfinished_users() -> None:
    candidates = [
        pod("running", profile=WEB),
        pod("pending", phase="Pending", container_profile=WEB),
        pod("done", phase="Succeeded", profile=WEB),
        pod("failed", phase="Failed", profile=WEB),
        pod("other", profile="seccomp-recorder/default/other.json"),
        pod("elsewhere", namespace="team-b", profile=WEB),
    ]
    assert pods.pods_using("default", "web", candidates) == [
        "default/pending",
        "default/running",
        "team-b/elsewhere",
    ]


def test_pod_being_deleted_still_uses() -> None:
    obj = pod("p", profile=WEB)
    obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert pods.pods_using("default", "web", [obj]) == ["default/p"]
