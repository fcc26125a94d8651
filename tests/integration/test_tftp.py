"""The rack's TFTP server against real clients (curl, busybox tftp, tftp-hpa) and, for the
edge cases, against our own client and raw sockets. Everything on 127.0.0.1; the only
processes started are our server and the clients, stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from metalplane.rack.tftp import Limits, Routes, StaticRoot, TftpError, TftpServer, chain
from metalplane.rack.tftp.protocol import (
    DATA,
    ERR_ACCESS,
    ERR_ILLEGAL_OP,
    ERR_NOT_FOUND,
    ERR_OPTIONS,
    ERROR,
    RRQ,
    WRQ,
    build_ack,
    build_request,
    netascii_encode,
    parse_error,
)
from tests.support import pythonpath_env
from tests.support import tftp_client as tftp
from tests.support.tftp_client import TftpClientError

BIG_SIZE = 65536 * 512 + 1000  # more than 65535 blocks of 512: the block number rolls over
TEXT = b"DEFAULT linux\nLABEL linux\r\n  KERNEL vmlinuz\rAPPEND quiet\n"

needs = {name: shutil.which(name) for name in ("curl", "busybox", "tftp")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tftproot")
    (root / "loader.bin").write_bytes(os.urandom(100 * 1024))
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    (root / "exact.bin").write_bytes(os.urandom(512 * 10))
    (root / "empty.bin").write_bytes(b"")
    (root / "small.txt").write_bytes(TEXT)
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_bytes(b"set timeout=1\n")
    (root.parent / "outside.txt").write_bytes(b"secret")
    return root


def content(root: Path, name: str) -> bytes:
    return (root / name).read_bytes()


@pytest.fixture(scope="module")
def standalone(root, tmp_path_factory):
    """`python -m metalplane.rack.tftp` as the real clients will meet it."""
    with open(tmp_path_factory.mktemp("tftplog") / "server.log", "wb") as log:
        proc, port = start_standalone(root, log)
        try:
            yield port
        finally:
            stop(proc)


def start_standalone(root: Path, log, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "metalplane.rack.tftp", "--root", str(root), "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready:
        proc.kill()
        proc.wait()
        raise AssertionError("TFTP server did not start")
    line = proc.stdout.readline().decode()
    assert line.startswith("ready "), line
    return proc, int(line.split()[2])


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args, cwd, timeout=60):
    return subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout)


# -- real clients -----------------------------------------------------------------------


@pytest.mark.skipif(not needs["curl"], reason="curl not installed")
@pytest.mark.parametrize(
    "name, blksize",
    [
        ("loader.bin", None),
        ("loader.bin", 8),
        ("loader.bin", 512),
        ("loader.bin", 1468),
        ("loader.bin", 65464),
        ("big.bin", 512),
        ("empty.bin", None),
        ("exact.bin", 512),
        ("boot/grub/grub.cfg", 1468),
    ],
)
def test_curl(standalone, root, tmp_path, name, blksize):
    out = tmp_path / "out"
    args = ["curl", "-sS", "-o", str(out)]
    if blksize is not None:
        args += ["--tftp-blksize", str(blksize)]
    if name == "empty.bin":
        # curl 7.88 fails an empty file after an OACK ("getpeername() failed"), against
        # tftpd-hpa just the same; without options it works.
        args += ["--tftp-no-options"]
    result = run(args + [f"tftp://127.0.0.1:{standalone}/{name}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert sha(out.read_bytes()) == sha(content(root, name))


@pytest.mark.skipif(not needs["curl"], reason="curl not installed")
def test_curl_errors(standalone, tmp_path):
    missing = run(["curl", "-sS", "-o", str(tmp_path / "x"), f"tftp://127.0.0.1:{standalone}/missing.bin"], tmp_path)
    assert missing.returncode == 68, missing.stderr  # CURLE_TFTP_NOTFOUND
    escape = run(
        ["curl", "-sS", "--path-as-is", "-o", str(tmp_path / "y"), f"tftp://127.0.0.1:{standalone}/../outside.txt"],
        tmp_path,
    )
    assert escape.returncode == 69, escape.stderr  # CURLE_TFTP_PERM: access violation


@pytest.mark.skipif(not needs["busybox"], reason="busybox not installed")
@pytest.mark.parametrize(
    "name, blksize",
    [
        ("loader.bin", None),
        ("loader.bin", 512),
        ("loader.bin", 1468),
        ("big.bin", 512),
        ("empty.bin", 1468),
    ],
)
def test_busybox(standalone, root, tmp_path, name, blksize):
    out = tmp_path / "out"
    args = ["busybox", "tftp", "-g"]
    if blksize is not None:
        args += ["-b", str(blksize)]
    result = run(args + ["-r", name, "-l", str(out), "127.0.0.1", str(standalone)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert sha(out.read_bytes()) == sha(content(root, name))


@pytest.mark.skipif(not needs["busybox"], reason="busybox not installed")
def test_busybox_missing_file(standalone, tmp_path):
    result = run(
        ["busybox", "tftp", "-g", "-r", "nope", "-l", str(tmp_path / "o"), "127.0.0.1", str(standalone)], tmp_path
    )
    assert result.returncode != 0
    assert b"not found" in result.stderr.lower()


@pytest.mark.skipif(not needs["tftp"], reason="tftp-hpa not installed")
@pytest.mark.parametrize("name", ["loader.bin", "big.bin", "exact.bin", "empty.bin"])
def test_tftp_hpa_binary(standalone, root, tmp_path, name):
    out = tmp_path / "out"
    result = run(["tftp", "-m", "binary", "127.0.0.1", str(standalone), "-c", "get", name, str(out)], tmp_path)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert sha(out.read_bytes()) == sha(content(root, name))


@pytest.mark.skipif(not needs["tftp"], reason="tftp-hpa not installed")
def test_tftp_hpa_netascii(standalone, tmp_path):
    out = tmp_path / "out"
    result = run(["tftp", "-m", "netascii", "127.0.0.1", str(standalone), "-c", "get", "small.txt", str(out)], tmp_path)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert out.read_bytes() == TEXT


@pytest.mark.skipif(not needs["tftp"], reason="tftp-hpa not installed")
@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.bin", b"Error code 1: File not found"),
        ("../outside.txt", b"Error code 2: Access violation"),
        ("/../../etc/passwd", b"Error code 2: Access violation"),
    ],
)
def test_tftp_hpa_errors(standalone, tmp_path, name, message):
    result = run(
        ["tftp", "-m", "binary", "127.0.0.1", str(standalone), "-c", "get", name, str(tmp_path / "o")], tmp_path
    )
    assert message in result.stderr + result.stdout


# -- our client, in-process server --------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(resolver, **kwargs):
    server = TftpServer(resolver, **kwargs)
    _host, port = await server.start("127.0.0.1", 0)
    try:
        yield server, port
        await settle(server)
    finally:
        server.close()


async def settle(server: TftpServer, within: float = 3.0) -> None:
    """Wait for the server to see the end of its transfers (a client returns on sending its last ACK)."""
    for _ in range(int(within / 0.02)):
        if not server.transfers:
            return
        await asyncio.sleep(0.02)


async def test_oack_negotiation_and_tsize(root):
    async with serving(StaticRoot(root)) as (server, port):
        result = await tftp.get("127.0.0.1", port, "loader.bin", blksize=1024, tsize=True, timeout_option=2)
    assert result.oack == {"blksize": "1024", "timeout": "2", "tsize": str(100 * 1024)}
    assert sha(result.data) == sha(content(root, "loader.bin"))
    assert server.stats.completed == 1 and server.stats.bytes_sent == 100 * 1024


async def test_no_options_no_oack(root):
    async with serving(StaticRoot(root)) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "exact.bin")
    assert result.oack is None and result.blksize == 512
    assert result.blocks == 11  # ten full blocks and the empty one that ends the transfer
    assert result.data == content(root, "exact.bin")


async def test_unknown_options_only_means_plain_transfer(root):
    async with serving(StaticRoot(root)) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "small.txt", options={"multicast": "", "x-foo": "1"})
    assert result.oack is None and result.data == TEXT


@pytest.mark.parametrize(
    "asked, max_blksize, granted",
    [
        (8, 1468, 8),
        (1468, 1468, 1468),
        (65464, 1468, 1468),
        (65464, 65464, 65464),
        (9000, 65464, 9000),
    ],
)
async def test_blksize_bounds(root, asked, max_blksize, granted):
    async with serving(StaticRoot(root), limits=Limits(max_blksize=max_blksize)) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "loader.bin", blksize=asked)
    assert result.blksize == granted and result.oack["blksize"] == str(granted)
    assert sha(result.data) == sha(content(root, "loader.bin"))


@pytest.mark.parametrize(
    "options",
    [
        {"blksize": 7},
        {"blksize": 65465},
        {"blksize": "big"},
        {"windowsize": 0},
        {"timeout": 0},
        {"timeout": 300},
    ],
)
async def test_bad_options_answered_with_error_8(root, options):
    async with serving(StaticRoot(root)) as (server, port):
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "loader.bin", options=options)
    assert info.value.code == ERR_OPTIONS
    assert server.stats.errors_sent == 1 and not server.transfers


@pytest.mark.parametrize("blksize, windowsize", [(512, 4), (1468, 16), (1468, 64), (8192, 8), (512, 1)])
@pytest.mark.parametrize("gso", [True, False])
async def test_windowsize(root, blksize, windowsize, gso):
    async with serving(StaticRoot(root), limits=Limits(max_blksize=65464), gso=gso) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "loader.bin", blksize=blksize, windowsize=windowsize, tsize=True)
    assert result.windowsize == windowsize and result.oack["windowsize"] == str(windowsize)
    assert sha(result.data) == sha(content(root, "loader.bin"))
    assert result.duplicates == 0


async def test_windowsize_lowered_to_the_limit(root):
    async with serving(StaticRoot(root), limits=Limits(max_windowsize=8)) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "loader.bin", windowsize=100)
    assert result.windowsize == 8 and result.data == content(root, "loader.bin")


@pytest.mark.parametrize("blksize, windowsize", [(512, 1), (512, 16), (1468, 8)])
async def test_big_file_block_numbers_roll_over(root, blksize, windowsize):
    digest = hashlib.sha256()
    async with serving(StaticRoot(root)) as (_server, port):
        result = await tftp.get(
            "127.0.0.1", port, "big.bin", blksize=blksize, windowsize=windowsize, sink=digest.update
        )
    assert result.size == BIG_SIZE
    assert digest.hexdigest() == sha(content(root, "big.bin"))


async def test_missing_file_is_error_1(root):
    async with serving(StaticRoot(root)) as (_server, port):
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "nope/missing.bin")
    assert info.value.code == ERR_NOT_FOUND and info.value.message == "File not found"


@pytest.mark.parametrize("name", ["../outside.txt", "/../outside.txt", "boot/../../outside.txt", "..\\outside.txt"])
async def test_path_traversal_refused(root, name):
    async with serving(StaticRoot(root)) as (_server, port):
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, name)
    assert info.value.code == ERR_ACCESS


async def test_leading_slash_and_backslashes_stay_inside(root):
    async with serving(StaticRoot(root)) as (_server, port):
        assert (await tftp.get("127.0.0.1", port, "/boot/grub/grub.cfg")).data == b"set timeout=1\n"
        assert (await tftp.get("127.0.0.1", port, "\\boot\\grub\\grub.cfg")).data == b"set timeout=1\n"


async def test_symlink_out_of_root_refused(root, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    os.symlink(root.parent / "outside.txt", served / "link")
    async with serving(StaticRoot(served)) as (_server, port):
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "link")
    assert info.value.code == ERR_ACCESS


async def test_netascii_mode(root):
    async with serving(StaticRoot(root)) as (_server, port):
        result = await tftp.get("127.0.0.1", port, "small.txt", mode="netascii", tsize=True)
    assert result.data == TEXT
    assert result.oack["tsize"] == str(len(netascii_encode(TEXT)))


async def exchange(port: int, packet: bytes, wait: float = 2.0) -> tuple[bytes, tuple]:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        await loop.sock_sendto(sock, packet, ("127.0.0.1", port))
        return await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), wait)


async def test_write_requests_and_other_opcodes_refused(root):
    async with serving(StaticRoot(root)) as (_server, port):
        for packet in (
            build_request(WRQ, "upload.bin"),
            build_ack(1),
            b"\x00\x03\x00\x01data",
            b"\x00\x01file\x00mail\x00",
            b"\x00\x01file-without-mode",
        ):
            reply, (_host, tid) = await exchange(port, packet)
            assert reply[:2] == struct.pack("!H", ERROR)
            assert parse_error(reply)[0] == ERR_ILLEGAL_OP, packet
            assert tid != port  # errors come from a fresh TID too


async def test_ack_dropped_is_retransmitted(root):
    async with serving(StaticRoot(root), limits=Limits(default_timeout=0.2)) as (server, port):
        result = await tftp.get("127.0.0.1", port, "loader.bin", drop_acks={0, 5, 200}, tsize=True)
    assert sha(result.data) == sha(content(root, "loader.bin"))
    # The OACK, block 5 and block 200 were each sent again (more only if the machine stalls).
    assert server.stats.retransmits >= 3 and result.duplicates >= 3


async def test_window_ack_dropped_and_block_lost(root):
    # 100 blocks of 1024 and an empty one, windows of 8. Block 3 lost: the client acks 2 and
    # the windows restart at 3 (3..10, 11..18, ...); the ACK of 18 lost: the server resends
    # 11..18 on its timer; 40 and 100 lost: recovered like 3.
    async with serving(StaticRoot(root), limits=Limits(default_timeout=0.2)) as (server, port):
        result = await tftp.get(
            "127.0.0.1", port, "loader.bin", blksize=1024, windowsize=8, drop_acks={18}, drop_blocks={3, 40, 100}
        )
    assert sha(result.data) == sha(content(root, "loader.bin"))
    assert server.stats.retransmits >= 1  # the lost ACK; lost blocks are recovered by the client's ACK
    assert server.stats.completed == 1


async def raw_transfer(port: int, request: bytes):
    """A socket that has sent `request`: returns (sock, first reply, server address)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    await loop.sock_sendto(sock, request, ("127.0.0.1", port))
    reply, server = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 2)
    return sock, reply, server


