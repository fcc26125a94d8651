"""What the rack's boot servers (TFTP, HTTP) share: one socket the event loop reads,
from start() until close(), and serve_forever() that waits for close()."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


class SocketServer:
    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop  # set by _starting()
        self._closed: asyncio.Event | None = None

    def _starting(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()

    def _listen_on(self, sock: socket.socket, on_readable: Callable[[], None]) -> None:
        self._sock = sock
        self._loop.add_reader(sock.fileno(), on_readable)

    @property
    def listening(self) -> bool:
        return self._sock is not None

    @property
    def address(self) -> tuple[str, int]:
        assert self._sock is not None
        name = self._sock.getsockname()
        return name[0], name[1]

    def _stop_listening(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _closing_done(self) -> None:
        """The end of close(): serve_forever returns."""
        if self._closed is not None:
            self._closed.set()

    async def serve_forever(self) -> None:
        assert self._closed is not None, "start() first"
        await self._closed.wait()
