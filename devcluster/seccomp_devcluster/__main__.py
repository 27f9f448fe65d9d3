"""Run a dev cluster in the foreground: `python -m seccomp_devcluster [--nodes N]`.

This is what `make devcluster` runs. It starts the API server emulator, N node
stand-ins, the scheduler and the Deployment and DaemonSet controllers, prints how to use kubectl with the cluster, and on
Ctrl-C (SIGINT) or SIGTERM stops everything and removes every container, network
namespace, mount and cgroup it made. Needs root, runc, crun and busybox-static.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from seccomp_devcluster.cluster import ClusterError, DevCluster
from seccomp_devcluster.node.podspec import DEFAULT_HOST_IMAGES


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_devcluster",
        description="Run a dev cluster (API server emulator plus node stand-ins) until Ctrl-C.")
    parser.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the cluster's files (default: a new temporary folder, "
                             "removed on exit)")
    parser.add_argument("--seccomp-default", action="store_true",
                        help="run pods that set no seccomp profile with RuntimeDefault")
    parser.add_argument("--crash-loop-backoff", type=float, default=10.0,
                        help="seconds before the first restart of a crashed container")
    parser.add_argument("--host-image", dest="host_images", action="append", default=None,
                        metavar="PATTERN",
                        help="image name pattern (fnmatch, without tag or digest) whose "
                             "containers run on the host's read-only root with the venv "
                             "first on PATH; repeat for more (default: "
                             f"{' '.join(DEFAULT_HOST_IMAGES)})")
    parser.add_argument("--log-level", default="INFO", help="logging level of every process")
    return parser.parse_args(argv)


def usage_text(cluster: DevCluster) -> str:
    lines = [
        f"Dev cluster with {len(cluster.nodes)} node(s) is up.",
        "",
        f"  export KUBECONFIG={cluster.kubeconfig_path}",
        "  kubectl get nodes",
        "  kubectl run demo --image=busybox --restart=Never -- echo hello",
        "  kubectl logs demo",
        "",
        "Images: busybox (busybox-static root); host and "
        + ", ".join(cluster.host_images) + " (read-only",
        "host root, venv first on PATH). Pods reach the API server through each node's",
        f"relay; their ca.crt is {cluster.pki.ca_cert}.",
        "crun with spec.runtimeClassName: crun. Localhost seccomp profiles go in each",
        "node's folder:",
    ]
    lines += [f"  {node.name}: {node.seccomp_dir}" for node in cluster.nodes]
    lines += ["", f"Process logs: {cluster.directory}/*.log. Press Ctrl-C to stop."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=arguments.log_level.upper(),
                        format="%(asctime)s %(levelname)s cluster %(name)s: %(message)s")
    stopping = threading.Event()

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("Received %s; stopping the dev cluster",
                                         signal.Signals(signal_number).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    with tempfile.TemporaryDirectory(prefix="seccomp-devcluster-") as temporary:
        directory = arguments.dir or Path(temporary)
        cluster = DevCluster(directory, arguments.nodes, log_level=arguments.log_level,
                             seccomp_default=arguments.seccomp_default,
                             crash_loop_backoff=arguments.crash_loop_backoff,
                             host_images=tuple(arguments.host_images or DEFAULT_HOST_IMAGES))
        try:
            cluster.start()
        except ClusterError as error:
            print(f"error: the dev cluster failed to start: {error}", file=sys.stderr)
            return 1
        try:
            print(usage_text(cluster), flush=True)
            # NB: a wait with a timeout, because a signal arriving while the main thread
            # blocks in an untimed wait was seen not to run its handler until much later.
            while not stopping.wait(0.5):
                pass
        finally:
            cluster.stop()
    print("Dev cluster stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
