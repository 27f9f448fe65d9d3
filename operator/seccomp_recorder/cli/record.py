"""The `seccomp-recorder record` subcommand: record a command and write its profile.

The command runs with every task it creates recorded in the kernel, containers it
starts through runc or crun included, until the last of them exits. The profile is
written only after that, atomically: there is no file, or a complete one.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import stat
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any, Self

from pydantic import ValidationError

from seccomp_recorder import atomicfile
from seccomp_recorder.cli.commands import reject_directory
from seccomp_recorder.cli.profile_files import (
    STDIN_STDOUT,
    CommandError,
    namespace_name,
    output_path,
    profile_name,
    write_output,
)
from seccomp_recorder.models import algebra
from seccomp_recorder.models.errors import ProfileError, describe_validation_error
from seccomp_recorder.models.formats import ProfileForm, render_kubernetes_yaml, render_oci_json
from seccomp_recorder.models.profile import (
    MAX_ERRNO,
    Action,
    ObjectMeta,
    SeccompProfile,
    SeccompProfileSpec,
)
from seccomp_recorder.recorder.analysis import RecordedSyscalls, Target, analyse, describe_sources
from seccomp_recorder.recorder.errors import RecorderError
from seccomp_recorder.recorder.maps import Stat
from seccomp_recorder.recorder.recorder import Mode, Recorder, RecorderSettings
from seccomp_recorder.recorder.session import CommandNotFound, record_command
from seccomp_recorder.syscalls.check import Severity, find_problems

logger = logging.getLogger(__name__)

# Exit status when the recorder itself fails, as `docker run` and `podman run` use 125
# for their own errors, leaving 126 and 127 for a command that cannot run.
EXIT_RECORDER_FAILED = 125
EXIT_USAGE = 2
# The status a shell reports for a command that SIGINT ended.
EXIT_INTERRUPTED = 128 + signal.SIGINT

ANNOTATION_PREFIX = "seccomp-recorder.io/"
# Calls lost in the kernel make a profile incomplete, and these counters report it.
LOSS_COUNTERS = {
    Stat.SET_FULL: "the syscall map was full",
    Stat.TASK_STATE_FULL: "the task map was full, so some tasks were not followed",
    Stat.ODD_FULL: "the map of unusual syscall numbers was full",
}
DEFAULT_ACTIONS = [Action.ERRNO, Action.KILL_PROCESS, Action.KILL_THREAD, Action.TRAP, Action.LOG]

EPILOG = """\
exit status:
  the command's own exit status (128+N when signal N ended it) once the profile
  is written; 2 for an invalid option; 125 when the recorder fails (nothing is
  written); 126 when the command is not executable; 127 when it is not found.

examples:
  seccomp-recorder record -o redis.yaml --name redis -- redis-server --port 7000
  seccomp-recorder record --format oci -o profile.json -- runc run -b bundle ctr
"""


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "record",
        help="run a command, record its syscalls with eBPF and write a seccomp profile",
        description="""\
Run COMMAND and record every syscall it and all its descendants make, including the
containers it starts through runc or crun, until the last of them exits; then write an
allow-list seccomp profile. For containers, the profile contains the workload's calls
and the calls the runtime makes after installing the filter. It contains none of the
runtime's setup calls. Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.
""",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_path,
        metavar="FILE",
        help=(
            "file to write the profile to, atomically; - writes it to standard output, which"
            " the command writes to as well (default: standard output, with a warning when"
            " that is not a terminal)"
        ),
    )
    parser.add_argument(
        "--format",
        choices=[form.value for form in ProfileForm],
        default=ProfileForm.KUBERNETES.value,
        help=(
            "kubernetes: a SeccompProfile YAML object; oci: the seccomp JSON that runc, crun,"
            " podman and docker read (default: kubernetes)"
        ),
    )
    parser.add_argument(
        "--name",
        type=profile_name,
        help="metadata.name of the SeccompProfile (default: the command's file name)",
    )
    parser.add_argument(
        "--namespace",
        type=namespace_name,
        help="metadata.namespace of the SeccompProfile (default: none, kubectl's current one)",
    )
    parser.add_argument(
        "--target",
        choices=[target.value for target in Target],
        default=Target.AUTO.value,
        help=(
            "what the profile is for: containers (the runc or crun containers the command"
            " started), command (the command's own processes), or auto: containers when any"
            " were started, else the command (default: auto)"
        ),
    )
    parser.add_argument(
        "--default-action",
        choices=[action.value for action in DEFAULT_ACTIONS],
        default=Action.ERRNO.value,
        help="action for every syscall that was not recorded (default: SCMP_ACT_ERRNO)",
    )
    parser.add_argument(
        "--default-errno",
        type=_errno_value,
        default=1,
        metavar="ERRNO",
        help=(
            f"errno from 0 to {MAX_ERRNO} that SCMP_ACT_ERRNO returns for syscalls not recorded"
            " (default: 1, EPERM)"
        ),
    )
    parser.add_argument(
        "--btf",
        type=Path,
        metavar="PATH",
        help=(
            "BTF file of the running kernel for the eBPF program's relocations (default:"
            " $SECCOMP_RECORDER_BTF or /sys/kernel/btf/vmlinux)"
        ),
    )
    parser.add_argument(
        "--bpf-object",
        type=Path,
        metavar="PATH",
        help=(
            "compiled recorder BPF object (default: $SECCOMP_RECORDER_BPF_OBJECT or the one"
            " `make bpf` builds inside the package)"
        ),
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARGS...]",
        help="the command to record, after --",
    )
    parser.set_defaults(handler=handle)


def _errno_value(text: str) -> int:
    """Parse --default-errno, so that a bad value fails before the command runs, not after."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid errno {text!r}: use a whole number from 0 to {MAX_ERRNO}"
        ) from None
    if not 0 <= value <= MAX_ERRNO:
        raise argparse.ArgumentTypeError(
            f"errno {value} is out of range: use a whole number from 0 to {MAX_ERRNO}"
        )
    return value


