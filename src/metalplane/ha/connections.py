"""Rack -> region-worker RPC connections: who connects where, pure and deterministic.

Every rack connects to ``k = min(per_rack, live regions)`` worker endpoints on
``k`` *distinct* regions, so a rack survives the death of any one region
(:func:`plan_connections`).  Caps and minimal movement are the shared
bounded-load core's (:mod:`metalplane.ha.solver`).

Caps
----
``n`` racks, ``T = n * k`` connections, region ``g`` with ``w_g`` live workers,
``W = sum w_g``:

* region fair share ``s_g = min(n, lam * w_g)`` with ``lam`` chosen so that
  ``sum s_g = T`` (water-filling: a region holds at most one connection per
  rack, so a region that would exceed ``n`` is saturated at ``n`` and the rest is
  shared by the others in proportion to their worker counts);
* worker fair share ``m_g = s_g / w_g`` (``= lam`` unless the region is saturated);
* worker cap ``c_g = cap(m_g)``; every endpoint of region ``g`` holds ``<= c_g``;
* region cap ``U_g = min(n, cap(s_g), w_g * c_g)``; region ``g`` holds ``<= U_g``.

With equal worker counts per region no region saturates and ``m_g = T / W`` is
the overall per-worker mean, so "every endpoint within cap" is exactly
"per-worker max/mean <= t, or max <= ceil(mean)".  A plan meeting all caps always
exists (take ``floor``/``ceil`` of every ``s_g`` and spread evenly).

Movement
--------
A dead endpoint's connections move and nothing else does unless the caps shrink
(or a swap is forced, below); a new rack only adds its own ``k`` connections
unless the caps force otherwise.  Adding a 5th worker to 4 equally loaded ones at
``t = 1.25`` moves nothing, since the old loads are exactly ``1.25 x`` the new
mean.

:func:`min_moves_lower_bound` is the closed form
``n*k - sum_g min(U_g, K_g)`` with ``K_g`` the connections region ``g`` can keep
(``sum_{e in g} min(l_e, c_g)``).  It is exact whenever ``k == 1`` or ``k`` equals
the number of regions (no choice of regions to make) and ``current`` holds at
most ``k`` endpoints per rack on distinct regions; that covers the usual
"2 regions, 2 connections per rack" and every single join or leave from a
planned state in those shapes.  With ``1 < k < regions`` and tight caps the
distinct-region rule can force a swap (the only room is on region X, which
rack B already uses, so rack A moves from region Y to X to free a place on Y
for B), and the exact minimum exceeds the bound by the number of such swaps;
the planner still finds the minimum.

New connections go preferably to regions below ``floor(s_g)``, then below
``ceil(s_g)``, then up to the cap, and within a region by consistent hashing with
bounded loads: the rack's old worker there, else the first worker below its cap in
the rack's own order of them (:func:`rack_preference`, rendezvous hashing).  A rack
that loses a link replaces it, before any plan reaches it, by the first usable
worker in that same order, so the plan made when a worker dies names the workers
its racks are already joining and moves none of them again.  With the least-loaded
worker instead (or the least-loaded up to the fair share), up to two in three of
them joined twice, and the second joins, all to the lightest worker, held up the
racks that had chosen it themselves (bench/rack_connections_bench.py).  Loads are
then within the caps, not level: a worker may hold up to its cap while another of
the region holds less.

Speed (CPython 3.11, one core, medians): 1,000 racks x 8 endpoints (2 regions x
4 workers, or 4 x 2) plan from scratch in about 8-9 ms and re-plan (unchanged,
worker leave, worker return, region join) in about 7-8 ms; 1,000 racks x 80
endpoints (10 x 8) in about 10 ms; 10,000 racks x 8 endpoints in about 125 ms.
The flow graph has one node per group of racks with the same region /
over-cap-worker signature, not one per rack, so its size is bounded by the
number of distinct signatures (tens in steady state).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from metalplane.ha.solver import (
    NEW,
    Group,
    LoadStats,
    as_set,
    bounded_cap,
    canonical,
    solve,
    stable_hash,
    threshold_of,
    tiers,
)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One region worker process's RPC endpoint."""

    region: str  # region system_id
    worker: int  # worker index within the region

    def __str__(self) -> str:
        return f"{self.region}:{self.worker}"


Assignment = Mapping[str, Collection[Endpoint]]
"""rack system_id -> the endpoints it connects to."""


# ---------------------------------------------------------------------------
# caps


@dataclass(frozen=True)
class RegionCaps:
    """Fair shares and caps of one region (see the module docstring)."""

    region: str
    workers: int
    share: Fraction  # s_g: fair share of all rack connections
    cap: int  # U_g: most connections the region may hold
    worker_share: Fraction  # m_g = s_g / workers
    worker_cap: int  # c_g: most connections one worker may hold


