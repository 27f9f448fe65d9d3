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
from typing import Any, Final

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
from seccomp_recorder.models.profile import (
    Action,
    Architecture,
    Operator,
    SeccompProfile,
    SeccompProfileSpec,
    SyscallArgument,
)

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
when a rule allows it (SCMP_ACT_ALLOW or SCMP_ACT_LOG). Argument conditions are
compared as written: a call allowed without conditions permits more than the same call
allowed under conditions, and a condition set that OLD lacks counts as permitting more.
Rule order, errno values and metadata are not compared.
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


# The argument conditions of one allow rule, all of which must hold; () for none.
Conditions = tuple[SyscallArgument, ...]
# The condition sets under which a call is allowed: {()} when it is allowed always.
Grant = frozenset[Conditions]
UNCONDITIONAL: Final[Grant] = frozenset({()})

_OPERATOR_SYMBOLS: Final = {
    Operator.NE: "!=", Operator.LT: "<", Operator.LE: "<=", Operator.EQ: "==",
    Operator.GE: ">=", Operator.GT: ">",
}


@dataclass(frozen=True)
class Permissions:
    """The permissions of a profile: calls with their conditions, architectures, default action."""

    grants: dict[str, Grant]
    architectures: frozenset[Architecture]
    default_action: Action

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.grants)


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
    conditions: dict[str, set[Conditions]] = {}
    for rule in spec.syscalls:
        if rule.action not in PERMITTING_ACTIONS:
            continue
        for name in rule.names:
            conditions.setdefault(name, set()).add(tuple(sorted(rule.args, key=_argument_key)))
    grants = {
        name: UNCONDITIONAL if () in sets else frozenset(sets) for name, sets in conditions.items()
    }
    architectures = frozenset(spec.architectures) or frozenset({native})
    return Permissions(grants, architectures, spec.default_action)


def _argument_key(argument: SyscallArgument) -> tuple[int, str, int, int]:
    return (argument.index, argument.op.value, argument.value, argument.value_two)


def describe_conditions(conditions: Conditions) -> str:
    """Render one rule's argument conditions, such as `arg0 == 1 and arg2 & 0x3 == 0x1`."""
    parts = []
    for argument in conditions:
        if argument.op is Operator.MASKED_EQ:
            parts.append(
                f"arg{argument.index} & {argument.value:#x} == {argument.value_two:#x}"
            )
        else:
            parts.append(f"arg{argument.index} {_OPERATOR_SYMBOLS[argument.op]} {argument.value}")
    return " and ".join(parts)


def _grant_lines(name: str, grant: Grant) -> list[str]:
    """Render what `grant` allows of call `name`: the name, or one line per condition set."""
    if grant == UNCONDITIONAL:
        return [name]
    return [f"{name} when {text}" for text in sorted(map(describe_conditions, grant))]


def _changes(name: str, old: Grant | None, new: Grant | None) -> tuple[list[str], list[str]]:
    """Return what `new` permits of call `name` beyond `old`, and what it no longer permits."""
    if old == new:
        return [], []
    if old is None:
        return _grant_lines(name, new) if new is not None else [], []
    if new is None:
        return [], _grant_lines(name, old)
    if new == UNCONDITIONAL:
        return [f"{name} without argument conditions"], []
    if old == UNCONDITIONAL:
        return [], [f"{name} without argument conditions"]
    return _grant_lines(name, new - old), _grant_lines(name, old - new)


def compare(old: Permissions, new: Permissions) -> ProfileDiff:
    """Compute what `new` permits beyond `old`, and what it no longer permits."""
    widened = None
    if PERMISSIVENESS[new.default_action] > PERMISSIVENESS[old.default_action]:
        widened = (
            f"default action {old.default_action.value} -> {new.default_action.value} permits more"
        )
    added: list[str] = []
    removed: list[str] = []
    for name in sorted(old.names | new.names):
        more, less = _changes(name, old.grants.get(name), new.grants.get(name))
        added += more
        removed += less
    return ProfileDiff(
        added=tuple(added),
        removed=tuple(removed),
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
        if args.old == "-" and args.new == "-":
            raise CommandError(
                "OLD and NEW are both -, but standard input can be read only once: give a"
                " file for one of them",
                EXIT_USAGE,
            )
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
