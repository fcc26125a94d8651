"""The rack HTTP server's connection limits and timeouts, with raw sockets on 127.0.0.0/8
(the attacker connects from 127.0.0.2, the real client from 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import resource
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from metalplane.rack.http import Response
from metalplane.rack.http.server import BootHttpServer, Timeouts
from metalplane.rack.limits import budget

ATTACKER = "127.0.0.2"


async def hello(request) -> Response:
    return Response(body=b"hello\n")


async def start(**kwargs) -> tuple[BootHttpServer, int]:
    server = BootHttpServer(None, **kwargs)
    server.add_dynamic("/hello", hello)
    _host, port = await server.start("127.0.0.1", 0)
    return server, port


def connect(port: int, source: str = ATTACKER, send: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    if send:
        sock.sendall(send)
    return sock


async def read_all(sock: socket.socket, timeout: float = 3.0) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    out = b""
    async with asyncio.timeout(timeout):
        while chunk := await loop.sock_recv(sock, 65536):
            out += chunk
    return out


async def fetch(port: int) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/hello")
        response.raise_for_status()
        return response.text


async def settle() -> None:
    await asyncio.sleep(0.05)


async def test_past_the_per_client_limit_connections_get_503(caplog):
    caplog.set_level(logging.WARNING, logger="metalplane.rack.http")
    server, port = await start(max_per_client=3, max_connections=100)
    socks = [connect(port) for _ in range(3)]
    try:
        await settle()
        extra = connect(port)
        answer = await read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After" in answer
        assert await fetch(port) == "hello\n"  # another address is served
        assert server.stats.refused == 1 and server.per_client[ATTACKER] == 3
    finally:
        for sock in socks:
            sock.close()
        server.close()
    assert any(f"HTTP: {ATTACKER} has 3 connections, the per-client limit" in r.getMessage() for r in caplog.records)


async def test_at_the_global_limit_the_longest_idle_connection_makes_room():
    server, port = await start(max_per_client=10, max_connections=3)
    socks = [connect(port) for _ in range(3)]
    try:
        await settle()
        assert await fetch(port) == "hello\n"
        assert server.stats.evicted == 1
        assert await read_all(socks[0]) == b""  # the oldest idle one was closed
    finally:
        for sock in socks:
            sock.close()
        server.close()


async def test_at_the_global_limit_with_none_idle_new_connections_get_503():
    server, port = await start(max_per_client=10, max_connections=3)
    socks = [connect(port, send=b"GET /hello HTTP/1.1\r\n") for _ in range(3)]  # heads half sent
    try:
        await settle()
        with pytest.raises(httpx.HTTPStatusError) as info:
            await fetch(port)
        assert info.value.response.status_code == 503
        assert server.stats.evicted == 0 and server.stats.refused == 1
    finally:
        for sock in socks:
            sock.close()
        server.close()


async def test_a_request_head_trickling_in_is_cut_at_the_header_timeout():
    """Slowloris: a byte every 0.2 s keeps the connection busy but never finishes a head."""
    server, port = await start(timeouts=Timeouts(header=1.0))
    sock = connect(port, send=b"GET /hello HTTP/1.1\r\n")
    sock.setblocking(False)
    started = time.monotonic()
    closed_after = None
    try:
        while time.monotonic() - started < 5:
            try:
                sock.send(b"X")
            except OSError:
                closed_after = time.monotonic() - started
                break
            try:
                if sock.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except BlockingIOError:
                pass
            await asyncio.sleep(0.2)
        assert closed_after is not None and 1.0 <= closed_after < 3.0, closed_after
        assert server.stats.timed_out == 1
    finally:
        sock.close()
        server.close()


async def test_a_slow_but_complete_head_is_served():
    server, port = await start(timeouts=Timeouts(header=2.0))
    sock = connect(port, source="127.0.0.1")
    try:
        for piece in (b"GET /hel", b"lo HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            await asyncio.sleep(0.3)
        assert (await read_all(sock)).endswith(b"hello\n")
    finally:
        sock.close()
        server.close()


def test_default_limits_come_from_the_open_files_limit():
    server = BootHttpServer(None)
    expected = budget(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    assert (server.max_connections, server.max_per_client) == expected.http


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 10 ms


@pytest.mark.skipif(not shutil.which("prlimit"), reason="prlimit (util-linux) not installed")
def test_out_of_descriptors_the_server_pauses_accepting_instead_of_spinning(tmp_path):
    """A real EMFILE: the standalone server with a hard limit of 64 descriptors and no
    connection cap below it. It logs, pauses, does not burn CPU, and serves again once
    descriptors are back."""
    (tmp_path / "cache").mkdir()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "prlimit",
                "--nofile=64:64",
                sys.executable,
                "-m",
                "metalplane.rack.http",
                "--cache",
                str(tmp_path / "cache"),
                "--listen",
                "127.0.0.1:0",
                "--max-connections",
                "1000",
                "--max-per-client",
                "1000",
            ],
            stdout=subprocess.PIPE,
            stderr=out,
        )
    socks = []
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("ready "), (line, log.read_text())
        port = int(line.split()[2])
        for _ in range(100):  # more than the server has descriptors for
            socks.append(connect(port))
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(2)
        assert cpu_seconds(proc.pid) - before < 0.5  # paused, not spinning on a readable listener
        for sock in socks:
            sock.close()
        socks = []
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/images/index.json", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        for sock in socks:
            sock.close()
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "HTTP: accept failed ([Errno 24] Too many open files); pausing" in text
    assert text.count("accept failed") <= 3  # rate-limited, not one line per attempt
