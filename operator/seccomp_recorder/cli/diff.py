"""The `seccomp-recorder diff` subcommand: fail when a new recording needs more than the old.

A CI pipeline records its program into a new profile and compares it with the profile
committed in the repository. The command prints what the new profile permits that the
old one does not (`+`) and what it no longer permits (`-`). It exits with status 1 when
the new one permits more, so the build fails until someone reviews and commits the new
profile. A smaller new profile also fails unless `--allow-shrink` is given, because the
committed profile then permits calls that the program no longer makes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any

from seccomp_recorder.cli.profile_files import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_native_architecture_option,
    native_architecture,
    read_input,
)
from seccomp_recorder.models.algebra import PERMISSIVENESS
from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.formats import parse_profile
from seccomp_recorder.models.profile import Action, Architecture, SeccompProfile, SeccompProfileSpec

logger = logging.getLogger(__name__)

EXIT_DIFFERENT = 1

# Actions that let a call run: SCMP_ACT_LOG runs it and only writes an audit record.
PERMITTING_ACTIONS = frozenset({Action.ALLOW, Action.LOG})

EPILOG = """\
exit status:
  0  NEW permits nothing that OLD does not (and, without --allow-shrink, no less)
  1  NEW permits calls or architectures that OLD does not, or permits fewer calls
     without --allow-shrink; the differences are printed
  2  a file cannot be read or is not a valid profile, or an option is invalid

example, in CI after recording the tests into new.yaml:
  seccomp-recorder diff --allow-shrink seccomp/app.yaml new.yaml
"""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="compare two profiles and fail when the new one permits more",
        description="""\
Compare the syscalls and architectures that two seccomp profiles permit, in OCI JSON
or Kubernetes YAML form. Lines starting with + name what NEW permits and OLD does not,
lines starting with - what OLD permits and NEW does not. A call counts as permitted
when a rule allows it (SCMP_ACT_ALLOW or SCMP_ACT_LOG), with or without argument
conditions. Rule order, errno values and metadata are not compared.
""",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", metavar="OLD", help="the committed profile; - reads standard input")
    parser.add_argument("new", metavar="NEW", help="the newly recorded profile")
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="exit with status 0 when NEW permits fewer calls than OLD (default: status 1)",
    )
    add_native_architecture_option(parser)
    parser.set_defaults(handler=handle)


@dataclass(frozen=True)
class Permissions:
    """What a profile lets run: syscall names, architectures, and whether it is an allow list."""

    names: frozenset[str]
    architectures: frozenset[Architecture]
    default_action: Action


@dataclass(frozen=True)
class ProfileDiff:
    """The differences between what an old and a new profile permit."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    added_architectures: tuple[Architecture, ...]
    removed_architectures: tuple[Architecture, ...]
    # A description of a more permissive default action of the new profile, if any.
    default_widened: str | None

    @property
    def grew(self) -> bool:
        """Whether the new profile permits something the old one does not."""
        return bool(self.added or self.added_architectures or self.default_widened)

    @property
    def shrank(self) -> bool:
        """Whether the old profile permits something the new one does not."""
        return bool(self.removed or self.removed_architectures)


def permissions(spec: SeccompProfileSpec, native: Architecture) -> Permissions:
    """Collect what `spec` permits; a profile without architectures applies to `native`."""
    names = frozenset(
        name for rule in spec.syscalls if rule.action in PERMITTING_ACTIONS for name in rule.names
    )
    architectures = frozenset(spec.architectures) or frozenset({native})
    return Permissions(names, architectures, spec.default_action)


def compare(old: Permissions, new: Permissions) -> ProfileDiff:
    """Compute what `new` permits beyond `old`, and what it no longer permits."""
    widened = None
    if PERMISSIVENESS[new.default_action] > PERMISSIVENESS[old.default_action]:
        widened = (
            f"default action {old.default_action.value} -> {new.default_action.value} permits more"
        )
    return ProfileDiff(
        added=tuple(sorted(new.names - old.names)),
        removed=tuple(sorted(old.names - new.names)),
        added_architectures=tuple(sorted(new.architectures - old.architectures)),
        removed_architectures=tuple(sorted(old.architectures - new.architectures)),
        default_widened=widened,
    )


def _load(path: str) -> SeccompProfileSpec:
    try:
        parsed = parse_profile(read_input(path))
    except ProfileError as error:
        raise CommandError(f"{path}: {'; '.join(error.problems)}", EXIT_USAGE) from error
    spec = parsed.spec if isinstance(parsed, SeccompProfile) else parsed
    if spec.base_profile_name:
        logger.warning(
            "%s names base profile %r, whose calls are not compared",
            path,
            spec.base_profile_name,
        )
    return spec


def handle(args: argparse.Namespace) -> int:
    try:
        native = native_architecture(args)
        old = permissions(_load(args.old), native)
        new = permissions(_load(args.new), native)
    except CommandError as error:
        logger.error("%s", error)
        return error.exit_status

    difference = compare(old, new)
    for architecture in difference.added_architectures:
        print(f"+ architecture {architecture.value}")
    for architecture in difference.removed_architectures:
        print(f"- architecture {architecture.value}")
    if difference.default_widened is not None:
        print(f"+ {difference.default_widened}")
    for name in difference.added:
        print(f"+ {name}")
    for name in difference.removed:
        print(f"- {name}")

    if difference.grew:
        print(
            f"seccomp-recorder diff: {args.new} permits more than {args.old} (the + lines):"
            f" review it, then commit {args.new} as {args.old}",
            file=sys.stderr,
        )
        return EXIT_DIFFERENT
    if difference.shrank and not args.allow_shrink:
        print(
            f"seccomp-recorder diff: {args.new} permits less than {args.old} (the - lines):"
            f" commit {args.new} as {args.old}, or pass --allow-shrink",
            file=sys.stderr,
        )
        return EXIT_DIFFERENT
    return EXIT_OK