async def collect(sock: socket.socket, duration: float) -> list[bytes]:
    loop = asyncio.get_running_loop()
    packets = []
    deadline = loop.time() + duration
    while (left := deadline - loop.time()) > 0:
        try:
            packets.append((await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), left))[0])
        except TimeoutError:
            break
    return packets


async def test_duplicate_acks_are_not_answered(root):
    """The sorcerer's apprentice: a duplicated ACK must not double the DATA stream."""
    async with serving(StaticRoot(root), limits=Limits(default_timeout=5)) as (_server, port):
        sock, reply, server = await raw_transfer(port, build_request(RRQ, "loader.bin"))
        with sock:
            assert reply[:4] == struct.pack("!HH", DATA, 1)
            sock.sendto(build_ack(1), server)
            sock.sendto(build_ack(1), server)
            sock.sendto(build_ack(1), server)
            packets = await collect(sock, 0.5)
    assert [p[:4] for p in packets] == [struct.pack("!HH", DATA, 2)]


async def test_silent_client_is_given_up(root):
    async with serving(StaticRoot(root), limits=Limits(default_timeout=0.1), max_retries=3) as (server, port):
        sock, reply, _server = await raw_transfer(port, build_request(RRQ, "loader.bin"))
        with sock:
            packets = [reply] + await collect(sock, 2.0)
        assert all(p[:4] == struct.pack("!HH", DATA, 1) for p in packets)
        assert len(packets) == 1 + 3  # the first send and three resends, then nothing
        assert not server.transfers
        assert (server.stats.failed, server.stats.retransmits) == (1, 3)


