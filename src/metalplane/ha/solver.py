"""The bounded-load core shared by every HA plan: fair shares, caps, fewest moves.

Connections (:mod:`metalplane.ha.connections`: rack -> region-worker endpoints)
and ownership (:mod:`metalplane.ha.bmc_owners`: BMC -> rack) are both "bounded
loads with minimal movement": compute each bin's *fair share*, derive an integer
*cap* from it and the threshold, keep every current placement that is still
valid and fits under the caps, and move the fewest units needed to get every
load back under its cap.  :func:`solve` makes the choice of which units move
with an exact min-cost flow (:mod:`metalplane.ha.flow`) over *groups* of
interchangeable members (racks or items), so the number of moves is the true
minimum, not a heuristic's.

Balance, precisely
------------------
``t`` is the threshold (``>= 1``, default 1.25).  For a real fair share ``x`` the
integer cap is::

    cap(x) = max(ceil(x), floor(t * x))

``ceil(x)`` is the integer-feasible bound (loads are integers), ``floor(t*x)`` is
"max/mean within the threshold".  So a load ``L <= cap(x)`` means
``L / x <= t`` or ``L <= ceil(x)``.

Minimal movement
----------------
A *move* is a placement in the new plan that was not in the old one (a (rack,
endpoint) connection; an item whose owner changed or was unset); see
:func:`moves`.  A plan from :func:`solve` minimises moves subject to the caps,
exactly: among all plans meeting the caps it has the fewest moves (the tests
check this against brute force and an independent one-unit-at-a-time min-cost
flow).  Consequences: a plan that already meets the caps is returned unchanged
(idempotence); a dead bin's units move and nothing else does unless the caps
shrink or a constraint forces a swap.  The flip side: a joining bin receives
only what the caps force; pass a lower threshold to spread more eagerly.

Among the plans with the fewest moves, new units go preferably to bins below
``floor(share)``, then below ``ceil(share)``, then up to the cap.  Ties are
broken by a stable hash of the ids (rendezvous-style), never by input order:
any process computing the plan from the same inputs gets the same answer.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Generic, TypeVar

from metalplane.ha.flow import MinCostFlow

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Hashable)  # a member: a rack, an item
B = TypeVar("B", bound=Hashable)  # a bin: a region, an owner


# ---------------------------------------------------------------------------
# thresholds, caps, canonical order


def threshold_of(threshold: float | Fraction) -> Fraction:
    """The threshold as an exact fraction (``1.2`` is 6/5), refused unless finite and ``>= 1``."""
    if isinstance(threshold, Fraction):
        t = threshold
    elif isinstance(threshold, int):
        t = Fraction(threshold)
    else:
        value = float(threshold)
        if not math.isfinite(value):
            raise ValueError(f"threshold must be finite, got {threshold!r}")
        t = Fraction(repr(value))  # 1.2 means 6/5, not the binary float
    if t < 1:
        raise ValueError(f"threshold must be >= 1, got {threshold!r}")
    return t


def bounded_cap(share: Fraction | int, threshold: float | Fraction = 1.25) -> int:
    """The integer cap for a fair share: ``max(ceil(share), floor(threshold * share))``."""
    share = Fraction(share)
    return max(math.ceil(share), math.floor(threshold_of(threshold) * share))


def stable_hash(text: str) -> int:
    """Stable 64-bit hash (same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def label(x: Hashable) -> str:
    """A stable text for hashing an id."""
    return x if isinstance(x, str) else f"{type(x).__name__}:{x!s}"


def order_key(x: Hashable) -> tuple[str, Any]:
    """Canonical sort key for ids that may be str, int, an ordered dataclass (such as
    a connection endpoint) or anything printable."""
    if isinstance(x, (str, int)) or getattr(getattr(type(x), "__dataclass_params__", None), "order", False):
        return (type(x).__name__, x)
    return (type(x).__name__, str(x))


def canonical(xs: Iterable[K]) -> list[K]:
    """The distinct ids in canonical order (never input order)."""
    return sorted(set(xs), key=order_key)


def as_set(v: Any) -> frozenset[Any]:
    """A placement as a set: a set of endpoints, one owner, or nothing."""
    if v is None:
        return frozenset()
    if isinstance(v, (set, frozenset, list, tuple)):
        return frozenset(v)
    return frozenset((v,))


def moves(old: Mapping[K, Any], new: Mapping[K, Any]) -> int:
    """Number of placements in ``new`` that were not in ``old``.

    Values may be sets of endpoints (connections: counts (rack, endpoint) pairs
    added) or single owners (ownership: counts items whose owner changed or was
    newly set).  Removals alone are not moves: they are the other end of a move,
    or a rack/endpoint that left.
    """
    return sum(len(as_set(v) - as_set(old.get(key))) for key, v in new.items())


# ---------------------------------------------------------------------------
# the solver


@dataclass(frozen=True)
class Bin:
    """A bin (region / owner) for the core solver."""

    floor: int  # floor(fair share): cheapest tier
    ceil: int  # ceil(fair share)
    cap: int  # hard cap (>= ceil)
    multi: bool  # a member already placed here may get a *new* unit here (several workers)


@dataclass
class Group(Generic[M, B]):
    """Interchangeable members: same slots, same keepable placements, same allowed bins."""

    members: list[M]  # canonical order
    slots: int
    keeps: Mapping[B, Sequence[Hashable]]  # bin -> placements the members hold in it now (canonical order)
    allowed: list[B]  # bins a new unit may go to (canonical order)


NEW = None  # placement marker for a unit that is not kept

Units = dict[M, list[tuple[B, Any]]]
"""member -> its units: (bin, the placement kept there, or NEW)."""


def solve(bins: Mapping[B, Bin], groups: list[Group[M, B]], capped: Mapping[Any, tuple[B, int]]) -> list[Units[M, B]]:
    """Assign every member ``slots`` units on distinct bins, at least cost.

    Cost, lexicographically: units above a bin's cap (never happens with
    feasible caps), then moves (units not kept), then bin tiers (0 up to
    ``floor``, 1 up to ``ceil``, 2 up to ``cap``).  ``capped`` maps placements
    whose keeping is limited (over-cap workers) to ``(bin, keep capacity)``;
    other placements keep freely (their bin cap still applies).

    Returns per group ``{member: [(bin, placement or NEW), ...]}``.
    """
    total = sum(g.slots * len(g.members) for g in groups)
    if total == 0:
        return [{m: [] for m in g.members} for g in groups]
    move = 2 * total + 1
    over = move * (total + 1)
    f = MinCostFlow()
    s, t = f.node(), f.node()
    bin_node: dict[B, int] = {}
    for b, spec in bins.items():
        v = bin_node[b] = f.node()
        f.edge(v, t, spec.floor, 0)
        f.edge(v, t, spec.ceil - spec.floor, 1)
        f.edge(v, t, spec.cap - spec.ceil, 2)
        f.edge(v, t, total, over)
    capped_node: dict[Hashable, int] = {}
    for p, (b, keep_cap) in capped.items():
        v = capped_node[p] = f.node()
        f.edge(v, bin_node[b], keep_cap, 0)
    plans = []
    for g in groups:
        n = len(g.members)
        gn = f.node()
        f.edge(s, gn, g.slots * n, 0)
        keep_edges: dict[tuple[B, Hashable], int] = {}
        new_edges: dict[B, int] = {}
        for b in g.keeps:
            x = f.node()
            f.edge(gn, x, n, 0)
            for p in g.keeps[b]:
                target = capped_node[p] if p in capped_node else bin_node[b]
                keep_edges[b, p] = f.edge(x, target, n, 0)
            if bins[b].multi and b in g.allowed:
                new_edges[b] = f.edge(x, bin_node[b], n, move)
        for b in g.allowed:
            if b not in g.keeps:
                new_edges[b] = f.edge(gn, bin_node[b], n, move)
        plans.append((keep_edges, new_edges))
    pushed = f.run(s, t, total)
    if pushed != total:  # pragma: no cover - every group has enough allowed bins
        raise ValueError("infeasible: some member has fewer allowed bins than slots")
    out = []
    order = {b: i for i, b in enumerate(bins)}
    for g, (keep_edges, new_edges) in zip(groups, plans):
        keep = {key: f.flow(e) for key, e in keep_edges.items()}
        new = {b: f.flow(e) for b, e in new_edges.items()}
        out.append(_disaggregate(g, keep, new, order))
    return out


def _disaggregate(
    g: Group[M, B], keep: Mapping[tuple[B, Hashable], int], new: Mapping[B, int], order: Mapping[B, int]
) -> Units[M, B]:
    """Turn a group's unit counts per bin into per-member placements.

    Bins are laid out in blocks (each at most ``len(members)`` long) and member
    ``i`` takes positions ``i, i + n, i + 2n, ...``, so no member gets a bin twice.
    Inside a bin the members that keep are chosen so moves are spread over
    members (those that already lost a placement keep first, so a rack rarely
    loses all its old connections at once), ties by a stable hash of (member, bin).
    """
    members = g.members
    n = len(members)
    per_bin: Counter[B] = Counter()
    for (b, _p), c in keep.items():
        per_bin[b] += c
    for b, c in new.items():
        per_bin[b] += c
    seq: list[B] = []
    for b in sorted(per_bin, key=order.__getitem__):
        seq += [b] * per_bin[b]
    assert len(seq) == g.slots * n
    result: Units[M, B] = {m: [] for m in members}
    holds: defaultdict[B, list[M]] = defaultdict(list)
    for i, m in enumerate(members):
        for j in range(g.slots):
            holds[seq[j * n + i]].append(m)
    fresh: Counter[M] = Counter()  # new units per member so far
    for b in sorted(holds, key=order.__getitem__):
        if b not in g.keeps:
            for m in holds[b]:
                result[m].append((b, NEW))
                fresh[m] += 1
    for b in sorted(g.keeps, key=order.__getitem__):
        holders = holds.get(b, [])
        kept = sum(keep.get((b, p), 0) for p in g.keeps[b])
        if kept < len(holders):
            hb = stable_hash(label(b))
            holders = sorted(holders, key=lambda m: (-fresh[m], stable_hash(label(m)) ^ hb, order_key(m)))
        i = 0
        for p in g.keeps[b]:
            for _ in range(keep.get((b, p), 0)):
                result[holders[i]].append((b, p))
                i += 1
        for m in holders[i:]:
            result[m].append((b, NEW))
            fresh[m] += 1
    return result


def tiers(share: Fraction, cap: int, multi: bool) -> Bin:
    """A bin whose cheapest tier ends at floor(share), the next at ceil(share), the last at `cap`."""
    return Bin(math.floor(share), math.ceil(share), cap, multi)


# ---------------------------------------------------------------------------
# loads (what the API shows, what tests and benchmarks assert)


@dataclass(frozen=True)
class LoadStats(Generic[K]):
    """Loads over a set of bins and their max/mean."""

    loads: Mapping[K, int]
    total: int
    count: int
    max: int
    min: int
    mean: float
    ratio: float  # max / mean; 1.0 when there is no load

    @classmethod
    def of(cls, loads: Mapping[K, int]) -> LoadStats[K]:
        values = list(loads.values())
        total = sum(values)
        count = len(values)
        mean = total / count if count else 0.0
        top = max(values, default=0)
        return cls(dict(loads), total, count, top, min(values, default=0), mean, top / mean if mean else 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total": self.total,
            "mean": round(self.mean, 4),
            "min": self.min,
            "max": self.max,
            "max_over_mean": round(self.ratio, 4),
        }
