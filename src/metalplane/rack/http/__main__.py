"""Serve an image cache directory on its own: `python -m metalplane.rack.http --cache DIR --listen HOST:PORT`.

No region and no sync: what the cache's index says is verified is served (files that
changed on disk since their last hash are hashed first). Prints "ready HOST PORT" on
stdout once listening. `--workers N` forks N processes, each with its own socket on
the port (SO_REUSEPORT).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from metalplane.rack.http.server import HEADER_TIMEOUT, BootHttpServer, Timeouts, listen_socket
from metalplane.rack.images.cache import ImageCache
from metalplane.rack.limits import raise_open_files_limit
from metalplane.rack.prefork import log_to_stderr, serve_in_workers, serve_until_signalled
from metalplane.rack.tftp.__main__ import parse_listen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalplane.rack.http", description=__doc__)
    parser.add_argument("--cache", required=True, help="image cache directory (ImageCache layout)")
    parser.add_argument("--listen", default="0.0.0.0:5248", help="HOST:PORT (default 0.0.0.0:5248)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (SO_REUSEPORT)")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="connections open at once per process (default: from the open-files limit)",
    )
    parser.add_argument(
        "--max-per-client",
        type=int,
        default=None,
        help="connections per client address and process (default: from the open-files limit)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=HEADER_TIMEOUT,
        help=f"seconds to send a whole request head (default {HEADER_TIMEOUT:g})",
    )
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    for name in ("max_connections", "max_per_client"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.header_timeout <= 0:
        parser.error("--header-timeout must be positive")
    log_to_stderr(args.debug)
    raise_open_files_limit()
    host, port = parse_listen(args.listen) if ":" in args.listen else (args.listen, 5248)

    cache = ImageCache(args.cache)
    cache.load()
    if cache._unverified:
        asyncio.run(cache.verify_pending())

    return serve_in_workers(
        args.workers, host, port, listen_socket, lambda sock, announce: serve(sock, args, announce), args.loop
    )


async def serve(sock, args, announce: bool) -> None:
    cache = ImageCache(args.cache, symlink_tree=False)
    cache.load()
    server = BootHttpServer(
        cache,
        max_connections=args.max_connections,
        max_per_client=args.max_per_client,
        timeouts=Timeouts(header=args.header_timeout),
    )
    await server.start(sock=sock)
    caps = f"{server.max_connections} connections, {server.max_per_client} per client"
    await serve_until_signalled(server, logging.getLogger("metalplane.rack.http"), "HTTP", caps, announce)


if __name__ == "__main__":
    sys.exit(main())