async def test_client_gone_ends_the_transfer_early(root):
    """An ICMP port unreachable (the client's port is closed) ends the transfer at the next resend."""
    async with serving(StaticRoot(root), limits=Limits(default_timeout=0.2), max_retries=50) as (server, port):
        sock, _reply, _server = await raw_transfer(port, build_request(RRQ, "loader.bin"))
        sock.close()
        await settle(server)
        assert not server.transfers and server.stats.failed == 1


async def test_client_error_packet_aborts(root):
    async with serving(StaticRoot(root)) as (server, port):
        result = await tftp.get("127.0.0.1", port, "big.bin", blksize=1468, windowsize=4, abort_after=10)
        assert result.size == 10 * 1468
        await settle(server)
        assert not server.transfers and server.stats.failed == 1


async def test_error_in_answer_to_oack_aborts(root):
    async with serving(StaticRoot(root)) as (server, port):
        sock, reply, addr = await raw_transfer(port, build_request(RRQ, "loader.bin", "octet", {"blksize": 1024}))
        with sock:
            assert reply.startswith(struct.pack("!H", 6))  # OACK
            sock.sendto(struct.pack("!HH", ERROR, ERR_OPTIONS) + b"no thanks\0", addr)
            await settle(server)
        assert not server.transfers and server.stats.failed == 1


