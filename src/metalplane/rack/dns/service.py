"""The rack's resolver: what the rack daemon drives for its "dns_rack" service.

    resolver = RackResolver(state_dir / "dns")
    await resolver.apply(ResolverConfig(...))   # None: resolver off
    await resolver.flush(["maas"])              # the region changed these zones
    resolver.status()                           # ("running" | "degraded" | "dead" | "off", text)
    await resolver.stop()

Freshness: the resolver caches the regions' answers for their TTL
(`default_dns_ttl`, 30 s in MAAS) and "no such name" for the SOA's minimum.
A change at the region reaches machines at once only if the rack forgets
what it cached for the changed zones: the region reports them
(`DnsApplied.changed`) and the rack calls `flush` (``rndc flushtree``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Unpack

from metalplane.dns.named import NamedOptions, NamedServer
from metalplane.rack.dns import config


class RackResolver:
    def __init__(
        self, state_dir: str | Path, *, control_port: int = config.CONTROL_PORT, **named: Unpack[NamedOptions]
    ):
        self.server = NamedServer("resolver", Path(state_dir) / "named", control_port=control_port, **named)
        self.config: config.ResolverConfig | None = None

    def render(self, cfg: config.ResolverConfig) -> str:
        """named.conf for `cfg` (raises InvalidResolverConfig)."""
        return config.render(self.server.layout, cfg)

    async def apply(self, cfg: config.ResolverConfig | None) -> str:
        """Serve `cfg` ("started" | "reconfigured" | "unchanged"), or stop when None ("stopped").
        Raises InvalidResolverConfig, NamedConfigError (refused: the last good one keeps
        serving) or NamedError."""
        if cfg is None:
            await self.server.stop()
            self.config = None
            return "stopped"
        outcome = await self.server.apply(self.render(cfg), {})
        self.config = cfg
        return outcome

    async def flush(self, zones: Iterable[str] = ()) -> None:
        """Forget cached answers under each zone (the whole cache when none is given)."""
        await self.server.flush(*zones)

    def status(self) -> tuple[str, str]:
        return self.server.status()

    async def stop(self) -> None:
        await self.server.stop()
