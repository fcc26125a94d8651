"""N simulated PXE machines booting at once, from one network namespace.

    python bench/pxe_storm_client.py --ifname IF --clients 200 [--mac-prefix 52:54:01:00] > result.json

Each machine does what a BIOS PXE ROM and then iPXE do:

1. DHCP (DISCOVER/OFFER/REQUEST/ACK) as a PXE client (option 93 = 0, option 60
   "PXEClient:..."): the answer names a TFTP server and a loader;
2. TFTP: the loader, blksize 1432 (what PXE ROMs ask);
3. DHCP again as iPXE (option 77 "iPXE"): the answer is an HTTP script URL;
4. HTTP: the script, following `chain` lines, then the `kernel` and `initrd` it names,
   each read to the end.

All machines share the namespace's one address for TFTP and HTTP; DHCP uses each
machine's own MAC (chaddr) and xid on one socket bound to port 68, with the
broadcast flag, as a machine without an address would. Packets are built and parsed
with scapy. Retransmissions follow PXE ROMs (DHCP: 4, 8, 16 s).

Prints one JSON object: per machine, the stage times or the error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from scapy.layers.dhcp import BOOTP, DHCP

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)
from tests.support import tftp_client as tftp  # noqa: E402

PXE_VENDOR = b"PXEClient:Arch:00000:UNDI:002001"
DHCP_RETRIES = (4.0, 8.0, 16.0)
TFTP_BLKSIZE = 1432
CHAIN = re.compile(r"^chain\s+(\S+)", re.M)
KERNEL = re.compile(r"^kernel\s+(\S+)", re.M)
INITRD = re.compile(r"^initrd\s+(\S+)", re.M)


@dataclass
class Machine:
    mac: str
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    bytes: int = 0
    address: str = ""
    error: str = ""
    total: float = 0.0


def options_of(packet: BOOTP) -> dict[str, object]:
    return {o[0]: o[1] for o in packet[DHCP].options if isinstance(o, tuple)}


def request_packet(kind: str, mac: bytes, xid: int, ipxe: bool, offer: BOOTP | None = None) -> bytes:
    opts: list = [
        ("message-type", kind),
        ("pxe_client_architecture", b"\x00\x00"),
        ("vendor_class_id", PXE_VENDOR),
        ("param_req_list", [1, 3, 6, 43, 54, 60, 66, 67]),
    ]
    if ipxe:
        opts.append(("user_class", b"iPXE"))
    if offer is not None:
        opts += [("requested_addr", offer.yiaddr), ("server_id", options_of(offer)["server_id"])]
    return bytes(BOOTP(chaddr=mac + bytes(10), xid=xid, flags=0x8000) / DHCP(options=[*opts, "end"]))


class DhcpPort:
    """One UDP socket on port 68 shared by every machine; replies dispatched by xid."""

    def __init__(self, ifname: str) -> None:
        self.waiting: dict[int, asyncio.Queue[BOOTP]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        # Broadcasts leave by this interface without a route, as from a machine with no address.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        self.sock.bind(("0.0.0.0", 68))
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            try:
                packet = BOOTP(data)
            except Exception:  # not ours to judge, just not a reply
                continue
            queue = self.waiting.get(packet.xid)
            if queue is not None and packet.op == 2 and DHCP in packet:
                queue.put_nowait(packet)

    async def exchange(
        self, kind: str, mac: bytes, xid: int, ipxe: bool, want: int, offer: BOOTP | None = None
    ) -> BOOTP:
        queue: asyncio.Queue[BOOTP] = self.waiting.setdefault(xid, asyncio.Queue())
        payload = request_packet(kind, mac, xid, ipxe, offer)
        for wait in DHCP_RETRIES:
            self.sock.sendto(payload, ("255.255.255.255", 67))
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                try:
                    reply = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                message = options_of(reply).get("message-type")
                if message == 6:  # NAK
                    raise RuntimeError(f"DHCP NAK for {kind}")
                if message == want:
                    return reply
        raise TimeoutError(f"no DHCP answer to {kind} after {len(DHCP_RETRIES)} tries")

    async def lease(self, mac: bytes, ipxe: bool) -> BOOTP:
        xid = random.getrandbits(32)
        try:
            offer = await self.exchange("discover", mac, xid, ipxe, want=2)
            return await self.exchange("request", mac, xid, ipxe, want=5, offer=offer)
        finally:
            self.waiting.pop(xid, None)


def boot_file(packet: BOOTP) -> str:
    named = options_of(packet).get("boot-file-name")
    raw = named if named else packet.file
    return raw.rstrip(b"\x00").decode() if isinstance(raw, bytes) else str(raw)


async def fetch_all(session: aiohttp.ClientSession, url: str) -> int:
    size = 0
    async with session.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
    return size


async def http_script(session: aiohttp.ClientSession, url: str, mac: str) -> str:
    """Follow `chain` lines (iPXE's ${net0/mac:hexhyp} filled in) to the script that boots."""
    for _ in range(4):
        async with session.get(url) as response:
            response.raise_for_status()
            text = await response.text()
        chained = CHAIN.search(text)
        if chained is None:
            return text
        url = chained.group(1).replace("${net0/mac:hexhyp}", mac.replace(":", "-"))
    raise RuntimeError("too many chain lines")


async def boot(machine: Machine, port: DhcpPort) -> None:
    # Each machine has its own connections, as separate iPXE instances would.
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await boot_with(machine, port, session)


async def boot_with(machine: Machine, port: DhcpPort, session: aiohttp.ClientSession) -> None:
    mac = bytes.fromhex(machine.mac.replace(":", ""))
    started = mark = time.monotonic()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        machine.stages[name] = round(now - mark, 4)
        mark = now

    try:
        ack = await port.lease(mac, ipxe=False)
        machine.address = ack.yiaddr
        server, loader = ack.siaddr, boot_file(ack)
        if server == "0.0.0.0" or not loader:
            raise RuntimeError(f"PXE answer without a loader (next-server {server}, file {loader!r})")
        stage("dhcp")
        result = await tftp.get(
            server, 69, loader, blksize=TFTP_BLKSIZE, tsize=True, timeout=2.0, sink=lambda view: None
        )
        machine.bytes += result.size
        stage("tftp")
        ack = await port.lease(mac, ipxe=True)
        script_url = boot_file(ack)
        if not script_url.startswith("http"):
            raise RuntimeError(f"iPXE answer without a script URL: {script_url!r}")
        stage("dhcp_ipxe")
        script = await http_script(session, script_url, machine.mac)
        kernel, initrd = KERNEL.search(script), INITRD.search(script)
        if kernel is None or initrd is None:
            raise RuntimeError(f"the script boots nothing: {script[:200]!r}")
        stage("script")
        machine.bytes += await fetch_all(session, kernel.group(1))
        machine.bytes += await fetch_all(session, initrd.group(1))
        stage("images")
    except Exception as exc:  # every failure is reported, per machine
        machine.error = f"{type(exc).__name__}: {exc}"
    machine.total = round(time.monotonic() - started, 4)


async def storm(clients: int, mac_prefix: str, ifname: str) -> dict:
    machines = [Machine(f"{mac_prefix}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}") for i in range(clients)]
    port = DhcpPort(ifname)
    started = time.monotonic()
    await asyncio.gather(*(boot(m, port) for m in machines))
    wall = time.monotonic() - started
    return {"wall": round(wall, 3), "machines": [asdict(m) for m in machines]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--ifname", required=True, help="the interface the machines are on")
    parser.add_argument("--mac-prefix", default="52:54:01:00", help="first four bytes")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(storm(args.clients, args.mac_prefix, args.ifname))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
