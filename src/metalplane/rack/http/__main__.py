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
import os
import signal
import sys

from metalplane.rack.http.server import BootHttpServer, listen_socket
from metalplane.rack.images.cache import ImageCache
from metalplane.rack.limits import raise_open_files_limit
from metalplane.rack.prefork import serve_in_workers
from metalplane.rack.tftp.__main__ import parse_listen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalplane.rack.http", description=__doc__)
    parser.add_argument("--cache", required=True, help="image cache directory (ImageCache layout)")
    parser.add_argument("--listen", default="0.0.0.0:5248", help="HOST:PORT (default 0.0.0.0:5248)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (SO_REUSEPORT)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s [%(levelname)s] %(message)s")
    raise_open_files_limit()
    host, port = parse_listen(args.listen) if ":" in args.listen else (args.listen, 5248)

    cache = ImageCache(args.cache)
    cache.load()
    if cache._unverified:
        asyncio.run(cache.verify_pending())

    return serve_in_workers(args.workers, host, port, listen_socket,
                            lambda sock, announce: serve(sock, args, announce), args.loop)


async def serve(sock, args, announce: bool) -> None:
    cache = ImageCache(args.cache, symlink_tree=False)
    cache.load()
    server = BootHttpServer(cache)
    await server.start(sock=sock)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.close)
    if announce:
        print(f"ready {server.address[0]} {server.address[1]}", flush=True)
    await server.serve_forever()
    logging.getLogger("metalplane.rack.http").info("HTTP stopped (pid %d): %s", os.getpid(), server.stats)


if __name__ == "__main__":
    sys.exit(main())
