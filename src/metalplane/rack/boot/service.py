"""`BootService`: the rack's TFTP and HTTP boot serving, and its image cache.

    boot = BootService(data_dir, config, call)     # call(message, timeout): the region RPC (RegionLinks.call)
    await boot.start()                             # listens (once; failures are recorded)
    supervisor.start("tftp", boot.serve_tftp)      # keep listening: retried when it fails
    supervisor.start("http", boot.serve_http)
    await boot.sync_images(base_urls)              # after (re)connecting, and on change
    boot.dhcp_boot()                               # the "boot" part of the DHCP state
    boot.status("tftp"), boot.status("http")

Per-machine configs ask the region what the machine should boot (`GetBootConfig`),
naming the address that asked: a commissioning machine's config carries a
credential bound to it (region.services.enrolment). Identical concurrent
requests (a boot storm retrying) from one address are merged and answers kept a
few seconds per MAC and address, so one host never gets another's answer.

Boot-storm admission (`BootLimits`, from rackd.conf): image transfers and TFTP transfers
are bounded by the servers themselves (machines past the cap wait in line), and at most
`rpc_max` GetBootConfig calls are out to the region at once; the others wait in FIFO
order, and each call's 20 s timeout starts only once it is sent. A waiting machine's
HTTP request (ipxe.cfg-MAC) or TFTP config request simply waits for its answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from metalplane.admission_line import AdmissionLine
from metalplane.ha.admission import Admission
from metalplane.hostport import peer_ip
from metalplane.rack import metrics
from metalplane.rack.boot import configs
from metalplane.rack.boot.loaders import copy_loaders, dhcp_loaders
from metalplane.rack.http import RackHttpService, Request, Response
from metalplane.rack.http.server import HOLD_MAX, TRANSFERS_MAX
from metalplane.rack.tftp import RequestCoalescer, Routes, StaticRoot, TftpServer, chain
from metalplane.rack.tftp.server import HOLD_MAX as TFTP_HOLD_MAX
from metalplane.rack.tftp.server import TRANSFERS_MAX as TFTP_TRANSFERS_MAX
from metalplane.rack.tftp.sources import GRUB_MAC, PXELINUX_MAC, normalise_mac
from metalplane.rpc.messages import BootConfig, Call, GetBootConfig, GetBootImages
from metalplane.task_supervisor import TaskSupervisor

log = logging.getLogger("metalplane.rack.boot")
ANSWER_TTL = 5.0
IPXE_MAC = re.compile(r"ipxe\.cfg-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})", re.I)

R = TypeVar("R")


class RegionCall(Protocol):
    def __call__(self, message: Call[R], timeout: float) -> Awaitable[R]: ...


LOCAL = BootConfig("local")  # what a machine boots when there is no answer
RPC_MAX = 64  # enough in flight to keep the region's boot-config slots busy across round trips
BOOT_CONFIG_TIMEOUT = 20.0


@dataclass(frozen=True)
class BootLimits:
    """Admission caps (0: unlimited) and the longest HTTP hold; TFTP holds min(6 s, it)."""

    http_transfers: int = TRANSFERS_MAX
    tftp_transfers: int = TFTP_TRANSFERS_MAX
    rpc: int = RPC_MAX
    hold_max: float = HOLD_MAX


def requester_ip(client: tuple) -> str | None:
    """The address a TFTP or HTTP request came from, as the region compares it."""
    address = peer_ip(client[0]) if client else None
    return str(address) if address is not None else None


class BootService:
    def __init__(
        self,
        data_dir: Path,
        bind_address: str,
        tftp_port: int,
        http_port: int,
        call: RegionCall,
        supervisor: TaskSupervisor | None = None,
        on_change: Callable[[], None] | None = None,
        limits: BootLimits = BootLimits(),
    ):
        self.bind_address = bind_address
        self.tftp_port = tftp_port
        self.http_port = http_port
        self.call = call
        self.loader_dir = data_dir / "boot"
        self.loaders: list[str] = []
        self.on_change = on_change  # serving came or went: what DHCP advertises changes
        self.http = RackHttpService(
            data_dir / "images",
            host=bind_address,
            port=http_port,
            supervisor=supervisor,
            transfers_max=limits.http_transfers,
            hold_max=limits.hold_max,
        )
        self.rpc: Admission[object] = Admission(limits.rpc, float("inf"))  # GetBootConfig calls out at once
        self._rpc_line = AdmissionLine(self.rpc)
        self.answers: RequestCoalescer[tuple[str, str | None], BootConfig] = RequestCoalescer(self._ask, ttl=ANSWER_TTL)
        routes = Routes(ttl=ANSWER_TTL, per_client=True)
        routes.add(PXELINUX_MAC, self._pxelinux)
        routes.add(GRUB_MAC, self._grub)
        self.tftp = TftpServer(
            chain(routes, StaticRoot(self.loader_dir), self._image),
            transfers_max=limits.tftp_transfers,
            hold_max=min(TFTP_HOLD_MAX, limits.hold_max),
        )
        self.errors: dict[str, str] = {}

    async def start(self) -> None:
        self.loaders = copy_loaders(self.loader_dir)
        for name in ("http", "tftp"):
            try:
                await self._listen(name)
            except OSError:
                pass  # recorded; serve_* (supervised) retries

    async def _listen(self, name: str) -> None:
        try:
            if name == "http":
                await self.http.start()
                self.http.add_dynamic("/ipxe.cfg", self._ipxe)
            elif not self.tftp.listening:
                await self.tftp.start(self.bind_address, self.tftp_port)
        except OSError as exc:
            error = f"cannot listen on {self.bind_address}: {exc}"
            if self.errors.get(name) != error:
                log.error("%s service: %s", name, error)
                self.errors[name] = error
                self._changed()
            raise
        if self.errors.pop(name, None) is not None:
            log.info("%s service listening again", name)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def serve_tftp(self) -> None:
        """Listen (again) if need be and serve until closed."""
        await self._listen("tftp")
        await self.tftp.serve_forever()

    async def serve_http(self) -> None:
        await self._listen("http")
        await self.http.server.serve_forever()

    async def stop(self) -> None:
        self.tftp.close()
        await self.http.stop()

    async def sync_images(self, base_urls: list[str]) -> None:
        manifest = await self.call(GetBootImages(), 30)
        result = await self.http.apply_manifest({"images": manifest.images}, base_urls)
        log.info("image cache: %s", result)

    def dhcp_boot(self) -> dict[str, Any]:
        """Where DHCP sends PXE and iPXE clients (each VLAN's to this rack's address there)."""
        if self.errors:
            return {"http_port": None, "loaders": {}}
        return {"http_port": self.http_port, "loaders": dhcp_loaders(self.loaders)}

    def status(self, name: str) -> tuple[str, str]:
        if name in self.errors:
            return "dead", self.errors[name]
        if name == "http":
            return self.http.status()
        stats, tftp = self.tftp.stats, self.tftp
        info = (
            f"{len(self.loaders)} boot loaders; port {self.tftp_port}; limits {tftp.max_transfers} transfers, "
            f"{tftp.max_per_client} per client"
        )
        refused = stats.dropped + stats.busy + stats.evicted
        if refused:
            info += f"; {refused} request(s) refused or cut at the limits since start"
        if stats.held or tftp.admission.waiting:
            info += f"; transfers: {tftp.admission.summary()}"
        if self.rpc.held or self.rpc.waiting:
            info += f"; boot config calls: {self.rpc.summary()}"
        return "running", info

    # -- what machines ask for -----------------------------------------------------------

    async def _ask(self, key: tuple[str, str | None]) -> BootConfig:
        mac, client_ip = key
        ticket = object()
        await self._rpc_line.enter(ticket)  # past rpc_max calls out: wait in line, however long
        try:
            answer = await self.call(GetBootConfig(mac, "amd64", client_ip), BOOT_CONFIG_TIMEOUT)
        finally:
            self._rpc_line.leave(ticket)
        if answer.problem:
            log.warning("boot config for %s (asked from %s): %s", mac, client_ip, answer.problem)
        return answer

    async def _answer(self, mac: str, client: tuple) -> BootConfig:
        try:
            return await self.answers.get((normalise_mac(mac), requester_ip(client)))
        except Exception as exc:  # no region: boot from disk rather than hang the machine
            log.warning("no boot config for %s (%s): local boot", mac, exc)
            return LOCAL

    async def _ipxe(self, request: Request) -> Response:
        base = f"http://{request.local[0]}:{self.http_port}/"
        match = IPXE_MAC.fullmatch(request.path.lstrip("/"))
        if request.path.rstrip("/") == "/ipxe.cfg":
            return Response(body=configs.ipxe_chain(base).encode())
        if match is None:
            return Response(status=404, body=b"not found\n")
        answer = await self._answer(match.group(1), request.client)
        return Response(body=configs.ipxe_script(answer, base).encode())

    async def _pxelinux(self, match: re.Match, client: tuple) -> bytes:
        return configs.pxelinux_config(await self._answer(match.group("mac"), client)).encode()

    async def _grub(self, match: re.Match, client: tuple) -> bytes:
        return configs.grub_config(await self._answer(match.group("mac"), client)).encode()

    async def _image(self, path: str, client: tuple) -> str | None:
        """TFTP access to cached images by sha256 (pxelinux and GRUB load kernels this way)."""
        path = path.lstrip("/")
        if not path.startswith(configs.IMAGE_PATH):
            return None
        sha = path[len(configs.IMAGE_PATH) :]
        cached = sha in self.http.cache.complete()
        metrics.image_lookup("tftp", cached)
        if not cached:
            return None  # never a file that is not verified complete
        return str(self.http.cache.path_of(sha))
