"""Run one simulated node of the dev cluster.

    python -m seccomp_devcluster.node --kubeconfig K --node-name N --kubelet-root DIR \
        --state-dir DIR --log-root DIR [options]

Needs root, runc and crun. SIGTERM or SIGINT stops every container of the node,
removes its network namespaces, mounts and cgroups, and exits with code 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import kubernetes

from seccomp_devcluster import oci
from seccomp_devcluster.node.agent import NodeAgent
from seccomp_devcluster.node.podspec import DEFAULT_HOST_IMAGES, default_host_image_path
from seccomp_devcluster.node.settings import NodeSettings


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_devcluster.node",
        description="Run a dev cluster node: register a Node and run its pods with runc/crun.")
    parser.add_argument("--kubeconfig", type=Path, required=True,
                        help="kubeconfig of the API server to register with")
    parser.add_argument("--node-name", required=True, help="name of the Node object")
    parser.add_argument("--kubelet-root", type=Path, required=True,
                        help="the kubelet's root directory; Localhost seccomp profiles are "
                             "read from its seccomp/ folder")
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="folder for runtime state, bundles and network namespaces; "
                             "removed on exit")
    parser.add_argument("--log-root", type=Path, required=True,
                        help="folder for container logs, shared with the API server")

    parser.add_argument("--node-ip", default="127.0.0.1",
                        help="the node's InternalIP and the hostIP of its pods")
    parser.add_argument("--pod-cidr", default="127.10.0.0/16",
                        help="loopback range from which pods get their podIP")

    parser.add_argument("--seccomp-default", action="store_true",
                        help="run pods that set no seccomp profile with RuntimeDefault, as "
                             "the kubelet's flag of the same name does")
    parser.add_argument("--crash-loop-backoff", type=float, default=10.0,
                        help="seconds before the first restart of a crashed container, "
                             "doubled per restart")
    parser.add_argument("--max-crash-loop-backoff", type=float, default=300.0,
                        help="upper bound of the restart back-off, in seconds")
    parser.add_argument("--heartbeat-interval", type=float, default=10.0,
                        help="seconds between refreshes of the Node's Ready condition")
    parser.add_argument("--shutdown-grace-period", type=float, default=2.0,
                        help="seconds containers get between SIGTERM and SIGKILL when the "
                             "node stops")

    parser.add_argument("--host-image", dest="host_images", action="append", default=None,
                        metavar="PATTERN",
                        help="image name pattern (fnmatch, without tag or digest) that runs on "
                             "the host's read-only root; repeat for more (default: "
                             f"{' '.join(DEFAULT_HOST_IMAGES)})")
    parser.add_argument("--host-image-path", default=None,
                        help="PATH of host-root images (default: this Python's venv bin "
                             "folder, then the usual folders)")
    parser.add_argument("--tls-cert-file", type=Path, default=None,
                        help="serving certificate of the API relay that pods connect to (PEM)")
    parser.add_argument("--tls-private-key-file", type=Path, default=None,
                        help="private key of --tls-cert-file (PEM)")
    parser.add_argument("--root-ca-file", type=Path, default=None,
                        help="CA certificate that pods get as ca.crt; without the three TLS "
                             "options the node makes its own CA")

    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO...)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format=f"%(asctime)s %(levelname)s node/{arguments.node_name} %(name)s: %(message)s")
    settings = NodeSettings(
        node_name=arguments.node_name, kubelet_root=arguments.kubelet_root,
        state_dir=arguments.state_dir, log_root=arguments.log_root,
        node_ip=arguments.node_ip, pod_cidr=arguments.pod_cidr,
        seccomp_default=arguments.seccomp_default,
        crash_loop_backoff=arguments.crash_loop_backoff,
        max_crash_loop_backoff=arguments.max_crash_loop_backoff,
        heartbeat_interval=arguments.heartbeat_interval,
        host_images=tuple(arguments.host_images if arguments.host_images is not None
                          else DEFAULT_HOST_IMAGES),
        host_image_path=arguments.host_image_path or default_host_image_path(),
        tls_cert_file=arguments.tls_cert_file,
        tls_private_key_file=arguments.tls_private_key_file,
        root_ca_file=arguments.root_ca_file)

    stopping = threading.Event()

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("Received %s; stopping",
                                         signal.Signals(signal_number).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    api_client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(arguments.kubeconfig))
    # Beside the state directory (which the node removes on exit), so that after a
    # crash the cluster launcher's sweep of its folder unmounts it.
    with oci.crun_ready(settings.state_dir.with_name(settings.state_dir.name + "-hugetlb")):
        agent = NodeAgent(settings, api_client,
                          shutdown_grace_period=arguments.shutdown_grace_period)
        try:
            agent.start()
            print(f"node {settings.node_name} ready", flush=True)
            stopping.wait()
        finally:
            agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
