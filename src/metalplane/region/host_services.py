"""The region's own daemons: its authoritative named and its chronyd, one each per region host.

The region supervisor runs them (not its workers, which come and go), and keeps
them in step with the database:

* a LISTEN on `consequences.REGION_SERVICES_CHANNEL`: every committed change to
  what DNS serves (nodes, addresses, leases, domains, resources, subnets,
  regions, `default_dns_ttl`) or chronyd follows (`ntp_servers`) NOTIFYs it,
  with the change (`on_commit`); bursts collapse into one rebuild;
* a rebuild reads the model in one short transaction (region.services.dns_model,
  rack_services) and hands it to `AuthoritativeDns` (only changed zones are
  rewritten and reloaded; `apply` returns once named serves them) and to
  `ChronyService`; the zones that changed are then announced to every rack
  (rack event "services" with `flush`), which refetch their configuration and
  forget what their resolvers cached of them: a change reaches a machine's
  resolver within seconds of the commit, whichever rack it asks;
* a full rebuild every `RESYNC` seconds as a safety net (a notification lost
  while the LISTEN connection was away is also caught on reconnection; leases
  that expire without an event drop out here).

Statuses, for `region-controllers read`: `bind9` and `ntp_region`, written to
the region node's service rows at once when a daemon starts, dies or refuses a
configuration (the daemons' `on_change`), and every `REPORT_INTERVAL` seconds; each
status change is a SERVICE_STATUS_CHANGED event of the region, as a rack's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from ipaddress import ip_address, ip_network
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from metalplane.config.region import RegionConfig
from metalplane.dns.named import NamedError
from metalplane.ntp import ChronyError, ChronyService, region_config
from metalplane.region.db.notifications import listen_forever
from metalplane.region.db.transaction import transaction
from metalplane.region.dns import AuthoritativeDns, AuthoritativeOptions, DnsModel, InvalidDnsModel
from metalplane.region.services import connections, consequences, dns_model, rack_services, service_statuses

log = logging.getLogger("metalplane.region.services")

DEBOUNCE = 0.05
RESYNC = 60.0
REPORT_INTERVAL = 5.0
REGION_SERVICES = ("bind9", "ntp_region")


def region_address(maas_url_host: str) -> str:
    """The address racks reach this region at: maas_url's host, resolved when it is a name
    (IPv4 first: the racks' forwarders and NTP sources are addresses)."""
    try:
        return str(ip_address(maas_url_host))
    except ValueError:
        pass
    infos = socket.getaddrinfo(maas_url_host, None, proto=socket.IPPROTO_UDP)
    found = sorted({str(info[4][0]) for info in infos}, key=lambda a: (ip_address(a).version, a))
    if not found:
        raise OSError(f"{maas_url_host} has no address")
    return found[0]


class RegionServices:
    """named and chronyd of one region (either may be off: port 0 in regiond.conf)."""

    def __init__(self, config: RegionConfig, db: AsyncEngine, region_id: int, system_id: str):
        self.config = config
        self.db = db
        self.region_id = region_id
        self.system_id = system_id
        data = Path(config.data_dir)
        self.dns = (
            AuthoritativeDns(
                data / "dns-region",
                control_port=config.dns_control_port,
                options=AuthoritativeOptions(port=config.dns_port),
                on_change=self._status_changed,
            )
            if config.dns_port
            else None
        )
        self.ntp = ChronyService(data / "ntp-region", on_change=self._status_changed) if config.ntp_port else None
        self.wanted = asyncio.Event()
        self.report_wanted = asyncio.Event()
        self.problems: list[str] = []
        self.rebuilds = 0

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Until cancelled: listen, rebuild on change, report statuses."""
        if self.dns is None and self.ntp is None:
            await self._report()
            return
        self.wanted.set()
        tasks = [
            asyncio.create_task(self._listen(), name="region-services-listen"),
            asyncio.create_task(self._reporter(), name="region-services-report"),
        ]
        try:
            await self._follow()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(*tasks)

    async def _listen(self) -> None:
        async def note(channel: str, payload: str) -> None:
            self.wanted.set()

        await listen_forever(
            self.config,
            "metalplane-region-services",
            [consequences.REGION_SERVICES_CHANNEL],
            note,
            on_connected=self.wanted.set,
        )

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESYNC):
                    await self.wanted.wait()
            await asyncio.sleep(DEBOUNCE)
            self.wanted.clear()
            try:
                await self.rebuild()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database failing over, a daemon that would not start
                log.warning(
                    "region services: rebuild failed (retrying at the next change or in %.0fs): %s", RESYNC, exc
                )
                await asyncio.sleep(1)

    async def rebuild(self) -> list[str]:
        """Read the model, serve it; returns the zones that changed (announced to the racks)."""
        self.rebuilds += 1
        async with self.db.connect() as conn:
            model, problems = await dns_model.build(conn) if self.dns is not None else (None, [])
            ntp_servers, peers, known = await rack_services.region_ntp_sources(conn, self.system_id)
        for line in problems:
            if line not in self.problems:
                log.warning("DNS: left out of the zones: %s", line)
        self.problems = problems
        changed: list[str] = []
        if self.dns is not None and model is not None:
            changed = await self._apply_dns(model)
        if self.ntp is not None:
            try:
                await self.ntp.apply(
                    region_config(ntp_servers, peers, [ip_network(n) for n in known], port=self.config.ntp_port)
                )
            except ChronyError as exc:  # refused: status degraded, the last good one serves
                log.error("chronyd: %s", exc.message)
        if changed:
            async with transaction(self.db, self.config) as conn:
                await connections.announce_rack_event(conn, "services", "", flush=changed)
        self.report_wanted.set()
        return changed

    async def _apply_dns(self, model: DnsModel) -> list[str]:
        assert self.dns is not None
        if not model.nameservers:  # this region's own row is not there yet
            return []
        try:
            applied = await self.dns.apply(model)
        except InvalidDnsModel as exc:
            log.error("DNS: the model cannot be served: %s", exc)
            return []
        except NamedError as exc:  # refused (status degraded, the last good zones serve) or not started
            log.error("DNS: %s", exc.message)
            return []
        if applied.changed:
            log.info("DNS: %s (%s)", applied.outcome, ", ".join(applied.changed))
        return list(applied.changed)

    # ------------------------------------------------------------------ statuses

    def statuses(self) -> dict[str, tuple[str, str]]:
        out = {}
        for name, service, key in (("bind9", self.dns, "dns_port"), ("ntp_region", self.ntp, "ntp_port")):
            if service is None:
                out[name] = ("off", f"not run by this region ({key}: 0 in regiond.conf)")
                continue
            status, info = service.status()
            if name == "bind9" and self.problems and status == "running":
                info += f"; {len(self.problems)} record(s) left out: {self.problems[0]}"
            out[name] = (status, info)
        return out

    def _status_changed(self) -> None:
        self.report_wanted.set()

    async def _reporter(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPORT_INTERVAL):
                    await self.report_wanted.wait()
            self.report_wanted.clear()
            try:
                await self._report()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("region services: status report failed: %s", exc)
                await asyncio.sleep(0.5)
                self.report_wanted.set()

    async def _report(self) -> None:
        """The statuses to the region node's service rows; each change an event (as a rack's)."""
        reported = {name: (status, info[:500]) for name, (status, info) in self.statuses().items()}
        async with self.db.begin() as conn:
            await service_statuses.store(conn, self.region_id, reported)

    async def stop(self) -> None:
        for service in (self.dns, self.ntp):
            if service is not None:
                with contextlib.suppress(Exception):
                    await service.stop()
