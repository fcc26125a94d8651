"""Calls in both directions over one websocket: msgpack frames with request ids.

websockets does the framing, TLS and keepalive pings; this module adds
request/response matching so either side can call the other, with the typed
messages of rpc.messages:

    call  {"t": "call", "id": N, "m": "GetBootConfig", "a": {"mac": ..., "architecture": ...}}
    reply {"t": "ok", "id": N, "r": {...}}   or   {"t": "err", "id": N, "e": {"code", "message", "errors"?}}

The answering side decodes "a" into the message class its handler is
registered for (refusing it as "invalid-message" when it does not decode); the
caller decodes "r" into the message's reply type.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from typing import Any, TypeVar

import msgpack
from websockets.exceptions import ConnectionClosed

from metalplane.rpc import wire
from metalplane.rpc.dispatch import Handlers
from metalplane.rpc.keepalive import keep_alive
from metalplane.rpc.messages import MESSAGES, Call
from metalplane.rpc.versions import PROTOCOL
from metalplane.rpc.wire import InvalidMessage

log = logging.getLogger(__name__)

R = TypeVar("R")
DEFAULT_TIMEOUT = 30.0
NO_SUCH_METHOD = "no-such-method"
# Keepalive, from the rack's side only (rpc.keepalive): a ping every 0.75 s; a
# region from which nothing was heard for 1.5 s of checks is dropped (after at most
# CLOSE_TIMEOUT more), so a dead or frozen region is noticed in < 3 s, while this
# side's own event-loop lag does not count against it. Regions do not ping (half the
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
# Until the handshake has proven that the peer knows the shared secret, frames
# are small: the handshake's three frames are under 1 KiB (the welcome carries
# the cluster CA, ~600 bytes). A peer that has proven nothing can make a worker
# buffer no more than this per connection; websockets refuses a larger frame
# from its header (close code 1009), before reading its payload.
PRE_AUTH_FRAME = 8 * 1024


def allow_full_frames(ws: Any) -> None:
    """The peer proved the secret: frames up to MAX_FRAME from now on. websockets
    reads the limit when a frame's first byte arrives, so this must happen before
    the peer can send its first post-handshake frame (rpc.handshake does it before
    the welcome goes out, and on the client once the welcome is verified)."""
    ws.protocol.max_message_size = MAX_FRAME


def pack(message: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


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

    def __init__(self, code: str, message: str, errors: list[str] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.errors = errors or []


class NoSuchMethod(RemoteError):
    """The peer does not answer this call (an older protocol version, or a peer without
    that handler). Callers carry on without it."""

    def __init__(self, message: str):
        super().__init__(NO_SUCH_METHOD, message)


def _remote_error(error: dict[str, Any]) -> RemoteError:
    code, message = str(error.get("code", "error")), str(error.get("message", ""))
    if code == NO_SUCH_METHOD:
        return NoSuchMethod(message)
    errors = error.get("errors")
    return RemoteError(code, message, [str(e) for e in errors] if isinstance(errors, list) else None)


# Register's answer to a rack the region has no record of, when the rack was not
# told to register (`enrol`): it was deleted, and must not re-create itself.
UNKNOWN_RACK = "unknown-rack"


class ConnectionLost(Exception):
    pass


#: What a call can fail with when the peer or the link lets it down (a reply that
#: does not decode included): loops that retry catch these.
CALL_FAILED = (ConnectionLost, TimeoutError, RemoteError, InvalidMessage)


class RpcPeer:
    """One end of a connection. `handlers` answer the other side's calls; `protocol`
    is the version the handshake agreed on (rpc.versions)."""

    def __init__(self, ws: Any, handlers: Handlers, name: str, protocol: int = PROTOCOL, keepalive: bool = False):
        self.ws = ws
        self.keepalive = keepalive  # ping the peer and drop it when silent (rpc.keepalive)
        self.last_heard = 0.0  # loop time of the last frame received
        self.handlers = {message.name: (message, handler) for message, handler in handlers.items()}
        self.name = name
        self.protocol = protocol
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    async def call(self, message: Call[R], timeout: float = DEFAULT_TIMEOUT) -> R:
        """Send `message`; its reply, decoded. A reply that does not decode raises the
        reply type's InvalidMessage class, as does the peer's refusal to build one."""
        kind = type(message)
        try:
            raw = await self.call_raw(kind.name, wire.encode(message), timeout)
        except RemoteError as exc:
            invalid = getattr(kind.reply, "invalid", None)
            if invalid is not None and exc.code == invalid.code:
                raise invalid(exc.errors or [exc.message]) from None
            raise
        reply: R = wire.decode(kind.reply, raw, root=f"{kind.name} reply")
        return reply

    async def call_raw(self, method: str, args: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send a call by name with its encoded arguments; the reply as it came."""
        known = MESSAGES.get(method)
        if known is not None and known.added_in > self.protocol:
            raise NoSuchMethod(f"{method} needs RPC protocol {known.added_in}; {self.name} speaks {self.protocol}")
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
        loop = asyncio.get_running_loop()
        watch = None
        if self.keepalive:
            watch = asyncio.create_task(
                keep_alive(self.ws, lambda t: self.last_heard >= t, PING_INTERVAL, PING_TIMEOUT, self.name)
            )
        try:
            async for raw in self.ws:
                self.last_heard = loop.time()
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
            if watch is not None:
                watch.cancel()
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost(f"connection to {self.name} lost"))
            for task in list(self._tasks):
                task.cancel()

    def _resolve(self, message: dict[str, Any]) -> None:
        call_id = message.get("id")
        future = self._pending.get(call_id) if isinstance(call_id, int) else None
        if future is None or future.done():
            return
        if message["t"] == "ok":
            future.set_result(message.get("r"))
        else:
            future.set_exception(_remote_error(message.get("e") or {}))

    async def _answer(self, message: dict[str, Any]) -> None:
        call_id, method = message.get("id"), message.get("m")
        entry = self.handlers.get(method) if isinstance(method, str) else None
        reply: dict[str, Any]
        try:
            if entry is None:
                raise NoSuchMethod(f"unknown method {method!r}")
            kind, handler = entry
            request: Call[Any] = wire.decode(kind, message.get("a") or {}, root=kind.name)
            reply = {"t": "ok", "id": call_id, "r": wire.encode(await handler(request), kind.reply)}
        except RemoteError as exc:
            reply = {"t": "err", "id": call_id, "e": {"code": exc.code, "message": exc.message, "errors": exc.errors}}
        except InvalidMessage as exc:
            reply = {"t": "err", "id": call_id, "e": {"code": exc.code, "message": str(exc), "errors": exc.errors}}
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
