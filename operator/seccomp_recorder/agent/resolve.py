"""Turn a SeccompProfile object into the spec to install: validate, merge bases, check.

`resolve_profile` reads the object's `spec` with the models, merges the chain of
`baseProfileName` profiles (same namespace, innermost first), and runs the syscall-table
checks on the profile and on each base. Anything that would make the file unusable or
wrong raises `ProfileRejected` with the Event reason and a message naming the profile, so
an invalid profile never reaches a node. Pure: the caller passes the lookup of other
profiles (the informer's store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from seccomp_recorder.agent.status import BASE_PROFILE_NOT_FOUND, PROFILE_INVALID
from seccomp_recorder.models.algebra import apply_base_profile
from seccomp_recorder.models.errors import ProfileError, describe_validation_error, quote
from seccomp_recorder.models.profile import (
    SeccompProfileSpec,
    SyscallArgument,
    SyscallRule,
)
from seccomp_recorder.syscalls.check import Problem, Severity, find_problems

KubeObject = dict[str, Any]
ProfileLookup = Callable[[str, str], KubeObject | None]  # (namespace, name) -> object

# Maximum number of base profiles in a chain. A longer chain is reported as invalid.
MAX_BASE_DEPTH: Final = 16
_MODELS = (SeccompProfileSpec, SyscallRule, SyscallArgument)
_OWN = "the profile"  # Name of the resolved profile in messages, as opposed to a base.


class ProfileRejected(Exception):
    """The profile cannot be installed; `reason` is the Event reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ResolvedProfile:
    """The spec to render, with every base merged in, and the warnings found on the way."""

    spec: SeccompProfileSpec
    warnings: tuple[str, ...] = ()
    # Names of the base profiles merged in, outermost first.
    bases: tuple[str, ...] = ()


def parse_spec(profile: KubeObject, label: str) -> SeccompProfileSpec:
    """Validate the object's `spec`; raise ProfileRejected naming `label` and every problem."""
    try:
        return SeccompProfileSpec.model_validate(profile.get("spec") or {})
    except ValidationError as error:
        problems = describe_validation_error(error, _MODELS, prefix="spec")
        raise ProfileRejected(PROFILE_INVALID, f"{label} is invalid: {'; '.join(problems)}") from None


def check_spec(spec: SeccompProfileSpec, label: str) -> list[str]:
    """Run the syscall-table checks; raise ProfileRejected on errors, return the warnings.

    Each warning is `path: message`, prefixed with `label` for a base profile.
    """
    problems = find_problems(spec)
    errors = [problem for problem in problems if problem.severity is Severity.ERROR]
    if errors:
        raise ProfileRejected(PROFILE_INVALID, f"{label} is invalid: {_join(errors)}")
    prefix = "" if label == _OWN else f"{label}: "
    return [f"{prefix}{problem.path}: {problem.message}" for problem in problems]


def resolve_profile(profile: KubeObject, lookup: ProfileLookup) -> ResolvedProfile:
    """Return the spec to install for `profile`, or raise ProfileRejected saying why not."""
    metadata = profile.get("metadata") or {}
    namespace = metadata.get("namespace") or ""
    spec = parse_spec(profile, _OWN)
    warnings = check_spec(spec, _OWN)

    chain = [spec]
    names: list[str] = []
    base_name = spec.base_profile_name
    while base_name is not None:
        if base_name in names or base_name == metadata.get("name"):
            cycle = " -> ".join([str(metadata.get("name")), *names, base_name])
            raise ProfileRejected(
                PROFILE_INVALID,
                f"the base profiles form a cycle ({cycle}): remove baseProfileName from one",
            )
        if len(names) >= MAX_BASE_DEPTH:
            raise ProfileRejected(
                PROFILE_INVALID,
                f"the chain of base profiles is longer than {MAX_BASE_DEPTH}: shorten it",
            )
        base = lookup(namespace, base_name)
        if base is None:
            raise ProfileRejected(
                BASE_PROFILE_NOT_FOUND,
                f"base profile {quote(base_name)} not found in namespace {namespace}: create"
                " it or correct baseProfileName",
            )
        label = f"base profile {quote(base_name)}"
        base_spec = parse_spec(base, label)
        warnings += check_spec(base_spec, label)
        chain.append(base_spec)
        names.append(base_name)
        base_name = base_spec.base_profile_name

    merged = chain[-1]
    for outer in reversed(chain[:-1]):
        try:
            merged = apply_base_profile(outer, merged)
        except ProfileError as error:
            raise ProfileRejected(
                PROFILE_INVALID, f"the base profiles cannot be merged in: {error}"
            ) from None
    return ResolvedProfile(spec=merged, warnings=tuple(warnings), bases=tuple(names))


def _join(problems: list[Problem]) -> str:
    return "; ".join(str(problem) for problem in problems)
