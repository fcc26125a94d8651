"""The TFTP server's limits against floods and hostile requests, on 127.0.0.0/8.

The attacker sends from 127.0.0.2 (one socket, `testing.tftp_flood`), the real client
(metalplane's client, curl) from 127.0.0.1: the per-client limit tells them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from metalplane.rack.limits import budget
from metalplane.rack.tftp import StaticRoot, TftpServer
from metalplane.rack.tftp import server as tftp_server
from metalplane.rack.tftp.protocol import (
    ERR_NOT_FOUND,
    ERR_UNDEFINED,
    ERROR,
    OACK,
    RRQ,
    Limits,
    build_ack,
    build_request,
    parse_error,
    parse_oack,
)
from tests.support import tftp_client as tftp
from tests.support.tftp_flood import flood

ATTACKER = "127.0.0.2"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tftplimits")
    (root / "loader.bin").write_bytes(os.urandom(64 * 1024))
    return root


@contextlib.asynccontextmanager
async def serving(root, *sockets: str, **kwargs):
    """(server, port, [a silent client socket bound to each address in `sockets`])."""
    server = TftpServer(StaticRoot(root), **kwargs)
    _host, port = await server.start("127.0.0.1", 0)
    socks = []
    try:
        for source in sockets:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(sock)
            sock.bind((source, 0))
            sock.setblocking(False)
        yield server, port, socks
    finally:
        for sock in socks:
            sock.close()
        server.close()


async def replies(sock: socket.socket, duration: float) -> list[tuple[float, bytes, tuple]]:
    loop = asyncio.get_running_loop()
    out, deadline = [], loop.time() + duration
    while (left := deadline - loop.time()) > 0:
        try:
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), left)
        except TimeoutError:
            break
        out.append((loop.time(), data, peer))
    return out


async def test_one_flooding_address_gets_its_share_and_a_real_client_is_served(root, caplog):
    caplog.set_level(logging.WARNING, logger="metalplane.rack.tftp")
    async with serving(root, max_per_client=5, max_transfers=50) as (server, port, _):
        report = await asyncio.to_thread(
            flood, "127.0.0.1", port, count=500, filename="loader.bin", rate=5000, hold=0.5, source=ATTACKER
        )
        assert report["sent"] == 500
        assert report["transfers_started"] == 5  # the rest were dropped, not answered
        assert server.stats.dropped == 495 and server.stats.busy == 0
        result = await tftp.get("127.0.0.1", port, "loader.bin", blksize=1468, timeout_option=255)
        assert result.data == (root / "loader.bin").read_bytes()
    said = [r.getMessage() for r in caplog.records if "per-client limit" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"TFTP: {ATTACKER} has 5 transfers in progress")


async def test_the_clients_timeout_option_is_acknowledged_but_the_server_gives_up_early(root):
    async with serving(root, ATTACKER, limits=Limits(max_timeout=0.2), max_idle=0.7) as (server, port, [sock]):
        sock.sendto(build_request(RRQ, "loader.bin", "octet", {"timeout": 255}), ("127.0.0.1", port))
        got = await replies(sock, 2.0)
        assert got and all(data[1] == OACK for _t, data, _p in got)
        assert parse_oack(got[0][1])["timeout"] == "255"  # RFC 2349: echoed as asked
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
        assert len(got) == 4 and all(0.15 < g < 0.4 for g in gaps), gaps  # resent every 0.2 s, 0.6 s long
        assert not server.transfers and server.stats.failed == 1  # abandoned after 0.7 s idle


async def test_at_the_global_limit_silent_transfers_make_room_for_real_clients(root, monkeypatch):
    monkeypatch.setattr(tftp_server, "UNPROVEN_GRACE", 0.1)
    async with serving(root, ATTACKER, max_per_client=10, max_transfers=3) as (server, port, [sock]):
        for i in range(3):
            sock.sendto(build_request(RRQ, "loader.bin", "octet", {"timeout": 255, "n": i}), ("127.0.0.1", port))
        await replies(sock, 0.3)
        assert len(server.transfers) == 3
        result = await tftp.get("127.0.0.1", port, "loader.bin", blksize=1468)
        assert result.data == (root / "loader.bin").read_bytes()
        assert server.stats.evicted == 1 and server.stats.busy == 0


async def test_at_the_global_limit_with_live_transfers_the_answer_is_server_busy(root, monkeypatch):
    monkeypatch.setattr(tftp_server, "UNPROVEN_GRACE", 0.1)
    async with serving(root, "127.0.0.1", "127.0.0.1", max_per_client=10, max_transfers=2) as (server, port, socks):
        for sock in socks:  # two transfers that acknowledge their first block, then stall
            sock.sendto(build_request(RRQ, "loader.bin"), ("127.0.0.1", port))
            ((_t, data, peer),) = await replies(sock, 0.2)
            assert data[:4] == struct.pack("!HH", 3, 1)
            sock.sendto(build_ack(1), peer)
        await asyncio.sleep(0.2)
        with pytest.raises(tftp.TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "loader.bin", max_retries=1)
        assert (info.value.code, info.value.message) == (ERR_UNDEFINED, "Server busy")
        assert server.stats.evicted == 0


async def test_a_retransmitted_request_does_not_start_a_second_transfer(root):
    async with serving(root, ATTACKER) as (server, port, [sock]):
        request = build_request(RRQ, "loader.bin", "octet", {"blksize": 1468})
        for _ in range(5):
            sock.sendto(request, ("127.0.0.1", port))
            await asyncio.sleep(0.02)
        got = await replies(sock, 0.3)
        assert server.stats.transfers == 1 and len({peer for _t, _d, peer in got}) == 1


async def refused(root, name: str) -> tuple[int, str]:
    """The error code a request for `name` gets."""
    async with serving(root) as (_server, port, _):
        with pytest.raises(tftp.TftpClientError) as info:
            await tftp.get("127.0.0.1", port, name, max_retries=1)
    return info.value.code, info.value.message


@pytest.mark.parametrize("name", ["a" * 256, "boot/" + "b" * 300, "/".join(["c" * 200] * 6), "d" * 60000])
async def test_overlong_names_get_a_tftp_error_and_no_traceback(root, caplog, name):
    caplog.set_level(logging.DEBUG, logger="metalplane.rack.tftp")
    assert await refused(root, name) == (ERR_NOT_FOUND, "File name too long")
    assert not any(r.exc_info for r in caplog.records)
    assert all(len(r.getMessage()) < 300 for r in caplog.records)


async def test_a_name_the_filesystem_refuses_is_not_found_not_internal_error(root, caplog):
    """Under the length limits, but still refused by the kernel (ELOOP): error 1, no traceback."""
    (root / "loop").symlink_to("loop")
    caplog.set_level(logging.DEBUG, logger="metalplane.rack.tftp")
    assert (await refused(root, "loop/x"))[0] == ERR_NOT_FOUND
    assert not any(r.exc_info for r in caplog.records)


def test_default_limits_come_from_the_open_files_limit(root):
    server = TftpServer(StaticRoot(root))
    expected = budget(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    assert (server.max_transfers, server.max_per_client) == expected.tftp


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_the_standalone_server_applies_the_limits(root, tmp_path):
    """`python -m metalplane.rack.tftp`: a flood from one address is cut at its limit, curl is served."""
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "metalplane.rack.tftp",
                "--root",
                str(root),
                "--listen",
                "127.0.0.1:0",
                "--max-per-client",
                "4",
            ],
            stdout=subprocess.PIPE,
            stderr=out,
        )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("ready "), line
        port = int(line.split()[2])
        report = flood("127.0.0.1", port, count=300, filename="loader.bin", rate=3000, hold=0.5, source=ATTACKER)
        assert report["transfers_started"] == 4
        fetched = subprocess.run(
            [
                "curl",
                "-sS",
                "--tftp-blksize",
                "1468",
                "-o",
                str(tmp_path / "out"),
                f"tftp://127.0.0.1:{port}/loader.bin",
            ],
            capture_output=True,
            timeout=30,
        )
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "out").read_bytes() == (root / "loader.bin").read_bytes()
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "limits: " in text and f"TFTP: {ATTACKER} has 4 transfers in progress, the per-client limit" in text
    assert "dropped=296" in text  # the final Stats line


def test_error_packets_are_parsed_by_the_flood_tool():
    assert parse_error(struct.pack("!HH", ERROR, 0) + b"Server busy\0") == (0, "Server busy")
