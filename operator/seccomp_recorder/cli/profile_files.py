"""Reading and writing profile files for the subcommands, and their shared exit codes."""

from __future__ import annotations

import argparse
import errno
import sys

from pydantic_core import PydanticCustomError

from seccomp_recorder import atomicfile
from seccomp_recorder.models.meta import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    MAX_LABEL_LENGTH,
    check_kubernetes_name,
)
from seccomp_recorder.models.profile import MAX_PROFILE_NAME_LENGTH, Architecture
from seccomp_recorder.syscalls import tables

EXIT_OK = 0
EXIT_INVALID_PROFILE = 1
EXIT_USAGE = 2

EXIT_STATUS_EPILOG = """\
exit status:
  0  every profile is valid and the command succeeded
  1  a profile is invalid: it cannot be parsed, fails validation or names an
     unknown syscall, and no output file is written
  2  the command could not run: an invalid option, an input file that cannot be
     read, or an output file that cannot be written
"""

STDIN_STDOUT = "-"
# Inputs larger than this are rejected unread, so that /dev/zero or a wrong file cannot
# exhaust memory. Kubernetes keeps objects under about 1.5 MiB (etcd's default request
# limit), and docker's default OCI profile is under 100 KB.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class CommandError(Exception):
    """A failure that ends a subcommand with `exit_status` after its message is shown."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def read_input(path: str) -> str:
    """Return the text of the file at `path`, or of standard input for `-`.

    Raises CommandError with EXIT_USAGE when the file cannot be read, is not UTF-8, or is
    larger than MAX_INPUT_BYTES (standard input: characters).
    """
    try:
        if path == STDIN_STDOUT:
            text = sys.stdin.read(MAX_INPUT_BYTES + 1)
            _check_size(path, len(text))
            return text
        with open(path, "rb") as file:
            content = file.read(MAX_INPUT_BYTES + 1)
        _check_size(path, len(content))
        return content.decode("utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(
            f"{path}: cannot read the file: {reason}: check the path and its permissions",
            EXIT_USAGE,
        ) from error
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{path}: the file is not UTF-8 text ({error.reason} at byte {error.start}):"
            " pass a JSON or YAML profile",
            EXIT_USAGE,
        ) from error


def _check_size(path: str, size: int) -> None:
    if size > MAX_INPUT_BYTES:
        raise CommandError(
            f"{path}: the input is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB, so it is"
            " not a profile: check the path",
            EXIT_USAGE,
        )


def write_output(path: str | None, text: str) -> None:
    """Write `text` to the file at `path`, or to standard output for None or `-`.

    The file is replaced atomically, through a symbolic link and keeping its mode, as
    `atomicfile.save_file` describes. Raises CommandError with EXIT_USAGE when the file
    cannot be written; the file at `path` is then left as it was.
    """
    if path is None or path == STDIN_STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomicfile.save_file(path, text)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(
            f"{path}: cannot write the output file: {reason}: {_write_fix(error.errno)}",
            EXIT_USAGE,
        ) from error


def _write_fix(number: int | None) -> str:
    """Return what to do about a failed write with errno `number`."""
    if number == errno.ENOSPC:
        return "the disk is full, so free space on it and run the command again"
    if number == errno.EDQUOT:
        return "the disk quota is used up, so free space and run the command again"
    if number == errno.EROFS:
        return "the file system is read-only, so choose a path on another one"
    if number == errno.EISDIR:
        return "it is a directory, so name a file"
    return "check that the directory exists and is writable"


def output_path(text: str) -> str:
    """Parse -o/--output, so that an empty path fails before anything runs."""
    if not text:
        raise argparse.ArgumentTypeError(
            "the path is empty: name a file, or - for standard output"
        )
    return text


def profile_name(text: str) -> str:
    """Parse --name, so that an empty or invalid SeccompProfile name fails at once."""
    return _kubernetes_name(text, "name", DNS_SUBDOMAIN_PATTERN, MAX_PROFILE_NAME_LENGTH)


def namespace_name(text: str) -> str:
    """Parse --namespace, so that an empty or invalid namespace fails at once."""
    return _kubernetes_name(text, "namespace", DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)


def _kubernetes_name(text: str, what: str, pattern: str, max_length: int) -> str:
    try:
        check_kubernetes_name(what, pattern, max_length)(text)
    except PydanticCustomError as error:
        raise argparse.ArgumentTypeError(error.message()) from None
    return text


def add_native_architecture_option(parser: argparse.ArgumentParser) -> None:
    """Add --native-architecture, the architecture that profiles without any are checked on."""
    parser.add_argument(
        "--native-architecture",
        choices=list(Architecture),
        type=Architecture,
        metavar="ARCH",
        help=(
            "check the syscall names of profiles that list no architectures against ARCH,"
            " one of the SCMP_ARCH_ names (default: this machine's architecture)"
        ),
    )


def native_architecture(args: argparse.Namespace) -> Architecture:
    """Return the architecture from --native-architecture, or this machine's."""
    chosen: Architecture | None = args.native_architecture
    if chosen is not None:
        return chosen
    try:
        return tables.native_architecture()
    except tables.UnsupportedArchitectureError as error:
        raise CommandError(f"{error}. Pass it with --native-architecture", EXIT_USAGE) from error
