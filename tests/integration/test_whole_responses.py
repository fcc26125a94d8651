"""The region's HTTP protocol sends a response's head and body in one write: a worker that dies
between uvicorn's two writes leaves nothing on the wire (an empty response, which HAProxy
retries on another region) instead of headers and a cut body (which nobody can retry).

A real uvicorn in a child process; the app kills its own process right after handing uvicorn
the head, i.e. between the two writes."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port_block, wait_until

SERVER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from metalplane.region.whole_responses import WholeResponseProtocol

    BIG = b"x" * (3 << 20)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        body = BIG if path == "/big" else b"0123456789" * 1000
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for n in range(3):
                await send({"type": "http.response.body", "body": b"chunk%d;" % n, "more_body": True})
                await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if path == "/die-between":
            os.kill(os.getpid(), signal.SIGKILL)
        await send({"type": "http.response.body", "body": body})

    protocol = WholeResponseProtocol if sys.argv[2] == "whole" else HttpToolsProtocol
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=protocol, log_level="warning")
    """
)


def start(tmp_path: Path, kind: str) -> tuple[subprocess.Popen, int]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port_block(1)
    proc = subprocess.Popen([sys.executable, str(script), str(port), kind])

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_until(listening, 20, what="the test server")
    return proc, port


@pytest.fixture
def server(tmp_path: Path, request) -> Iterator[tuple[subprocess.Popen, int]]:
    proc, port = start(tmp_path, request.param)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def exchange(port: int, path: str) -> bytes:
    """One request, everything the server sends until it closes (or 10 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(1 << 20):
            received += chunk
        return received


def split(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("server", ["whole"], indirect=True)
def test_a_worker_dying_between_head_and_body_sends_nothing(server):
    proc, port = server
    assert exchange(port, "/die-between") == b""  # empty: HAProxy's `retry-on empty-response`
    proc.wait(10)
    assert proc.returncode == -9


@pytest.mark.parametrize("server", ["plain"], indirect=True)
def test_uvicorn_alone_would_have_sent_the_head_without_its_body(server):
    """Why the protocol exists: the same death under uvicorn's own protocol cuts the response."""
    _, port = server
    head, body = split(exchange(port, "/die-between"))
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 10000" in head.lower()
    assert body == b""


@pytest.mark.parametrize("server", ["whole"], indirect=True)
def test_whole_small_large_and_streamed_responses_arrive_intact(server):
    _, port = server
    head, body = split(exchange(port, "/small"))
    assert head.startswith(b"HTTP/1.1 200") and body == b"0123456789" * 1000
    head, body = split(exchange(port, "/big"))
    assert head.startswith(b"HTTP/1.1 200") and body == b"x" * (3 << 20)
    head, body = split(exchange(port, "/stream"))
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"chunk0;" in body and b"chunk2;" in body and body.endswith(b"0\r\n\r\n")
