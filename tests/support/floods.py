"""Unauthenticated peers flooding a region, byte by byte (issue 12).

RPC (`flood`): what an attacker who knows no secret can do on a worker's RPC
port: TLS (the region's certificate is not checked), the websocket upgrade, read
the region's hello, then send one binary frame declaring `size` bytes and stream
its payload until the region stops it.

HTTP (`post_flood`): an anonymous POST declaring (or, chunked, not declaring) a
`size`-byte body, streamed until the region answers or hangs up.

Payloads are written in 1 MiB pieces from one buffer, so the attacker itself
stays small; `FloodResult.sent` says how much the region let through.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import struct
import time
from dataclasses import dataclass

import httpx

from metalplane.rpc.endpoint import Endpoint

PIECE = 1024 * 1024


@dataclass
class FloodResult:
    sent: int  # payload bytes written before the region closed the connection
    seconds: float
    closed: bool  # the region closed it (rather than the whole payload going through)
    status: int | None = None  # HTTP: the region's answer, if one came


def worker_endpoints(region_url: str) -> list[Endpoint]:
    return [Endpoint.from_wire(e) for e in httpx.get(region_url.rstrip("/") + "/rpc/").json()["endpoints"]]


def insecure_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def open_upgraded(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TLS + the websocket upgrade, as any client may do; the region's hello is read."""
    reader, writer = await asyncio.open_connection(host, port, ssl=insecure_tls(), server_hostname="metalplane-region")
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /rpc HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"no websocket upgrade: {head[:200]!r}")
    await read_frame(reader)  # hello
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    _, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(length)


def frame_header(size: int) -> bytes:
    """A masked binary frame of `size` bytes (clients must mask)."""
    return bytes([0x82, 0x80 | 127]) + struct.pack("!Q", size) + os.urandom(4)


async def flood_one(host: str, port: int, size: int) -> FloodResult:
    reader, writer = await open_upgraded(host, port)
    started = time.monotonic()
    piece = os.urandom(PIECE)
    sent = 0
    region_closed = asyncio.ensure_future(reader.read())  # what it says until it hangs up
    writer.write(frame_header(size))
    try:
        while sent < size and not region_closed.done():
            writer.write(piece[: min(PIECE, size - sent)])
            await asyncio.wait_for(writer.drain(), 30)
            sent += min(PIECE, size - sent)
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    finally:
        writer.close()
    closed = region_closed.done() or sent < size
    region_closed.cancel()
    return FloodResult(sent, time.monotonic() - started, closed)


async def flood(host: str, port: int, size: int, connections: int) -> list[FloodResult]:
    """`connections` peers at once, each streaming one `size`-byte frame."""
    return list(await asyncio.gather(*(flood_one(host, port, size) for _ in range(connections))))


async def post_one(host: str, port: int, path: str, size: int, chunked: bool) -> FloodResult:
    reader, writer = await asyncio.open_connection(host, port)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode()
    )
    started = time.monotonic()
    piece = os.urandom(PIECE)
    answer = asyncio.ensure_future(reader.read(4096))  # the status line, once the region answers
    sent = 0
    try:
        while sent < size and not answer.done():
            n = min(PIECE, size - sent)
            writer.write(f"{n:x}\r\n".encode() + piece[:n] + b"\r\n" if chunked else piece[:n])
            await asyncio.wait_for(writer.drain(), 30)
            sent += n
        if chunked and sent == size:
            writer.write(b"0\r\n\r\n")
        head = await asyncio.wait_for(answer, 60)
    except (ConnectionError, TimeoutError):
        # The region answered and closed while we were still writing: our write fails on its
        # reset, but the answer may already sit in our buffer, not yet handed to `answer`.
        try:
            head = await asyncio.wait_for(answer, 5)
        except (ConnectionError, TimeoutError):
            head = b""
    finally:
        answer.cancel()
        writer.close()
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return FloodResult(sent, time.monotonic() - started, sent < size, status)


async def post_flood(
    host: str, port: int, path: str, size: int, connections: int, chunked: bool = False
) -> list[FloodResult]:
    return list(await asyncio.gather(*(post_one(host, port, path, size, chunked) for _ in range(connections))))
