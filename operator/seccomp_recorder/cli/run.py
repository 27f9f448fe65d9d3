"""The `seccomp-recorder run` subcommand: run a command under a profile through libseccomp.

The filter is installed in this process, which then replaces itself with the
command through execve, so the only call made under the filter before the
command's own is that execve. The command's exit status and signals are its own.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any

from seccomp_recorder.cli.commands import reject_directory
from seccomp_recorder.cli.profile_files import CommandError, read_input
from seccomp_recorder.enforce.seccomp import EnforcementError, compile_filter
from seccomp_recorder.models.errors import ProfileError
from seccomp_recorder.models.formats import parse_profile
from seccomp_recorder.models.profile import SeccompProfile
from seccomp_recorder.recorder.session import CommandNotFound, exec_command, resolve_command
from seccomp_recorder.syscalls.check import Severity, find_problems

logger = logging.getLogger(__name__)

EXIT_INVALID_PROFILE = 1
EXIT_USAGE = 2
EXIT_ENFORCEMENT_FAILED = 125

EPILOG = """\
exit status:
  the command's own exit status (the command replaces this process); 1 for an
  invalid profile; 2 for an invalid option or an unreadable profile file; 125 when
  the filter cannot be installed; 126 when the command is not executable; 127 when
  it is not found.

example:
  seccomp-recorder run --profile redis.yaml -- redis-server --port 7000
"""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run a command under a seccomp profile, enforced through libseccomp",
        description="""\
Install the seccomp filter of a profile (OCI JSON or Kubernetes YAML) and execute
COMMAND under it. A syscall the profile denies fails in COMMAND with the profile's
errno (EPERM unless the profile says otherwise), or gets the profile's other action.
The filter sets no_new_privs, as libseccomp does by default.
""",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        required=True,
        metavar="FILE",
        help="the profile to enforce, in either form; - reads standard input",
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARGS...]",
        help="the command to run, after --",
    )
    parser.set_defaults(handler=handle)


def _fail(message: str, status: int) -> int:
    logger.error("%s", message)
    return status


def handle(args: argparse.Namespace) -> int:
    command: list[str] = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        return _fail(
            "no command given: put the command after --, for example:"
            " seccomp-recorder run --profile profile.yaml -- ./server",
            EXIT_USAGE,
        )

    try:
        text = read_input(args.profile)
        parsed = parse_profile(text)
    except CommandError as error:
        return _fail(str(error), error.exit_status)
    except ProfileError as error:
        return _fail(f"{args.profile}: invalid profile: " + "; ".join(error.problems), 1)
    spec = parsed.spec if isinstance(parsed, SeccompProfile) else parsed

    problems = [p for p in find_problems(spec) if p.severity is Severity.ERROR]
    if problems:
        listed = "; ".join(str(problem) for problem in problems)
        return _fail(f"{args.profile}: invalid profile: {listed}", EXIT_INVALID_PROFILE)

    try:
        reject_directory(command[0])
        executable = resolve_command(command[0])
        compiled = compile_filter(spec)
    except CommandError as error:
        return _fail(str(error), error.exit_status)
    except CommandNotFound as error:
        return _fail(str(error), error.exit_status)
    except EnforcementError as error:
        return _fail(str(error), EXIT_ENFORCEMENT_FAILED)

    logger.info("running %s under %s", executable, args.profile)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        compiled.load()
    except EnforcementError as error:
        return _fail(str(error), EXIT_ENFORCEMENT_FAILED)
    try:
        exec_command(executable, command)
    except OSError as error:
        # The filter is in place and may deny write. The message is then lost, but print()
        # would raise and turn the exit status into 1, so it is written directly.
        message = (
            f"seccomp-recorder run: error: cannot execute {executable} under the profile: {error}\n"
        )
        with contextlib.suppress(OSError):
            os.write(sys.stderr.fileno(), message.encode())
        return 126
