"""The rack's HTTP/1.1 server for boot assets: cached images with sendfile, plus dynamic routes.

Shape, chosen for speed in a boot storm (like the TFTP server's):

- Plain non-blocking sockets watched with `loop.add_reader` / `loop.add_writer` (works the
  same on uvloop and asyncio's own loop); no transports, streams or tasks per request.
- A file body leaves with `os.sendfile` straight from the page cache to the socket (zero
  copy), as much per call as the socket buffer takes; the header goes first with MSG_MORE
  so the kernel merges it with the first body segment.
- Keep-alive (HTTP/1.1 default, HTTP/1.0 on request) and pipelining; one sweeper timer for
  idle and stalled connections instead of a timer per connection.
- Only what the image cache says is verified complete is served: every request opens the
  file and compares its fstat with the fingerprint of the last hash (`ImageCache.open`).
  When the cache drops a file (corrupt, missing), transfers of it in flight are cut.

URLs:

    GET|HEAD /images/<name>/<arch>/<subarch>/<version>/<filetype>   e.g.
             /images/ephemeral/bookworm/amd64/generic/20261123/boot-kernel
             (<version> "latest": the newest version whose files are all cached)
    GET|HEAD /images/by-sha256/<sha256>
    GET      /images/index.json     what this rack serves (JSON)
    anything under a prefix given to `add_dynamic(prefix, handler)`

Answers: 200 / 206 (one byte range; several ranges get the whole file) / 416 with
`Content-Range: bytes */SIZE` / 304 (If-None-Match on the ETag, which is the quoted
sha256, or If-Modified-Since equal to Last-Modified) / 404 (unknown) / 503 with
Retry-After (known to the rack but not cached yet, or being re-verified) / 405 for
methods other than GET and HEAD. Requests with a body are refused (413, connection closed).

Limits, so that a flood of connections degrades service instead of exhausting the
rack's descriptors (sized from RLIMIT_NOFILE by `rack.limits` unless given):

- `max_connections` open at once and `max_per_client` per client address. At the
  global limit the connection idle longest between requests is closed to make room;
  with none idle, and past the per-client limit, the new connection gets a short 503
  (Retry-After) and is closed.
- A request head must be complete (at most MAX_HEAD bytes) within `Timeouts.header`
  seconds of its first byte (slowloris), else the connection is closed; an idle
  keep-alive connection is closed after `Timeouts.idle`, a stalled response after
  `Timeouts.send`.
- When accept() fails for want of descriptors, accepting pauses briefly (the
  listening socket would otherwise wake the loop at once, forever).
- Limits in action are logged at most once per `Throttle` interval, with counts.

Admission control (boot storms, `ha.admission`): at most `transfers_max` image GETs
stream at once. A GET past it is held on its open connection, nothing sent, in a FIFO
queue (iPXE waits as long as its connection is up); when a transfer ends the oldest held
request is served. A held client that disconnects frees its place. One held longer than
`hold_max` gets `503` with `Retry-After` (about one mean transfer time: iPXE retries the
same URL) and is closed. After a transfer on a keep-alive connection, its slot stays with
that connection for `LINGER` seconds, so a machine's initrd follows its kernel without
queueing again. HEAD, 304s, index.json and dynamic routes are never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from metalplane.ha.admission import Admission
from metalplane.rack import metrics
from metalplane.rack.http.protocol import (
    MAX_HEAD,
    REASONS,
    BadRequest,
    RequestHead,
    etag_in,
    if_range_allows,
    parse_range,
    parse_request_head,
    route_image_path,
)
from metalplane.rack.limits import Throttle, current_budget
from metalplane.rack.socket_server import SocketServer

log = logging.getLogger("metalplane.rack.http")

READING, BUSY, WRITING, CLOSED, HELD = range(5)
TRANSFERS_MAX = 64  # image transfers at once (admission control); 0: unlimited
HOLD_MAX = 30.0  # seconds a held request waits before a 503 + Retry-After
LINGER = 1.0  # seconds an admitted keep-alive connection keeps its slot for its next request
MAX_SENDFILE = 1 << 30
MAX_BUFFERED = 1 << 16  # pipelined bytes kept while a response is being written
SWEEP_INTERVAL = 1.0
MSG_MORE = getattr(socket, "MSG_MORE", 0)
HEADER_TIMEOUT = 10.0
ACCEPT_PAUSE = 0.5  # after accept() ran out of descriptors
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
)


@dataclass
class Request:
    """What a dynamic handler sees."""

    method: str
    path: str  # percent-decoded
    query: str
    headers: dict[str, str]  # lower-case names
    client: tuple  # (host, port, ...)
    local: tuple  # the address the request came in on (which interface the machine sees)
    prefix: str = ""  # the `add_dynamic` prefix that matched

    @property
    def subpath(self) -> str:
        return self.path[len(self.prefix) :]


@dataclass
class Response:
    """What a dynamic handler answers. `file` is served with sendfile (and ranges)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    file: str | os.PathLike | None = None


