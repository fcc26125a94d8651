"""The database connection budget: can PostgreSQL hold every region's pools?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegionNeed:
    """One region and the most PostgreSQL connections it may hold at once (its config's
    `connections_needed()`: every worker's pool and LISTEN, and the supervisor's two)."""

    hostname: str
    connections: int


@dataclass(frozen=True)
class Budget:
    """What every region needs against what PostgreSQL allows (`max_connections` minus the `reserved`
    superuser slots); `message()` says it in one line, with what to change when it does not fit."""

    needed: int
    allowed: int
    max_connections: int
    reserved: int
    regions: tuple[RegionNeed, ...]

    @property
    def ok(self) -> bool:
        return self.needed <= self.allowed

    @property
    def max_connections_required(self) -> int:
        return self.needed + self.reserved

    def message(self) -> str:
        who = ", ".join(f"{r.hostname}={r.connections}" for r in self.regions)
        n = len(self.regions)
        if self.ok:
            return (
                f"database connection budget OK: {n} region(s) need up to {self.needed} connections "
                f"({who}); PostgreSQL allows {self.allowed} "
                f"(max_connections={self.max_connections} minus {self.reserved} reserved)"
            )
        return (
            f"database connection budget exceeded: {n} region(s) need up to {self.needed} connections "
            f"({who}) but PostgreSQL allows only {self.allowed} "
            f"(max_connections={self.max_connections} minus {self.reserved} reserved); "
            f"set max_connections to at least {self.max_connections_required} in postgresql.conf "
            f"and restart PostgreSQL, or lower num_workers or database_pool_size"
        )


def compute_budget(regions: list[RegionNeed], max_connections: int, reserved: int) -> Budget:
    needed = sum(r.connections for r in regions)
    return Budget(
        needed=needed,
        allowed=max(max_connections - reserved, 0),
        max_connections=max_connections,
        reserved=reserved,
        regions=tuple(sorted(regions, key=lambda r: r.hostname)),
    )
