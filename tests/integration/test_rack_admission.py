"""Boot-storm admission control with real sockets on 127.0.0.1: image transfers past the cap
are held on their connection and served in arrival order (never refused), a held client
that goes away frees its place, a hold past hold_max gets 503 + Retry-After; TFTP read
requests past the cap are held (no ERROR) and answered when a transfer ends."""

from __future__ import annotations

import asyncio
import hashlib
import socket

from metalplane.rack.tftp import StaticRoot, TftpServer
from metalplane.rack.tftp.protocol import RRQ, build_request
from tests.integration.test_rack_http import INITRD, KERNEL, URL, wait_for, world
from tests.support import tftp_client as tftp

REQUEST = "GET {path} HTTP/1.1\r\nHost: rack\r\nConnection: {conn}\r\n\r\n"


def client(port: int, path: str, conn: str = "close") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 17)  # a slow reader: the transfer stays open
    sock.connect(("127.0.0.1", port))
    sock.sendall(REQUEST.format(path=path, conn=conn).encode())
    sock.setblocking(False)
    return sock


def answered(sock: socket.socket) -> bool:
    """Whether the server has started to answer (without consuming anything)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False


async def read_response(sock: socket.socket, *, until_close: bool = True, length: int | None = None):
    """(status line, headers, body) of one response."""
    loop = asyncio.get_running_loop()
    buf = b""
    async with asyncio.timeout(20):
        while b"\r\n\r\n" not in buf:
            chunk = await loop.sock_recv(sock, 1 << 20)
            assert chunk, f"closed before a response head: {buf!r}"
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        want = int(headers.get("Content-Length", "-1"))
        while len(body) < want or (want < 0 and until_close):
            chunk = await loop.sock_recv(sock, 1 << 20)
            if not chunk:
                break
            body += chunk
    return lines[0], headers, body


async def test_over_the_cap_image_gets_are_held_then_served_in_order(tmp_path):
    async with world(tmp_path, transfers_max=2) as w:
        server = w.service.server
        port = w.service.address[1]
        path = f"{URL}/boot-initrd"
        socks = []
        for _ in range(6):  # one after the other: the arrival order is known
            socks.append(client(port, path))
            await asyncio.sleep(0.05)
        try:
            await wait_for(lambda: server.admission.waiting == 4, what="four held requests")
            assert [answered(s) for s in socks] == [True, True, False, False, False, False]
            assert server.admission.max_queue == 4 and len(server.admission) == 2

            socks[3].close()  # a held machine gives up: its place is freed, nobody is served for it
            await wait_for(lambda: server.admission.waiting == 3, what="the cancel")
            assert server.admission.cancelled == 1 and len(server.admission) == 2

            line = [2, 4, 5]  # the held ones still there, in arrival order
            for step, done in enumerate((0, 1, 2)):
                status, _, body = await read_response(socks[done])
                assert status == "HTTP/1.1 200 OK" and hashlib.sha256(body).digest() == hashlib.sha256(INITRD).digest()
                socks[done].close()
                nxt = line[step]
                await wait_for(lambda n=nxt: answered(socks[n]), what=f"client {nxt} served")
                assert not any(answered(socks[later]) for later in line[step + 1 :])
            for i in (4, 5):
                status, _, body = await read_response(socks[i])
                assert status == "HTTP/1.1 200 OK" and len(body) == len(INITRD)
            assert 503 not in server.stats.responses and server.stats.refused == 0
            await wait_for(lambda: len(server.admission) == 0, what="every slot released")
            a = server.admission
            assert (a.admitted, a.held, a.cancelled, a.expired_count) == (5, 4, 1, 0)
            assert "image transfers: 0 active of 2" in w.service.status()[1]
        finally:
            for s in socks:
                s.close()


async def test_a_keep_alive_machine_keeps_its_slot_for_the_initrd(tmp_path):
    async with world(tmp_path, transfers_max=1) as w:
        server = w.service.server
        port = w.service.address[1]
        first = client(port, f"{URL}/boot-kernel", conn="keep-alive")
        await asyncio.sleep(0.05)
        other = client(port, f"{URL}/boot-kernel")
        try:
            await wait_for(lambda: server.admission.waiting == 1, what="the second machine held")
            status, _, body = await read_response(first, until_close=False)
            assert status == "HTTP/1.1 200 OK" and body == KERNEL
            first.sendall(REQUEST.format(path=f"{URL}/boot-initrd", conn="close").encode())
            status, _, body = await read_response(first)
            assert status == "HTTP/1.1 200 OK" and len(body) == len(INITRD)
            assert server.admission.held == 1  # the initrd did not queue behind the other machine
            status, _, body = await read_response(other)
            assert status == "HTTP/1.1 200 OK" and body == KERNEL
        finally:
            first.close()
            other.close()


async def test_a_hold_past_hold_max_gets_503_with_retry_after(tmp_path):
    async with world(tmp_path, transfers_max=1, hold_max=0.5) as w:
        server = w.service.server
        port = w.service.address[1]
        busy = client(port, f"{URL}/boot-initrd")  # never read: keeps the only slot
        await asyncio.sleep(0.05)
        late = client(port, f"{URL}/boot-kernel")
        try:
            status, headers, body = await read_response(late)
            assert status == "HTTP/1.1 503 Service Unavailable"
            assert int(headers["Retry-After"]) >= 1 and b"retry" in body
            assert server.stats.held_503 == 1 and server.admission.expired_count == 1
            # HEAD and index.json never wait for a slot
            head = socket.create_connection(("127.0.0.1", port))
            head.sendall(f"HEAD {URL}/boot-kernel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head.setblocking(False)
            status, headers, _ = await read_response(head)
            assert status == "HTTP/1.1 200 OK" and int(headers["Content-Length"]) == len(KERNEL)
            head.close()
        finally:
            busy.close()
            late.close()


def rrq(port: int, sock: socket.socket | None = None) -> socket.socket:
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
    sock.sendto(build_request(RRQ, "loader", "octet", {"blksize": 512, "tsize": 0}), ("127.0.0.1", port))
    return sock


async def packet(sock: socket.socket, timeout: float) -> tuple[bytes, tuple] | None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            return await loop.sock_recvfrom(sock, 65536)
    except TimeoutError:
        return None


async def test_tftp_requests_past_the_cap_are_held_not_refused(tmp_path):
    (tmp_path / "loader").write_bytes(bytes(range(256)) * 400)  # 102,400 bytes
    server = TftpServer(StaticRoot(tmp_path), transfers_max=1, hold_max=6.0)
    host, port = await server.start("127.0.0.1", 0)
    socks: list[socket.socket] = []
    try:
        # A machine that never acknowledges holds the only slot.
        first = rrq(port)
        socks.append(first)
        got = await packet(first, 2.0)
        assert got is not None and got[0][:2] == b"\x00\x06"  # OACK
        first_tid = got[1]

        second = rrq(port)
        socks.append(second)
        assert await packet(second, 0.3) is None  # held: no answer, above all no ERROR
        rrq(port, second)  # a PXE ROM retransmits: it keeps its place, no second transfer
        assert await packet(second, 0.3) is None
        assert server.stats.held == 1 and server.admission.waiting == 1 and server.stats.transfers == 1

        first.sendto(b"\x00\x05\x00\x00gone\x00", first_tid)  # the first machine gives up
        got = await packet(second, 2.0)
        assert got is not None and got[0][:2] == b"\x00\x06"  # its OACK, from a new port
        assert server.stats.errors_sent == 0 and server.stats.busy == 0

        # The held machine that went away: its request expires, and no transfer starts for it.
        server.admission.hold_max = 0.2
        third = rrq(port)
        third.close()
        await asyncio.sleep(0.4)
        second.sendto(b"\x00\x05\x00\x00gone\x00", got[1])
        await wait_for(lambda: not server.transfers and not server.admission.waiting, what="an idle server")
        assert server.stats.hold_expired == 1 and server.stats.transfers == 2

        # Real clients, four at once, each gets the whole file.
        server.admission.hold_max = 6.0
        results = await asyncio.gather(
            *(tftp.get(host, port, "loader", blksize=512, tsize=True, timeout=0.5) for _ in range(4))
        )
        assert all(r.size == 102_400 for r in results)
        assert server.stats.errors_sent == 0 and server.stats.held >= 3
    finally:
        for sock in socks:
            sock.close()
        server.close()


async def test_a_silent_tftp_requester_cannot_keep_a_real_machine_waiting(tmp_path):
    """Every slot taken by a request nobody acknowledges (a flood's): a real machine's
    retransmitted request evicts it once it is older than UNPROVEN_GRACE, and is served.
    It waited longer than hold_max, but kept retransmitting: it kept its place."""
    (tmp_path / "loader").write_bytes(b"x" * 5000)
    server = TftpServer(StaticRoot(tmp_path), transfers_max=1, hold_max=0.5)
    host, port = await server.start("127.0.0.1", 0)
    silent = rrq(port)
    try:
        assert await packet(silent, 2.0) is not None  # its OACK, never acknowledged
        started = asyncio.get_running_loop().time()
        result = await tftp.get(host, port, "loader", blksize=512, tsize=True, timeout=0.3, max_retries=10)
        assert result.size == 5000 and asyncio.get_running_loop().time() - started > 0.5
        assert server.stats.evicted == 1 and server.stats.held == 1 and server.stats.errors_sent == 0
    finally:
        silent.close()
        server.close()