@dataclass(frozen=True)
class ConnectionCaps:
    """The balance bounds for a set of racks and live endpoints."""

    racks: int
    per_rack: int  # k actually used: min(requested per_rack, live regions)
    threshold: Fraction
    regions: Mapping[str, RegionCaps]

    def worker_cap(self, endpoint: Endpoint) -> int:
        return self.regions[endpoint.region].worker_cap

    def region_cap(self, region: str) -> int:
        return self.regions[region].cap


def _water_fill(weights: Mapping[str, int], total: int, limit: int) -> dict[str, Fraction]:
    """``s_g = min(limit, lam * w_g)`` with ``sum s_g == total`` (needs total <= limit * len)."""
    free = dict(weights)
    out: dict[str, Fraction] = {}
    left = total
    while free:
        lam = Fraction(left, sum(free.values()))
        full = [g for g, w in free.items() if lam * w > limit]
        if not full:
            out.update((g, lam * w) for g, w in free.items())
            break
        for g in full:
            out[g] = Fraction(limit)
            left -= limit
            del free[g]
    return out


def _by_region(endpoints: Iterable[Endpoint]) -> dict[str, list[Endpoint]]:
    by_region: dict[str, list[Endpoint]] = defaultdict(list)
    for e in sorted(set(endpoints)):
        by_region[e.region].append(e)
    return dict(sorted(by_region.items()))


DHCP_REGIONS = 2  # regions a DHCP primary or secondary stays linked to, when that many live


def links_wanted(per_rack: int, regions: int, dhcp_duty: bool) -> int:
    """How many regions a rack connects to: ``per_rack``, but a rack that is DHCP primary
    or secondary on some VLAN keeps links to two regions when two live, even with
    ``per_rack`` 1. Its lease reports (the write every booting machine makes) and the
    DHCP changes pushed to it then survive the death of one region without waiting for a
    reconnect, as the seeds' "rebalance when DHCP is toggled or a VLAN changes" needs
    some effect of DHCP on the plan. Never more than the live regions."""
    wanted = max(per_rack, DHCP_REGIONS) if dhcp_duty else per_rack
    return min(wanted, regions)


def _caps(
    n: int, by_region: Mapping[str, list[Endpoint]], per_rack: int, t: Fraction, on_duty: int = 0
) -> ConnectionCaps:
    """``on_duty`` of the ``n`` racks are on DHCP duty (:func:`links_wanted`)."""
    if per_rack < 0:
        raise ValueError("per_rack must be >= 0")
    k = min(per_rack, len(by_region))
    total = n * k + on_duty * (links_wanted(per_rack, len(by_region), True) - k)
    weights = {g: len(es) for g, es in by_region.items()}
    shares = _water_fill(weights, total, n) if n and total else {g: Fraction(0) for g in weights}
    regions = {}
    for g, w in weights.items():
        s = shares[g]
        m = s / w
        c = bounded_cap(m, t)
        regions[g] = RegionCaps(g, w, s, min(n, bounded_cap(s, t), w * c), m, c)
    return ConnectionCaps(n, k, t, regions)


def connection_caps(
    racks: int | Iterable[str], endpoints: Iterable[Endpoint], per_rack: int = 2, threshold: float = 1.25
) -> ConnectionCaps:
    """Fair shares and caps for ``racks`` (a count or the ids) over live ``endpoints``."""
    n = racks if isinstance(racks, int) else len(set(racks))
    return _caps(n, _by_region(endpoints), per_rack, threshold_of(threshold))


# ---------------------------------------------------------------------------
# the planner


def rack_preference(rack: str, region: str, worker: int) -> int:
    """Where `rack` ranks a worker (lower first): its own stable order, the same in the
    rack (rack.region_links) and in the planner."""
    return stable_hash(f"{rack}|{region}|{worker}")


def _valid_current(
    rack_list: list[str], live: set[Endpoint], current: Mapping[str, Iterable[Endpoint]]
) -> dict[str, list[Endpoint]]:
    return {r: sorted(e for e in as_set(current.get(r)) if e in live) for r in rack_list}


