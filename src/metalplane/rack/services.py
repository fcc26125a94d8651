"""The rack's board of service statuses, reported to the region on change."""

from __future__ import annotations

import asyncio

from metalplane.rpc.messages import ServiceStatus

# rackd is judged by the region from the rack's connections; the rack reports the rest.
REPORTED = ("dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")


class ServiceBoard:
    def __init__(self) -> None:
        self._status: dict[str, tuple[str, str]] = dict.fromkeys(REPORTED, ("off", "not running on this rack"))
        self.changed = asyncio.Event()
        self.changed.set()

    def set(self, name: str, status: str, info: str = "") -> None:
        if self._status.get(name) != (status, info):
            self._status[name] = (status, info)
            self.changed.set()

    def get(self, name: str) -> tuple[str, str]:
        return self._status[name]

    def snapshot(self) -> list[ServiceStatus]:
        return [ServiceStatus(n, s, i) for n, (s, i) in self._status.items()]