Handler = Callable[[Request], Awaitable[Response | None]]


@dataclass
class Stats:
    connections: int = 0  # accepted
    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0  # sent
    aborted: int = 0  # connections cut while writing (client gone, stalled, file dropped)
    refused: int = 0  # connections turned away at a limit (503)
    evicted: int = 0  # idle connections closed to make room
    timed_out: int = 0  # request heads not complete in time, idle or stalled connections
    held_503: int = 0  # held requests answered 503 + Retry-After after hold_max


@dataclass(frozen=True)
class Timeouts:
    """Seconds a connection may take: to send a whole request head (from its first byte),
    idle between requests (keep-alive), and stalled while a response is written."""

    header: float = HEADER_TIMEOUT
    idle: float = 60.0
    send: float = 60.0


class _DateCache:
    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.value = formatdate(now, usegmt=True).encode()
        return self.value


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


class BootHttpServer(SocketServer):
    """Serve `cache` (a `metalplane.rack.images.ImageCache`, or None: dynamic routes only)."""

    def __init__(
        self,
        cache: Any = None,
        *,
        timeouts: Timeouts = Timeouts(),
        max_connections: int | None = None,
        max_per_client: int | None = None,
        server_name: str = "metalplane",
        transfers_max: int = TRANSFERS_MAX,
        hold_max: float = HOLD_MAX,
    ):
        super().__init__()
        self.cache = cache
        self.timeouts = timeouts
        self.max_connections, self.max_per_client = current_budget().http.override(max_connections, max_per_client)
        self.per_client: dict[str, int] = {}
        self._said = {kind: Throttle() for kind in ("client", "full", "fds", "held")}
        self._paused: asyncio.TimerHandle | None = None
        self.server_header = f"Server: {server_name}\r\n".encode()
        self.stats = Stats()
        self.admission: Admission[_Conn] = Admission(transfers_max, hold_max)
        self._transfer_seconds = 1.0  # moving mean of an admitted transfer's length (Retry-After)
        self.conns: set[_Conn] = set()
        self._dynamic: list[tuple[str, Handler]] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._date = _DateCache()
        if cache is not None:
            cache.listeners.append(self._file_dropped)

    # ------------------------------------------------------------------ lifecycle

    def add_dynamic(self, prefix: str, handler: Handler) -> None:
        """Route every path starting with `prefix` (longest prefix wins) to `handler`.
        The handler answers a `Response`, or None for 404; raising answers 500."""
        if not prefix.startswith("/"):
            raise ValueError("a prefix starts with /")
        self._dynamic = sorted(
            [*((p, h) for p, h in self._dynamic if p != prefix), (prefix, handler)], key=lambda item: -len(item[0])
        )

    def remove_dynamic(self, prefix: str) -> None:
        self._dynamic = [(p, h) for p, h in self._dynamic if p != prefix]

    async def start(
        self,
        host: str = "0.0.0.0",
        port: int = 5248,
        *,
        sock: socket.socket | None = None,
        reuse_port: bool = False,
        backlog: int = 2048,
    ) -> tuple[str, int]:
        self._starting()
        if sock is None:
            sock = listen_socket(host, port, reuse_port=reuse_port, backlog=backlog)
        sock.setblocking(False)
        self._listen_on(sock, self._on_accept)
        self._sweeper = self._loop.call_later(SWEEP_INTERVAL, self._sweep)
        bound = self.address
        log.info("HTTP boot server listening on %s port %d", bound[0], bound[1])
        return bound

    def close(self) -> None:
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        self._stop_listening()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.conns):
            conn.close()
        if self.cache is not None and self._file_dropped in self.cache.listeners:
            self.cache.listeners.remove(self._file_dropped)
        self._closing_done()

    # ------------------------------------------------------------------ connections

    def _on_accept(self) -> None:
        sock = self._sock
        for _ in range(256):
            if sock is None:
                return
            try:
                client, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._pause_accepting(exc)
                    return
                log.debug("HTTP accept failed: %s", exc)  # e.g. ECONNABORTED: that client is gone
                continue
            host = peer[0]
            if not self._admit(host):
                self.stats.refused += 1
                with contextlib.suppress(OSError):
                    client.send(_TOO_MANY, socket.MSG_DONTWAIT)
                client.close()
                continue
            client.setblocking(False)
            with contextlib.suppress(OSError):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stats.connections += 1
            conn = _Conn(self, client, peer)
            self.conns.add(conn)
            self.per_client[host] = self.per_client.get(host, 0) + 1
            self._loop.add_reader(conn.fd, conn.on_readable)

    def _admit(self, host: str) -> bool:
        """Room for one more connection from `host`: within its share, and within the total
        (closing the longest-idle keep-alive connection if need be)."""
        have = self.per_client.get(host, 0)
        if have >= self.max_per_client:
            if n := self._said["client"].hit():
                log.warning(
                    "HTTP: %s has %d connections, the per-client limit: refusing more (%d since the "
                    "last report, %d in all)",
                    host,
                    have,
                    n,
                    self._said["client"].total,
                )
            return False
        if len(self.conns) < self.max_connections:
            return True
        idle = [c for c in self.conns if c.state == READING and not c.buf]
        if idle:
            oldest = min(idle, key=lambda c: c.last)
            self.stats.evicted += 1
            oldest.close()
            return True
        if n := self._said["full"].hit():
            log.warning(
                "HTTP: %d connections open, the limit, none idle: refusing more (%d since the last report, %d in all)",
                len(self.conns),
                n,
                self._said["full"].total,
            )
        return False

    def _pause_accepting(self, exc: OSError) -> None:
        if n := self._said["fds"].hit():
            log.warning(
                "HTTP: accept failed (%s); pausing %.1f s (%d time(s) since the last report)", exc, ACCEPT_PAUSE, n
            )
        if self._sock is None or self._paused is not None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._paused = self._loop.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._paused = None
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._on_accept)
            self._on_accept()

    def _closed_conn(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        host = conn.peer[0]
        left = self.per_client.get(host, 0) - 1
        if left > 0:
            self.per_client[host] = left
        else:
            self.per_client.pop(host, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        timeouts = self.timeouts
        for conn in list(self.conns):
            if conn.state == READING:
                if conn.buf and now - conn.head_since > timeouts.header:
                    self.stats.timed_out += 1  # a request head trickling in (slowloris)
                    conn.close()
                elif not conn.buf and now - conn.last > timeouts.idle:
                    self.stats.timed_out += 1
                    conn.close()
            elif conn.state in (WRITING, BUSY) and now - conn.last > timeouts.send:
                self.stats.aborted += 1
                conn.close()
            if conn.admitted and conn.state == READING and now > conn.linger_until:
                self.release(conn)  # its next request did not come: the slot goes to the next
        for conn in self.admission.expired(now):
            conn.give_up_holding(self._retry_after())
        if self._sock is not None:
            self._sweeper = self._loop.call_later(SWEEP_INTERVAL, self._sweep)

    def _file_dropped(self, sha: str, reason: str) -> None:
        for conn in list(self.conns):
            if conn.sha == sha and conn.state == WRITING:
                log.warning("cutting a transfer of %s to %s: %s", sha, conn.peer, reason)
                self.stats.aborted += 1
                conn.close()

    # ------------------------------------------------------------------ requests

    def handle(self, conn: _Conn, req: RequestHead) -> None:
        self.stats.requests += 1
        if req.method not in ("GET", "HEAD"):
            conn.respond_simple(405, req, extra=b"Allow: GET, HEAD\r\n")
            return
        for prefix, handler in self._dynamic:
            if req.path.startswith(prefix):
                self.release(conn)  # not an image: a lingering slot goes to the next in line
                conn.run_dynamic(handler, req, prefix)
                return
        route = route_image_path(req.path)
        if route is None or self.cache is None:
            conn.respond_simple(404, req)
            return
        if route.index:
            conn.respond_bytes(200, req, self._index_json(), b"application/json", b"Cache-Control: no-cache\r\n")
            return
        cache = self.cache
        sha = route.sha256 if route.sha256 else cache.resolve(*route.ident) if route.ident else None
        if sha is None:
            metrics.image_lookup("http", False)
            conn.respond_simple(404, req)
            return
        immutable = route.sha256 is not None or bool(route.ident and route.ident[3] != "latest")
        if (
            req.method == "GET"
            and not conn.admitted
            and cache.entry(sha) is not None  # (not cached: the 503/404 below, no slot)
            and not etag_in(req.headers.get("if-none-match"), f'"{sha}"')
        ):
            if not self.admission.try_enter(conn):
                conn.hold(req, immutable, sha)
                if n := self._said["held"].hit():
                    log.warning(
                        "HTTP: %d image transfers at once, the limit: holding requests in line "
                        "(%d since the last report, %d waiting now)",
                        len(self.admission),
                        n,
                        self.admission.waiting,
                    )
                return
            conn.admitted = True
            conn.admitted_at = time.monotonic()
        self.serve_image(conn, req, immutable, sha)

    def serve_image(self, conn: _Conn, req: RequestHead, immutable: bool, sha: str) -> None:
        cache = self.cache
        opened = cache.open(sha)
        metrics.image_lookup("http", opened is not None)
        if opened is None:
            if cache.known(sha):
                conn.respond_simple(
                    503, req, extra=b"Retry-After: 10\r\n", text=b"not cached on this rack yet, or being verified\n"
                )
            else:
                conn.respond_simple(404, req)
            return
        fd, st, entry = opened
        if immutable:
            cache_control = b"Cache-Control: public, max-age=31536000, immutable\r\n"
        else:
            cache_control = b"Cache-Control: no-cache\r\n"
        conn.respond_file(req, fd, st.st_size, f'"{sha}"', http_date(entry.mtime), cache_control, sha)

    def release(self, conn: _Conn) -> None:
        """`conn`'s image transfer slot is free (transfer done and linger over, or closed)."""
        if not conn.admitted:
            return
        conn.admitted = False
        took = time.monotonic() - conn.admitted_at
        self._transfer_seconds += (took - self._transfer_seconds) * 0.1
        nxt = self.admission.leave(conn)
        if nxt is not None:
            nxt.admitted = True  # (closing it before it resumes releases the slot again)
            nxt.admitted_at = time.monotonic()
            self._loop.call_soon(nxt.resume)

    def _retry_after(self) -> int:
        return max(1, min(60, round(self._transfer_seconds)))

    def _index_json(self) -> bytes:
        cache = self.cache
        complete = cache.complete()
        images = []
        for image in cache.images:
            files = {
                f.filetype: {
                    "sha256": f.sha256,
                    "size": f.size,
                    "url": image.url_path(f.filetype),
                    "cached": f.sha256 in complete,
                }
                for f in image.files
            }
            images.append(
                {
                    "name": image.name,
                    "architecture": image.architecture,
                    "subarch": image.subarch,
                    "version": image.version,
                    "files": files,
                    "complete": all(v["cached"] for v in files.values()),
                }
            )
        return json.dumps({"images": images}, indent=1).encode()

    def date(self) -> bytes:
        return self._date.get()


def listen_socket(host: str, port: int, *, reuse_port: bool = False, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Conn:
    __slots__ = (
        "server",
        "loop",
        "sock",
        "fd",
        "peer",
        "buf",
        "state",
        "last",
        "out",
        "out_pos",
        "file_fd",
        "file_pos",
        "file_end",
        "keep_alive",
        "sha",
        "writer",
        "eof",
        "task",
        "in_process",
        "status",
        "head_since",
        "admitted",
        "admitted_at",
        "linger_until",
        "held",
    )

    def __init__(self, server: BootHttpServer, sock: socket.socket, peer: tuple):
        self.server = server
        self.loop = server._loop
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.buf = bytearray()
        self.state = READING
        self.last = time.monotonic()
        self.out = b""
        self.out_pos = 0
        self.file_fd = -1
        self.file_pos = 0
        self.file_end = 0
        self.keep_alive = True
        self.sha: str | None = None
        self.writer = False
        self.eof = False
        self.task: asyncio.Task | None = None
        self.in_process = False
        self.status = 0
        self.head_since = self.last  # when the first byte of the request head being read came
        self.admitted = False  # holds one of the server's image transfer slots
        self.admitted_at = 0.0
        self.linger_until = 0.0
        self.held: tuple[RequestHead, bool, str] | None = None  # the request waiting for a slot

    # -------------------------------------------------------------- reading

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            if self.state in (READING, HELD):
                self.close()  # a held client that went away frees its place in line
            else:  # finish the response, then close
                self.eof = True
                self.loop.remove_reader(self.fd)
            return
        self.last = time.monotonic()
        if not self.buf:
            self.head_since = self.last
        self.buf += data
        if self.state == READING:
            self.process()
        elif len(self.buf) > MAX_BUFFERED:
            self.close()

    def process(self) -> None:
        if self.in_process:
            return
        self.in_process = True
        try:
            while self.state == READING and self.buf:
                buf = self.buf
                while buf[:2] == b"\r\n":  # tolerated before a request line
                    del buf[:2]
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        self.keep_alive = False
                        self._error(431, "request head too large")
                    return
                head = bytes(buf[:end])
                del buf[: end + 4]
                try:
                    req = parse_request_head(head)
                except BadRequest as exc:
                    self.keep_alive = False
                    self._error(exc.status, str(exc))
                    return
                self.keep_alive = req.keep_alive and not self.eof
                te = req.headers.get("transfer-encoding")
                cl = req.headers.get("content-length", "0").strip() or "0"
                if te or cl != "0":
                    self.keep_alive = False
                    self.server.stats.requests += 1
                    self.respond_simple(413 if not te else 501, req, text=b"request bodies are not accepted\n")
                    return
                self.server.handle(self, req)
        finally:
            self.in_process = False

    # -------------------------------------------------------------- answers

    def _head(self, status: int, extra: bytes, length: int | None) -> bytes:
        server = self.server
        server.stats.responses[status] = server.stats.responses.get(status, 0) + 1
        self.status = status
        parts = [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown").encode()),
            server.server_header,
            b"Date: ",
            server.date(),
            b"\r\n",
            extra,
        ]
        if length is not None:
            parts.append(b"Content-Length: %d\r\n" % length)
        parts.append(b"\r\n" if self.keep_alive else b"Connection: close\r\n\r\n")
        return b"".join(parts)

    def _error(self, status: int, text: str) -> None:
        body = f"{status} {REASONS.get(status, '')}: {text}\n".encode()
        self.out = self._head(status, b"Content-Type: text/plain; charset=utf-8\r\n", len(body)) + body
        self._start_write()

    def respond_simple(self, status: int, req: RequestHead, *, extra: bytes = b"", text: bytes | None = None) -> None:
        body = text if text is not None else f"{status} {REASONS.get(status, '')}\n".encode()
        self.respond_bytes(status, req, body, b"text/plain; charset=utf-8", extra)

    def respond_bytes(
        self, status: int, req: RequestHead, body: bytes, content_type: bytes, extra: bytes = b""
    ) -> None:
        if req.version == "HTTP/1.0" and self.keep_alive:
            extra += b"Connection: keep-alive\r\n"
        head = self._head(
            status, b"Content-Type: " + content_type + b"\r\n" + extra, None if status == 304 else len(body)
        )
        self.out = head if req.method == "HEAD" or status == 304 else head + body
        self._start_write()

    def respond_file(
        self,
        req: RequestHead,
        fd: int,
        size: int,
        etag: str | None,
        last_modified: str | None,
        extra: bytes = b"",
        sha: str | None = None,
        content_type: bytes = b"application/octet-stream",
    ) -> None:
        """Answer with (part of) an open file; `fd` is owned (closed) from here on."""
        headers = req.headers
        validators = b""
        if etag:
            validators += b"ETag: " + etag.encode() + b"\r\n"
        if last_modified:
            validators += b"Last-Modified: " + last_modified.encode() + b"\r\n"
        if req.version == "HTTP/1.0" and self.keep_alive:
            extra += b"Connection: keep-alive\r\n"
        inm = headers.get("if-none-match")
        if (etag and etag_in(inm, etag)) or (
            inm is None and last_modified and headers.get("if-modified-since") == last_modified
        ):
            os.close(fd)
            self.out = self._head(304, validators + extra, None)
            self._start_write()
            return
        common = b"Accept-Ranges: bytes\r\n" + validators + extra
        rng = None
        if if_range_allows(headers.get("if-range"), etag, last_modified):
            rng = parse_range(headers.get("range"), size)
        if isinstance(rng, str):  # UNSATISFIABLE
            os.close(fd)
            body = b"416 Range Not Satisfiable\n"
            head = self._head(
                416,
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Range: bytes */%d\r\n" % size + common,
                len(body),
            )
            self.out = head if req.method == "HEAD" else head + body
            self._start_write()
            return
        if rng is None:
            start, end, status, crange = 0, size, 200, b""
        else:
            start, end, status = rng[0], rng[1] + 1, 206
            crange = b"Content-Range: bytes %d-%d/%d\r\n" % (rng[0], rng[1], size)
        self.out = self._head(status, b"Content-Type: " + content_type + b"\r\n" + crange + common, end - start)
        if req.method == "HEAD" or end == start:
            os.close(fd)
        else:
            self.file_fd, self.file_pos, self.file_end, self.sha = fd, start, end, sha
        self._start_write()

    def run_dynamic(self, handler: Handler, req: RequestHead, prefix: str) -> None:
        self.state = BUSY
        request = Request(req.method, req.path, req.query, req.headers, self.peer, self.sock.getsockname(), prefix)
        self.task = asyncio.ensure_future(self._dynamic(handler, request, req))

    async def _dynamic(self, handler: Handler, request: Request, req: RequestHead) -> None:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:  # a handler's bug answers 500, the server goes on
            log.exception("dynamic handler for %s failed", request.path)
            response = Response(500, b"500 Internal Server Error\n")
        self.task = None
        if self.state == CLOSED:
            return
        self.state = READING  # (respond_* switch to WRITING)
        if response is None:
            self.respond_simple(404, req)
            return
        extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in response.headers.items())
        if response.file is not None:
            try:
                fd = os.open(response.file, os.O_RDONLY | os.O_CLOEXEC)
                st = os.fstat(fd)
            except OSError as exc:
                log.error("dynamic file %s for %s: %s", response.file, request.path, exc)
                self.respond_simple(404, req)
                return
            etag = response.headers.get("ETag")
            if etag:
                extra = b"".join(
                    f"{k}: {v}\r\n".encode("latin-1") for k, v in response.headers.items() if k.lower() != "etag"
                )
            self.respond_file(
                req, fd, st.st_size, etag, http_date(st.st_mtime), extra, content_type=response.content_type.encode()
            )
        else:
            self.respond_bytes(response.status, req, response.body, response.content_type.encode(), extra)

    # -------------------------------------------------------------- admission

    def hold(self, req: RequestHead, immutable: bool, sha: str) -> None:
        """Wait in line for an image transfer slot, the request kept, nothing sent."""
        self.state = HELD
        self.held = (req, immutable, sha)
        self.last = time.monotonic()

    def resume(self) -> None:
        """Admitted (`BootHttpServer.release` of another): serve the held request."""
        if self.state != HELD or self.held is None:
            return  # closed meanwhile: close() released the slot
        req, immutable, sha = self.held
        self.held = None
        self.state = READING
        self.last = time.monotonic()
        self.server.serve_image(self, req, immutable, sha)

    def give_up_holding(self, retry_after: int) -> None:
        """Held longer than hold_max: a retry-friendly answer, then close."""
        if self.state != HELD or self.held is None:
            return
        req = self.held[0]
        self.held = None
        self.state = READING
        self.keep_alive = False
        self.server.stats.held_503 += 1
        self.respond_simple(
            503, req, extra=b"Retry-After: %d\r\n" % retry_after, text=b"busy: too many image transfers, retry\n"
        )

    # -------------------------------------------------------------- writing

    def _start_write(self) -> None:
        self.state = WRITING
        self.out_pos = 0
        self.write()

    def write(self) -> None:
        # A short write means the socket buffer is full: wait for the next writable event
        # rather than calling again only to get EAGAIN (one syscall and one exception less
        # per wakeup, which is most of this server's own CPU under many clients).
        try:
            out = self.out
            pending = len(out) - self.out_pos
            if pending:
                n = self.sock.send(memoryview(out)[self.out_pos :], MSG_MORE if self.file_fd >= 0 else 0)
                self.out_pos += n
                if n < pending:
                    return self._wait_writable()
            if self.file_fd >= 0:
                pos, end = self.file_pos, self.file_end
                while pos < end:
                    want = min(end - pos, MAX_SENDFILE)
                    n = os.sendfile(self.fd, self.file_fd, pos, want)
                    if n == 0:  # the file shrank under us: cannot keep the promise
                        raise ConnectionError("file shorter than announced")
                    pos += n
                    self.file_pos = pos
                    self.server.stats.body_bytes += n
                    if n < want:
                        return self._wait_writable()
        except (BlockingIOError, InterruptedError):
            return self._wait_writable()
        except OSError:
            self.server.stats.aborted += 1
            self.close()
            return
        self.last = time.monotonic()
        self._finished()

    def _wait_writable(self) -> None:
        self.last = time.monotonic()
        if not self.writer:
            self.writer = True
            self.loop.add_writer(self.fd, self.write)

    def _finished(self) -> None:
        if self.writer:
            self.writer = False
            self.loop.remove_writer(self.fd)
        if self.file_fd >= 0:
            os.close(self.file_fd)
            self.file_fd = -1
        self.sha = None
        self.out = b""
        if not self.keep_alive or self.eof:
            self.close()
            return
        if self.admitted:
            self.linger_until = time.monotonic() + LINGER
        self.state = READING
        if self.buf:  # pipelined: the next request's head starts now
            self.head_since = time.monotonic()
            self.process()

    def close(self) -> None:
        if self.state == CLOSED:
            return
        if self.state == HELD:
            self.server.admission.cancel(self)
            self.held = None
        self.state = CLOSED
        loop = self.loop
        if not self.eof:
            loop.remove_reader(self.fd)
        if self.writer:
            loop.remove_writer(self.fd)
            self.writer = False
        if self.file_fd >= 0:
            os.close(self.file_fd)
            self.file_fd = -1
        if self.task is not None:
            self.task.cancel()
            self.task = None
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.release(self)
        self.server._closed_conn(self)