def plan_connections(
    racks: Iterable[str],
    endpoints: Iterable[Endpoint],
    current: Assignment,
    per_rack: int = 2,
    threshold: float = 1.25,
    on_duty: Collection[str] = (),
) -> dict[str, frozenset[Endpoint]]:
    """Which endpoints each rack should connect to.

    Every rack in ``racks`` gets exactly ``k = min(per_rack, live regions)``
    endpoints (a rack in ``on_duty``, DHCP primary or secondary somewhere, gets
    :func:`links_wanted`: at least two when two regions live)
    from ``endpoints`` (the live ones), on ``k`` distinct regions, with
    every endpoint and region load within its cap (:func:`connection_caps`).
    Starting from ``current`` (anything stale in it is ignored), the plan keeps
    as many connections as possible: it has the fewest :func:`moves` of all plans
    meeting the caps.  Deterministic: independent of input order, same answer in
    every process.
    """
    t = threshold_of(threshold)
    rack_list = canonical(racks)
    by_region = _by_region(endpoints)
    duty = set(on_duty) & set(rack_list)
    caps = _caps(len(rack_list), by_region, per_rack, t, len(duty))
    k = caps.per_rack
    k_duty = links_wanted(per_rack, len(by_region), True)
    if not rack_list or (k == 0 and not duty) or k_duty == 0:
        return {r: frozenset() for r in rack_list}
    live = {e for es in by_region.values() for e in es}
    valid = _valid_current(rack_list, live, current)
    held = Counter(e for es in valid.values() for e in es)
    hot = {e for e, c in held.items() if c > caps.worker_cap(e)}

    # Group racks by signature: per region they hold, the over-cap ("hot")
    # worker or a marker for "a worker within cap" (whose keeping is free).
    groups: dict[tuple[bool, tuple[Endpoint, ...]], list[str]] = defaultdict(list)
    own: dict[str, dict[str, Endpoint]] = {}
    for r in rack_list:
        sig: set[Endpoint] = set()
        mine: dict[str, Endpoint] = {}
        for e in valid[r]:
            if e in hot:
                sig.add(e)
            else:
                sig.add(Endpoint(e.region, -1))
                mine.setdefault(e.region, e)
        own[r] = mine
        groups[(r in duty, tuple(sorted(sig)))].append(r)

    regions = list(by_region)
    bins = {g: tiers(rc.share, rc.cap, rc.workers > 1) for g, rc in caps.regions.items()}
    capped = {e: (e.region, caps.worker_cap(e)) for e in sorted(hot)}
    specs: list[Group[str, str]] = []
    for on_dhcp_duty, signature in sorted(groups):
        members = sorted(groups[(on_dhcp_duty, signature)], key=lambda r: (stable_hash(r), r))
        keeps: dict[str, list[Endpoint]] = defaultdict(list)
        for p in signature:
            keeps[p.region].append(p)
        specs.append(Group(members, k_duty if on_dhcp_duty else k, dict(keeps), regions))
    solved = solve(bins, specs, capped)

    # Endpoints by index: Endpoint hashing is slow enough to matter here.
    index = {e: i for i, e in enumerate(sorted(live))}
    loads = [0] * len(index)
    plan: dict[str, set[Endpoint]] = {r: set() for r in rack_list}
    pending: list[tuple[int, str, str]] = []
    for per_member in solved:
        for r, units in per_member.items():
            for g, p in units:
                if p is NEW:
                    pending.append((stable_hash(f"{r}\x1f{g}"), r, g))
                    continue
                e = p if p.worker >= 0 else own[r][g]
                plan[r].add(e)
                loads[index[e]] += 1
    if pending:
        # Bounded-load consistent hashing: the rack's old worker of the region, else the
        # first in the rack's own order, among the workers below their cap; were none (the
        # solver leaves the region room enough), the least loaded.
        workers = {g: [(index[e], caps.worker_cap(e), e) for e in es] for g, es in by_region.items()}
        for _, r, g in sorted(pending):
            mine_old = {index[e] for e in valid[r] if e.region == g}
            i, _, e = min(workers[g], key=functools.partial(_placement, loads, mine_old, r))
            plan[r].add(e)
            loads[i] += 1
    return {r: frozenset(es) for r, es in plan.items()}


def _placement(
    loads: list[int], mine_old: set[int], rack: str, worker: tuple[int, int, Endpoint]
) -> tuple[bool, int, bool, int, int]:
    """Where a new link of `rack` goes, smallest first: a worker below its cap (else the least
    loaded); the rack's old worker; the rack's own order of them (rendezvous)."""
    i, cap, e = worker
    full = loads[i] >= cap
    return (full, loads[i] if full else 0, i not in mine_old, rack_preference(rack, e.region, e.worker), i)


