"""The rack's resolver, chronyd and ARP listener, driven by the region's `ServicesConfig`.

    services = RackServices(data_dir, config, board)
    await services.apply(await links.call(GetServicesConfig()))   # on connect and on ServicesChanged
    await services.flush(["maas"])       # zones a region just changed: the resolver forgets them
    await services.stop()

Each daemon is optional on a rack (rackd.conf: `dns_port: 0`, `ntp_port: 0`,
`discovery: false`). Statuses go to the rack's service board at once when a
daemon starts, dies or refuses a configuration: `dns_rack`, `ntp_rack`, and
`discovery` (kept on the rack, MAAS has no such service). Without a region
everything keeps running on its last configuration; chronyd then serves its
own clock (orphan) and says degraded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from metalplane.config.rack import RackConfig
from metalplane.dns.named import NamedError
from metalplane.ntp import ChronyError, ChronyService, rack_config
from metalplane.rack.discovery import DiscoveryService
from metalplane.rack.dns import InvalidResolverConfig, RackResolver, ResolverConfig
from metalplane.rack.services import ServiceBoard
from metalplane.rpc.services import NtpSettings, ResolverSettings, ServicesConfig

log = logging.getLogger("metalplane.rack.services")


def resolver_config(settings: ResolverSettings, port: int) -> ResolverConfig:
    return ResolverConfig(
        zones=tuple(settings.zones),
        regions=tuple(settings.regions),
        upstream_dns=tuple(settings.upstream_dns),
        dnssec_validation=settings.dnssec_validation,
        listen=tuple(settings.listen),
        allow=tuple(settings.allow),
        port=port,
    )


class RackServices:
    def __init__(self, data_dir: str | Path, config: RackConfig, board: ServiceBoard):
        data = Path(data_dir)
        self.config = config
        self.board = board
        # Directories of their own: on a region+rack host the region's named and chronyd share the data dir.
        self.resolver = (
            RackResolver(data / "dns-rack", control_port=config.dns_control_port, on_change=self.publish)
            if config.dns_port
            else None
        )
        self.ntp = ChronyService(data / "ntp-rack", on_change=self.publish) if config.ntp_port else None
        self.discovery = DiscoveryService(data / "discovery", on_change=self.publish)
        self.ntp_shared = False
        self.problems: dict[str, str] = {}
        self.current: ServicesConfig | None = None
        self.publish()

    async def apply(self, cfg: ServicesConfig) -> None:
        """Serve `cfg`. A daemon that refuses its part keeps its last good configuration and
        says so in its status; the others still get theirs."""
        self.current = cfg
        await self._apply_resolver(cfg.dns)
        await self._apply_ntp(cfg.ntp)
        await self.discovery.apply(cfg.discovery.enabled and self.config.discovery, cfg.discovery.interfaces)
        self.publish()

    async def _apply_resolver(self, settings: ResolverSettings) -> None:
        if self.resolver is None:
            return
        try:
            await self.resolver.apply(resolver_config(settings, self.config.dns_port))
            self.problems.pop("dns_rack", None)
        except InvalidResolverConfig as exc:
            self.problems["dns_rack"] = f"refused the region's resolver configuration: {exc}"
            log.error("%s", self.problems["dns_rack"])
        except NamedError as exc:  # BIND refused it (the last good one serves) or named would not start
            log.error("resolver: %s", exc.message)

    async def _apply_ntp(self, settings: NtpSettings) -> None:
        if self.ntp is None:
            return
        self.ntp_shared = settings.shared
        try:
            if settings.shared:  # one chronyd per host: the region's serves this rack's networks
                await self.ntp.apply(None)
                return
            await self.ntp.apply(
                rack_config(
                    [(s.host, s.port) for s in settings.regions],
                    settings.ntp_servers,
                    settings.external_only,
                    settings.allow,
                    port=self.config.ntp_port,
                )
            )
        except ChronyError as exc:  # refused: the running chronyd keeps its last good configuration
            log.error("chronyd: %s", exc.message)

    async def flush(self, zones: list[str]) -> None:
        """The resolver forgets what it cached under `zones` (a region changed them)."""
        if self.resolver is None or not zones or self.resolver.config is None:
            return
        try:
            await self.resolver.flush(zones)
        except NamedError as exc:
            log.warning("resolver: flushing %s: %s", ", ".join(zones), exc.message)

    def publish(self) -> None:
        """The daemons' statuses to the board (which reports changes to the region at once)."""
        if self.resolver is None:
            dns = ("off", "no resolver on this rack (dns_port: 0 in rackd.conf)")
        else:
            dns = self.resolver.status()
            if "dns_rack" in self.problems:
                dns = ("degraded", f"{dns[1]}; {self.problems['dns_rack']}")
        if self.ntp is None:
            ntp = ("off", "no chronyd on this rack (ntp_port: 0 in rackd.conf)")
        elif self.ntp_shared:
            ntp = ("off", "served by the region's chronyd on this host")
        else:
            ntp = self.ntp.status()
        self.board.set("dns_rack", *dns)
        self.board.set("ntp_rack", *ntp)
        self.board.set("discovery", *self.discovery.status())

    async def stop(self) -> None:
        for daemon in (self.resolver, self.ntp):
            if daemon is not None:
                await daemon.stop()
        await self.discovery.stop()
