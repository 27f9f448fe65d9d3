"""Entry point of the `seccomp-recorder` command: one subcommand a module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from seccomp_recorder import __version__
from seccomp_recorder.cli import convert, diff, record, run, validate

SUBCOMMANDS = (record, run, convert, validate, diff)


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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="seccomp-recorder: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
