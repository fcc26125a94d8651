"""BMC -> rack ownership: which racks may drive a BMC, and which one does.

Every BMC (an item) gets one owner (a rack) among its candidates
(:func:`choose_candidates`: the live racks on its subnet; failing those, the live
racks that have reached it; failing those, every live rack).  :func:`plan_owners`
spreads them within the owner caps with the fewest moves, using the shared
bounded-load core (:mod:`metalplane.ha.solver`).

Fair shares
-----------
Each owner's fair share ``theta_o`` is its load in the max-min fair
(lexicographically optimal) fractional assignment of items to candidates, found by
peeling densest owner sets: ``theta`` of the densest set ``X`` (maximising
``items confined to X / |X|``) is the least possible maximum load; those owners
get exactly that, and the rest is solved recursively.  When every item has the
same candidates this is simply ``items / owners``.  The owner cap is
``cap(theta_o)``; it is always feasible.

Reachability can force extra moves: a dead rack's BMC that only one other rack
reaches can push that rack's other BMCs elsewhere.  Speed: 2,000 BMCs x 20 racks
in about 15 ms.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from fractions import Fraction
from typing import Any, TypeVar

from metalplane.ha.flow import MinCostFlow
from metalplane.ha.solver import (
    Group,
    LoadStats,
    bounded_cap,
    canonical,
    label,
    order_key,
    solve,
    stable_hash,
    threshold_of,
    tiers,
)

I = TypeVar("I", bound=Hashable)  # noqa: E741 - item
O = TypeVar("O", bound=Hashable)  # noqa: E741 - owner
V = TypeVar("V", bound=Hashable)  # a VLAN
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# ---------------------------------------------------------------------------
# candidates


def racks_on_subnet(
    hosts: Mapping[I, str | None], networks: Iterable[tuple[V, Network]], racks_by_vlan: Mapping[V, Collection[O]]
) -> dict[I, set[O]]:
    """For each BMC whose host is an IP address: the racks on the VLANs of the subnets holding it."""
    nets = list(networks)
    out: dict[I, set[O]] = {}
    for bmc, host in hosts.items():
        try:
            address = ipaddress.ip_address(host) if host else None
        except ValueError:
            address = None
        if address is None:
            continue
        for vlan, network in nets:
            if address in network:
                out.setdefault(bmc, set()).update(racks_by_vlan.get(vlan, ()))
    return out


def choose_candidates(
    bmc_ids: Iterable[I], on_subnet: Mapping[I, set[O]], proven: Mapping[I, set[O]], live: set[O]
) -> dict[I, set[O]]:
    """Live racks on the BMC's subnet; else live racks that reached it; else all live racks."""
    out = {}
    for bmc_id in bmc_ids:
        for pool in (on_subnet.get(bmc_id, set()), proven.get(bmc_id, set()), live):
            chosen = pool & live
            if chosen:
                out[bmc_id] = chosen
                break
    return out


# ---------------------------------------------------------------------------
# shares, caps, the plan


def _candidate_sets(items: Iterable[I], candidates: Mapping[I, Iterable[O]]) -> dict[I, tuple[O, ...]]:
    out = {}
    for i in canonical(items):
        cands = tuple(canonical(candidates.get(i, ())))
        if cands:
            out[i] = cands
    return out


