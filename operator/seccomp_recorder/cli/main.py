"""Entry point of the `seccomp-recorder` command: one subcommand a module.

Errors, warnings and other diagnostics go to standard error through logging, in the form
argparse gives its own errors: `seccomp-recorder SUBCOMMAND: error: message`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from seccomp_recorder import __version__
from seccomp_recorder.cli import convert, diff, record, run, validate

SUBCOMMANDS = (record, run, convert, validate, diff)


class CommandFormatter(logging.Formatter):
    """Log formatter that writes a record as argparse writes an error: `PROG: level: message`."""

    def __init__(self, prog: str) -> None:
        super().__init__("%(message)s")
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.prog}: {record.levelname.lower()}: {super().format(record)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seccomp-recorder",
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
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CommandFormatter(f"{parser.prog} {args.subcommand}"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
