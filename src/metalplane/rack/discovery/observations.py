"""Pure: de-duplicating what ARP shows into observations worth reporting.

A binding is (interface, VLAN, IP) -> MAC. An observation is reported when
it is **new**, when the IP **moved** to another MAC (with the previous one),
or when it was **refreshed**: seen again at least `refresh` seconds after it
was last reported (MAAS's network monitor: 600 s), so the region learns that
the address is still in use without hearing of every packet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass

#: MAAS reports a binding seen again at most once every ten minutes.
DEFAULT_REFRESH = 600.0
EVENTS = ("NEW", "REFRESHED", "MOVED")


@dataclass(frozen=True)
class Observation:
    ip: str
    mac: str
    interface: str
    vid: int | None
    time: float  #: unix time the packet was seen
    event: str  #: NEW | REFRESHED | MOVED
    previous_mac: str | None = None

    def as_event(self) -> dict[str, object]:
        return asdict(self)


class Bindings:
    """What has been reported, per (interface, vid, ip): the MAC and when."""

    def __init__(self, refresh: float = DEFAULT_REFRESH):
        self.refresh = refresh
        self._seen: dict[tuple[str, int | None, str], tuple[str, float]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(
        self, interface: str, vid: int | None, ip: ipaddress.IPv4Address, mac: str, now: float
    ) -> Observation | None:
        """The observation to report for this sighting, or None when nothing is new."""
        key = (interface, vid, str(ip))
        previous = self._seen.get(key)
        if previous is None:
            event, old_mac = "NEW", None
        elif previous[0] != mac:
            event, old_mac = "MOVED", previous[0]
        elif now - previous[1] >= self.refresh:
            event, old_mac = "REFRESHED", None
        else:
            return None
        self._seen[key] = (mac, now)
        return Observation(str(ip), mac, interface, vid, round(now, 3), event, old_mac)

    def forget(self, interface: str) -> None:
        """Drop what was seen on `interface` (it is no longer listened to)."""
        for key in [k for k in self._seen if k[0] == interface]:
            del self._seen[key]
