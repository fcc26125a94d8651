"""Run the TFTP server on its own: `python -m metalplane.rack.tftp --root DIR --listen HOST:PORT`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from metalplane.rack.limits import raise_open_files_limit
from metalplane.rack.prefork import log_to_stderr, serve_in_workers, serve_until_signalled
from metalplane.rack.tftp.protocol import MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE, Limits
from metalplane.rack.tftp.server import MAX_IDLE, TftpServer, listen_socket
from metalplane.rack.tftp.sources import StaticRoot


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 69
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metalplane.rack.tftp", description=__doc__)
    parser.add_argument("--root", required=True, help="directory served (read only)")
    parser.add_argument("--listen", default="0.0.0.0:69", help="HOST:PORT (default 0.0.0.0:69)")
    parser.add_argument(
        "--max-blksize",
        type=int,
        default=Limits.max_blksize,
        help=f"largest blksize granted (default {Limits.max_blksize}: one packet per "
        "1500-byte Ethernet frame; up to 65464)",
    )
    parser.add_argument(
        "--max-windowsize",
        type=int,
        default=Limits.max_windowsize,
        help=f"largest windowsize granted (default {Limits.max_windowsize})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=Limits.default_timeout,
        help="retransmission timeout when the client asks for none (seconds)",
    )
    parser.add_argument(
        "--max-timeout",
        type=float,
        default=Limits.max_timeout,
        help=f"longest retransmission interval, whatever timeout a client asks for (default {Limits.max_timeout:g} s)",
    )
    parser.add_argument("--retries", type=int, default=5, help="resends before giving up")
    parser.add_argument(
        "--max-idle",
        type=float,
        default=MAX_IDLE,
        help=f"seconds without an ACK before a transfer is abandoned (default {MAX_IDLE:g})",
    )
    parser.add_argument(
        "--max-transfers",
        type=int,
        default=None,
        help="transfers in progress per process (default: from the open-files limit)",
    )
    parser.add_argument(
        "--max-per-client",
        type=int,
        default=None,
        help="transfers in progress per client address and process (default: from the open-files limit)",
    )
    parser.add_argument("--no-gso", action="store_true", help="send windows packet by packet")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own socket on the port (SO_REUSEPORT: "
        "the kernel spreads clients over them); caches are per process",
    )
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (uvloop when installed)"
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if not MIN_BLKSIZE <= args.max_blksize <= MAX_BLKSIZE:
        parser.error(f"--max-blksize must be within {MIN_BLKSIZE}..{MAX_BLKSIZE}")
    if not 1 <= args.max_windowsize <= MAX_WINDOWSIZE:
        parser.error(f"--max-windowsize must be within 1..{MAX_WINDOWSIZE}")
    for name in ("max_transfers", "max_per_client"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_timeout <= 0 or args.max_idle <= 0:
        parser.error("--max-timeout and --max-idle must be positive")
    if not os.path.isdir(args.root):
        parser.error(f"--root {args.root}: not a directory")
    log_to_stderr(args.debug)
    # Each transfer holds a socket and a file: allow as many as the hard limit does.
    raise_open_files_limit()
    host, port = parse_listen(args.listen)
    limits = Limits(
        max_blksize=args.max_blksize,
        max_windowsize=args.max_windowsize,
        default_timeout=args.timeout,
        max_timeout=args.max_timeout,
    )
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return serve_in_workers(
        args.workers, host, port, listen_socket, lambda sock, announce: serve(sock, args, limits, announce), args.loop
    )


async def serve(sock, args, limits: Limits, announce: bool) -> None:
    server = TftpServer(
        StaticRoot(args.root),
        limits=limits,
        max_retries=args.retries,
        max_idle=args.max_idle,
        max_transfers=args.max_transfers,
        max_per_client=args.max_per_client,
        gso=not args.no_gso,
    )
    await server.start(sock=sock)
    caps = f"{server.max_transfers} transfers, {server.max_per_client} per client"
    await serve_until_signalled(server, logging.getLogger("metalplane.rack.tftp"), "TFTP", caps, announce)


if __name__ == "__main__":
    sys.exit(main())