class _Interrupted(Exception):
    """SIGINT arrived while `record` itself, not the command, was running."""


class _DeferredSigint:
    """While installed, SIGINT sets `received` instead of raising KeyboardInterrupt.

    libbpf calls back into Python while the recorder loads, and ctypes prints an exception
    raised in a callback with its traceback and drops it. So a Ctrl-C only sets a flag,
    which `check` turns into `_Interrupted` between the steps of `record`. While the command
    runs, `record_command` installs its own handler that passes SIGINT on to the command.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None

    def __enter__(self) -> Self:
        self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, *_exception: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _note(self, _number: int, _frame: FrameType | None) -> None:
        self.received = True

    def check(self) -> None:
        """Raise `_Interrupted` when SIGINT arrived since the handler was installed."""
        if self.received:
            raise _Interrupted


def handle(args: argparse.Namespace) -> int:
    try:
        with _DeferredSigint() as sigint:
            return _record(args, sigint)
    except _Interrupted:
        logger.error("interrupted by SIGINT (Ctrl-C), so no profile is written")
        return EXIT_INTERRUPTED


def _record(args: argparse.Namespace, sigint: _DeferredSigint) -> int:
    command: list[str] = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        logger.error(
            "no command given: put the command to record after --, for example:"
            " seccomp-recorder record -o profile.yaml -- ./my-tests"
        )
        return EXIT_USAGE

    try:
        reject_directory(command[0])
        _check_output_path(args.output)
        metadata = _metadata(args, command)
    except CommandError as error:
        logger.error("%s", error)
        return error.exit_status

    _warn_about_shared_stdout(args.output)
    settings = RecorderSettings.from_environment(object_path=args.bpf_object, btf_path=args.btf)
    try:
        with Recorder(Mode.COMMAND_TREE, settings=settings) as recorder:
            sigint.check()
            outcome = record_command(command, recorder)
            losses = {stat: count for stat, count in recorder.stats().items() if count}
        sigint.check()
    except CommandNotFound as error:
        logger.error("%s", error)
        return error.exit_status
    except RecorderError as error:
        logger.error("%s", error)
        return EXIT_RECORDER_FAILED

    lost = [LOSS_COUNTERS[stat] for stat in losses if stat in LOSS_COUNTERS]
    if lost:
        logger.error(
            "syscalls were lost while recording (%s), so no profile is written: record fewer"
            " processes at once",
            "; ".join(lost),
        )
        return EXIT_RECORDER_FAILED

    if outcome.exit_status != 0:
        logger.warning(
            "the command exited with status %d: the profile covers only what ran before it ended",
            outcome.exit_status,
        )
    recorded = analyse(outcome.recordings, outcome.launcher_mntns, Target(args.target))
    try:
        text = _render(recorded, args, metadata)
        write_output(args.output, text)
    except (CommandError, ProfileError) as error:
        logger.error("%s", error)
        return EXIT_RECORDER_FAILED
    if args.output not in (None, STDIN_STDOUT):
        logger.info("wrote the profile of %d syscalls to %s", len(recorded.all_names()), args.output)
    return outcome.exit_status


def _warn_about_shared_stdout(output: str | None) -> None:
    """Warn when the profile goes to a redirected standard output that the command shares.

    `record -- COMMAND > profile.yaml` puts whatever COMMAND prints into the file too. On a
    terminal both are plain to see. An explicit `-o -` requests standard output and
    silences the warning.
    """
    if output is not None or sys.stdout.isatty():
        return
    logger.warning(
        "the profile goes to standard output, which the command writes to as well, so"
        " anything it prints ends up in the profile: pass -o FILE to keep them apart, or"
        " -o - to write to standard output without this warning"
    )


def _check_output_path(output: str | None) -> None:
    """Fail before the command runs when the profile could not be written afterwards."""
    if output in (None, STDIN_STDOUT):
        return
    assert output is not None
    try:
        status: os.stat_result | None = os.stat(output)
    except FileNotFoundError:
        status = None
    except OSError as error:
        raise CommandError(
            f"cannot write {output}: {error.strerror}; choose another path", EXIT_USAGE
        ) from error
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise CommandError(f"cannot write {output}: it is a directory; name a file", EXIT_USAGE)
    if status is not None and not stat.S_ISREG(status.st_mode):
        return  # A device or FIFO, such as /dev/null, is written in place.

    # The file is written where its symbolic links lead, so that directory must be writable.
    directory = atomicfile.resolve_symlinks(output).parent
    if not directory.is_dir():
        raise CommandError(
            f"cannot write {output}: directory {directory} does not exist; create it first",
            EXIT_USAGE,
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CommandError(
            f"cannot write {output}: directory {directory} is not writable; choose another path",
            EXIT_USAGE,
        )
    # Permissions do not tell everything: a read-only mount, or /proc and /sys, where
    # no new file can be made. The profile is written through a new file, so try one.
    try:
        probe, probe_name = tempfile.mkstemp(dir=directory, prefix=".seccomp-recorder-probe.")
    except OSError as error:
        raise CommandError(
            f"cannot write {output}: no file can be created in {directory} ({error.strerror});"
            " choose another path",
            EXIT_USAGE,
        ) from error
    os.close(probe)
    os.unlink(probe_name)


def _default_name(command: list[str]) -> str:
    """Derive a Kubernetes object name from the command's file name."""
    base = os.path.basename(command[0]).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:63].strip("-")
    return name or "profile"


