"""How many TFTP transfers and HTTP connections a rack process allows, from its file limit.

Every TFTP transfer holds two descriptors (its socket and the file it sends), every
HTTP connection up to two (socket, and the file while sending). Whatever is left
after a reserve for the rest of the rack (region links, Kea's control sockets and
lease files, power drivers' pipes, image downloads, logs) is split between TFTP and
HTTP, so that a flood of either runs into its own limit long before the process runs
out of descriptors. Per-client limits keep one host (one source address) from taking
all of it. Pure functions: `budget(nofile)`; `raise_open_files_limit()` is the only I/O.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

RESERVE_MIN, RESERVE_MAX = 64, 1024  # descriptors kept for everything but TFTP and HTTP
FDS_PER_TRANSFER = 2
FDS_PER_CONNECTION = 2
MAX_TRANSFERS = 4096  # beyond this, memory (a 64 KB window buffer each) matters more than descriptors
MAX_CONNECTIONS = 8192
PER_CLIENT_MAX = 256  # the boot storm bench plays 200 machines from one address
PER_CLIENT_SHARE = 8  # one client gets at most 1/8 of a service's total


class Share(NamedTuple):
    """A service's limits: TFTP transfers or HTTP connections in all, and per client address."""

    total: int
    per_client: int

    def override(self, total: int | None, per_client: int | None) -> Share:
        """These limits, with `total` and `per_client` in their place where given (not None)."""
        return Share(self.total if total is None else total, self.per_client if per_client is None else per_client)


@dataclass(frozen=True)
class Budget:
    nofile: int
    reserve: int
    tftp: Share  # transfers
    http: Share  # connections


def budget(nofile: int) -> Budget:
    """Limits for a process allowed `nofile` open descriptors (RLIMIT_NOFILE's soft value)."""
    reserve = min(RESERVE_MAX, max(RESERVE_MIN, nofile // 10))
    share = max(0, nofile - reserve) // 2
    transfers = max(8, min(MAX_TRANSFERS, share // FDS_PER_TRANSFER))
    connections = max(8, min(MAX_CONNECTIONS, share // FDS_PER_CONNECTION))
    return Budget(nofile, reserve, Share(transfers, per_client(transfers)), Share(connections, per_client(connections)))


def per_client(total: int) -> int:
    return max(2, min(PER_CLIENT_MAX, total // PER_CLIENT_SHARE))


def current_nofile() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def current_budget() -> Budget:
    return budget(current_nofile())


def raise_open_files_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one: the budget above is sized from it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Throttle:
    """Rate-limited reporting of a limit in action: count every event, say so at most
    once per `interval` seconds (`due()` returns the events since the last report)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.count = 0
        self.total = 0
        self._last = -interval

    def hit(self) -> int:
        """Count one event; the number to report now (0: stay quiet)."""
        self.count += 1
        self.total += 1
        now = self.clock()
        if now - self._last < self.interval:
            return 0
        self._last = now
        count, self.count = self.count, 0
        return count
