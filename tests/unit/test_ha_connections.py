"""Property and example tests for metalplane.ha.connections (pure, no database).

The planner claims exact minimality, so the tests check moves against
independent exact references: brute force on tiny instances, and a plain
one-unit-at-a-time min-cost flow over individual racks (tests/unit/ha_reference.py,
not the module's aggregated solver) on small ones.
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

from metalplane.ha.connections import (
    Endpoint,
    connection_caps,
    is_balanced,
    min_moves_lower_bound,
    plan_connections,
    rack_preference,
    spread,
)
from metalplane.ha.solver import moves
from tests.unit.ha_reference import THRESHOLDS, cap, ref_min_cost

# ---------------------------------------------------------------------------
# independent references


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
    best = ref_min_cost(next(ids), edges, s, t, len(racks) * caps.per_rack)
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
        assert sp.workers.max <= cap(mean, threshold), (sp.workers, mean)
        assert sp.workers.max <= math.ceil(mean) or sp.workers.max <= float(threshold) * float(mean) + 1e-9


# ---------------------------------------------------------------------------
# caps


@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=5),
    st.integers(0, 40),
    st.integers(0, 4),
    st.sampled_from(THRESHOLDS),
)
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
    for _g, rc in caps.regions.items():
        assert 0 <= rc.share <= n
        if ratios and rc.share == n:
            assert rc.worker_share <= max(ratios)
        assert rc.worker_cap == cap(rc.worker_share, threshold)
        assert math.ceil(rc.share) <= rc.cap <= min(n, cap(rc.share, threshold))
        assert rc.cap <= rc.workers * rc.worker_cap


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
    racks, endpoints, current, per_rack, threshold = _random_instance(data, max_racks=3, max_regions=3, max_workers=2)
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
    assert (
        plan_connections(set(racks), tuple(endpoints), {r: set(v) for r, v in current.items()}, per_rack, threshold)
        == plan
    )


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

    @initialize(
        per_rack=st.integers(1, 3),
        threshold=st.sampled_from(THRESHOLDS),
        workers=st.lists(st.integers(1, 3), min_size=1, max_size=3),
        racks=st.integers(0, 8),
    )
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
TestConnectionBalancing.settings = settings(
    max_examples=80, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------
# plan_connections: examples with concrete numbers


def own_choices(rack: str, endpoints: list[Endpoint]) -> frozenset[Endpoint]:
    """The first worker of each region in the rack's own order (rack_preference)."""
    firsts: dict[str, Endpoint] = {}
    for e in sorted(endpoints, key=lambda e: rack_preference(rack, e.region, e.worker)):
        firsts.setdefault(e.region, e)
    return frozenset(firsts.values())


def _fleet(regions: int, workers: int) -> list[Endpoint]:
    return [Endpoint(f"region-{g}", w) for g in range(regions) for w in range(workers)]


RACKS = [f"rack-{i:04d}" for i in range(1000)]


def test_thousand_racks_two_regions_four_workers():
    endpoints = _fleet(2, 4)
    plan = plan_connections(RACKS, endpoints, {})
    check_plan(plan, RACKS, endpoints, 2, 1.25)
    sp = spread(plan, endpoints)
    assert sp.max_over_mean <= 1.25
    assert 200 < sp.workers.min and sp.workers.max < 300  # around 250, within the cap 312
    assert sp.region_loads == {"region-0": 1000, "region-1": 1000}
    assert all(plan[r] == own_choices(r, endpoints) for r in RACKS)  # no cap binds: each rack's own

    # kill one worker: exactly its connections move, to its region's other workers
    dead = Endpoint("region-1", 2)
    alive = [e for e in endpoints if e != dead]
    after = plan_connections(RACKS, alive, plan)
    check_plan(after, RACKS, alive, 2, 1.25)
    assert moves(plan, after) == sp.endpoint_loads[dead]
    assert all(after[r] == plan[r] for r in RACKS if dead not in plan[r])
    # each of its racks on the worker it would pick itself among the live ones
    assert all(after[r] == own_choices(r, alive) for r in RACKS if dead in plan[r])

    # it returns: only the excess above the new cap (312 = floor(1.25 * 250)) moves to it
    back = plan_connections(RACKS, endpoints, after)
    loads = spread(after, alive).endpoint_loads
    bound = min_moves_lower_bound(RACKS, endpoints, after)
    assert bound == sum(max(0, loads[e] - 312) for e in alive) > 0
    assert moves(after, back) == bound
    check_plan(back, RACKS, endpoints, 2, 1.25)
    assert spread(back, endpoints).max_over_mean <= 1.25


def test_thousand_racks_three_regions_rebalance_after_region_loss_and_return():
    endpoints = _fleet(3, 4)
    plan = plan_connections(RACKS, endpoints, {})
    sp = spread(plan, endpoints)
    # 2000 connections over 3 regions of 4: 666.67 per region, 166.67 per worker
    assert sorted(sp.region_loads.values()) == [666, 667, 667]
    assert sp.workers.max <= connection_caps(RACKS, endpoints).regions["region-0"].worker_cap

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
    endpoints = (
        [Endpoint("big", w) for w in range(6)]
        + [Endpoint("small", w) for w in range(2)]
        + [Endpoint("mid", w) for w in range(4)]
    )
    plan = plan_connections(RACKS[:600], endpoints, {})
    check_plan(plan, RACKS[:600], endpoints, 2, 1.25)
    caps = connection_caps(600, endpoints)
    # 1200 connections; "big" would get 600 = its limit of one per rack; 100 per worker everywhere
    assert caps.regions["big"].share == 600 and caps.regions["small"].share == 200
    sp = spread(plan, endpoints)
    assert sp.region_loads == {"big": 600, "mid": 400, "small": 200}
    assert sp.workers.max <= 125 and sp.max_over_mean <= 1.25  # 100 per worker, within the cap


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
    plan = {
        "a": frozenset({Endpoint("region-0", 0), Endpoint("region-1", 0)}),
        "b": frozenset({Endpoint("region-0", 0), Endpoint("zombie", 3)}),
    }
    sp = spread(plan, endpoints)
    assert sp.endpoint_loads == {
        Endpoint("region-0", 0): 2,
        Endpoint("region-0", 1): 0,
        Endpoint("region-1", 0): 1,
        Endpoint("region-1", 1): 0,
    }
    assert sp.region_loads == {"region-0": 2, "region-1": 1}
    assert sp.unknown == 1
    assert sp.workers.max == 2 and sp.workers.mean == 0.75
    assert sp.max_over_mean == pytest.approx(2 / 0.75)
    assert sp.regions["region-0"].ratio == 2.0 and sp.regions["region-1"].ratio == 2.0
    json.dumps(sp.as_dict())
    assert spread({}, []).max_over_mean == 1.0


def test_same_answer_in_another_process():
    endpoints = _fleet(3, 2)
    racks = RACKS[:50]
    here = plan_connections(racks, endpoints, {})
    code = (
        "import json; from metalplane.ha.connections import Endpoint, plan_connections\n"
        "eps = [Endpoint(f'region-{g}', w) for g in range(3) for w in range(2)]\n"
        "p = plan_connections([f'rack-{i:04d}' for i in reversed(range(50))], eps[::-1], {})\n"
        "print(json.dumps({r: sorted(map(str, v)) for r, v in p.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    assert json.loads(out) == {r: sorted(map(str, v)) for r, v in here.items()}