def _metadata(args: argparse.Namespace, command: list[str]) -> ObjectMeta:
    try:
        return ObjectMeta(name=args.name or _default_name(command), namespace=args.namespace)
    except ValidationError as error:
        problems = describe_validation_error(error, (ObjectMeta,))
        raise CommandError(
            "; ".join(problems) + ": use lowercase letters, digits and '-' (RFC 1123)",
            EXIT_USAGE,
        ) from error


def profile_annotations(recorded: RecordedSyscalls) -> dict[str, str]:
    """Describe how the profile was made, deterministically, for metadata.annotations."""
    result: dict[str, str] = {}
    if recorded.sources:
        result[ANNOTATION_PREFIX + "filter-point"] = describe_sources(recorded)
    if recorded.unknown_numbers:
        result[ANNOTATION_PREFIX + "unknown-syscalls"] = ",".join(
            f"{architecture}:{number}"
            for architecture in sorted(recorded.unknown_numbers)
            for number in sorted(recorded.unknown_numbers[architecture])
        )
    return result


def _render(recorded: RecordedSyscalls, args: argparse.Namespace, metadata: ObjectMeta) -> str:
    for architecture, numbers in sorted(recorded.unknown_numbers.items()):
        for number in sorted(numbers):
            logger.warning(
                "syscall number %d has no name on %s; it is not in the profile (newer than"
                " this recorder's tables?)",
                number,
                architecture,
            )
    names = recorded.all_names()
    if not names:
        target = "no container was started" if args.target == Target.CONTAINERS else "nothing ran"
        raise ProfileError(f"no syscall was recorded ({target}), so there is no profile to write")

    spec: SeccompProfileSpec = algebra.build_allow_list(
        names,
        architectures=recorded.architectures(),
        default_action=Action(args.default_action),
        default_errno_ret=args.default_errno,
    )
    problems = [p for p in find_problems(spec) if p.severity is Severity.ERROR]
    if problems:
        raise ProfileError(*(str(problem) for problem in problems))

    if args.format == ProfileForm.OCI.value:
        return render_oci_json(spec)
    described = metadata.model_copy(update={"annotations": profile_annotations(recorded)})
    return render_kubernetes_yaml(SeccompProfile(metadata=described, spec=spec))