async def test_unexpected_opcode_during_transfer_is_error_4(root):
    async with serving(StaticRoot(root)) as (server, port):
        sock, _reply, addr = await raw_transfer(port, build_request(RRQ, "loader.bin"))
        with sock:
            sock.sendto(b"\x00\x03\x00\x01junk", addr)
            packets = await collect(sock, 0.3)
        assert packets and parse_error(packets[-1])[0] == ERR_ILLEGAL_OP
        assert not server.transfers


async def test_dynamic_configs_are_merged_and_cached(root):
    calls = []

    async def pxelinux(match, client):
        calls.append(match.group("mac"))
        await asyncio.sleep(0.1)  # the region takes a while
        return f"DEFAULT local\n# {match.group('mac')}\n".encode()

    routes = Routes(ttl=5)
    routes.add(r"pxelinux\.cfg/01-(?P<mac>[0-9a-f]{2}(?:-[0-9a-f]{2}){5})", pxelinux)
    async with serving(chain(routes, StaticRoot(root))) as (server, port):
        name = "pxelinux.cfg/01-52-54-00-AA-BB-CC"
        results = await asyncio.gather(*(tftp.get("127.0.0.1", port, name, tsize=True) for _ in range(30)))
        again = await tftp.get("127.0.0.1", port, name)
        other = await tftp.get("127.0.0.1", port, "pxelinux.cfg/01-52-54-00-aa-bb-dd")
        static = await tftp.get("127.0.0.1", port, "loader.bin")
    expected = b"DEFAULT local\n# 52-54-00-aa-bb-cc\n"
    assert {r.data for r in results} == {expected} and again.data == expected
    assert other.data == b"DEFAULT local\n# 52-54-00-aa-bb-dd\n"
    assert calls == ["52-54-00-aa-bb-cc", "52-54-00-aa-bb-dd"]
    assert static.data == content(root, "loader.bin")
    assert server.stats.completed == 33


