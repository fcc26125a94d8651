"""An asyncio TFTP server (read requests only).

Shape, chosen for speed in a boot storm:

- The listening socket and every transfer socket are plain non-blocking sockets
  watched with `loop.add_reader`; no transports, no streams, no per-packet tasks.
- One socket per transfer (a fresh TID, RFC 1350), bound to the address the request
  arrived on and `connect()`ed to the client, so the kernel drops strangers' packets.
- Each transfer owns one preallocated buffer laid out as consecutive DATA packets
  (4-byte header + block). A window is filled with a single `os.preadv` (file
  sources; the page cache is shared, nothing is read whole) or slice copies (bytes
  sources), headers are written with `pack_into`, and the window leaves in one
  `sendmsg` with UDP GSO (`UDP_SEGMENT`): the kernel cuts it into datagrams. Where
  GSO is refused (older kernel, MTU smaller than a packet) packets go one by one.
- ACKs are drained from the socket in one go and only the best one is acted on.
- One timer per transfer, re-armed lazily: sending records a timestamp and the timer
  only retransmits when nothing was sent for a whole timeout.
- Duplicate ACKs are ignored (no sorcerer's apprentice); retransmission is driven
  by the timer only. Block numbers roll over from 65535 to 0.

Limits, so that a flood of requests (UDP: the source may be spoofed) degrades TFTP
instead of exhausting the rack's descriptors (sized from RLIMIT_NOFILE, `rack.limits`):

- `max_per_client` requests and transfers in progress per source address; past it, the
  address's packets are dropped (a real client retransmits and gets in later).
- `max_transfers` in all; past it, the oldest transfer that no ACK has reached within
  `UNPROVEN_GRACE` is abandoned to make room (a spoofed or silent requester never
  acknowledges; a real client does within a round trip), else "Server busy" (error 0).
- Retransmission after at most `Limits.max_timeout` seconds whatever the client's
  `timeout` option, and a transfer is abandoned after `max_idle` seconds without an ACK.
- A retransmitted request (byte-identical, same client port) is ignored while its
  transfer has not been acknowledged yet, instead of starting a second transfer.
- Admission control (boot storms, `ha.admission`): at most `transfers_max` requests
  being resolved or transferred at once; a read request past it is held, in arrival order
  (at most 4 x `transfers_max`, the oldest dropped), and nothing is sent: a PXE ROM gives
  up on an ERROR but retransmits a request that gets no answer, and takes the OACK or
  DATA from a new port as the answer to it. When a transfer ends the oldest held request
  starts, unless its client has been silent (no retransmission) for `hold_max` seconds:
  that one gave up and is skipped. A retransmitted request keeps its place in line. A
  new or retransmitted request that has to wait evicts the oldest transfer no ACK has
  reached within `UNPROVEN_GRACE` (so a flood of never-acknowledged requests cannot
  hold every slot while real machines wait).
  "Server busy" is left for the descriptor limit (`max_transfers`).
- Limits in action and unexpected errors are logged at most once per `Throttle`
  interval with counts; requested names are cut short in logs (`protocol.shown`).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import stat
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

from metalplane.ha.admission import Admission
from metalplane.rack.limits import Throttle, current_budget
from metalplane.rack.socket_server import SocketServer
from metalplane.rack.tftp.protocol import (
    ACK,
    ERR_ACCESS,
    ERR_ILLEGAL_OP,
    ERR_NOT_FOUND,
    ERR_UNDEFINED,
    ERROR,
    MODES,
    RRQ,
    WRQ,
    Limits,
    MalformedPacket,
    TftpError,
    build_error,
    build_oack,
    negotiate,
    netascii_encode,
    parse_request,
    sanitize_path,
    shown,
)
from metalplane.rack.tftp.sources import Resolver

log = logging.getLogger("metalplane.rack.tftp")

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)  # Linux >= 4.18
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux; Python < 3.12 does not name it
UDP_MAX_SEGMENTS = 64  # the kernel's limit per GSO send
MAX_UDP_PAYLOAD = 65507
_GSO_REFUSED = {errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EMSGSIZE}
_HDR = struct.Struct("!HH")
_pack_hdr = _HDR.pack_into
_now = time.monotonic  # send times; cheaper than loop.time() and finer than uvloop's (ms)
_IN_PKTINFO = struct.Struct("=I4s4s")  # ifindex, spec_dst, addr
_IN6_PKTINFO = struct.Struct("=16sI")  # addr, ifindex
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE}
MAX_IDLE = 15.0  # seconds without an ACK before a transfer is abandoned
UNPROVEN_GRACE = 1.0  # seconds a transfer waits for its first ACK before it may be evicted
TRANSFERS_MAX = 1024  # requests resolved or transferred at once (admission control); 0: unlimited
HOLD_MAX = 10.0  # seconds of silence after which a held request's client is taken for gone
HELD_PER_SLOT = 4  # held requests kept per admitted one


@dataclass
class Stats:
    requests: int = 0
    transfers: int = 0  # started
    completed: int = 0
    failed: int = 0  # timed out, aborted by the client, read errors
    errors_sent: int = 0  # requests answered with an ERROR packet
    retransmits: int = 0  # timer-driven resends
    bytes_sent: int = 0  # content of completed transfers
    dropped: int = 0  # packets from clients at their per-client limit
    busy: int = 0  # requests refused at the global limit ("Server busy")
    evicted: int = 0  # unacknowledged transfers abandoned to make room
    held: int = 0  # requests that waited in line (admission control)
    hold_expired: int = 0  # held requests dropped: older than hold_max, or the line was full


DEFAULT_LIMITS = Limits()  # frozen: one instance serves every server


class TftpServer(SocketServer):
    """Serve read requests from `resolver` on one UDP address.

    `limits` bounds blksize/windowsize and the retransmission timeout (see
    `protocol.negotiate`); `max_retries` is the number of resends of one window (or OACK)
    before the transfer is abandoned, `max_idle` the seconds without an ACK; `max_transfers`
    and `max_per_client` bound transfers in progress in all and per source address (by
    default from the process's file limit, `rack.limits.budget`); `gso=False` sends
    windows packet by packet.
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_retries: int = 5,
        max_transfers: int | None = None,
        max_per_client: int | None = None,
        max_idle: float = MAX_IDLE,
        gso: bool = True,
        transfers_max: int = TRANSFERS_MAX,
        hold_max: float = HOLD_MAX,
    ):
        super().__init__()
        self.resolver = resolver
        self.limits = limits
        self.max_retries = max_retries
        self.max_transfers, self.max_per_client = current_budget().tftp.override(max_transfers, max_per_client)
        self.max_idle = max_idle
        self.gso = gso
        self.stats = Stats()
        self.transfers: set[_Transfer] = set()
        self._pending: set[tuple] = set()  # requests being resolved (duplicates are dropped)
        self._slots: Counter[str] = Counter()  # source address -> requests being resolved + transfers
        self._unproven: dict[_Transfer, None] = {}  # no ACK yet, oldest first (evictable)
        self._requests: dict[tuple, _Transfer] = {}  # (client, request) of unproven transfers
        self._said = {kind: Throttle() for kind in ("client", "busy", "fds", "bug", "held")}
        self._tasks: set[asyncio.Task] = set()
        self._pktinfo = False
        self.admission: Admission[tuple] = Admission(transfers_max, hold_max)
        self._held: dict[tuple, list] = {}  # key -> [request, client, local, last heard] waiting for admission

    # -- lifecycle ------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 69, *, sock: socket.socket | None = None
    ) -> tuple[str, int]:
        """Listen on host:port, or on `sock` (from `listen_socket`)."""
        self._starting()
        if sock is None:
            sock = listen_socket(host, port)
        sock.setblocking(False)
        name = sock.getsockname()
        self._pktinfo = ipaddress.ip_address(name[0]).is_unspecified
        self._listen_on(sock, self._on_request)
        bound = sock.getsockname()
        log.info("TFTP listening on %s port %d", bound[0], bound[1])
        return bound[0], bound[1]

    def close(self) -> None:
        """Stop listening and abandon every transfer."""
        self._stop_listening()
        for task in list(self._tasks):
            task.cancel()
        self._held.clear()
        self.admission.queue.clear()
        for transfer in list(self.transfers):
            transfer.finish(False)
        self._closing_done()

    # -- requests -------------------------------------------------------------------

    def _on_request(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                if self._pktinfo:
                    data, ancdata, _flags, client = sock.recvmsg(65536, 256)
                    local = _local_address(ancdata, sock)
                else:
                    data, client = sock.recvfrom(65536)
                    local = None
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                log.debug("TFTP listener receive error: %s", exc)
                continue
            self._handle(data, client, local)
            sock = self._sock

    def _handle(self, data: bytes, client: tuple, local: str | None) -> None:
        if len(data) < 2 or data[0] != 0:
            return
        opcode = data[1]
        if opcode == ERROR:
            return  # never answer an error with an error
        self.stats.requests += 1
        host = client[0]
        if self._slots[host] >= self.max_per_client:
            self.stats.dropped += 1
            if n := self._said["client"].hit():
                log.warning(
                    "TFTP: %s has %d transfers in progress, the per-client limit: dropping its "
                    "packets (%d since the last report, %d in all)",
                    host,
                    self._slots[host],
                    n,
                    self._said["client"].total,
                )
            return
        if opcode == WRQ:
            self._reply_error(client, local, ERR_ILLEGAL_OP, "Write requests are not supported")
            return
        if opcode != RRQ:
            self._reply_error(client, local, ERR_ILLEGAL_OP, "Illegal TFTP operation")
            return
        key = (client, data)
        held = self._held.get(key)
        if held is not None:  # retransmitted while waiting: still there; a silent transfer may make room
            held[3] = _now()
            self._evict_unproven()
            return
        if key in self._pending or key in self._requests:
            return  # the client retransmitted its request: its first copy is still being answered
        try:
            request = parse_request(data)
        except MalformedPacket as exc:
            self._reply_error(client, local, ERR_ILLEGAL_OP, f"Malformed request: {exc}")
            return
        if not self.admission.try_enter(key):
            self._hold(key, request, client, local)
            # A transfer nobody acknowledged within UNPROVEN_GRACE (a flood's) makes room
            # for the oldest waiter, as at the descriptor limit.
            self._evict_unproven()
            return
        if len(self.transfers) + len(self._pending) >= self.max_transfers and not self._evict_unproven():
            self.admission.leave(key)  # (it was admitted with nobody in line: nobody to hand over to)
            self.stats.busy += 1
            if n := self._said["busy"].hit():
                log.warning(
                    'TFTP: %d transfers in progress, the limit: answering "Server busy" '
                    "(%d since the last report, %d in all)",
                    self.max_transfers,
                    n,
                    self._said["busy"].total,
                )
            self._reply_error(client, local, ERR_UNDEFINED, "Server busy")
            return
        self._start(key, request, client, local)

    def _start(self, key: tuple, request, client: tuple, local: str | None) -> None:
        self._slots[client[0]] += 1
        self._pending.add(key)
        task = self._loop.create_task(self._serve(request, client, local, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _hold(self, key: tuple, request, client: tuple, local: str | None) -> None:
        """Past the admission cap: wait in line, nothing sent (the client retransmits meanwhile)."""
        self.stats.held += 1
        self._held[key] = [request, client, local, _now()]
        while self.admission.waiting > HELD_PER_SLOT * max(1, self.admission.cap):
            dropped = self.admission.drop_oldest()
            if dropped is not None:
                self._held.pop(dropped, None)
            self.stats.hold_expired += 1
        if n := self._said["held"].hit():
            log.warning(
                "TFTP: %d transfers at once, the admission limit: holding requests in line "
                "(%d since the last report, %d waiting now)",
                len(self.admission),
                n,
                self.admission.waiting,
            )

    def _admission_done(self, key: tuple) -> None:
        """`key`'s request is answered (transfer ended, or error): the next in line starts."""
        nxt = self.admission.leave(key)
        while nxt is not None:
            held = self._held.pop(nxt, None)
            if held is not None and self._sock is not None:
                request, client, local, heard = held
                if _now() - heard <= self.admission.hold_max:
                    self._start(nxt, request, client, local)
                    return
                self.stats.hold_expired += 1  # not heard of for hold_max: that machine gave up
                self.admission.expired_count += 1
            nxt = self.admission.leave(nxt)  # (its request is gone: the next one)

    def _evict_unproven(self) -> bool:
        """Abandon the oldest transfer no ACK has reached in UNPROVEN_GRACE; whether one was."""
        for transfer in self._unproven:
            if _now() - transfer.started < UNPROVEN_GRACE:
                return False
            self.stats.evicted += 1
            transfer.finish(False)
            return True
        return False

    def _proven(self, transfer: _Transfer) -> None:
        self._unproven.pop(transfer, None)
        self._requests.pop(transfer.key, None)

    def _release(self, host: str) -> None:
        left = self._slots[host] - 1
        if left > 0:
            self._slots[host] = left
        else:
            self._slots.pop(host, None)

    async def _serve(self, request, client: tuple, local: str | None, key: tuple) -> None:
        fd = -1
        started = False
        try:
            if request.mode not in MODES:
                raise TftpError(ERR_ILLEGAL_OP, f"Unsupported mode {request.mode!r}")
            path = sanitize_path(request.filename)
            source = await self.resolver(path, client)
            if source is None:
                raise TftpError(ERR_NOT_FOUND, "File not found")
            content = None
            if isinstance(source, (bytes, bytearray, memoryview)):
                content = source
                size = len(content)
            else:
                try:
                    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
                except PermissionError:
                    raise TftpError(ERR_ACCESS, "Access violation") from None
                except OSError as exc:
                    if exc.errno in _OUT_OF_FDS:
                        raise
                    raise TftpError(ERR_NOT_FOUND, "File not found") from None
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise TftpError(ERR_NOT_FOUND, "File not found")
                size = st.st_size
            if request.mode == "netascii":
                if content is None:  # text files are small: convert whole
                    content = _read_all(fd, size)
                    os.close(fd)
                    fd = -1
                content = netascii_encode(bytes(content))
                size = len(content)
            options = negotiate(request.options, size, self.limits)
            if self._sock is None:
                return  # closed while resolving
            sock = self._transfer_socket(client, local)
            transfer = _Transfer(
                self,
                sock,
                client,
                fd,
                None if content is None else memoryview(content),
                size,
                options.blksize,
                options.windowsize,
                options.timeout,
                build_oack(options.oack) if options.oack else None,
                key,
            )
            fd = -1  # the transfer owns it now
            started = True  # and its slot
            self.transfers.add(transfer)
            self._unproven[transfer] = None
            self._requests[key] = transfer
            self.stats.transfers += 1
            log.debug(
                "TFTP %s:%s %s (%d bytes, blksize %d, windowsize %d)",
                client[0],
                client[1],
                shown(path),
                size,
                options.blksize,
                options.windowsize,
            )
            transfer.begin()
        except TftpError as exc:
            log.debug(
                "TFTP %s:%s %s: error %d %s", client[0], client[1], shown(request.filename), exc.code, exc.message
            )
            self._reply_error(client, local, exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            if exc.errno not in _OUT_OF_FDS:
                self._unexpected(client, local, request.filename)
            elif n := self._said["fds"].hit():  # no socket to answer from either: dropped
                log.warning("TFTP: out of file descriptors (%s); dropping requests (%d since the last report)", exc, n)
        except Exception:
            self._unexpected(client, local, request.filename)
        finally:
            if fd >= 0:
                os.close(fd)
            self._pending.discard(key)
            if not started:
                self._release(client[0])
                self._admission_done(key)

    def _unexpected(self, client: tuple, local: str | None, filename: str) -> None:
        """A bug, not the request's fault: the traceback once per Throttle interval."""
        if n := self._said["bug"].hit():
            # Called from the caller's `except` block, where the traceback is current.
            log.exception(  # noqa: LOG004
                "TFTP %s:%s %s failed (%d failure(s) since the last report)",
                client[0],
                client[1],
                shown(filename),
                n,
            )
        self._reply_error(client, local, ERR_UNDEFINED, "Internal error")

    def _transfer_socket(self, client: tuple, local: str | None) -> socket.socket:
        listener = self._sock
        assert listener is not None  # the caller checked: not closed
        family = listener.family
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            bind_host = local if local is not None else listener.getsockname()[0]
            sock.bind(
                (bind_host, 0) if family == socket.AF_INET else (bind_host, 0, 0, client[3] if len(client) > 3 else 0)
            )
            sock.connect(client)
        except BaseException:
            sock.close()
            raise
        return sock

    def _reply_error(self, client: tuple, local: str | None, code: int, message: str) -> None:
        """Errors come from a fresh port (a new TID), as a transfer's packets would."""
        self.stats.errors_sent += 1
        if self._sock is None:
            return
        try:
            sock = self._transfer_socket(client, local)
        except OSError:
            return
        with sock:
            try:
                sock.send(build_error(code, message))
            except OSError:
                pass

    def _finished(self, transfer: _Transfer, ok: bool) -> None:
        self.transfers.discard(transfer)
        self._proven(transfer)
        self._release(transfer.client[0])
        self._admission_done(transfer.key)
        if ok:
            self.stats.completed += 1
            self.stats.bytes_sent += transfer.size
        else:
            self.stats.failed += 1


def listen_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket for `TftpServer.start(sock=...)`.

    With `reuse_port`, several processes each bind their own socket to the same port and
    the kernel spreads requests over them by the client's address (so a client's
    retransmitted request reaches the same process).
    """
    addr = ipaddress.ip_address(host)
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if addr.is_unspecified:
            # Learn which local address each request was sent to, to answer from it.
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _local_address(ancdata, sock: socket.socket) -> str | None:
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _IN_PKTINFO.size:
            _ifindex, _spec_dst, addr = _IN_PKTINFO.unpack_from(data)
            return socket.inet_ntop(socket.AF_INET, addr)
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= _IN6_PKTINFO.size:
            addr, _ifindex = _IN6_PKTINFO.unpack_from(data)
            return socket.inet_ntop(socket.AF_INET6, addr)
    return None


def _read_all(fd: int, size: int) -> bytes:
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


@dataclass(slots=True, eq=False, repr=False)  # hashed by identity (sets, dict keys), as before
class _Transfer:
    """One read transfer: OACK (as "block 0") then DATA blocks 1..nblocks, windowed.

    `buf` holds up to `slots` consecutive, fully formed DATA packets (blocks
    `buf_first`..`buf_first + buf_count - 1`), read ahead of what the window needs: in
    lockstep, one `preadv` serves up to 64 blocks and each ACK costs a single `send`.
    """

    server: TftpServer
    sock: socket.socket  # connect()ed to the client, from a fresh port (the transfer's TID)
    client: tuple
    fd: int  # the file sent (-1: `content` is, or closed)
    content: memoryview | None  # the bytes sent, when not a file
    size: int
    blksize: int
    windowsize: int
    timeout: float
    oack: bytes | None  # None: no options negotiated, DATA block 1 comes first
    key: tuple = ()  # (client, request packet)
    # Derived in __post_init__:
    loop: asyncio.AbstractEventLoop = field(init=False)
    nblocks: int = field(init=False)  # the last block is short, possibly empty
    stride: int = field(init=False)  # one DATA packet: header + block
    slots: int = field(init=False)  # packets in `buf`: one GSO send (at most 64 segments, 64 KB)
    buf: bytearray = field(init=False)
    mv: memoryview = field(init=False)
    views: list[memoryview] = field(init=False)  # block contents
    pkts: list[memoryview] = field(init=False)  # whole full-size packets
    gso: bool = field(init=False)
    gso_cmsg: list[tuple[int, int, bytes]] = field(init=False)
    acked: int = field(init=False)  # the OACK is acknowledged as block 0
    sent_upto: int = field(init=False)
    started: float = field(init=False)
    # Transfer state:
    buf_first: int = field(default=0, init=False)
    buf_count: int = field(default=0, init=False)
    last_send: float = field(default=0.0, init=False)
    retries: int = field(default=0, init=False)
    timer: asyncio.TimerHandle | None = field(default=None, init=False)
    rbuf: bytearray = field(default_factory=lambda: bytearray(516), init=False)
    done: bool = field(default=False, init=False)
    proven: bool = field(default=False, init=False)  # an ACK has come: the client is real

    def __post_init__(self) -> None:
        self.loop = self.server._loop
        self.nblocks = self.size // self.blksize + 1
        self.stride = stride = self.blksize + 4
        self.slots = slots = max(1, min(UDP_MAX_SEGMENTS, MAX_UDP_PAYLOAD // stride, self.nblocks))
        self.buf = bytearray(slots * stride)
        self.mv = mv = memoryview(self.buf)
        self.views = [mv[i * stride + 4 : (i + 1) * stride] for i in range(slots)]
        self.pkts = [mv[i * stride : (i + 1) * stride] for i in range(slots)]
        self.gso = self.server.gso and self.windowsize > 1 and slots > 1
        self.gso_cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", stride))]
        self.acked = -1 if self.oack is not None else 0
        self.sent_upto = self.acked
        self.started = _now()

    def begin(self) -> None:
        self.loop.add_reader(self.sock.fileno(), self._on_readable)
        if self.oack is not None:
            self._send_oack()
        else:
            self._send_window(1)
        if not self.done:
            self.timer = self.loop.call_later(self.timeout, self._on_timer)

    # -- sending ----------------------------------------------------------------------

    def _send_oack(self) -> None:
        assert self.oack is not None  # only sent when options were negotiated
        self.sent_upto = 0
        self.last_send = _now()
        try:
            self.sock.send(self.oack)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.finish(False)

    def _send_window(self, first: int) -> None:
        last = first + self.windowsize - 1
        if last > self.nblocks:
            last = self.nblocks
        try:
            if first == last and first < self.buf_first + self.buf_count and first >= self.buf_first:
                # Lockstep fast path: the packet is already formed in the read-ahead buffer.
                i = first - self.buf_first
                if first < self.nblocks:
                    self.sock.send(self.pkts[i])
                else:
                    start = i * self.stride
                    self.sock.send(self.mv[start : start + 4 + self.size - (first - 1) * self.blksize])
            else:
                block = first
                while block <= last:
                    block = self._send_range(block, last)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: as good as lost, the timer resends
        except TftpError as exc:
            self._abort(exc.code, exc.message)
            return
        except OSError:  # ICMP port unreachable (client gone) and other hard errors
            self.finish(False)
            return
        self.sent_upto = last
        self.last_send = _now()

    def _fill(self, first: int) -> None:
        """Read blocks first.. (as many as fit) into the buffer and write their headers."""
        blksize = self.blksize
        count = self.nblocks - first + 1
        if count > self.slots:
            count = self.slots
        offset = (first - 1) * blksize
        nbytes = self.size - offset
        if nbytes > count * blksize:
            nbytes = count * blksize
        views = self.views
        if self.content is None:
            got = os.preadv(self.fd, views if count == self.slots else views[:count], offset)
            if got != nbytes:
                raise TftpError(ERR_UNDEFINED, "File changed while being read")
        else:
            content = self.content
            for i in range(count):
                start = offset + i * blksize
                n = nbytes - i * blksize
                if n > blksize:
                    n = blksize
                views[i][:n] = content[start : start + n]
        buf, stride = self.buf, self.stride
        for i in range(count):
            _pack_hdr(buf, i * stride, 3, (first + i) & 0xFFFF)
        self.buf_first = first
        self.buf_count = count

    def _send_range(self, first: int, last: int) -> int:
        """Send blocks first..last, or as many of them as the buffer holds; the next block to send."""
        if not (self.buf_first <= first < self.buf_first + self.buf_count):
            self._fill(first)
        i = first - self.buf_first
        end = self.buf_first + self.buf_count - 1  # last block in the buffer
        if end > last:
            end = last
        count = end - first + 1
        stride = self.stride
        start = i * stride
        if end < self.nblocks:
            stop = start + count * stride
        else:
            stop = start + (count - 1) * stride + 4 + self.size - (end - 1) * self.blksize
        sock = self.sock
        if count > 1 and self.gso:
            try:
                sock.sendmsg((self.mv[start:stop],), self.gso_cmsg)
                return end + 1
            except OSError as exc:
                if exc.errno not in _GSO_REFUSED:
                    raise
                self.gso = False  # this path will not take it: one datagram per packet from now on
        pkts = self.pkts
        for j in range(i, i + count - 1):
            sock.send(pkts[j])
        sock.send(self.mv[start + (count - 1) * stride : stop])
        return end + 1

    # -- receiving --------------------------------------------------------------------

    def _on_readable(self) -> None:
        # One datagram per call: the loop polls level-triggered and calls again while
        # more are queued, and an empty read (an exception) per packet costs more.
        rbuf = self.rbuf
        try:
            n = self.sock.recv_into(rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable: the client went away
            self.finish(False)
            return
        if n < 4 or rbuf[0] != 0 or rbuf[1] != ACK:
            self._on_other(n)
            return
        acked = self.acked
        # The block this ACK names, in our unbounded count (block numbers roll over).
        k = acked + (((rbuf[2] << 8 | rbuf[3]) - acked) & 0xFFFF)
        if k == acked or k > self.sent_upto:
            return  # a duplicate ACK is never answered (sorcerer's apprentice); stale or bogus
        self.acked = k
        self.retries = 0
        if not self.proven:
            self.proven = True
            self.server._proven(self)
        if k >= self.nblocks:
            self.finish(True)
            return
        k += 1
        if self.windowsize == 1 and k < self.nblocks:
            # Lockstep fast path: the next full packet is usually formed in the buffer.
            i = k - self.buf_first
            if 0 <= i < self.buf_count:
                try:
                    self.sock.send(self.pkts[i])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.finish(False)
                    return
                self.sent_upto = k
                self.last_send = _now()
                return
        self._send_window(k)

    def _on_other(self, n: int) -> None:
        rbuf = self.rbuf
        if n < 4 or rbuf[0] != 0:
            return
        if rbuf[1] == ERROR:
            self.finish(False)  # the client gave up (or refused our OACK, RFC 2347)
        else:
            self._abort(ERR_ILLEGAL_OP, "Illegal TFTP operation")

    def _on_timer(self) -> None:
        if self.done:
            return
        waited = _now() - self.last_send
        if waited < self.timeout * 0.99:
            self.timer = self.loop.call_later(self.timeout - waited, self._on_timer)
            return
        self.retries += 1
        server = self.server
        if self.retries > server.max_retries or self.retries * self.timeout >= server.max_idle:
            log.debug("TFTP %s:%s timed out after %d resends", self.client[0], self.client[1], self.retries - 1)
            self.finish(False)
            return
        server.stats.retransmits += 1
        if self.acked < 0:
            self._send_oack()
        else:
            self._send_window(self.acked + 1)
        if not self.done:
            self.timer = self.loop.call_later(self.timeout, self._on_timer)

    def _abort(self, code: int, message: str) -> None:
        try:
            self.sock.send(build_error(code, message))
        except OSError:
            pass
        self.finish(False)

    def finish(self, ok: bool) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.server._finished(self, ok)
