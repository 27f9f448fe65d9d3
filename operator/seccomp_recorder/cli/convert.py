"""The `seccomp-recorder convert` subcommand: translate between OCI JSON and Kubernetes YAML.

The profile is validated on the way, syscall names included, so a profile that a node
would reject is never written. Errors and warnings go to standard error through logging.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seccomp_recorder.cli.profile_files import (
    EXIT_INVALID_PROFILE,
    EXIT_OK,
    EXIT_STATUS_EPILOG,
    EXIT_USAGE,
    STDIN_STDOUT,
    CommandError,
    add_native_architecture_option,
    namespace_name,
    native_architecture,
    output_path,
    profile_name,
    read_input,
    write_output,
)
from seccomp_recorder.models import algebra
from seccomp_recorder.models.errors import ProfileError, describe_validation_error, quote
from seccomp_recorder.models.formats import (
    ProfileForm,
    parse_profile,
    render_kubernetes_yaml,
    render_oci_json,
)
from seccomp_recorder.models.profile import ObjectMeta, SeccompProfile, SeccompProfileSpec
from seccomp_recorder.syscalls.check import Severity, find_problems

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="translate a profile between OCI seccomp JSON and Kubernetes SeccompProfile YAML",
        description="""\
Translate a seccomp profile between the OCI seccomp JSON that runc, crun, podman and
docker read and the Kubernetes SeccompProfile YAML of seccomp-recorder. The input form
is detected from its content. The profile is validated first, syscall names included,
and nothing is written when it is invalid.
""",
        epilog=EXIT_STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="profile file in either form; - reads standard input",
    )
    parser.add_argument(
        "--to",
        choices=[form.value for form in ProfileForm],
        help="output form (default: the form the input is not in)",
    )
    parser.add_argument(
        "--name",
        type=profile_name,
        help=(
            "metadata.name of the Kubernetes output (default: the input's name for Kubernetes"
            " input, else the input file name without its extension)"
        ),
    )
    parser.add_argument(
        "--namespace",
        type=namespace_name,
        help=(
            "metadata.namespace of the Kubernetes output (default: the input's namespace, or"
            " none, so that kubectl uses its current namespace)"
        ),
    )
    parser.add_argument(
        "--base-profile",
        metavar="FILE",
        help=(
            "profile file, in either form, that the input's baseProfileName refers to; its"
            " rules are merged in and baseProfileName is removed (default: no merge, so an"
            " input with baseProfileName can only be converted to Kubernetes YAML)"
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_path,
        metavar="FILE",
        help=(
            "file to write, replaced atomically so it is never left partly written"
            " (default: standard output)"
        ),
    )
    add_native_architecture_option(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        write_output(args.output, convert(args))
    except CommandError as error:
        logger.error("%s", error)
        return error.exit_status
    except ProfileError as error:
        for problem in error.problems:
            logger.error("%s: %s", args.input, problem)
        return EXIT_INVALID_PROFILE
    return EXIT_OK


def convert(args: argparse.Namespace) -> str:
    """Return the converted text. Raises CommandError or ProfileError."""
    parsed = parse_profile(read_input(args.input))
    input_form = ProfileForm.KUBERNETES if isinstance(parsed, SeccompProfile) else ProfileForm.OCI
    output_form = ProfileForm(args.to) if args.to else _other_form(input_form)
    if output_form is ProfileForm.OCI and (args.name or args.namespace):
        raise CommandError(
            "--name and --namespace set Kubernetes metadata, which OCI JSON does not have:"
            " drop them or use --to kubernetes",
            EXIT_USAGE,
        )

    spec = parsed.spec if isinstance(parsed, SeccompProfile) else parsed
    if args.base_profile is not None:
        spec = _merge_base_profile(spec, args.base_profile)
    _check(spec, args, prefix="spec." if input_form is ProfileForm.KUBERNETES else "")

    if output_form is ProfileForm.OCI:
        return render_oci_json(spec)
    metadata = parsed.metadata if isinstance(parsed, SeccompProfile) else None
    return render_kubernetes_yaml(_resource(spec, metadata, args))


def _other_form(form: ProfileForm) -> ProfileForm:
    return ProfileForm.OCI if form is ProfileForm.KUBERNETES else ProfileForm.KUBERNETES


def _merge_base_profile(spec: SeccompProfileSpec, path: str) -> SeccompProfileSpec:
    if spec.base_profile_name is None:
        raise CommandError(
            f"--base-profile {path}: the input has no baseProfileName, so there is no base"
            " profile to merge: drop --base-profile",
            EXIT_USAGE,
        )
    try:
        base = parse_profile(read_input(path))
    except ProfileError as error:
        raise ProfileError(*(f"base profile {path}: {problem}" for problem in error.problems))
    if isinstance(base, SeccompProfile):
        if base.metadata.name != spec.base_profile_name:
            raise CommandError(
                f"--base-profile {path}: the file contains the profile"
                f" {quote(base.metadata.name)}, but the input's baseProfileName is"
                f" {quote(spec.base_profile_name)}: pass the file of"
                f" {quote(spec.base_profile_name)}",
                EXIT_USAGE,
            )
        base = base.spec
    return algebra.apply_base_profile(spec, base)


def _check(spec: SeccompProfileSpec, args: argparse.Namespace, *, prefix: str) -> None:
    """Log the warnings about `spec`; raise ProfileError listing its errors."""
    problems = find_problems(spec, native=native_architecture(args))
    for problem in problems:
        if problem.severity is Severity.WARNING:
            # The log line names the level, so the problem's own "warning: " is left out.
            logger.warning("%s: %s%s: %s", args.input, prefix, problem.path, problem.message)
    errors = [f"{prefix}{problem}" for problem in problems if problem.severity is Severity.ERROR]
    if errors:
        raise ProfileError(*errors)


def _resource(
    spec: SeccompProfileSpec, metadata: ObjectMeta | None, args: argparse.Namespace
) -> SeccompProfile:
    fields: dict[str, Any] = metadata.model_dump(by_alias=False) if metadata else {}
    if args.name:
        fields["name"] = args.name
    elif "name" not in fields:
        fields["name"] = _name_from_path(args.input)
    if args.namespace:
        fields["namespace"] = args.namespace
    try:
        return SeccompProfile(metadata=ObjectMeta.model_validate(fields), spec=spec)
    except ValidationError as error:
        problems = describe_validation_error(error, [ObjectMeta], prefix="metadata")
        raise CommandError(
            "; ".join(problems) + ": pass a valid --name or --namespace", EXIT_USAGE
        ) from error


def _name_from_path(path: str) -> str:
    if path == STDIN_STDOUT:
        raise CommandError(
            "the input is standard input, so the profile has no name: pass --name", EXIT_USAGE
        )
    return Path(path).stem
