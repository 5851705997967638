"""``python -m studio.simulator --port 8090 [--host 127.0.0.1]``: run the simulator under daphne.

Prints ``simulator listening on http://HOST:PORT`` (with the real port when ``--port 0``) once
the socket is bound, so launchers can wait on that line or on ``GET /__health``. SIGINT and
SIGTERM stop the Twisted reactor, which cancels open requests and exits with status 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to bind; 0 picks a free one")
    parser.add_argument("--access-log", action="store_true", help="log every request to stdout")
    args = parser.parse_args(argv)

    # daphne.server installs the asyncio Twisted reactor on import: import it before anything
    # else that might pull Twisted in.
    from daphne.access import AccessLogGenerator
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    from studio.simulator.app import application

    class SimulatorServer(Server):
        def listen_success(self, port: Any) -> None:
            super().listen_success(port)
            address = port.getHost()
            host = args.host if ":" not in args.host else f"[{args.host}]"
            print(f"simulator listening on http://{host}:{address.port}", flush=True)

    server = SimulatorServer(
        application=application,
        endpoints=build_endpoint_description_strings(host=args.host, port=args.port),
        signal_handlers=True,
        action_logger=AccessLogGenerator(sys.stdout) if args.access_log else None,
        http_timeout=None,  # long silences ([[slow]], [[sleep=N]]) are the point
        application_close_timeout=5,
        verbosity=0,
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
