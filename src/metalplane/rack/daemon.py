"""`metalplane rack run`: the rack controller daemon.

It keeps its region connections (region_links), reports its services every few
seconds and at once on change, and keeps serving on its last configuration when
every region is gone ("degraded, not dead"). Every long-lived task runs under a
`TaskSupervisor`: one that dies is logged and restarted, and `rackd` reports degraded
until it has run a while again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

import uvloop

from metalplane import __version__
from metalplane.config.rack import RackConfig
from metalplane.identity import (
    local_hostname,
    new_system_id,
    read_secret,
    read_system_id,
    secret_path,
    write_system_id,
)
from metalplane.logs import never_log
from metalplane.rack import metrics
from metalplane.rack.boot.service import BootService
from metalplane.rack.cluster_state import ClusterState
from metalplane.rack.dhcp import DhcpService, InvalidDhcpState, KeaError
from metalplane.rack.dhcp.config import State
from metalplane.rack.host_services import RackServices
from metalplane.rack.http import Request, Response
from metalplane.rack.images.plan import region_base_urls
from metalplane.rack.interfaces import local_interfaces
from metalplane.rack.limits import raise_open_files_limit
from metalplane.rack.power.service import PowerService
from metalplane.rack.region_links import RegionLinks
from metalplane.rack.services import BOARD_FILE, ServiceBoard
from metalplane.rpc import messages as m
from metalplane.rpc import wire
from metalplane.rpc.dispatch import handler_table, handles
from metalplane.rpc.handshake import ClientHello
from metalplane.rpc.protocol import CALL_FAILED, NoSuchMethod
from metalplane.rpc.services import Observation
from metalplane.stopping import stop_within
from metalplane.task_supervisor import TaskSupervisor

log = logging.getLogger("metalplane.rack")
REPORT_INTERVAL = 5.0
DEGRADED_MODE = "no region controller reachable: DHCP, TFTP and HTTP serve their last configuration"
DHCP_STATUS_INTERVAL = 5.0
IMAGE_RESYNC = 60.0
# On SIGTERM, power actions in flight get this long to finish (the runner's action timeout, 45 s,
# plus a query after a failover); the units' TimeoutStopSec leaves room for it and for Kea.
POWER_DRAIN = 75.0
STOP_STEP = 8.0  # each shutdown step's limit; with POWER_DRAIN inside the unit's TimeoutStopSec


class RackError(Exception):
    pass


class RackDaemon:
    def __init__(self, config: RackConfig):
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = read_secret(self.data_dir)
        if not secret:
            raise RackError(
                f"no shared secret in {secret_path(self.data_dir)}; run "
                f"`metalplane rack register --url URL --secret SECRET --data-dir {self.data_dir}`"
            )
        never_log(secret)
        known_id = read_system_id(self.data_dir)
        self.system_id = known_id or new_system_id()
        write_system_id(self.data_dir, self.system_id)
        self.hostname = local_hostname(config.hostname)
        self.state = ClusterState(self.data_dir)
        # Only a rack that was told to register (or is brand new) may create its record.
        self.enrol = known_id is None or self.state.registration_requested
        self.services = ServiceBoard(self.data_dir / BOARD_FILE)
        self.supervisor = TaskSupervisor(log, on_change=self._health_changed)
        self.stopping = asyncio.Event()
        self.stop_reason = ""
        self.dhcp = DhcpService(self.data_dir / "dhcp", on_change=self._publish_dhcp)
        self.dhcp_problems: list[str] = []
        self.dhcp_wanted = asyncio.Event()
        self.power = PowerService(self._report_power)
        self.power_wanted = asyncio.Event()
        self.images_wanted = asyncio.Event()
        self.host_services = RackServices(self.data_dir, config, self.services)
        self.services_wanted = asyncio.Event()
        self.flush_wanted: set[str] = set()
        self.links = RegionLinks(
            config.maas_url,
            secret,
            self.hello,
            self.state,
            handlers=handler_table(self),
            registration=self._registration,
        )
        self.boot = BootService(
            self.data_dir,
            config.bind_address,
            config.tftp_port,
            config.http_port,
            self.links.call,
            self.supervisor,
            on_change=self.dhcp_wanted.set,
        )
        self.boot.http.add_dynamic(metrics.METRICS_PATH, self._metrics)  # Prometheus, beside the boot files
        self.links.on_reconnect = self._reconnected
        self.links.on_isolated = self._health_changed
        self.links.on_unknown = self._unknown

    def hello(self) -> ClientHello:
        return ClientHello("rack", self.system_id, self.hostname, __version__, self.state.uuid)

    def _health_changed(self) -> None:
        """rackd: the supervised tasks' health, degraded while no region is reachable."""
        status, info = self.supervisor.health()
        if getattr(self, "links", None) is not None and self.links.isolated:
            status, info = "degraded", "; ".join(x for x in (DEGRADED_MODE, info) if x)
        self.services.set("rackd", status, info)

    async def _registration(self) -> m.Register:
        interfaces = await asyncio.to_thread(local_interfaces)
        return m.Register(self.hostname, __version__, wire.decode(list[m.Interface], interfaces), enrol=self.enrol)

    async def _unknown(self, message: str) -> None:
        """The region has no record of this rack (deleted while it was down) and it was not told
        to register: stop, rather than come back as a rack nobody asked for."""
        if self.stopping.is_set():
            return
        line = (
            f"rack {self.hostname} ({self.system_id}) is not registered with the region ({message}); "
            f"it does not re-register by itself: run `metalplane rack register --url URL --secret SECRET "
            f"--data-dir {self.data_dir}` to register it again"
        )
        log.error(line)
        self.state.note_unregistered(line)
        self.stop_reason = "not registered with the region"
        self.stopping.set()

    async def _metrics(self, request: Request) -> Response | None:
        if request.path != metrics.METRICS_PATH:
            return None
        body, content_type = metrics.exposition(self)
        return Response(body=body, content_type=content_type)

    # -- the region's calls ------------------------------------------------------------------

    @handles(m.Stop)
    async def _stop_requested(self, message: m.Stop) -> None:
        log.warning("the region asked this rack to stop (%s); stopping", message.reason)
        self.stop_reason = message.reason
        self.stopping.set()

    @handles(m.DhcpChanged, m.ImagesChanged, m.PowerTargetsChanged)
    async def _changed(self, message: m.DhcpChanged | m.ImagesChanged | m.PowerTargetsChanged) -> None:
        """Something the rack follows changed: wake the loop that fetches it again."""
        {
            m.DhcpChanged: self.dhcp_wanted,
            m.ImagesChanged: self.images_wanted,
            m.PowerTargetsChanged: self.power_wanted,
        }[type(message)].set()

    @handles(m.ServicesChanged)
    async def _services_changed(self, message: m.ServicesChanged) -> None:
        """Refetch the services configuration; forget what the resolver cached of `flush`."""
        self.flush_wanted.update(message.flush)
        self.services_wanted.set()

    @handles(m.PowerAction)
    async def _power_action(self, message: m.PowerAction) -> m.PowerResult:
        return await self.power.action(message.action, message.power_type, message.params, message.after_failover)

    # -- following the region ----------------------------------------------------------------

    def _publish_dhcp(self) -> None:
        """dhcpd and dhcpd6 on the board: at once when a Kea starts or dies, and every few seconds."""
        for name, family in (("dhcpd", 4), ("dhcpd6", 6)):
            status, info = self.dhcp.status(family)
            self.services.set(name, status, "; ".join(x for x in (info, *self.dhcp_problems) if x))

    async def _follow_dhcp(self) -> None:
        """Fetch and apply the DHCP state after each (re)connection and whenever the
        region says it changed. Without a region, Kea keeps its last configuration."""
        while True:
            await self.links.connected_event.wait()
            self.dhcp_wanted.clear()
            try:
                state = await self.links.call(m.GetDhcpState(), timeout=30)
                self.dhcp_problems = list(state.problems)
                await self.dhcp.apply(State.of(state, self.boot.dhcp_boot()))
            except InvalidDhcpState as exc:
                log.error("refusing the region's DHCP state: %s", exc)
                self.dhcp_problems = [f"invalid DHCP state from the region: {exc}"]
            except KeaError as exc:
                log.error("Kea refused its configuration: %s", exc)
                self.dhcp_problems = [f"Kea refused the configuration: {exc}"]
            except CALL_FAILED as exc:
                log.debug("fetching the DHCP state failed: %s", exc)
                await asyncio.sleep(1)
                continue
            # Until the next change, keep the statuses current (HA states change without a death).
            while not self.dhcp_wanted.is_set():
                self._publish_dhcp()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DHCP_STATUS_INTERVAL):
                        await self.dhcp_wanted.wait()

    async def _follow_services(self) -> None:
        """Fetch and apply the resolver, NTP and discovery configuration after each
        (re)connection and whenever the region says it changed; then flush the zones a
        region changed. Without a region, each daemon keeps its last configuration."""
        while True:
            await self.links.connected_event.wait()
            self.services_wanted.clear()
            flush, self.flush_wanted = sorted(self.flush_wanted), set()
            try:
                config = await self.links.call(m.GetServicesConfig(), timeout=30)
            except NoSuchMethod:
                log.warning(
                    "the region does not send a services configuration (an older region); "
                    "the resolver, chronyd and ARP listener stay as they are"
                )
                await self.services_wanted.wait()
                continue
            except CALL_FAILED as exc:
                log.debug("fetching the services configuration failed: %s", exc)
                self.flush_wanted.update(flush)
                await asyncio.sleep(1)
                continue
            await self.host_services.apply(config)
            await self.host_services.flush(flush)
            await self.services_wanted.wait()

    async def _ship_discoveries(self) -> None:
        """ARP observations to the region, at least once, in order; kept on disk meanwhile."""
        async for batch in self.host_services.discovery.events.batches(max_events=500):
            while True:
                await self.links.connected_event.wait()
                try:
                    await self.links.call(m.ReportDiscoveries(wire.decode(list[Observation], batch)), timeout=30)
                    self.host_services.discovery.events.ack(batch[-1]["id"])
                    break
                except NoSuchMethod:  # an older region: keep them until a region takes them
                    await asyncio.sleep(30)
                except CALL_FAILED as exc:
                    log.debug("discovery report failed (kept for later): %s", exc)
                    await asyncio.sleep(1)

    async def _follow_images(self) -> None:
        """Keep the image cache in step with the region's images (without a region,
        the cache keeps serving what it has)."""
        while True:
            await self.links.connected_event.wait()
            self.images_wanted.clear()
            try:
                await self.boot.sync_images(region_base_urls(self.config.maas_url))
            except CALL_FAILED as exc:
                log.debug("image sync failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IMAGE_RESYNC):
                    await self.images_wanted.wait()

    async def _boot_status(self) -> None:
        while True:
            for name in ("tftp", "http"):
                self.services.set(name, *self.boot.status(name))
            await asyncio.sleep(REPORT_INTERVAL)

    async def _report_power(self, results: list[m.PowerReport]) -> None:
        await self.links.call(m.ReportPowerStates(results), timeout=30)

    async def _follow_power(self) -> None:
        """Poll the BMCs the region says this rack owns; refetch when that changes."""
        while True:
            await self.links.connected_event.wait()
            self.power_wanted.clear()
            try:
                self.power.apply_targets(await self.links.call(m.GetPowerTargets(), timeout=30))
            except CALL_FAILED as exc:
                log.debug("fetching power targets failed: %s", exc)
                await asyncio.sleep(1)
                continue
            await self.power_wanted.wait()

    async def _ship_leases(self) -> None:
        """Lease events to the region, at least once, in order; kept on disk meanwhile."""
        async for batch in self.dhcp.events.batches(max_events=500):
            while True:
                await self.links.connected_event.wait()
                try:
                    await self.links.call(m.ReportLeases(wire.decode(list[m.LeaseEvent], batch)), timeout=30)
                    self.dhcp.events.ack(batch[-1]["id"])
                    metrics.leases_reported(batch)
                    break
                except CALL_FAILED as exc:
                    log.debug("lease report failed (kept for later): %s", exc)
                    await asyncio.sleep(1)

    async def _reconnected(self, since: float, until: float) -> None:
        if self.enrol:  # registered: from now on this rack's record must exist
            self.enrol = False
            self.state.registration_done()
        self._health_changed()  # not degraded any more
        self.dhcp_wanted.set()  # the model may have changed while we were alone
        self.services.changed.set()  # and the region has not heard from us
        self.power_wanted.set()
        self.images_wanted.set()
        self.services_wanted.set()
        if until - since > 1 and self.links.connected_event.is_set():
            log.warning(
                "reconnected after %.0f s without any region; services ran on their last configuration", until - since
            )
            with contextlib.suppress(*CALL_FAILED):
                await self.links.call(m.ReportIsolation(since, until), timeout=10)

    async def _report_services(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.services.changed.wait(), REPORT_INTERVAL)
            self.services.changed.clear()
            if not self.links.healthy_links():
                continue
            try:
                await self.links.call(m.UpdateServices(self.services.snapshot()), timeout=10)
            except CALL_FAILED as exc:
                log.debug("service report failed: %s", exc)
                self.services.changed.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        log.info("rack %s (%s) starting; regions: %s", self.hostname, self.system_id, ", ".join(self.config.maas_url))
        await self.boot.start()
        for name, task in (
            ("region-links", self.links.run),
            ("service-reports", self._report_services),
            ("dhcp-follow", self._follow_dhcp),
            ("lease-shipping", self._ship_leases),
            ("power-follow", self._follow_power),
            ("image-sync", self._follow_images),
            ("boot-status", self._boot_status),
            ("tftp", self.boot.serve_tftp),
            ("http", self.boot.serve_http),
            ("services-follow", self._follow_services),
            ("discovery-shipping", self._ship_discoveries),
        ):
            self.supervisor.start(name, task)
        started = time.monotonic()
        try:
            await self.stopping.wait()
        finally:
            log.info("rack stopping%s", f" ({self.stop_reason})" if self.stop_reason else "")
            left = await self.power.drain(POWER_DRAIN)
            if left:
                log.warning("stopping with %d power action(s) unfinished after %.0f s", left, POWER_DRAIN)
            # Each step bounded: a hung one is logged with every task's stack, and the
            # daemons (Kea, named, chronyd) are stopped all the same.
            await stop_within("tasks", self.supervisor.stop, STOP_STEP, log)
            if not await stop_within("dhcp", self.dhcp.stop, STOP_STEP, log):
                await stop_within("dhcp servers", self.dhcp.stop_servers_now, STOP_STEP, log)
            await stop_within("power", self.power.stop, STOP_STEP, log)
            await stop_within("boot", self.boot.stop, STOP_STEP, log)
            await stop_within("host services", self.host_services.stop, STOP_STEP, log)
        log.info(
            "rack stopped after %.0f s%s",
            time.monotonic() - started,
            f" ({self.stop_reason})" if self.stop_reason else "",
        )
        return 0


def run_rack(config: RackConfig) -> int:
    raise_open_files_limit()  # TFTP and HTTP size their limits from it
    return uvloop.run(RackDaemon(config).run())