def min_moves_lower_bound(
    racks: Iterable[str], endpoints: Iterable[Endpoint], current: Assignment, per_rack: int = 2, threshold: float = 1.25
) -> int:
    """A closed-form lower bound on the moves any balanced plan needs from ``current``.

    Every rack needs ``k`` connections; at most ``K_g = min(h_g, sum_{e in g}
    min(l_e, c_g))`` current connections can stay in region ``g`` (``l_e`` = racks
    on ``e``, ``h_g`` = racks holding some worker of ``g``: one each) and at most
    ``U_g`` fit in it; each rack keeps at most ``k``.  So ``moves >= n*k - min(sum_g min(U_g, K_g),
    sum_r min(k, regions r holds))``.  Exact (the planner's moves equal it) when
    ``k`` is 1 or the number of regions and ``current`` holds at most ``k``
    endpoints per rack on distinct regions; otherwise the distinct-region rule can
    force extra swaps (see the module docstring).
    """
    t = threshold_of(threshold)
    rack_list = canonical(racks)
    by_region = _by_region(endpoints)
    caps = _caps(len(rack_list), by_region, per_rack, t)
    k = caps.per_rack
    live = {e for es in by_region.values() for e in es}
    valid = _valid_current(rack_list, live, current)
    held: Counter[Endpoint] = Counter()
    holders: Counter[str] = Counter()  # racks holding some worker of the region
    per_rack_keep = 0
    for es in valid.values():
        held.update(es)
        mine = {e.region for e in es}
        holders.update(mine)
        per_rack_keep += min(k, len(mine))
    region_keep = 0
    for g, rc in caps.regions.items():
        keepable = min(holders[g], sum(min(held[e], rc.worker_cap) for e in by_region[g]))
        region_keep += min(rc.cap, keepable)
    return len(rack_list) * k - min(region_keep, per_rack_keep)


def is_balanced(
    assignment: Assignment,
    racks: Iterable[str],
    endpoints: Iterable[Endpoint],
    per_rack: int = 2,
    threshold: float = 1.25,
    on_duty: Collection[str] = (),
) -> bool:
    """True when ``assignment`` is a valid plan within every cap (nothing to move)."""
    rack_list = canonical(racks)
    by_region = _by_region(endpoints)
    duty = set(on_duty) & set(rack_list)
    caps = _caps(len(rack_list), by_region, per_rack, threshold_of(threshold), len(duty))
    k_duty = links_wanted(per_rack, len(by_region), True)
    live = {e for es in by_region.values() for e in es}
    loads: Counter[Endpoint] = Counter()
    for r in rack_list:
        es = as_set(assignment.get(r))
        if (
            len(es) != (k_duty if r in duty else caps.per_rack)
            or len({e.region for e in es}) != len(es)
            or not es <= live
        ):
            return False
        loads.update(es)
    if set(assignment) - set(rack_list):
        return False
    region_loads: Counter[str] = Counter()
    for e, c in loads.items():
        if c > caps.worker_cap(e):
            return False
        region_loads[e.region] += c
    return all(c <= caps.region_cap(g) for g, c in region_loads.items())


# ---------------------------------------------------------------------------
# spread (what the API shows, what tests and benchmarks assert)


@dataclass(frozen=True)
class Spread:
    """How rack connections spread over endpoints and regions."""

    endpoint_loads: Mapping[Endpoint, int]  # every listed endpoint, 0 when idle
    region_loads: Mapping[str, int]
    workers: LoadStats[Endpoint]  # over all listed endpoints
    regions: Mapping[str, LoadStats[Endpoint]]  # per region, over its workers
    unknown: int = 0  # connections to endpoints not in the list (dead or stale)
    racks: int = 0
    per_rack: Mapping[int, int] = field(default_factory=dict)  # connections per rack -> racks

    @property
    def max_over_mean(self) -> float:
        """Overall per-worker max/mean (1.0 when idle)."""
        return self.workers.ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers.as_dict(),
            "regions": {
                g: {**s.as_dict(), "connections": self.region_loads.get(g, 0)} for g, s in self.regions.items()
            },
            "endpoints": {str(e): c for e, c in self.endpoint_loads.items()},
            "unknown": self.unknown,
            "racks": self.racks,
            "max_over_mean": round(self.max_over_mean, 4),
        }


def spread(assignment: Assignment, endpoints: Iterable[Endpoint]) -> Spread:
    """Per-endpoint and per-region loads of ``assignment`` over ``endpoints``."""
    by_region = _by_region(endpoints)
    loads: dict[Endpoint, int] = {e: 0 for es in by_region.values() for e in es}
    unknown = 0
    per_rack: Counter[int] = Counter()
    for es in assignment.values():
        es = as_set(es)
        per_rack[len(es)] += 1
        for e in es:
            if e in loads:
                loads[e] += 1
            else:
                unknown += 1
    regions = {g: LoadStats.of({e: loads[e] for e in es}) for g, es in by_region.items()}
    return Spread(
        loads,
        {g: s.total for g, s in regions.items()},
        LoadStats.of(loads),
        regions,
        unknown,
        len(assignment),
        dict(sorted(per_rack.items())),
    )
