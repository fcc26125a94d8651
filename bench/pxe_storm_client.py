"""N simulated PXE machines booting at once, from one network namespace.

    python bench/pxe_storm_client.py --ifname IF --clients 200 [--mac-prefix 52:54:01:00] > result.json

Each machine does what a BIOS PXE ROM and then iPXE do:

1. DHCP (DISCOVER/OFFER/REQUEST/ACK) as a PXE client (option 93 = 0, option 60
   "PXEClient:..."): the answer names a TFTP server and a loader;
2. TFTP: the loader, blksize 1432 (what PXE ROMs ask);
3. DHCP again as iPXE (option 77 "iPXE"): the answer is an HTTP script URL;
4. HTTP: the script, following `chain` lines, then the `kernel` and `initrd` it names,
   each read to the end.

DHCP uses each machine's own MAC (chaddr) and xid on one socket bound to port 68, with
the broadcast flag, as a machine without an address would (several client processes
in one namespace each bind port 68 with SO_REUSEADDR: every one sees every broadcast
reply and keeps those whose xid it sent). Packets are built and parsed with scapy.
With `--bind-leased` each machine then sends TFTP and HTTP from the address it leased
(the namespace must accept them: `ip route add local POOL dev lo`), so per-client
limits see one machine per address, as on a real network; without it every machine
uses the namespace's one address.

Firmware behaviour modelled: DHCP retransmitted at 4, 8, 16 s; a TFTP ERROR fails the
machine (a PXE ROM gives up), a silent TFTP server gets the request again every 2 s
(5 times); HTTP 503 with Retry-After: wait that long and ask for the same URL again (as
iPXE does; at most `HTTP_RETRIES` times); any other HTTP error fails the machine.

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
from metalplane.rack.limits import raise_open_files_limit  # noqa: E402
from tests.support import tftp_client as tftp  # noqa: E402

PXE_VENDOR = b"PXEClient:Arch:00000:UNDI:002001"
DHCP_RETRIES = (4.0, 8.0, 16.0)
TFTP_BLKSIZE = 1432
HTTP_RETRIES = 20  # 503 + Retry-After answers a machine accepts before it gives up
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
    http_retries: int = 0  # 503 + Retry-After answers it waited out


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
            if len(data) < 8 or int.from_bytes(data[4:8], "big") not in self.waiting:
                continue  # another process's machine (or not a reply): skip scapy's parse
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


class Busy(Exception):
    def __init__(self, retry_after: float):
        self.retry_after = retry_after


async def get(session: aiohttp.ClientSession, machine: Machine, url: str, read) -> object:
    """GET `url` and `read(response)`, waiting out 503 + Retry-After as iPXE does."""
    for _ in range(HTTP_RETRIES + 1):
        try:
            async with session.get(url) as response:
                if response.status == 503 and "Retry-After" in response.headers:
                    raise Busy(float(response.headers["Retry-After"]))
                response.raise_for_status()
                return await read(response)
        except Busy as busy:
            machine.http_retries += 1
            await asyncio.sleep(busy.retry_after)
    raise RuntimeError(f"HTTP 503 retries exhausted for {url}")


async def fetch_all(session: aiohttp.ClientSession, machine: Machine, url: str) -> int:
    async def read(response: aiohttp.ClientResponse) -> int:
        size = 0
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
        return size

    size = await get(session, machine, url, read)
    assert isinstance(size, int)
    return size


async def http_script(session: aiohttp.ClientSession, machine: Machine, url: str, mac: str) -> str:
    """Follow `chain` lines (iPXE's ${net0/mac:hexhyp} filled in) to the script that boots."""

    async def read(response: aiohttp.ClientResponse) -> str:
        return await response.text()

    for _ in range(4):
        text = str(await get(session, machine, url, read))
        chained = CHAIN.search(text)
        if chained is None:
            return text
        url = chained.group(1).replace("${net0/mac:hexhyp}", mac.replace(":", "-"))
    raise RuntimeError("too many chain lines")


async def boot(machine: Machine, port: DhcpPort, bind_leased: bool) -> None:
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
        bind = machine.address if bind_leased else None
        result = await tftp.get(
            server, 69, loader, blksize=TFTP_BLKSIZE, tsize=True, timeout=2.0, sink=lambda view: None, bind=bind
        )
        machine.bytes += result.size
        stage("tftp")
        ack = await port.lease(mac, ipxe=True)
        script_url = boot_file(ack)
        if not script_url.startswith("http"):
            raise RuntimeError(f"iPXE answer without a script URL: {script_url!r}")
        stage("dhcp_ipxe")
        # Each machine has its own connections (from its own address), as iPXE would.
        timeout = aiohttp.ClientTimeout(total=900, sock_connect=30)
        connector = aiohttp.TCPConnector(local_addr=(bind, 0) if bind else None)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            script = await http_script(session, machine, script_url, machine.mac)
            kernel, initrd = KERNEL.search(script), INITRD.search(script)
            if kernel is None or initrd is None:
                raise RuntimeError(f"the script boots nothing: {script[:200]!r}")
            stage("script")
            machine.bytes += await fetch_all(session, machine, kernel.group(1))
            machine.bytes += await fetch_all(session, machine, initrd.group(1))
        stage("images")
    except Exception as exc:  # every failure is reported, per machine
        machine.error = f"{type(exc).__name__}: {exc}"
    machine.total = round(time.monotonic() - started, 4)


async def storm(clients: int, mac_prefix: str, ifname: str, bind_leased: bool, start_at: float) -> dict:
    machines = [Machine(f"{mac_prefix}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}") for i in range(clients)]
    port = DhcpPort(ifname)
    if start_at:  # several client processes start together (wall clock)
        await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    started = time.monotonic()
    await asyncio.gather(*(boot(m, port, bind_leased) for m in machines))
    wall = time.monotonic() - started
    return {
        "wall": round(wall, 3),
        "cpu": round(time.process_time() - cpu, 2),
        "machines": [asdict(m) for m in machines],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--ifname", required=True, help="the interface the machines are on")
    parser.add_argument("--mac-prefix", default="52:54:01:00", help="first four bytes")
    parser.add_argument("--bind-leased", action="store_true", help="TFTP and HTTP from each machine's leased address")
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() at which to start (shards)")
    parser.add_argument("--out", help="write the JSON here instead of stdout")
    args = parser.parse_args()
    raise_open_files_limit()
    result = asyncio.run(storm(args.clients, args.mac_prefix, args.ifname, args.bind_leased, args.start_at))
    if args.out:
        Path(args.out).write_text(json.dumps(result))
    else:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