async def test_retransmitted_request_while_resolving_starts_one_transfer(root):
    gate = asyncio.Event()

    async def slow(path, client):
        await gate.wait()
        return b"payload"

    async with serving(slow) as (server, port):
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(("127.0.0.1", 0))
            request = build_request(RRQ, "x")
            for _ in range(3):
                await loop.sock_sendto(sock, request, ("127.0.0.1", port))
            await asyncio.sleep(0.1)
            gate.set()
            packets = [(await asyncio.wait_for(loop.sock_recvfrom(sock, 600), 2))]
            packets += [(p, None) for p in await collect(sock, 0.3)]
        assert [p for p, _ in packets] == [struct.pack("!HH", DATA, 1) + b"payload"]
        assert server.stats.transfers == 1


async def test_resolver_errors(root):
    async def resolver(path, client):
        if path == "denied":
            raise TftpError(ERR_ACCESS, "Not for you")
        raise RuntimeError("bug")

    async with serving(resolver) as (server, port):
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "denied")
        assert (info.value.code, info.value.message) == (ERR_ACCESS, "Not for you")
        with pytest.raises(TftpClientError) as info:
            await tftp.get("127.0.0.1", port, "boom")
        assert info.value.code == 0
        assert server.stats.errors_sent == 2


async def test_many_concurrent_transfers(root):
    want = sha(content(root, "loader.bin"))
    async with serving(StaticRoot(root)) as (server, port):
        results = await asyncio.gather(
            *(
                tftp.get("127.0.0.1", port, "loader.bin", blksize=(512, 1468)[i % 2], windowsize=(1, 8, 16)[i % 3])
                for i in range(200)
            )
        )
    assert all(sha(r.data) == want for r in results)
    assert server.stats.completed == 200 and not server.transfers


