"""The API's HTTP protocol: a response's head and body leave the worker in one send().

uvicorn writes the status line and headers in one call and the body in the next. A worker
killed between the two (kill -9, OOM, a region host lost) leaves its peer with headers and a
cut body: HAProxy has already passed the headers on, so neither it nor the client can retry.
Writes made within one turn of the event loop are joined here and sent together, so a
response the app produced whole reaches the kernel whole, and the kernel delivers what it
holds even after the process is gone (the send buffer is sized for it: supervisor.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Past this much, send now: the transport's own flow control (pause_writing) must see a large
# body as it is written, not a turn later.
FLUSH_AT = 256 << 10


class JoinedWrites:
    """A transport whose writes within one loop turn go out as one write of the inner one."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._inner = inner
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0
        self._due = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()
        elif not self._due:
            self._due = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._due = False
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        self._size = 0
        if not self._inner.is_closing():
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._held.clear()
        self._size = 0
        self._inner.abort()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WholeResponseProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over JoinedWrites (uvicorn.Config(http=...))."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]
