"""What each OCI runtime does after it installs a container's seccomp filter.

The calls a runtime makes between installing the filter and executing the
container's entrypoint are filtered, so a profile must allow them although the
workload never makes them. When a container was recorded under a seccomp filter
the recorder sees that point exactly; without one it adds the set measured here
for the runtime and the no_new_privs setting. The set is also added when the
point was seen, because a Go runtime such as runc's makes some of these calls
(futex, nanosleep...) only in some runs.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


class Runtime(enum.StrEnum):
    RUNC = "runc"
    CRUN = "crun"


@dataclass(frozen=True)
class RuntimeCalls:
    """The measured post-filter calls of one runtime, by its no_new_privs setting."""

    runtime: Runtime
    version: str
    no_new_privileges: frozenset[str]
    without_no_new_privileges: frozenset[str]

    def post_filter_calls(self, no_new_privs: bool) -> frozenset[str]:
        return self.no_new_privileges if no_new_privs else self.without_no_new_privileges


DATA_FILE = "runtime-post-filter.json"


@cache
def _load() -> dict[str, Any]:
    text = resources.files("seccomp_recorder").joinpath("data", DATA_FILE).read_text()
    document: dict[str, Any] = json.loads(text)
    return document


def runtime_calls(runtime: Runtime) -> RuntimeCalls:
    entry = _load()["runtimes"][runtime.value]
    return RuntimeCalls(
        runtime=runtime,
        version=entry["version"],
        no_new_privileges=frozenset(entry["noNewPrivileges"] + entry.get("goRuntime", [])),
        without_no_new_privileges=frozenset(
            entry["withoutNoNewPrivileges"] + entry.get("goRuntime", [])
        ),
    )


def identify_runtime(task_name: str) -> Runtime | None:
    """Name the runtime from the name of the task that entered a container's mount namespace.

    runc's init stages are called `runc:[1:CHILD]` and `runc:[2:INIT]`; crun's child
    keeps the name `crun`.
    """
    if task_name.startswith("runc"):
        return Runtime.RUNC
    if task_name.startswith("crun"):
        return Runtime.CRUN
    return None
