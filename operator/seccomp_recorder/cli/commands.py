"""Checks of the command that `record` and `run` execute, made before anything starts."""

from __future__ import annotations

import os

from seccomp_recorder.cli.profile_files import CommandError

# The status a shell gives a command that it finds but cannot execute.
EXIT_NOT_EXECUTABLE = 126


def reject_directory(command: str) -> None:
    """Raise CommandError with status 126 when `command` is a path to a directory.

    A command name without '/' is looked up in PATH, which skips directories, so only
    paths are checked here.
    """
    # resolve_command (recorder/session.py) would report a directory as not executable
    # with the hint chmod +x, which misleads, so this check runs before it.
    if "/" in command and os.path.isdir(command):
        raise CommandError(
            f"command {command} is a directory, not a program: give the path of the"
            " executable file to run",
            EXIT_NOT_EXECUTABLE,
        )
