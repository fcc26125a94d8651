"""Calls in both directions over one websocket: msgpack frames with request ids.

websockets does the framing, TLS and keepalive pings; this module adds
request/response matching so either side can call the other.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgpack
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
DEFAULT_TIMEOUT = 30.0
# Keepalive, from the rack's side only: a ping every 0.75 s; a region that has
# not answered within 1.5 s is dropped (after at most CLOSE_TIMEOUT more), so a
# dead or frozen region is noticed in < 3 s. Regions do not ping (half the
# traffic); they learn of a dead rack from TCP (kernel keepalive, below).
PING_INTERVAL = 0.75
PING_TIMEOUT = 1.5
CLOSE_TIMEOUT = 0.5
TCP_KEEPALIVE = (1, 1, 2)  # idle seconds, interval seconds, probes


def enable_tcp_keepalive(transport: Any) -> None:
    """Let the kernel notice a vanished peer host without any Python work."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    idle, interval, probes = TCP_KEEPALIVE
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)
MAX_FRAME = 64 * 1024 * 1024


def pack(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def unpack(data: bytes | str) -> dict[str, Any]:
    if isinstance(data, str):
        raise ProtocolError("text frames are not part of the protocol")
    message = msgpack.unpackb(data, raw=False)
    if not isinstance(message, dict):
        raise ProtocolError("a frame must be a map")
    return message


class ProtocolError(Exception):
    pass


class RemoteError(Exception):
    """The other side answered a call with an error."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# Register's answer to a rack the region has no record of, when the rack was not
# told to register (`enrol`): it was deleted, and must not re-create itself.
UNKNOWN_RACK = "unknown-rack"


class ConnectionLost(Exception):
    pass


class RpcPeer:
    """One end of a connection. `handlers` answer the other side's calls."""

    def __init__(self, ws: Any, handlers: Mapping[str, Handler], name: str):
        self.ws = ws
        self.handlers = handlers
        self.name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    async def call(self, method: str, /, timeout: float = DEFAULT_TIMEOUT, **args: Any) -> Any:
        if self.closed.is_set():
            raise ConnectionLost(f"connection to {self.name} is closed")
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        # A caller cancelled while the connection dies must not leave an unread exception.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending[call_id] = future
        try:
            await self.ws.send(pack({"t": "call", "id": call_id, "m": method, "a": args}))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            async with asyncio.timeout(timeout):
                return await future
        except ConnectionClosed as exc:
            raise ConnectionLost(f"connection to {self.name} closed: {exc}") from None
        finally:
            self._pending.pop(call_id, None)

    async def serve(self) -> None:
        """Read frames until the connection ends; then fail every pending call."""
        try:
            async for raw in self.ws:
                message = unpack(raw)
                kind = message.get("t")
                if kind == "call":
                    task = asyncio.create_task(self._answer(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif kind in ("ok", "err"):
                    self._resolve(message)
                else:
                    raise ProtocolError(f"unknown frame type {kind!r}")
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost(f"connection to {self.name} lost"))
            for task in list(self._tasks):
                task.cancel()

    def _resolve(self, message: dict[str, Any]) -> None:
        future = self._pending.get(message.get("id"))
        if future is None or future.done():
            return
        if message["t"] == "ok":
            future.set_result(message.get("r"))
        else:
            error = message.get("e") or {}
            future.set_exception(RemoteError(error.get("code", "error"), error.get("message", "")))

    async def _answer(self, message: dict[str, Any]) -> None:
        call_id, method = message.get("id"), message.get("m")
        handler = self.handlers.get(method)
        try:
            if handler is None:
                raise RemoteError("no-such-method", f"unknown method {method!r}")
            reply = {"t": "ok", "id": call_id, "r": await handler(**(message.get("a") or {}))}
        except RemoteError as exc:
            reply = {"t": "err", "id": call_id, "e": {"code": exc.code, "message": exc.message}}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s: call %s failed", self.name, method)
            reply = {"t": "err", "id": call_id, "e": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}}
        try:
            await self.ws.send(pack(reply))
        except ConnectionClosed:
            pass

    async def close(self, reason: str = "") -> None:
        await self.ws.close(reason=reason[:120])
