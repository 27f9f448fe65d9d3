"""The `seccomp-recorder validate` subcommand: report every problem in profile files.

Each problem is printed to standard output as `FILE: PATH: message`, where PATH points
into the document (such as `spec.syscalls[0].names`). Warnings are printed too but
fail the command only with --strict. A file that cannot be read is an error of the
command, written to standard error.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from seccomp_recorder.cli.profile_files import (
    EXIT_INVALID_PROFILE,
    EXIT_OK,
    EXIT_STATUS_EPILOG,
    CommandError,
    add_native_architecture_option,
    native_architecture,
    read_input,
)
from seccomp_recorder.enforce.seccomp import (
    BPF_MAXINSNS,
    EnforcementError,
    compile_filter,
    describe_oversized_filter,
)
from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.formats import parse_profile
from seccomp_recorder.models.profile import Architecture, SeccompProfile, SeccompProfileSpec
from seccomp_recorder.syscalls import tables
from seccomp_recorder.syscalls.check import Problem, Severity, find_problems

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check profile files and print every problem found",
        description="""\
Check seccomp profiles in OCI JSON or Kubernetes YAML form: their fields, their
syscall names against each listed architecture's syscall table, settings that runc
cannot load, and the length of the compiled filter against the kernel's limit. Every
problem is printed, not only the first, as FILE: PATH: message.
""",
        epilog=EXIT_STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="profile file to check, in either form; - reads standard input",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 on warnings too (default: only errors fail)",
    )
    add_native_architecture_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        native = native_architecture(args)
    except CommandError as error:
        logger.error("%s", error)
        return error.exit_status
    status = EXIT_OK
    for path in args.files:
        status = max(status, _validate_file(path, native=native, strict=args.strict))
    return status


def _validate_file(path: str, *, native: Architecture, strict: bool) -> int:
    """Print the problems of one file and return its exit status."""
    try:
        text = read_input(path)
    except CommandError as error:
        logger.error("%s", error)
        return error.exit_status
    try:
        parsed = parse_profile(text)
    except ProfileError as error:
        for message in error.problems:
            print(f"{path}: {message}")
        return EXIT_INVALID_PROFILE

    if isinstance(parsed, SeccompProfile):
        spec, prefix = parsed.spec, "spec."
    else:
        spec, prefix = parsed, ""
    problems = find_problems(spec, native=native)
    oversized = _check_filter_size(spec, native)
    if oversized is not None:
        problems.append(oversized)
    for problem in problems:
        print(f"{path}: {prefix}{problem}")
    if not problems:
        print(f"{path}: valid")
    failing = [problem for problem in problems if strict or problem.severity is Severity.ERROR]
    return EXIT_INVALID_PROFILE if failing else EXIT_OK


def _check_filter_size(spec: SeccompProfileSpec, native: Architecture) -> Problem | None:
    """Warn when the filter that libseccomp compiles here is too long for the kernel to load.

    The length depends on the libseccomp version and on the machine's architecture, which
    libseccomp adds to every filter, so a node may compile a slightly different program.
    The check is skipped when the profile is checked for another native architecture, or
    when libseccomp cannot compile it here (the other checks report why).
    """
    try:
        if not spec.architectures and native is not tables.native_architecture():
            return None
        count = compile_filter(spec, log_skipped=False).instruction_count()
    except (EnforcementError, OSError, tables.UnsupportedArchitectureError):
        return None
    if count <= BPF_MAXINSNS:
        return None
    return Problem(
        "syscalls",
        f"{describe_oversized_filter(count)} (compiled with this machine's libseccomp)",
        Severity.WARNING,
    )
