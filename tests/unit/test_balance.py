"""Property and example tests for metalplane.ha.balance (pure, no database).

The planners claim exact minimality, so the tests check moves against
independent exact references: brute force on tiny instances, and a plain
one-unit-at-a-time min-cost flow over individual racks/items (written here, not
the module's aggregated solver) on small ones.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from metalplane.ha import balance
from metalplane.ha.balance import (
    Endpoint,
    connection_caps,
    is_balanced,
    min_moves_lower_bound,
    moves,
    owner_caps,
    owner_min_moves_lower_bound,
    owner_shares,
    owner_spread,
    plan_connections,
    plan_owners,
    spread,
)

THRESHOLDS = [1.0, 1.1, 1.25, 1.5, 2.0]


# ---------------------------------------------------------------------------
# independent references


def _ref_min_cost(n_nodes: int, edges: list[tuple[int, int, int, int]], s: int, t: int, need: int) -> int | None:
    """Successive shortest paths, one unit at a time, Bellman-Ford (SPFA). None if infeasible."""
    to, cap, cost, adj = [], [], [], [[] for _ in range(n_nodes)]
    for u, v, c, w in edges:
        adj[u].append(len(to))
        to.append(v), cap.append(c), cost.append(w)
        adj[v].append(len(to))
        to.append(u), cap.append(0), cost.append(-w)
    total = 0
    for _ in range(need):
        dist = [math.inf] * n_nodes
        back = [-1] * n_nodes
        dist[s] = 0
        queue, inq = [s], [False] * n_nodes
        while queue:
            u = queue.pop(0)
            inq[u] = False
            for e in adj[u]:
                if cap[e] > 0 and dist[u] + cost[e] < dist[to[e]]:
                    dist[to[e]] = dist[u] + cost[e]
                    back[to[e]] = e
                    if not inq[to[e]]:
                        inq[to[e]] = True
                        queue.append(to[e])
        if dist[t] == math.inf:
            return None
        v = t
        while v != s:
            e = back[v]
            cap[e] -= 1
            cap[e ^ 1] += 1
            v = to[e ^ 1]
        total += dist[t]
    return total


def _ref_connection_min_moves(racks, endpoints, current, per_rack, threshold) -> int:
    """Fewest moves of any plan meeting the caps: rack-level min-cost flow."""
    caps = connection_caps(racks, endpoints, per_rack, threshold)
    racks, endpoints = sorted(set(racks)), sorted(set(endpoints))
    regions = sorted({e.region for e in endpoints})
    ids = itertools.count()
    s, t = next(ids), next(ids)
    rnode = {r: next(ids) for r in racks}
    rgnode = {(r, g): next(ids) for r in racks for g in regions}
    enode = {e: next(ids) for e in endpoints}
    gnode = {g: next(ids) for g in regions}
    edges = []
    for r in racks:
        edges.append((s, rnode[r], caps.per_rack, 0))
        for g in regions:
            edges.append((rnode[r], rgnode[r, g], 1, 0))
            for e in endpoints:
                if e.region == g:
                    kept = e in set(current.get(r, ()))
                    edges.append((rgnode[r, g], enode[e], 1, 0 if kept else 1))
    for e in endpoints:
        edges.append((enode[e], gnode[e.region], caps.worker_cap(e), 0))
    for g in regions:
        edges.append((gnode[g], t, caps.region_cap(g), 0))
    best = _ref_min_cost(next(ids), edges, s, t, len(racks) * caps.per_rack)
    assert best is not None, "caps must always be feasible"
    return best


def _brute_connection_min_moves(racks, endpoints, current, per_rack, threshold) -> int:
    racks, endpoints = sorted(set(racks)), sorted(set(endpoints))
    k = connection_caps(racks, endpoints, per_rack, threshold).per_rack
    options = [frozenset(c) for c in itertools.combinations(endpoints, k) if len({e.region for e in c}) == k]
    best = None
    for choice in itertools.product(options, repeat=len(racks)):
        plan = dict(zip(racks, choice))
        if is_balanced(plan, racks, endpoints, per_rack, threshold):
            m = moves(current, plan)
            best = m if best is None else min(best, m)
    assert best is not None
    return best


def _ref_owner_min_moves(items, candidates, current, threshold) -> int:
    caps = owner_caps(items, candidates, threshold)
    items = [i for i in sorted(set(items)) if candidates.get(i)]
    owners = sorted(caps)
    ids = itertools.count()
    s, t = next(ids), next(ids)
    inode = {i: next(ids) for i in items}
    onode = {o: next(ids) for o in owners}
    edges = []
    for i in items:
        edges.append((s, inode[i], 1, 0))
        for o in set(candidates[i]):
            edges.append((inode[i], onode[o], 1, 0 if current.get(i) == o else 1))
    for o in owners:
        edges.append((onode[o], t, caps[o], 0))
    best = _ref_min_cost(next(ids), edges, s, t, len(items))
    assert best is not None
    return best


def _cap(share: Fraction, threshold: float) -> int:
    return max(math.ceil(share), math.floor(Fraction(str(threshold)) * share))


# ---------------------------------------------------------------------------
# checks


def check_plan(plan, racks, endpoints, per_rack, threshold):
    racks, endpoints = set(racks), set(endpoints)
    regions = {e.region for e in endpoints}
    k = min(per_rack, len(regions))
    assert set(plan) == racks
    for r, eps in plan.items():
        assert len(eps) == k, (r, eps)
        assert len({e.region for e in eps}) == k, (r, eps)  # distinct regions
        assert eps <= endpoints, (r, eps)  # live endpoints only
    assert is_balanced(plan, racks, endpoints, per_rack, threshold)
    caps = connection_caps(racks, endpoints, per_rack, threshold)
    sp = spread(plan, endpoints)
    for e, load in sp.endpoint_loads.items():
        assert load <= caps.worker_cap(e), (e, load, caps.regions[e.region])
    for g, load in sp.region_loads.items():
        assert load <= caps.region_cap(g), (g, load, caps.regions[g])
        assert load <= len(racks)
    # equal worker counts: the overall per-worker max/mean is within the
    # threshold or at most ceil(mean), computed here from scratch
    workers = Counter(e.region for e in endpoints)
    if racks and k and len(set(workers.values())) == 1:
        mean = Fraction(len(racks) * k, len(endpoints))
        assert sp.workers.max <= _cap(mean, threshold), (sp.workers, mean)
        assert sp.workers.max <= math.ceil(mean) or sp.workers.max <= float(threshold) * float(mean) + 1e-9


def check_owner_plan(plan, items, candidates, threshold):
    with_cands = {i for i in set(items) if candidates.get(i)}
    assert set(plan) == with_cands
    for i, o in plan.items():
        assert o in set(candidates[i])
    caps = owner_caps(items, candidates, threshold)
    loads = Counter(plan.values())
    for o, n in loads.items():
        assert n <= caps[o], (o, n, caps[o])
    cand_sets = {frozenset(candidates[i]) for i in with_cands}
    if len(cand_sets) == 1:
        (owners,) = cand_sets
        mean = Fraction(len(with_cands), len(owners))
        assert max(loads.values()) <= _cap(mean, threshold)


# ---------------------------------------------------------------------------
# caps and shares


def test_cap_definition():
    assert balance.bounded_cap(Fraction(250), 1.25) == 312
    assert balance.bounded_cap(Fraction(1000, 3), 1.25) == 416
    assert balance.bounded_cap(Fraction(1, 2), 1.25) == 1  # integer feasibility wins
    assert balance.bounded_cap(Fraction(5), 1.2) == 6  # 1.2 is read as 6/5, not the binary float
    assert balance.bounded_cap(Fraction(5), 1.0) == 5
    with pytest.raises(ValueError):
        balance.bounded_cap(Fraction(5), 0.9)


@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(0, 40), st.integers(0, 4),
       st.sampled_from(THRESHOLDS))
@settings(deadline=None)
def test_connection_caps_water_fill(workers, n, per_rack, threshold):
    endpoints = [Endpoint(f"g{g}", w) for g, count in enumerate(workers) for w in range(count)]
    caps = connection_caps(n, endpoints, per_rack, threshold)
    k = min(per_rack, len(workers))
    assert caps.per_rack == k
    shares = {g: rc.share for g, rc in caps.regions.items()}
    assert sum(shares.values()) == n * k
    unsaturated = [g for g, s in shares.items() if s < n]
    # unsaturated regions share in proportion to their worker counts, and get
    # no more per worker than saturated ones would
    ratios = {shares[g] / caps.regions[g].workers for g in unsaturated}
    assert len(ratios) <= 1
    for g, rc in caps.regions.items():
        assert 0 <= rc.share <= n
        if ratios and rc.share == n:
            assert rc.worker_share <= max(ratios)
        assert rc.worker_cap == _cap(rc.worker_share, threshold)
        assert math.ceil(rc.share) <= rc.cap <= min(n, _cap(rc.share, threshold))
        assert rc.cap <= rc.workers * rc.worker_cap


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_owner_shares_are_max_min_fair(data):
    owners = [f"o{j}" for j in range(data.draw(st.integers(1, 5)))]
    items = [f"i{j}" for j in range(data.draw(st.integers(0, 25)))]
    candidates = {i: data.draw(st.sets(st.sampled_from(owners), max_size=len(owners))) for i in items}
    shares = owner_shares(items, candidates)
    with_cands = [i for i in items if candidates[i]]
    assert sum(shares.values()) == len(with_cands)
    present = {o for i in with_cands for o in candidates[i]}
    assert set(shares) == present

    def confined(xs):
        return sum(1 for i in with_cands if set(candidates[i]) <= xs)

    subsets = [set(c) for n in range(1, len(present) + 1) for c in itertools.combinations(sorted(present), n)]
    for xs in subsets:
        # Hall: the items confined to xs fit in xs's shares (so shares are feasible) ...
        assert confined(xs) <= sum(shares[o] for o in xs)
    if present:
        # ... and the largest share is the least possible maximum load
        assert max(shares.values()) == max(Fraction(confined(xs), len(xs)) for xs in subsets)


# ---------------------------------------------------------------------------
# plan_connections: exactness against independent references


def _random_instance(data, max_racks=8, max_regions=3, max_workers=3):
    regions = data.draw(st.integers(1, max_regions))
    endpoints = [Endpoint(f"g{g}", w) for g in range(regions) for w in range(data.draw(st.integers(1, max_workers)))]
    racks = [f"r{j}" for j in range(data.draw(st.integers(0, max_racks)))]
    ghosts = [Endpoint("dead", 0), Endpoint("g0", 99)]
    pool = endpoints + ghosts
    current = {r: frozenset(data.draw(st.lists(st.sampled_from(pool), max_size=4))) for r in racks + ["gone"]}
    per_rack = data.draw(st.integers(1, 3))
    threshold = data.draw(st.sampled_from(THRESHOLDS))
    return racks, endpoints, current, per_rack, threshold


@given(st.data())
@settings(max_examples=120, deadline=None)
def test_plan_is_exactly_minimal_vs_brute_force(data):
    racks, endpoints, current, per_rack, threshold = _random_instance(data, max_racks=3, max_regions=3,
                                                                      max_workers=2)
    plan = plan_connections(racks, endpoints, current, per_rack, threshold)
    check_plan(plan, racks, endpoints, per_rack, threshold)
    m = moves(current, plan)
    assert m == _brute_connection_min_moves(racks, endpoints, current, per_rack, threshold)
    assert m >= min_moves_lower_bound(racks, endpoints, current, per_rack, threshold)


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_plan_is_exactly_minimal_from_any_current(data):
    racks, endpoints, current, per_rack, threshold = _random_instance(data)
    plan = plan_connections(racks, endpoints, current, per_rack, threshold)
    check_plan(plan, racks, endpoints, per_rack, threshold)
    m = moves(current, plan)
    assert m == _ref_connection_min_moves(racks, endpoints, current, per_rack, threshold)
    bound = min_moves_lower_bound(racks, endpoints, current, per_rack, threshold)
    assert m >= bound
    live, regions = set(endpoints), {e.region for e in endpoints}
    k = min(per_rack, len(regions))
    tidy = all(len({e.region for e in current[r] & live}) == len(current[r] & live) <= k for r in racks)
    if tidy and k in (1, len(regions)):
        assert m == bound  # the closed form is exact when there is no choice of regions
    # idempotent
    assert plan_connections(racks, endpoints, plan, per_rack, threshold) == plan


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_plan_is_deterministic_whatever_the_input_order(data):
    racks, endpoints, current, per_rack, threshold = _random_instance(data, max_racks=12)
    plan = plan_connections(racks, endpoints, current, per_rack, threshold)
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    racks2, endpoints2, items = list(racks) * 2, list(endpoints) * 2, list(current.items())
    rnd.shuffle(racks2), rnd.shuffle(endpoints2), rnd.shuffle(items)
    current2 = {r: frozenset(rnd.sample(sorted(v), len(v))) for r, v in items}
    assert plan_connections(iter(racks2), iter(endpoints2), current2, per_rack, threshold) == plan
    assert plan_connections(set(racks), tuple(endpoints), {r: set(v) for r, v in current.items()},
                            per_rack, threshold) == plan


# ---------------------------------------------------------------------------
# plan_connections: sequences of joins and leaves


class ConnectionBalancing(RuleBasedStateMachine):
    """Apply random joins/leaves, re-plan each step from the previous plan."""

    def __init__(self):
        super().__init__()
        self.racks: set[str] = set()
        self.endpoints: set[Endpoint] = set()
        self.plan: dict[str, frozenset[Endpoint]] = {}
        self.serial = itertools.count()
        self.k = 0

    @initialize(per_rack=st.integers(1, 3), threshold=st.sampled_from(THRESHOLDS),
                workers=st.lists(st.integers(1, 3), min_size=1, max_size=3), racks=st.integers(0, 8))
    def setup(self, per_rack, threshold, workers, racks):
        self.per_rack, self.threshold = per_rack, threshold
        for count in workers:
            self._add_region(count)
        self.racks = {f"r{next(self.serial)}" for _ in range(racks)}
        self.step("init")

    def _add_region(self, workers):
        region = f"g{next(self.serial)}"
        self.endpoints |= {Endpoint(region, w) for w in range(workers)}
        return region

    def regions(self):
        return sorted({e.region for e in self.endpoints})

    def step(self, event, subject=None):
        old = self.plan
        k_old = self.k
        args = (self.racks, self.endpoints, old, self.per_rack, self.threshold)
        new = plan_connections(*args)
        check_plan(new, self.racks, self.endpoints, self.per_rack, self.threshold)
        m = moves(old, new)
        bound = min_moves_lower_bound(*args)
        assert m == _ref_connection_min_moves(*args), event  # exactly minimal
        assert m >= bound
        k = min(self.per_rack, len(self.regions()))
        if k in (1, len(self.regions())):
            # no choice of regions to make (one each, or all of them): the
            # closed-form bound is exact -- only excess above the caps moves
            assert m == bound, (event, m, bound)
        if event == "endpoint-leave":
            held = sum(subject in eps for eps in old.values())
            if k == k_old:  # (not the last worker of a region when regions < per_rack)
                assert m >= held  # its connections must go somewhere
                if k == len(self.regions()):  # every rack on every region: caps cannot shrink
                    assert m == held, (m, held)
        elif event == "rack-join":
            assert m >= k
            if m == k:  # only the newcomer's connections
                assert all(new[r] == old[r] for r in old)
        elif event == "rack-leave":
            if m == 0:
                assert all(new[r] == old[r] for r in new)
        elif event == "init":
            assert m == len(self.racks) * k
        self.plan, self.k = new, k

    @rule()
    def rack_join(self):
        self.racks.add(f"r{next(self.serial)}")
        self.step("rack-join")

    @precondition(lambda self: self.racks)
    @rule(data=st.data())
    def rack_leave(self, data):
        self.racks.discard(data.draw(st.sampled_from(sorted(self.racks))))
        self.step("rack-leave")

    @rule(data=st.data())
    def endpoint_join(self, data):
        region = data.draw(st.sampled_from(self.regions()))
        worker = max(e.worker for e in self.endpoints if e.region == region) + 1
        endpoint = Endpoint(region, worker)
        self.endpoints.add(endpoint)
        self.step("endpoint-join", endpoint)

    @precondition(lambda self: len(self.endpoints) > 1)
    @rule(data=st.data())
    def endpoint_leave(self, data):
        endpoint = data.draw(st.sampled_from(sorted(self.endpoints)))
        self.endpoints.discard(endpoint)
        self.step("endpoint-leave", endpoint)

    @precondition(lambda self: len(self.regions()) < 4)
    @rule(workers=st.integers(1, 3))
    def region_join(self, workers):
        self._add_region(workers)
        self.step("region-join")

    @precondition(lambda self: len(self.regions()) > 1)
    @rule(data=st.data())
    def region_leave(self, data):
        region = data.draw(st.sampled_from(self.regions()))
        self.endpoints = {e for e in self.endpoints if e.region != region}
        self.step("region-leave")

    @invariant()
    def idempotent(self):
        if self.plan or self.racks:
            again = plan_connections(self.racks, self.endpoints, self.plan, self.per_rack, self.threshold)
            assert again == self.plan


TestConnectionBalancing = ConnectionBalancing.TestCase
TestConnectionBalancing.settings = settings(max_examples=80, stateful_step_count=25, deadline=None,
                                            suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------
# plan_connections: examples with concrete numbers


def _fleet(regions: int, workers: int) -> list[Endpoint]:
    return [Endpoint(f"region-{g}", w) for g in range(regions) for w in range(workers)]


RACKS = [f"rack-{i:04d}" for i in range(1000)]


def test_thousand_racks_two_regions_four_workers():
    endpoints = _fleet(2, 4)
    plan = plan_connections(RACKS, endpoints, {})
    check_plan(plan, RACKS, endpoints, 2, 1.25)
    sp = spread(plan, endpoints)
    assert sp.max_over_mean <= 1.25
    assert sp.workers.max == sp.workers.min == 250  # 1000 racks x 2 / 8 workers, perfectly even
    assert sp.region_loads == {"region-0": 1000, "region-1": 1000}

    # kill one worker: exactly its connections move, to its region's other workers
    dead = Endpoint("region-1", 2)
    alive = [e for e in endpoints if e != dead]
    after = plan_connections(RACKS, alive, plan)
    check_plan(after, RACKS, alive, 2, 1.25)
    assert moves(plan, after) == sp.endpoint_loads[dead] == 250
    assert all(after[r] == plan[r] for r in RACKS if dead not in plan[r])
    loads = spread(after, alive).endpoint_loads
    assert sorted(loads[e] for e in alive if e.region == "region-1") == [333, 333, 334]

    # it returns: only the excess above the new cap (312 = floor(1.25 * 250)) moves to it
    back = plan_connections(RACKS, endpoints, after)
    bound = min_moves_lower_bound(RACKS, endpoints, after)
    assert bound == (334 - 312) + (333 - 312) * 2 == 64
    assert moves(after, back) == bound
    check_plan(back, RACKS, endpoints, 2, 1.25)
    assert spread(back, endpoints).max_over_mean <= 1.25


def test_thousand_racks_three_regions_rebalance_after_region_loss_and_return():
    endpoints = _fleet(3, 4)
    plan = plan_connections(RACKS, endpoints, {})
    sp = spread(plan, endpoints)
    # 2000 connections over 3 regions of 4: 666.67 per region, 166.67 per worker
    assert sorted(sp.region_loads.values()) == [666, 667, 667]
    assert sp.workers.max == 167 and sp.workers.min == 166

    # region-2 dies: every rack that used it must move exactly that connection
    alive = [e for e in endpoints if e.region != "region-2"]
    after = plan_connections(RACKS, alive, plan)
    check_plan(after, RACKS, alive, 2, 1.25)
    assert moves(plan, after) == sp.region_loads["region-2"]
    assert spread(after, alive).region_loads == {"region-0": 1000, "region-1": 1000}

    # it comes back: a region may hold min(floor(1.25 * 666.67), 4 * floor(1.25 * 166.67))
    # = min(833, 4 * 208) = 832, so 168 leave each of the others, and nothing else moves
    caps = connection_caps(RACKS, endpoints)
    assert caps.regions["region-0"].cap == 832 and caps.regions["region-0"].worker_cap == 208
    back = plan_connections(RACKS, endpoints, after)
    assert moves(after, back) == min_moves_lower_bound(RACKS, endpoints, after) == 2 * (1000 - 832)
    check_plan(back, RACKS, endpoints, 2, 1.25)
    assert spread(back, endpoints).region_loads == {"region-0": 832, "region-1": 832, "region-2": 336}
    assert spread(back, endpoints).max_over_mean <= 1.25


def test_rack_join_and_leave_touch_only_that_rack():
    endpoints = _fleet(2, 4)
    plan = plan_connections(RACKS, endpoints, {})
    more = plan_connections(RACKS + ["rack-new"], endpoints, plan)
    assert moves(plan, more) == 2
    assert all(more[r] == plan[r] for r in RACKS)
    fewer = plan_connections(RACKS[1:], endpoints, plan)
    assert moves(plan, fewer) == 0
    assert fewer == {r: plan[r] for r in RACKS[1:]}


def test_unequal_regions_share_by_worker_count():
    endpoints = [Endpoint("big", w) for w in range(6)] + [Endpoint("small", w) for w in range(2)] + \
        [Endpoint("mid", w) for w in range(4)]
    plan = plan_connections(RACKS[:600], endpoints, {})
    check_plan(plan, RACKS[:600], endpoints, 2, 1.25)
    caps = connection_caps(600, endpoints)
    # 1200 connections; "big" would get 600 = its limit of one per rack; 100 per worker everywhere
    assert caps.regions["big"].share == 600 and caps.regions["small"].share == 200
    sp = spread(plan, endpoints)
    assert sp.region_loads == {"big": 600, "mid": 400, "small": 200}
    assert sp.workers.max == sp.workers.min == 100


def test_saturated_region_water_fill():
    # one region with 8 workers, one with 1, k = 2: both must hold every rack
    endpoints = [Endpoint("a", w) for w in range(8)] + [Endpoint("b", 0)]
    plan = plan_connections(RACKS[:100], endpoints, {})
    check_plan(plan, RACKS[:100], endpoints, 2, 1.25)
    assert spread(plan, endpoints).region_loads == {"a": 100, "b": 100}
    assert connection_caps(100, endpoints).regions["a"].worker_cap == math.floor(1.25 * 12.5)


def test_degenerate_inputs():
    assert plan_connections([], _fleet(2, 2), {}) == {}
    assert plan_connections(["r"], [], {"r": frozenset({Endpoint("x", 0)})}) == {"r": frozenset()}
    assert plan_connections(["r"], _fleet(2, 2), {}, per_rack=0) == {"r": frozenset()}
    one = plan_connections(["r1", "r2"], _fleet(1, 3), {}, per_rack=3)
    assert all(len(v) == 1 for v in one.values())  # k = min(per_rack, regions)
    with pytest.raises(ValueError):
        plan_connections(["r"], _fleet(1, 1), {}, threshold=0.5)


def test_current_is_cleaned_of_stale_entries():
    endpoints = _fleet(2, 2)
    current = {
        "r1": frozenset({Endpoint("region-0", 0), Endpoint("region-0", 1)}),  # same region twice
        "r2": frozenset({Endpoint("gone", 0), Endpoint("region-1", 1)}),  # dead endpoint
        "r3": frozenset({Endpoint("region-0", 1), Endpoint("region-1", 0), Endpoint("region-1", 1)}),
        "departed": frozenset({Endpoint("region-0", 0)}),
    }
    plan = plan_connections(["r1", "r2", "r3"], endpoints, current, per_rack=2)
    check_plan(plan, ["r1", "r2", "r3"], endpoints, 2, 1.25)
    assert "departed" not in plan
    assert Endpoint("region-1", 1) in plan["r2"]
    assert moves(current, plan) == _ref_connection_min_moves(["r1", "r2", "r3"], endpoints, current, 2, 1.25)


def test_spread_report():
    endpoints = _fleet(2, 2)
    plan = {"a": frozenset({Endpoint("region-0", 0), Endpoint("region-1", 0)}),
            "b": frozenset({Endpoint("region-0", 0), Endpoint("zombie", 3)})}
    sp = spread(plan, endpoints)
    assert sp.endpoint_loads == {Endpoint("region-0", 0): 2, Endpoint("region-0", 1): 0,
                                 Endpoint("region-1", 0): 1, Endpoint("region-1", 1): 0}
    assert sp.region_loads == {"region-0": 2, "region-1": 1}
    assert sp.unknown == 1
    assert sp.workers.max == 2 and sp.workers.mean == 0.75
    assert sp.max_over_mean == pytest.approx(2 / 0.75)
    assert sp.regions["region-0"].ratio == 2.0 and sp.regions["region-1"].ratio == 2.0
    json.dumps(sp.as_dict())
    assert spread({}, []).max_over_mean == 1.0


def test_moves_counts_added_pairs_only():
    a, b, c = Endpoint("x", 0), Endpoint("y", 0), Endpoint("z", 0)
    assert moves({"r": frozenset({a, b})}, {"r": frozenset({a, c})}) == 1
    assert moves({"r": frozenset({a, b})}, {}) == 0
    assert moves({}, {"r": frozenset({a, b})}) == 2
    assert moves({"i": "o1"}, {"i": "o2", "j": "o1"}) == 2
    assert moves({"i": "o1"}, {"i": "o1"}) == 0


def test_same_answer_in_another_process():
    endpoints = _fleet(3, 2)
    racks = RACKS[:50]
    here = plan_connections(racks, endpoints, {})
    code = (
        "import json; from metalplane.ha.balance import Endpoint, plan_connections\n"
        "eps = [Endpoint(f'region-{g}', w) for g in range(3) for w in range(2)]\n"
        "p = plan_connections([f'rack-{i:04d}' for i in reversed(range(50))], eps[::-1], {})\n"
        "print(json.dumps({r: sorted(map(str, v)) for r, v in p.items()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert json.loads(out) == {r: sorted(map(str, v)) for r, v in here.items()}


# ---------------------------------------------------------------------------
# plan_owners


def _owner_instance(data, max_items=14, max_owners=4, same=False):
    owners = [f"rack{j}" for j in range(data.draw(st.integers(1, max_owners)))]
    items = [f"bmc{j}" for j in range(data.draw(st.integers(0, max_items)))]
    if same:
        candidates = {i: set(owners) for i in items}
    else:
        candidates = {i: data.draw(st.sets(st.sampled_from(owners), max_size=len(owners))) for i in items}
    current = {i: data.draw(st.sampled_from(owners + ["ghost"])) for i in items
               if data.draw(st.booleans())}
    threshold = data.draw(st.sampled_from(THRESHOLDS))
    return items, owners, candidates, current, threshold


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_owners_exactly_minimal_vs_brute_force(data):
    items, owners, candidates, current, threshold = _owner_instance(data, max_items=6, max_owners=3)
    plan = plan_owners(items, candidates, current, threshold)
    check_owner_plan(plan, items, candidates, threshold)
    caps = owner_caps(items, candidates, threshold)
    placed = [i for i in items if candidates[i]]
    best = None
    for choice in itertools.product(*(sorted(candidates[i]) for i in placed)):
        loads = Counter(choice)
        if all(loads[o] <= caps[o] for o in loads):
            m = moves(current, dict(zip(placed, choice)))
            best = m if best is None else min(best, m)
    assert moves(current, plan) == (best or 0)


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_owners_minimal_idempotent_deterministic(data):
    items, owners, candidates, current, threshold = _owner_instance(data, max_items=25, max_owners=5)
    plan = plan_owners(items, candidates, current, threshold)
    check_owner_plan(plan, items, candidates, threshold)
    m = moves(current, plan)
    assert m == _ref_owner_min_moves(items, candidates, current, threshold)
    assert m >= owner_min_moves_lower_bound(items, candidates, current, threshold)
    assert plan_owners(items, candidates, plan, threshold) == plan
    shuffled = list(items)
    random.Random(len(items)).shuffle(shuffled)
    cands2 = {i: list(reversed(sorted(candidates[i]))) for i in reversed(shuffled)}
    assert plan_owners(shuffled, cands2, dict(reversed(list(current.items()))), threshold) == plan


@given(st.data())
@settings(max_examples=120, deadline=None)
def test_owner_death_moves_only_its_items_and_return_moves_fewest(data):
    same = data.draw(st.booleans())
    items, owners, candidates, current, threshold = _owner_instance(data, max_items=24, max_owners=5, same=same)
    plan = plan_owners(items, candidates, current, threshold)
    dead = data.draw(st.sampled_from(owners))
    without = {i: set(c) - {dead} for i, c in candidates.items()}
    after = plan_owners(items, without, plan, threshold)
    check_owner_plan(after, items, without, threshold)
    orphans = sum(1 for i, o in plan.items() if o == dead and without[i])
    m = moves(plan, after)
    assert m == _ref_owner_min_moves(items, without, plan, threshold)
    assert m >= orphans
    if same:
        # only the dead owner's items move: the others' shares only grow
        assert m == orphans
        assert all(after[i] == o for i, o in plan.items() if o != dead)

    back = plan_owners(items, candidates, after, threshold)
    check_owner_plan(back, items, candidates, threshold)
    m = moves(after, back)
    assert m == _ref_owner_min_moves(items, candidates, after, threshold)
    assert m >= owner_min_moves_lower_bound(items, candidates, after, threshold)
    if same:  # everyone can reach everything: the closed-form bound is exact
        assert m == owner_min_moves_lower_bound(items, candidates, after, threshold)


def test_owner_death_can_force_other_moves_through_reachability():
    # bmc0 reaches rack0/rack1, bmc1 reaches all three; with threshold 1.0 each
    # rack may own one BMC.  When rack0 dies bmc0 can only go to rack1, so
    # bmc1 has to make room: two moves, the fewest possible.
    cands = {"bmc0": {"rack0", "rack1"}, "bmc1": {"rack0", "rack1", "rack2"}}
    plan = {"bmc0": "rack0", "bmc1": "rack1"}
    assert plan_owners(cands, cands, plan, 1.0) == plan
    without = {i: c - {"rack0"} for i, c in cands.items()}
    after = plan_owners(cands, without, plan, 1.0)
    assert after == {"bmc0": "rack1", "bmc1": "rack2"}
    assert moves(plan, after) == 2 == _ref_owner_min_moves(cands, without, plan, 1.0)


def test_owners_examples():
    racks = [f"rack{j}" for j in range(5)]
    bmcs = [f"bmc{i:03d}" for i in range(500)]
    everywhere = {b: racks for b in bmcs}
    plan = plan_owners(bmcs, everywhere, {})
    assert owner_spread(plan).max == owner_spread(plan).min == 100

    # rack4 dies: its 100 BMCs move, nothing else does; 125 each
    alive = {b: racks[:4] for b in bmcs}
    after = plan_owners(bmcs, alive, plan)
    assert moves(plan, after) == 100
    assert sorted(Counter(after.values()).values()) == [125] * 4

    # it returns: 125 == floor(1.25 * 100) is within cap, so nothing needs to move ...
    assert plan_owners(bmcs, everywhere, after) == after
    # ... but with a tighter threshold the excess moves, and only that
    tight = plan_owners(bmcs, everywhere, after, threshold=1.1)
    assert moves(after, tight) == 4 * (125 - 110) == owner_min_moves_lower_bound(bmcs, everywhere, after, 1.1)
    assert owner_spread(tight, racks).max == 110


def test_owners_respect_reachability_and_fair_shares():
    # 60 BMCs only rack-a reaches, 90 that racks a, b, c reach
    cands = {f"x{i}": {"rack-a"} for i in range(60)} | {f"y{i}": {"rack-a", "rack-b", "rack-c"} for i in range(90)}
    shares = owner_shares(cands, cands)
    assert shares == {"rack-a": 60, "rack-b": 45, "rack-c": 45}
    plan = plan_owners(cands, cands, {})
    check_owner_plan(plan, cands, cands, 1.25)
    assert Counter(plan.values()) == {"rack-a": 60, "rack-b": 45, "rack-c": 45}
    # an item nobody reaches gets no owner
    assert "lost" not in plan_owners(["lost"], {"lost": set()}, {})
