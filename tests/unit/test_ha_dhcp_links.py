"""The seeds' "rebalance when DHCP is toggled or a VLAN changes", as metalplane means it:
a rack that is DHCP primary or secondary keeps links to two regions when two live."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from metalplane.ha.connections import Endpoint, is_balanced, links_wanted, plan_connections
from metalplane.ha.solver import moves


def fleet(regions: int, workers: int) -> list[Endpoint]:
    return [Endpoint(f"r{g}", w) for g in range(regions) for w in range(workers)]


def test_links_wanted():
    assert links_wanted(1, 2, dhcp_duty=False) == 1
    assert links_wanted(1, 2, dhcp_duty=True) == 2
    assert links_wanted(1, 3, dhcp_duty=True) == 2
    assert links_wanted(1, 1, dhcp_duty=True) == 1  # one region: nothing more to have
    assert links_wanted(3, 3, dhcp_duty=True) == 3  # never fewer than per_rack
    assert links_wanted(2, 2, dhcp_duty=False) == 2
    assert links_wanted(1, 0, dhcp_duty=True) == 0


def test_a_dhcp_rack_gets_a_second_region_and_nothing_else_moves():
    racks = [f"rack{i}" for i in range(20)]
    endpoints = fleet(2, 2)
    before = plan_connections(racks, endpoints, {}, per_rack=1)
    assert all(len(es) == 1 for es in before.values())
    after = plan_connections(racks, endpoints, before, per_rack=1, on_duty={"rack3", "rack7"})
    for rack in ("rack3", "rack7"):
        assert len(after[rack]) == 2 and len({e.region for e in after[rack]}) == 2
        assert before[rack] <= after[rack]  # the old link stays: a second one is added
    assert {r: es for r, es in after.items() if r not in ("rack3", "rack7")} == {
        r: es for r, es in before.items() if r not in ("rack3", "rack7")
    }
    assert is_balanced(after, racks, endpoints, per_rack=1, on_duty={"rack3", "rack7"})
    assert not is_balanced(before, racks, endpoints, per_rack=1, on_duty={"rack3", "rack7"})
    # DHCP off again: the extra link goes, the rack keeps one of its two.
    back = plan_connections(racks, endpoints, after, per_rack=1)
    assert len(back["rack3"]) == 1 and back["rack3"] <= after["rack3"]
    assert is_balanced(back, racks, endpoints, per_rack=1)


def test_with_per_rack_two_the_rule_changes_nothing():
    racks = [f"rack{i}" for i in range(12)]
    endpoints = fleet(2, 3)
    plain = plan_connections(racks, endpoints, {}, per_rack=2)
    assert plan_connections(racks, endpoints, plain, per_rack=2, on_duty={"rack1", "rack2"}) == plain


def test_one_region_left_a_dhcp_rack_has_one_link():
    racks = ["a", "b", "c"]
    plan = plan_connections(racks, fleet(1, 2), {}, per_rack=1, on_duty={"a"})
    assert all(len(es) == 1 for es in plan.values())


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_every_dhcp_rack_is_on_distinct_regions_within_caps(n, regions, workers, seed):
    rng = random.Random(seed)
    racks = [f"rack{i}" for i in range(n)]
    duty = set(rng.sample(racks, rng.randint(0, n)))
    endpoints = fleet(regions, workers)
    current = plan_connections(racks, endpoints, {}, per_rack=1)
    plan = plan_connections(racks, endpoints, current, per_rack=1, on_duty=duty)
    assert is_balanced(plan, racks, endpoints, per_rack=1, on_duty=duty)
    for rack, es in plan.items():
        want = min(2 if rack in duty else 1, regions)
        assert len(es) == want == len({e.region for e in es})
    # Each duty rack adds at most one link, every other rack keeps its own unless the
    # caps force otherwise: with even small duty sets, few moves.
    assert moves(current, plan) >= sum(1 for r in duty if regions > 1)
    # Same answer again: nothing to do.
    assert plan_connections(racks, endpoints, plan, per_rack=1, on_duty=duty) == plan
