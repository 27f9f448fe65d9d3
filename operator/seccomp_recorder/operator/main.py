"""The operator's entry point: `seccomp-recorder-operator` and `python -m seccomp_recorder.operator`.

`main` loads the settings once, sets up logging, connects the API client, starts the
metrics server when a port is set, and runs kopf with the handlers of `handlers`, and
with kopf's liveness endpoint when a health port is set. Without a peering name, kopf
runs standalone and only one replica may run. With a peering name, replicas coordinate
through kopf peering, and one of them is active (see `peering`). The operator watches
its resources in every namespace.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Final

import kopf
from kubernetes.config import ConfigException

from seccomp_recorder.operator import handlers, metrics, peering
from seccomp_recorder.operator.kube import FINALIZER, connect
from seccomp_recorder.operator.settings import (
    ENV_PREFIX,
    OperatorSettings,
    SettingsError,
    load_settings,
)
from seccomp_recorder.setting_values import LogFormat

# Seconds a watch request lets the API server keep the stream open, and the client's
# own limit a little above it. Both bound how long a stream that went quiet without an
# error (a restarted API server, a dropped connection) stays unnoticed.
WATCH_SERVER_TIMEOUT: Final = 60
WATCH_CLIENT_TIMEOUT: Final = 90
# Seconds to wait for a TCP connection to the API server.
CONNECT_TIMEOUT: Final = 10

EXIT_SETTINGS: Final = 2
EXIT_CONNECTION: Final = 1


def build_kopf_settings(
    settings: OperatorSettings, started_ns: int | None = None
) -> kopf.OperatorSettings:
    """Build kopf's settings: our finalizer, storage under our prefix, timeouts, Events, peering.

    `started_ns`, the replica's start in nanoseconds since the epoch (default: now), sets
    its peering priority.
    """
    kopf_settings = kopf.OperatorSettings()
    peering.configure_peering(
        kopf_settings, settings, time.time_ns() if started_ns is None else started_ns
    )
    kopf_settings.persistence.finalizer = FINALIZER
    # Handler progress and the last handled spec go into `status.kopf`, which the CRDs
    # keep opaque, and not into annotations: profiles synced from Git would otherwise
    # show kopf's annotations as drift.
    kopf_settings.persistence.progress_storage = kopf.StatusProgressStorage(
        field="status.kopf.progress"
    )
    kopf_settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.last-handled-configuration"
    )
    kopf_settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    kopf_settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    kopf_settings.watching.connect_timeout = CONNECT_TIMEOUT
    kopf_settings.networking.connect_timeout = CONNECT_TIMEOUT
    # Only the Events the handlers post explicitly, with their stable reasons; log lines
    # stay in the log.
    kopf_settings.posting.loggers = False
    kopf_settings.posting.reporting_component = "seccomp-recorder-operator"
    kopf_settings.posting.reporting_instance = socket.gethostname()
    return kopf_settings


def liveness_endpoint(settings: OperatorSettings) -> str | None:
    """Return the URL kopf serves its liveness endpoint at, or None without a health port."""
    if settings.health_port == 0:
        return None
    host = settings.health_address
    if ":" in host:
        host = f"[{host}]"  # An IPv6 address, bracketed as URLs require.
    return f"http://{host}:{settings.health_port}/healthz"


def configure_logging(settings: OperatorSettings) -> None:
    """Log to stderr at the set level, as text with a [namespace/name] prefix, or as JSON.

    JSON lines carry the object's reference under the key `object`.
    """
    if settings.log_format is LogFormat.JSON:
        kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="object")
    else:
        kopf.configure(log_format=kopf.LogFormat.FULL, log_prefix=True)
    logging.getLogger().setLevel(settings.log_level)
    # One debug line per HTTP request would drown the operator's own debug lines.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    # The liveness endpoint logs an access line at INFO for every probe; show them at DEBUG only.
    access_level = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser; all settings come from environment variables."""
    return argparse.ArgumentParser(
        prog="seccomp-recorder-operator",
        description="The seccomp-recorder operator: deploys the node agent, turns"
        " SeccompRecordings into SeccompProfiles and keeps their statuses true.",
        epilog=f"Settings come from environment variables named {ENV_PREFIX}*, such as"
        f" {ENV_PREFIX}AGENT_IMAGE (required) and {ENV_PREFIX}LOG_LEVEL; see the"
        " operator's settings reference. The API server is found as kubectl finds it:"
        " in-cluster in a pod, else through KUBECONFIG or ~/.kube/config.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator until SIGTERM or SIGINT; return the exit status."""
    build_parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"seccomp-recorder-operator: invalid settings: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings)
    logger = logging.getLogger("seccomp_recorder.operator")
    try:
        api = connect()
    except ConfigException as error:
        logger.error("No API server to connect to: %s. Run the operator in a pod, or set"
                     " KUBECONFIG.", error)
        return EXIT_CONNECTION
    metrics.serve(settings)
    memo = handlers.Runtime(settings=settings, api=api)
    logger.info("Starting the operator; the agent image is %s.", settings.agent_image)
    if settings.peering_name is not None:
        peering.check_peering_object(api, settings.peering_name, logger)
    # The peering mode is in the settings; kopf.run's own peering arguments stay unset.
    kopf.run(
        settings=build_kopf_settings(settings),
        clusterwide=True,
        liveness_endpoint=liveness_endpoint(settings),
        memo=memo,
    )
    return 0
