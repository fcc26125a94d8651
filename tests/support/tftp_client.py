"""A small, fast asyncio TFTP read client (RFC 1350/2347/2348/2349/7440).

Used by the tests and the benchmarks (it lives in the test house: nothing in production
fetches by TFTP).
Same shape as the server: a raw non-blocking socket under `loop.add_reader`, one
preallocated receive buffer, a lazily re-armed timer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from metalplane.rack.tftp.protocol import (
    DATA,
    DEFAULT_BLKSIZE,
    ERR_OPTIONS,
    ERROR,
    OACK,
    RRQ,
    build_ack,
    build_error,
    build_request,
    netascii_decode,
    parse_error,
    parse_oack,
)


class TftpClientError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f"TFTP error {code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Result:
    data: bytes | None  # None when a sink consumed the content
    size: int
    oack: dict[str, str] | None
    blksize: int
    windowsize: int
    server_port: int
    duplicates: int = 0  # DATA packets received that were not the next block
    resent_acks: int = 0  # ACKs sent again because of a timeout or a gap
    blocks: int = 0
    extra: dict = field(default_factory=dict)


async def get(
    host: str,
    port: int,
    filename: str,
    *,
    mode: str = "octet",
    blksize: int | None = None,
    windowsize: int | None = None,
    tsize: bool = False,
    timeout_option: int | None = None,
    options: dict[str, object] | None = None,
    timeout: float = 1.0,
    max_retries: int = 5,
    sink: Callable[[memoryview], object] | None = None,
    drop_acks: set[int] | None = None,
    drop_blocks: set[int] | None = None,
    abort_after: int | None = None,
    bind: str | None = None,
) -> Result:
    """Read `filename`. Raises `TftpClientError` on an ERROR packet, `TimeoutError` when
    the server stops answering.

    `sink(view)` receives each block's content instead of collecting it (the view is
    only valid during the call). `drop_acks`: block numbers (counting from 1 without
    rollover; 0 is the OACK's ACK) whose first ACK is not sent, to test retransmission.
    `drop_blocks`: blocks whose first arrival is ignored, as if lost on the way.
    `abort_after`: send an ERROR after this many blocks and return (partial) content.
    `bind`: the local address to send from (a simulated machine's own address).
    """
    opts: dict[str, object] = {}
    if blksize is not None:
        opts["blksize"] = blksize
    if timeout_option is not None:
        opts["timeout"] = timeout_option
    if tsize:
        opts["tsize"] = 0
    if windowsize is not None:
        opts["windowsize"] = windowsize
    opts.update(options or {})
    loop = asyncio.get_running_loop()
    reader = _Reader(
        loop,
        host,
        port,
        build_request(RRQ, filename, mode, opts),
        bool(opts),
        timeout,
        max_retries,
        sink,
        set(drop_acks or ()),
        set(drop_blocks or ()),
        abort_after,
        bind,
    )
    try:
        return await reader.run(mode == "netascii")
    finally:
        reader.close()


class _Reader:
    def __init__(
        self,
        loop,
        host,
        port,
        request,
        asked_options,
        timeout,
        max_retries,
        sink,
        drop_acks,
        drop_blocks,
        abort_after,
        bind=None,
    ):
        self.loop = loop
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((bind or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
        self.server = (host, port)
        self.request = request
        self.asked_options = asked_options
        self.timeout = timeout
        self.max_retries = max_retries
        self.sink = sink
        self.drop_acks = drop_acks
        self.drop_blocks = drop_blocks
        self.abort_after = abort_after
        self.out = bytearray() if sink is None else None
        self.size = 0
        self.rbuf = bytearray(65536 + 4)
        self.rmv = memoryview(self.rbuf)
        self.tid: int | None = None
        self.blksize = DEFAULT_BLKSIZE
        self.windowsize = 1
        self.oack: dict[str, str] | None = None
        self.expected = 1  # next block wanted, counting without rollover
        self.in_window = 0
        self.nak_for = -1  # gap already reported for this expected block
        self.last_ack = -1
        self.last_activity = 0.0
        self.retries = 0
        self.duplicates = 0
        self.resent = 0
        self.future: asyncio.Future = loop.create_future()
        self.timer = None
        self.reading = False

    async def run(self, netascii: bool) -> Result:
        self.loop.add_reader(self.sock.fileno(), self._on_readable)
        self.reading = True
        self.sock.sendto(self.request, self.server)
        self.last_activity = self.loop.time()
        self.timer = self.loop.call_later(self.timeout, self._on_timer)
        try:
            await self.future
        except asyncio.CancelledError:
            self._send_error("Transfer cancelled")
            raise
        data = None
        if self.out is not None:
            data = bytes(self.out)
            if netascii:
                data = netascii_decode(data)
        return Result(
            data,
            self.size,
            self.oack,
            self.blksize,
            self.windowsize,
            self.tid or 0,
            self.duplicates,
            self.resent,
            self.expected - 1,
        )

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False
        self.sock.close()

    def _fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def _done(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def _send_error(self, message: str, code: int = 0) -> None:
        if self.tid is not None and self.sock.fileno() != -1:
            try:
                self.sock.send(build_error(code, message))
            except OSError:
                pass

    def _ack(self, block: int, resend: bool = False) -> None:
        if block in self.drop_acks:
            self.drop_acks.discard(block)
            return
        self.last_ack = block
        if resend:
            self.resent += 1
        try:
            self.sock.send(build_ack(block))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(exc)

    def _on_readable(self) -> None:
        # One datagram per call (the loop polls level-triggered and calls again).
        sock, rbuf = self.sock, self.rbuf
        if self.future.done():
            return
        try:
            if self.tid is None:
                n, addr = sock.recvfrom_into(rbuf)
                if addr[0] != self.server[0] and ipaddress.ip_address(addr[0]) != ipaddress.ip_address(self.server[0]):
                    return
                self.tid = addr[1]
                sock.connect((self.server[0], self.tid))
            else:
                n = sock.recv_into(rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if n < 4 or rbuf[0] != 0:
            return
        self.last_activity = self.loop.time()
        self.retries = 0
        opcode = rbuf[1]
        if opcode == DATA:
            self._on_data(rbuf[2] << 8 | rbuf[3], self.rmv[4:n], n - 4)
        elif opcode == OACK:
            if self.oack is None:
                self._on_oack(bytes(rbuf[:n]))
            elif self.expected == 1:  # the server resent it: our ACK 0 was lost
                self.duplicates += 1
                self._ack(0, resend=True)
        elif opcode == ERROR:
            code, message = parse_error(bytes(rbuf[:n]))
            self._fail(TftpClientError(code, message))

    def _on_oack(self, packet: bytes) -> None:
        if not self.asked_options:
            self._send_error("Unrequested OACK", ERR_OPTIONS)
            self._fail(TftpClientError(ERR_OPTIONS, "server sent an OACK we did not ask for"))
            return
        self.oack = parse_oack(packet)
        self.blksize = int(self.oack.get("blksize", DEFAULT_BLKSIZE))
        self.windowsize = int(self.oack.get("windowsize", 1))
        self._ack(0)

    def _on_data(self, wire_block: int, view: memoryview, n: int) -> None:
        expected = self.expected
        if self.drop_blocks and wire_block == expected & 0xFFFF and expected in self.drop_blocks:
            self.drop_blocks.discard(expected)
            return
        if wire_block != expected & 0xFFFF:
            self.duplicates += 1
            # A retransmitted or out-of-order block: say (once per gap) where we are.
            if self.windowsize == 1 or self.nak_for != expected:
                self.nak_for = expected
                self.in_window = 0
                self._ack(expected - 1, resend=True)
            return
        if self.sink is None:
            self.out += view
        else:
            self.sink(view)
        self.size += n
        self.expected = expected + 1
        if self.abort_after is not None and expected >= self.abort_after:
            self._send_error("Aborted")
            self._done()
            return
        if n < self.blksize:
            self._ack(expected)
            self._done()
            return
        self.in_window += 1
        if self.in_window >= self.windowsize:
            self.in_window = 0
            self._ack(expected)

    def _on_timer(self) -> None:
        if self.future.done():
            return
        waited = self.loop.time() - self.last_activity
        if waited < self.timeout * 0.99:
            self.timer = self.loop.call_later(self.timeout - waited, self._on_timer)
            return
        self.retries += 1
        if self.retries > self.max_retries:
            self._fail(TimeoutError(f"no answer from {self.server[0]}:{self.tid or self.server[1]}"))
            return
        if self.tid is None:
            self.sock.sendto(self.request, self.server)
        elif self.oack is not None and self.expected == 1:
            self._ack(0, resend=True)
        else:
            self.in_window = 0
            self._ack(self.expected - 1, resend=True)
        self.last_activity = self.loop.time()
        self.timer = self.loop.call_later(self.timeout, self._on_timer)
