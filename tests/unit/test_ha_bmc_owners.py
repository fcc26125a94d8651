"""Property and example tests for metalplane.ha.bmc_owners (pure, no database).

The owner planner claims exact minimality, so the tests check moves against
brute force and a plain one-unit-at-a-time min-cost flow over individual items
(tests/unit/ha_reference.py).
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections import Counter
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from metalplane.ha.bmc_owners import (
    choose_candidates,
    owner_caps,
    owner_min_moves_lower_bound,
    owner_shares,
    owner_spread,
    plan_owners,
    racks_on_subnet,
)
from metalplane.ha.solver import moves
from tests.unit.ha_reference import THRESHOLDS, cap, ref_min_cost

# ---------------------------------------------------------------------------
# independent reference and checks


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
    best = ref_min_cost(next(ids), edges, s, t, len(items))
    assert best is not None
    return best


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
        assert max(loads.values()) <= cap(mean, threshold)


# ---------------------------------------------------------------------------
# candidates


def test_bmc_candidates_prefer_the_subnet_then_proven_then_anyone():
    live = {1, 2, 3}
    out = choose_candidates([10, 11, 12], {10: {1, 9}}, {11: {2}}, live)
    assert out == {10: {1}, 11: {2}, 12: {1, 2, 3}}
    assert choose_candidates([10], {10: {9}}, {}, set()) == {}


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_candidates_are_live_and_from_the_first_pool_that_has_any(data):
    racks = list(range(6))
    bmcs = list(range(10, 10 + data.draw(st.integers(0, 8))))
    pools = st.sets(st.sampled_from(racks))
    on_subnet = {b: data.draw(pools) for b in bmcs if data.draw(st.booleans())}
    proven = {b: data.draw(pools) for b in bmcs if data.draw(st.booleans())}
    live = data.draw(pools)
    out = choose_candidates(bmcs, on_subnet, proven, live)
    assert set(out) == (set(bmcs) if live else set())
    for b, chosen in out.items():
        assert chosen and chosen <= live
        first = next(p for p in (on_subnet.get(b, set()), proven.get(b, set()), live) if p & live)
        assert chosen == first & live


def test_racks_on_subnet_follow_the_bmc_address_to_its_vlans():
    nets = [
        (1, ipaddress.ip_network("10.0.0.0/24")),
        (2, ipaddress.ip_network("10.0.0.0/16")),
        (3, ipaddress.ip_network("fd00::/64")),
    ]
    by_vlan = {1: {"r1"}, 2: {"r2", "r3"}, 3: {"r6"}}
    hosts = {"a": "10.0.0.5", "b": "10.0.9.9", "c": "192.0.2.1", "d": None, "e": "bmc.example", "f": "fd00::7"}
    assert racks_on_subnet(hosts, nets, by_vlan) == {"a": {"r1", "r2", "r3"}, "b": {"r2", "r3"}, "f": {"r6"}}
    assert racks_on_subnet({"a": "10.0.0.5"}, nets, {}) == {"a": set()}  # on a subnet with no rack


# ---------------------------------------------------------------------------
# shares


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
# plan_owners


def _owner_instance(data, max_items=14, max_owners=4, same=False):
    owners = [f"rack{j}" for j in range(data.draw(st.integers(1, max_owners)))]
    items = [f"bmc{j}" for j in range(data.draw(st.integers(0, max_items)))]
    if same:
        candidates = {i: set(owners) for i in items}
    else:
        candidates = {i: data.draw(st.sets(st.sampled_from(owners), max_size=len(owners))) for i in items}
    current = {i: data.draw(st.sampled_from(owners + ["ghost"])) for i in items if data.draw(st.booleans())}
    threshold = data.draw(st.sampled_from(THRESHOLDS))
    return items, owners, candidates, current, threshold


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_owners_exactly_minimal_vs_brute_force(data):
    items, _owners, candidates, current, threshold = _owner_instance(data, max_items=6, max_owners=3)
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
    items, _owners, candidates, current, threshold = _owner_instance(data, max_items=25, max_owners=5)
    plan = plan_owners(items, candidates, current, threshold)
    check_owner_plan(plan, items, candidates, threshold)
    m = moves(current, plan)
    assert m == _ref_owner_min_moves(items, candidates, current, threshold)
    assert m >= owner_min_moves_lower_bound(items, candidates, current, threshold)
    assert plan_owners(items, candidates, plan, threshold) == plan
    shuffled = list(items)
    random.Random(len(items)).shuffle(shuffled)
    cands2 = {i: sorted(candidates[i], reverse=True) for i in reversed(shuffled)}
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
    everywhere = dict.fromkeys(bmcs, racks)
    plan = plan_owners(bmcs, everywhere, {})
    assert owner_spread(plan).max == owner_spread(plan).min == 100

    # rack4 dies: its 100 BMCs move, nothing else does; 125 each
    alive = dict.fromkeys(bmcs, racks[:4])
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