async def test_bytes_source_with_windows(root):
    payload = os.urandom(70_000)

    async def resolver(path, client):
        return payload

    async with serving(resolver) as (_server, port):
        for blksize, windowsize in ((512, 1), (1468, 16), (700, 3)):
            result = await tftp.get("127.0.0.1", port, "gen", blksize=blksize, windowsize=windowsize, tsize=True)
            assert result.data == payload and result.oack["tsize"] == "70000"


async def test_server_close_abandons_transfers(root):
    server = TftpServer(StaticRoot(root))
    _host, port = await server.start("127.0.0.1", 0)
    sock, _reply, _addr = await raw_transfer(port, build_request(RRQ, "loader.bin"))
    sock.close()
    assert len(server.transfers) == 1
    server.close()
    assert not server.transfers


async def test_standalone_workers(root, tmp_path):
    """--workers N: N processes on one port (SO_REUSEPORT); they go with the parent."""
    with open(tmp_path / "server.log", "wb") as log:
        proc, port = start_standalone(root, log, "--workers", "3")
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            assert len(children) == 2
            want = sha(content(root, "loader.bin"))
            results = await asyncio.gather(
                *(tftp.get("127.0.0.1", port, "loader.bin", blksize=1468, windowsize=(1, 16)[i % 2]) for i in range(60))
            )
            assert all(sha(r.data) == want for r in results)
        finally:
            stop(proc)
    for _ in range(50):
        if not any(Path(f"/proc/{pid}").exists() for pid in children):
            break
        await asyncio.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    served = [
        int(m)
        for m in re.findall(rb"TFTP stopped \(pid \d+\): Stats\(requests=(\d+)", (tmp_path / "server.log").read_bytes())
    ]
    assert len(served) == 3 and sum(served) == 60


WILDCARD_SCRIPT = """
import asyncio
from metalplane.rack.tftp import TftpServer
from tests.support import tftp_client as client

async def main():
    async def resolve(path, peer):
        return b"hello " + path.encode()
    for listen, targets in (("0.0.0.0", ["127.0.0.1", "127.0.0.2", "127.3.4.5"]), ("::", ["::1", "127.0.0.9"])):
        server = TftpServer(resolve)
        _host, port = await server.start(listen, 0)
        for target in targets:
            # The client only accepts answers from the address it asked: the server must
            # answer from the address each request was sent to.
            result = await client.get(target, port, "x", blksize=600, timeout=0.5, max_retries=2)
            assert result.data == b"hello x", result
            print("ok", listen, target)
        server.close()

asyncio.run(main())
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="needs root, unshare and ip for a private network namespace",
)
def test_wildcard_listen_answers_from_the_address_asked(tmp_path):
    """Listening on 0.0.0.0 / :: (inside a private network namespace with only lo)."""
    script = tmp_path / "wildcard.py"
    script.write_text(WILDCARD_SCRIPT)
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {sys.executable} {script}"],
        capture_output=True,
        timeout=60,
        env={**os.environ, **pythonpath_env()},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().count("ok ") == 5
