"""The rack's DHCP service: what the rack daemon drives.

    service = DhcpService("/var/lib/metalplane/dhcp")
    await service.apply(state)          # the region's DhcpState; {"vlans": []} = DHCP off
    service.status()                    # ("running", "standalone: pid 123, ...") for "dhcpd"
    async for batch in service.events.batches(): ...; service.events.ack(batch[-1]["id"])
    await service.stop()                # rack shutdown: Kea stopped, events flushed to disk

`apply` refuses a state that cannot be served (InvalidDhcpState) or that any
Kea instance rejects in ``kea-dhcp4 -t`` (KeaConfigError) before touching a
running Kea: then no instance gets its new configuration. (Should a running
Kea refuse, in ``config-set``, a configuration that ``-t`` accepted, that one
instance keeps its previous configuration and apply raises KeaConfigError.)

Status for the rack's "dhcpd" service: "off" (no VLAN served), "running",
"degraded" (an HA instance serves alone because its partner is down, or is
not serving yet while it syncs), "dead" (a Kea process is down; the supervisor
restarts it with backoff 1 s .. 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metalplane.ha.dhcp_peers import HA_ALONE, HA_NOT_SERVING
from metalplane.rack.dhcp import config as cfg
from metalplane.rack.dhcp.kea import KeaConfigError, KeaError, KeaProcess, Wrap
from metalplane.rack.dhcp.leases import LeaseQueue, LeaseTailer, parse_header, parse_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DhcpSettings:
    """The DHCP service's tunables (the defaults are the rack's)."""

    threads: int = 0  # Kea worker threads (0: one per CPU)
    # a dead Kea's restart delay, first..most (None: not restarted)
    restart_backoff: tuple[float, float] | None = (1.0, 30.0)
    reclaim_interval: int = 5  # seconds between Kea's reclaims of expired leases
    tail_interval: float = 0.25  # seconds between reads of a lease file, for the region's lease events
    ha_poll_interval: float = 2.0  # seconds between HA heartbeats asked of each HA instance


class DhcpService:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        wrap: Wrap | None = None,
        settings: DhcpSettings = DhcpSettings(),
        kea_bin: str = "kea-dhcp4",
        kea6_bin: str = "kea-dhcp6",
        on_change: Callable[[], None] | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.wrap = wrap
        self.settings = settings
        self.kea_bins = {4: kea_bin, 6: kea6_bin}
        self.on_change = on_change
        self.events = LeaseQueue(self.state_dir / "lease-events.sqlite3")
        self.instances: dict[str, KeaProcess] = {}
        self.plans: dict[str, cfg.Instance] = {}
        self.tailers: dict[str, LeaseTailer] = {}
        self.state: cfg.State | None = None
        self.last_error = ""
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self._closed = False

    # ------------------------------------------------------------------ apply

    def _process(self, inst: cfg.Instance) -> KeaProcess:
        proc = self.instances.get(inst.name)
        if proc is None:
            proc = KeaProcess(
                inst.name,
                self.state_dir / inst.name,
                wrap=self.wrap,
                family=inst.family,
                kea_bin=self.kea_bins[inst.family],
                restart_backoff=self.settings.restart_backoff,
                on_change=self.on_change,
            )
        return proc

    def _render(self, inst: cfg.Instance, state: cfg.State, proc: KeaProcess) -> dict[str, Any]:
        render = cfg.render if inst.family == 4 else cfg.render6
        return render(
            inst,
            state,
            cfg.Paths(*proc.paths()),
            threads=self.settings.threads,
            reclaim_interval=self.settings.reclaim_interval,
        )

    def render(self, raw: cfg.State | Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """{instance name: kea-dhcp4/6 config} for `raw`, without applying (raises InvalidDhcpState)."""
        state, insts = cfg.plan(raw)
        return {inst.name: self._render(inst, state, self._process(inst)) for inst in insts}

    async def apply(self, raw: cfg.State | Mapping[str, Any] | None) -> dict[str, str]:
        """Make `raw` (a config.State, or its wire dict) the DHCP service of this rack.

        Returns {instance: "started" | "reconfigured" | "unchanged" | "stopped"}.
        Raises InvalidDhcpState or KeaConfigError (nothing changed) or KeaError.
        """
        async with self._lock:
            if self._closed:
                raise RuntimeError("DhcpService is stopped")
            try:
                state, insts = cfg.plan(raw)
            except cfg.InvalidDhcpState as e:
                self.last_error = str(e)
                raise
            procs = {i.name: self._process(i) for i in insts}
            configs = {i.name: self._render(i, state, procs[i.name]) for i in insts}
            # 1. every config through `kea-dhcp4 -t` before any Kea sees one
            todo = [n for n in configs if procs[n].config != configs[n] or not procs[n].running()]
            results = await asyncio.gather(*(procs[n].check(configs[n]) for n in todo), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                self.last_error = "; ".join(str(e) for e in errors)
                for err in errors:
                    if not isinstance(err, KeaConfigError):
                        raise err
                raise KeaConfigError("\n".join(f"[{e.instance}] {e.message}" for e in errors))  # type: ignore[attr-defined]
            outcome: dict[str, str] = {}
            # 2. instances no longer wanted (VLANs moved elsewhere, or DHCP off)
            for name in [n for n in self.instances if n not in procs]:
                await self.instances.pop(name).stop()
                tailer = self.tailers.pop(name, None)
                if tailer is not None:
                    await tailer.stop()
                self.plans.pop(name, None)
                outcome[name] = "stopped"
            # 3. new and changed instances
            for inst in insts:
                proc = procs[inst.name]
                if inst.family == 4 and inst.name not in self.instances:
                    self._seed_leases(proc, inst)
                self.instances[inst.name] = proc
                self.plans[inst.name] = inst
                if inst.family == 4:  # the region learns DHCPv4 leases (v6 ones stay with Kea)
                    tailer = self.tailers.get(inst.name)
                    if tailer is None:
                        tailer = self.tailers[inst.name] = LeaseTailer(
                            inst.name, proc.lease_file, self.events, interval=self.settings.tail_interval
                        )
                    tailer.start()
                outcome[inst.name] = await proc.apply(configs[inst.name], checked=inst.name in todo)
            self.state = state
            self.last_error = ""
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll_ha(), name="dhcp-ha-poll")
            return outcome

    def _seed_leases(self, proc: KeaProcess, inst: cfg.Instance) -> int:
        """A new instance (e.g. a VLAN going from standalone to HA) starts with the
        leases other instances of this rack held for its subnets. Returns records copied."""
        if proc.lease_file.exists():
            return 0
        wanted = {s.subnet_id for s in inst.subnets}
        lines: list[str] = []
        header = None
        for other in sorted(self.state_dir.iterdir()):
            if not other.is_dir() or other.name == inst.name:
                continue
            for name in ("leases4.csv.2", "leases4.csv.1", "leases4.csv"):
                path = other / name
                if not path.exists():
                    continue
                with open(path, errors="replace") as f:
                    cols = None
                    for line in f:
                        if cols is None or line.startswith("address,"):
                            cols = parse_header(line)
                            header = header or line
                            continue
                        rec = parse_record(cols, line) if line.endswith("\n") else None
                        if rec is not None and rec["subnet_id"] in wanted:
                            lines.append(line)
        if header is None or not lines:
            return 0
        proc.dir.mkdir(parents=True, exist_ok=True)
        tmp = proc.lease_file.with_name(".seed.csv")
        tmp.write_text(header + "".join(lines))
        tmp.replace(proc.lease_file)
        log.info("seeded %s with %d lease records from other instances", inst.name, len(lines))
        return len(lines)

    # ------------------------------------------------------------------ status

    async def _poll_ha(self) -> None:
        while not self._closed:
            for name, proc in list(self.instances.items()):
                plan = self.plans.get(name)
                if plan is None or plan.role == "standalone" or not proc.running():
                    proc.ha_state = None
                    continue
                try:
                    answer = await proc.command("ha-heartbeat", timeout=2)
                    proc.ha_state = (answer.get("arguments") or {}).get("state") or answer.get("text")
                except (TimeoutError, OSError, KeaError, ValueError) as e:
                    proc.ha_state = f"unknown ({type(e).__name__})"
            await asyncio.sleep(self.settings.ha_poll_interval)

    def status(self, family: int = 4) -> tuple[str, str]:
        """(status, info) for the rack's "dhcpd" (family 4) or "dhcpd6" (6) service:
        off | running | degraded | dead."""
        mine = {name: proc for name, proc in self.instances.items() if proc.family == family}
        if not mine:
            info = f"DHCP{'v6' if family == 6 else ''} is off on this rack"
            if self.last_error:
                info += f"; last change refused: {self.last_error}"
            return "off", info
        statuses = {name: proc.status() for name, proc in sorted(mine.items())}
        infos = [info for _, info in statuses.values()]
        if self.last_error:
            infos.append(f"last change refused: {self.last_error}")
        info = "; ".join(infos)
        if any(s == "dead" for s, _ in statuses.values()):
            return "dead", info
        for name, proc in mine.items():
            plan = self.plans.get(name)
            if proc.ha_state in HA_ALONE and plan and plan.peer:
                return "degraded", f"HA partner {plan.peer.name} is down, serving alone; {info}"
            if proc.ha_state in HA_NOT_SERVING:
                return "degraded", info
        return "running", info

    # ------------------------------------------------------------------ stop

    async def stop(self) -> None:
        """Stop every Kea instance and the lease readers (events stay on disk)."""
        async with self._lock:
            self._closed = True
            if self._poller is not None:
                self._poller.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._poller
            await asyncio.gather(*(p.stop() for p in self.instances.values()), return_exceptions=True)
            for tailer in self.tailers.values():
                await tailer.stop()
            self.tailers.clear()
            self.instances.clear()
            self.plans.clear()
            self.events.close()

    async def stop_servers_now(self) -> None:
        """Stop every Kea instance without waiting for the lock (the shutdown's fallback when
        `stop` is held up: the servers must not outlive the rack)."""
        self._closed = True
        await asyncio.gather(*(p.stop() for p in list(self.instances.values())), return_exceptions=True)

    async def off(self) -> None:
        """DHCP off: stop every instance (same as apply({"vlans": []}))."""
        await self.apply({"vlans": []})

    def forget(self) -> None:
        """Remove the state dir (leases and queued events): for tests and decommissioning."""
        shutil.rmtree(self.state_dir, ignore_errors=True)
