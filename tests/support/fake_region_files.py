"""A fake region serving boot resource files the way the rack expects, with faults on demand.

    region = FakeRegionFiles()
    kernel = region.add(b"...")                      # -> {"sha256", "size", "path"}
    base_url = await region.start()                  # "http://127.0.0.1:PORT"
    manifest = {"images": [image("ephemeral/bookworm", "20261123", {"boot-kernel": kernel})]}
    region.drop_after[kernel["sha256"]] = [1000]     # next GET of it: close after 1000 bytes
    region.lie[kernel["sha256"]] = b"other bytes"   # serve these instead (wrong sha256)
    await region.stop()

GET/HEAD /MAAS/boot-resources/file/<sha256> with one `Range: bytes=N-M` (206, 416),
If-Range, ETag = the quoted sha256. Every request is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

PREFIX = "/MAAS/boot-resources/file/"


def image(
    name: str, version: str, files: dict[str, dict[str, Any]], architecture: str = "amd64", subarch: str = "generic"
) -> dict[str, Any]:
    return {"name": name, "architecture": architecture, "subarch": subarch, "version": version, "files": files}


class FakeRegionFiles:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, list[int]] = {}  # sha -> byte counts, one per coming GET
        self.lie: dict[str, bytes] = {}  # sha -> content served instead
        self.status: dict[str, int] = {}  # sha -> status to answer instead
        self.delay: float = 0.0  # seconds before each body
        self.ignore_range = False
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def add(self, content: bytes) -> dict[str, Any]:
        sha = hashlib.sha256(content).hexdigest()
        self.files[sha] = content
        return {"sha256": sha, "size": len(content), "path": PREFIX + sha}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await asyncio.start_server(self._client, host, port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ConnectionError,
                    asyncio.CancelledError,
                ):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                self.requests.append((method, target, headers.get("range")))
                if not await self._answer(writer, method, target, headers):
                    return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, method: str, target: str, headers: dict) -> bool:
        sha = target[len(PREFIX) :] if target.startswith(PREFIX) else ""
        if sha not in self.files:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        if sha in self.status:
            writer.write(b"HTTP/1.1 %d Oops\r\nContent-Length: 0\r\n\r\n" % self.status[sha])
            await writer.drain()
            return True
        content = self.lie.get(sha, self.files[sha])
        size = len(content)
        etag = f'"{sha}"'
        start, end, status = 0, size, 200
        rng = headers.get("range")
        if rng and not self.ignore_range and headers.get("if-range", etag) == etag and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            start = int(first)
            end = int(last) + 1 if last else size
            if start >= size:
                writer.write(
                    b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\n"
                    b"Content-Length: 0\r\n\r\n" % size
                )
                await writer.drain()
                return True
            end = min(end, size)
            status = 206
        head = [
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Partial Content'}",
            f"Content-Length: {end - start}",
            f"ETag: {etag}",
            "Accept-Ranges: bytes",
            "Content-Type: application/octet-stream",
        ]
        if status == 206:
            head.append(f"Content-Range: bytes {start}-{end - 1}/{size}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if method == "HEAD":
            await writer.drain()
            return True
        if self.delay:
            await asyncio.sleep(self.delay)
        drops = self.drop_after.get(sha)
        if drops:
            cut = drops.pop(0)
            writer.write(content[start : min(end, start + cut)])
            await writer.drain()
            writer.close()  # flushes what was written, then FIN: the body ends early
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return False
        view = memoryview(content)[start:end]
        for i in range(0, len(view), 1 << 20):
            writer.write(view[i : i + (1 << 20)])
            await writer.drain()
        return True
