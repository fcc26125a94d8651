"""A TFTP read-request flood, as an attacker on the boot network would send it.

    python -m tests.support.tftp_flood --server 10.81.0.2 --count 14000 --hold 20

From one UDP socket (or one per `--source` address, taking turns: what a spoofed
flood from many machines looks like to the server), `count` read requests for `filename` asking `timeout=255`
(RFC 2349's largest), paced at `rate` per second; nothing is ever acknowledged. Each
request carries a unique unknown option (`seq`, which servers ignore, RFC 2347), so
no two are byte-identical and none can be taken for a retransmission. The
socket stays open for `hold` seconds afterwards (a closed socket would make the
server's packets bounce with ICMP port unreachable, which ends its transfers early).
Prints one JSON line: what was sent, and the answers seen (OACKs from distinct
server ports = transfers the server started for us; ERROR packets by message).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence

from metalplane.rack.tftp.protocol import ERROR, OACK, RRQ, build_request, parse_error

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; Python does not name it


def _socket(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # room for every answer (as root; else as much as net.core.rmem_max allows)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 24)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


def flood(
    server: str,
    port: int = 69,
    count: int = 14000,
    filename: str = "undionly.kpxe",
    rate: float = 3000.0,
    hold: float = 20.0,
    source: str = "",
    sources: Sequence[str] = (),
) -> dict:
    options = {"timeout": 255, "tsize": 0, "blksize": 1468}
    socks = [_socket(s) for s in (sources or [source])]
    transfers: set[tuple] = set()
    errors: Counter[str] = Counter()

    def drain() -> None:
        for sock in socks:
            while True:
                try:
                    data, peer = sock.recvfrom(2048)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue
                if len(data) >= 2 and data[1] == OACK:
                    transfers.add(peer)
                elif len(data) >= 4 and data[1] == ERROR:
                    errors[parse_error(data)[1]] += 1

    started = time.monotonic()
    sent = 0
    while sent < count:
        due = min(count, int((time.monotonic() - started) * rate) + 1)
        while sent < due:
            try:
                socks[sent % len(socks)].sendto(
                    build_request(RRQ, filename, "octet", {**options, "seq": sent}), (server, port)
                )
                sent += 1
            except (BlockingIOError, InterruptedError):
                break
        drain()
        select.select(socks, [], [], 0.002)
    send_seconds = time.monotonic() - started
    end = time.monotonic() + hold
    while time.monotonic() < end:
        select.select(socks, [], [], 0.2)
        drain()
    for sock in socks:
        sock.close()
    return {
        "sent": sent,
        "send_seconds": round(send_seconds, 2),
        "transfers_started": len(transfers),
        "errors": dict(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.tftp_flood",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, default=69)
    parser.add_argument("--count", type=int, default=14000)
    parser.add_argument("--filename", default="undionly.kpxe")
    parser.add_argument("--rate", type=float, default=3000.0, help="requests per second")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to keep the socket open afterwards")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        help="local address to send from (repeat: one socket per address, taking turns)",
    )
    args = parser.parse_args(argv)
    result = flood(args.server, args.port, args.count, args.filename, args.rate, args.hold, sources=args.source)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
