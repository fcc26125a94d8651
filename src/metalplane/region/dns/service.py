"""The region's authoritative DNS: the model in, BIND serving it.

    dns = AuthoritativeDns(data_dir / "dns")
    applied = await dns.apply(model)    # DnsModel -> zones -> named; returns what changed
    dns.status()                        # for the region's "bind9" service
    await dns.stop()

Each zone's SOA serial increases whenever its content changes and only then:
``max(previous + 1, unix time)``, remembered in ``serials.json`` so a restarted
region never goes back. Unchanged zones keep their serial and are not
reloaded; `DnsApplied.changed` names the zones that changed, which is what the
racks' resolvers must forget from their caches (`RackResolver.flush`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from metalplane.dns.named import NamedOptions, NamedServer, ZoneFile
from metalplane.region.dns import config, zones
from metalplane.supervised import write_atomic

MAX_SERIAL = 2**32 - 1


@dataclass(frozen=True)
class DnsApplied:
    outcome: str  #: "started" | "reconfigured" | "reloaded" | "unchanged"
    changed: tuple[str, ...]  #: zones added, changed or removed
    serials: dict[str, int]


@dataclass(frozen=True)
class DnsPlan:
    conf: str  #: named.conf
    files: dict[str, ZoneFile]  #: {zone: zone file}
    digests: dict[str, str]  #: {zone: digest of its content without the serial}
    changed: list[str]


def next_serial(previous: int | None, now: float) -> int:
    """A serial above `previous`: the unix time when that is larger (readable, and monotonic
    across restarts), else previous + 1."""
    candidate = max((previous or 0) + 1, int(now))
    if candidate > MAX_SERIAL:
        raise ValueError("zone serial would pass 2**32 - 1")
    return candidate


class AuthoritativeDns:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        control_port: int = config.CONTROL_PORT,
        options: config.AuthoritativeOptions | None = None,
        clock: Callable[[], float] = time.time,
        **named: Unpack[NamedOptions],
    ):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.options = options or config.AuthoritativeOptions()
        self.clock = clock
        self.server = NamedServer("authoritative", self.state_dir / "named", control_port=control_port, **named)
        self._serials_path = self.state_dir / "serials.json"
        self.model: zones.DnsModel | None = None

    def _load_serials(self) -> dict[str, tuple[int, str]]:
        try:
            raw = json.loads(self._serials_path.read_text())
            return {z: (int(s), str(d)) for z, (s, d) in raw.items()}
        except (FileNotFoundError, ValueError, TypeError):
            return {}

    def render(self, model: zones.DnsModel, options: config.AuthoritativeOptions | None = None) -> DnsPlan:
        """named.conf, zone files and the zones whose content changed, without applying.
        Raises InvalidDnsModel."""
        known = self._load_serials()
        now = self.clock()
        files: dict[str, ZoneFile] = {}
        digests: dict[str, str] = {}
        changed = []
        for zone in zones.zones(model):
            digest = hashlib.sha256(zones.render_zone(zone, 0, model.default_domain).encode()).hexdigest()
            prev = known.get(zone.name)
            if prev is not None and prev[1] == digest:
                serial = prev[0]
            else:
                serial = next_serial(prev[0] if prev else None, now)
                changed.append(zone.name)
            files[zone.name] = ZoneFile(zones.render_zone(zone, serial, model.default_domain), serial)
            digests[zone.name] = digest
        changed += [z for z in known if z not in files]
        conf = config.render(self.server.layout, files, options or self.options)
        return DnsPlan(conf, files, digests, changed)

    async def apply(self, model: zones.DnsModel, options: config.AuthoritativeOptions | None = None) -> DnsApplied:
        """Serve `model`. Raises InvalidDnsModel, or NamedConfigError (BIND refused it: the last
        good zones keep serving), or NamedError (named would not start)."""
        if options is not None:
            self.options = options
        plan = self.render(model)
        outcome = await self.server.apply(plan.conf, plan.files)
        write_atomic(self._serials_path, json.dumps({z: [f.serial, plan.digests[z]] for z, f in plan.files.items()}))
        self.model = model
        return DnsApplied(outcome, tuple(plan.changed), {z: f.serial for z, f in plan.files.items()})

    def status(self) -> tuple[str, str]:
        """("off" | "running" | "degraded" | "dead", text) for the region's "bind9" service."""
        return self.server.status()

    async def stop(self) -> None:
        await self.server.stop()
