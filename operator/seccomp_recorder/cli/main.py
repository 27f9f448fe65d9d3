"""Entry point of the `seccomp-recorder` command: one subcommand a module.

Errors, warnings and other diagnostics go to standard error through logging, in the form
argparse gives its own errors: `seccomp-recorder SUBCOMMAND: error: message`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from seccomp_recorder import __version__

PROG = "seccomp-recorder"
# The status a shell reports for a command that SIGINT ended.
EXIT_INTERRUPTED = 128 + signal.SIGINT

logger = logging.getLogger(__name__)


class CommandFormatter(logging.Formatter):
    """Log formatter that writes a record as argparse writes an error: `PROG: level: message`."""

    def __init__(self, prog: str) -> None:
        super().__init__("%(message)s")
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.prog}: {record.levelname.lower()}: {super().format(record)}"


def build_parser() -> argparse.ArgumentParser:
    # The subcommands import pydantic and the models, most of the start-up time. They are
    # imported here, inside main's handling of Ctrl-C, so an early Ctrl-C prints no traceback.
    from seccomp_recorder.cli import convert, diff, record, run, validate

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record the syscalls a program makes and turn them into a seccomp profile.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="level of the diagnostics written to stderr (default: warning)",
    )
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    for module in (record, run, convert, validate, diff):
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run_subcommand(argv)
    except KeyboardInterrupt:
        return _interrupted()
    except RuntimeError as error:
        # A Ctrl-C while pydantic builds a model class arrives wrapped by Python's
        # __set_name__ hook, as "Error calling __set_name__ ...".
        if not isinstance(error.__cause__, KeyboardInterrupt):
            raise
        return _interrupted()


def _interrupted() -> int:
    """Report a Ctrl-C and return the status a shell would report for it."""
    # `record` passes SIGINT on to the command it runs. Anywhere else, Ctrl-C ends the
    # subcommand.
    if logging.getLogger().handlers:
        logger.error("interrupted by SIGINT (Ctrl-C)")
    else:
        print(f"{PROG}: error: interrupted by SIGINT (Ctrl-C)", file=sys.stderr)
    return EXIT_INTERRUPTED


def _run_subcommand(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CommandFormatter(f"{PROG} {args.subcommand}"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
