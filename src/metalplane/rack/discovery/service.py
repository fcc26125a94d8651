"""Network discovery on a rack: ARP on its interfaces -> observations -> a durable queue.

    discovery = DiscoveryService(state_dir / "discovery")
    await discovery.apply(enabled=True, interfaces={"eth1": None, "eth1.20": 20})   # name -> VLAN if known
    async for batch in discovery.events.batches():     # replayed after restarts, in order
        await region.report(batch); discovery.events.ack(batch[-1]["id"])
    discovery.status()      # ("running" | "degraded" | "off", text)
    await discovery.stop()

`enabled` is the `network_discovery` setting (MAAS: "enabled" | "disabled"):
off closes every socket, and nothing new is queued; what is queued stays and
is still delivered. An observation (`observations.Observation.as_event`) is
``{"id", "ip", "mac", "interface", "vid", "time", "event": "NEW" | "REFRESHED" |
"MOVED", "previous_mac"}``; the VLAN is the one given for the interface, else
the 802.1Q tag the frame came with, else None.

What was reported is kept in memory only: after a restart each binding is
reported once more as NEW (the region stores bindings, so a repeat changes
nothing), rather than keeping a second table on disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from metalplane.rack.discovery.arp import ArpPacket, bindings
from metalplane.rack.discovery.listener import ArpListener
from metalplane.rack.discovery.observations import DEFAULT_REFRESH, Bindings
from metalplane.rack.event_queue import EventQueue

log = logging.getLogger(__name__)


class DiscoveryService:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        refresh: float = DEFAULT_REFRESH,
        netns: str | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.events = EventQueue(self.state_dir / "discovery.sqlite3")
        self.bindings = Bindings(refresh)
        self.netns = netns
        self.clock = clock
        self.on_change = on_change
        self.enabled = False
        self.interfaces: dict[str, int | None] = {}
        self.listeners: dict[str, ArpListener] = {}
        self.errors: dict[str, str] = {}
        self.reported = 0

    async def apply(self, enabled: bool, interfaces: Mapping[str, int | None]) -> None:
        """Listen on `interfaces` ({name: VLAN id or None}) when `enabled`, on none otherwise.
        An interface that cannot be opened is reported in `status` and retried at the next apply."""
        loop = asyncio.get_running_loop()
        wanted = dict(interfaces) if enabled else {}
        for name in [n for n in self.listeners if n not in wanted]:
            self.listeners.pop(name).close()
            self.bindings.forget(name)
        self.errors = {}
        for name in wanted:
            if name in self.listeners:
                continue
            try:
                listener = await asyncio.to_thread(ArpListener, name, self._on_packets, netns=self.netns)
            except OSError as e:
                self.errors[name] = e.strerror or str(e)
                log.warning("network discovery cannot listen on %s: %s", name, e)
                continue
            listener.start(loop)
            self.listeners[name] = listener
        self.enabled = enabled
        self.interfaces = wanted
        self._changed()

    def _on_packets(self, interface: str, packets: list[ArpPacket]) -> None:
        now = self.clock()
        configured_vid = self.interfaces.get(interface)
        found = []
        for pkt in packets:
            vid = configured_vid if configured_vid is not None else pkt.vid
            for ip, mac in bindings(pkt):
                obs = self.bindings.observe(interface, vid, ip, mac, now)
                if obs is not None:
                    found.append(obs.as_event())
        if found:
            self.events.append(found)
            self.reported += len(found)

    def status(self) -> tuple[str, str]:
        """("off" | "running" | "degraded", text)."""
        if not self.enabled:
            return "off", f"network discovery is disabled; {len(self.events)} observations queued"
        text = (
            f"listening on {', '.join(sorted(self.listeners)) or 'no interface'}; "
            f"{len(self.bindings)} bindings seen, {len(self.events)} observations queued"
        )
        if self.errors:
            return "degraded", text + "; cannot listen on " + ", ".join(
                f"{n} ({e})" for n, e in sorted(self.errors.items())
            )
        return "running", text

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def stop(self) -> None:
        """Close the sockets and the queue (what is queued stays on disk)."""
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        self.enabled = False
        self.events.close()
