"""Run the API server emulator as its own process.

    python -m seccomp_devcluster.apiserver --state-dir DIR [--host 127.0.0.1] [--port 0] [--log-root DIR]

The kubeconfig is written to DIR/kubeconfig once the server listens; SIGTERM and SIGINT
stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from seccomp_devcluster.apiserver.server import ApiServer


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m seccomp_devcluster.apiserver",
        description="Serve the dev cluster's Kubernetes API server emulator on loopback.")
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="folder for the kubeconfig and apiserver.json (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--log-root", type=Path, default=None,
                        help="folder where the node stand-in writes container logs")
    parser.add_argument("--bookmark-interval", type=float, default=60.0,
                        help="seconds between BOOKMARK events in watches that allow them")
    parser.add_argument("--log-level", default="INFO",
                        help="logging level of the server (DEBUG logs every request)")
    return parser.parse_args(argv)


async def serve(arguments: argparse.Namespace) -> None:
    server = ApiServer(arguments.state_dir, arguments.host, arguments.port, arguments.log_root,
                       bookmark_interval=arguments.bookmark_interval)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stopping.set)
    await server.start()
    print(f"serving on {server.url}", flush=True)
    try:
        await stopping.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=arguments.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