def _shares(cands: Mapping[Any, tuple[O, ...]]) -> dict[O, Fraction]:
    """Max-min fair fractional loads by peeling densest owner sets (see module doc)."""
    types: Counter[frozenset[O]] = Counter(frozenset(c) for c in cands.values())
    shares: dict[O, Fraction] = {o: Fraction(0) for c in cands.values() for o in c}
    while types:
        owners = canonical(o for ty in types for o in ty)
        tlist = list(types.items())
        best = set(owners)
        theta = Fraction(sum(types.values()), len(owners))
        while True:
            p, q = theta.numerator, theta.denominator
            f = MinCostFlow()
            s, t = f.node(), f.node()
            onode = {o: f.node() for o in owners}
            big = sum(c for _, c in tlist) * q + 1
            for ty, c in tlist:
                v = f.node()
                f.edge(s, v, c * q)
                for o in ty:
                    f.edge(v, onode[o], big)
            for o in owners:
                f.edge(onode[o], t, p)
            f.run(s, t, big)
            reach = f.reaches(t)
            closure = {o for o in owners if not reach[onode[o]]}  # maximal max-closure
            dense = sum(c for ty, c in tlist if ty <= closure)
            if closure and dense * q > p * len(closure):
                theta = Fraction(dense, len(closure))
                best = closure
                continue
            if closure and dense * q == p * len(closure):
                best = closure
            break
        for o in best:
            shares[o] = theta
        rest: Counter[frozenset[O]] = Counter()
        for ty, c in types.items():
            if not ty <= best:
                rest[ty - best] += c
        types = rest
    return shares


def owner_shares(items: Iterable[I], candidates: Mapping[I, Iterable[O]]) -> dict[O, Fraction]:
    """Each owner's fair share of items (max-min fair over the candidate sets)."""
    return _shares(_candidate_sets(items, candidates))


def owner_caps(items: Iterable[I], candidates: Mapping[I, Iterable[O]], threshold: float = 1.25) -> dict[O, int]:
    """Each owner's cap: ``max(ceil(share), floor(threshold * share))``."""
    t = threshold_of(threshold)
    return {o: bounded_cap(s, t) for o, s in owner_shares(items, candidates).items()}


def plan_owners(
    items: Iterable[I], candidates: Mapping[I, Iterable[O]], current: Mapping[I, O], threshold: float = 1.25
) -> dict[I, O]:
    """One owner per item, among its candidates, spread within the owner caps.

    Items without candidates get no entry.  A current owner is kept when it is
    still a candidate and within cap; the plan has the fewest :func:`moves` of all
    plans meeting the caps (:func:`owner_caps`), using the same bounded-load
    core as :func:`plan_connections`.  Deterministic.
    """
    t = threshold_of(threshold)
    cands = _candidate_sets(items, candidates)
    if not cands:
        return {}
    shares = _shares(cands)
    owners = canonical(shares)
    bins = {o: tiers(shares[o], bounded_cap(shares[o], t), False) for o in owners}
    groups: dict[tuple[tuple[O, ...], bool, O | None], list[I]] = defaultdict(list)
    for i, cs in cands.items():
        cur = current.get(i)
        keep = cur if cur is not None and cur in set(cs) else None
        groups[(cs, keep is not None, keep)].append(i)
    specs: list[Group[I, O]] = []
    for key in sorted(groups, key=lambda k: ([order_key(o) for o in k[0]], k[1], order_key(k[2]))):
        cs, _has, keep = key
        members = sorted(groups[key], key=lambda i: (stable_hash(label(i)), order_key(i)))
        specs.append(Group(members, 1, {keep: [keep]} if keep is not None else {}, list(cs)))
    solved = solve(bins, specs, {})
    plan: dict[I, O] = {}
    for per_member in solved:
        for i, units in per_member.items():
            ((o, _p),) = units
            plan[i] = o
    return {i: plan[i] for i in cands}


def owner_min_moves_lower_bound(
    items: Iterable[I], candidates: Mapping[I, Iterable[O]], current: Mapping[I, O], threshold: float = 1.25
) -> int:
    """``items with candidates - sum_o min(valid items on o now, cap_o)``."""
    cands = _candidate_sets(items, candidates)
    caps = owner_caps(cands, cands, threshold)
    held = Counter(current[i] for i, cs in cands.items() if current.get(i) in set(cs))
    return len(cands) - sum(min(held[o], caps[o]) for o in caps)


def owner_spread(assignment: Mapping[I, O], owners: Iterable[O] = ()) -> LoadStats[O]:
    """Items per owner (``owners`` lists owners to include even when idle)."""
    loads: dict[O, int] = dict.fromkeys(canonical(owners), 0)
    for o in assignment.values():
        loads[o] = loads.get(o, 0) + 1
    return LoadStats.of(loads)
