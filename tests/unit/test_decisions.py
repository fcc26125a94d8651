"""Pure decisions spread over the code: each small, each able to fail."""

from __future__ import annotations

import json
from ipaddress import ip_network

import pytest

from metalplane.client.http import split_key
from metalplane.ha.connections import Endpoint as HaEndpoint
from metalplane.ha.connections import plan_connections
from metalplane.ha.rack_health import rackd_status, with_rack_report
from metalplane.rack.interfaces import parse_ip_addr
from metalplane.rack.power.service import failover_plan
from metalplane.rack.region_links import choose, plan_links
from metalplane.region.services.bmcs import bmc_host
from metalplane.region.services.leases import lease_row, subnet_for
from metalplane.rpc import auth, versions
from metalplane.rpc.endpoint import Endpoint


def test_rackd_status():
    assert rackd_status(2, 2, 2) == ("running", "")
    assert rackd_status(1, 1, 2) == ("running", "")
    assert rackd_status(1, 2, 2)[0] == "degraded" and "1 of 2" in rackd_status(1, 2, 2)[1]
    assert rackd_status(0, 2, 2)[0] == "dead"
    assert rackd_status(2, 2, 2, refusal="version")[0] == "dead"


def test_rackd_status_with_the_racks_own_report():
    down = ("degraded", "region-links restarted after OSError: [Errno 24] Too many open files (1 death(s))")
    assert with_rack_report(("running", ""), down) == down
    assert with_rack_report(("running", ""), ("running", "")) == ("running", "")
    assert with_rack_report(("running", ""), None) == ("running", "")
    both = with_rack_report(("degraded", "connected to 1 of 2 region controllers"), down)
    assert both == ("degraded", "connected to 1 of 2 region controllers; " + down[1])
    # Not connected: the rack's last report is stale.
    assert with_rack_report(("dead", "no connection to any region"), down) == ("dead", "no connection to any region")


def test_proof_binds_secret_role_nonces_and_certificate():
    p = auth.proof("s", "rack", "n1", "n2", "fp")
    assert auth.verify("s", "rack", "n1", "n2", "fp", p)
    for args in (
        ("t", "rack", "n1", "n2", "fp"),
        ("s", "region", "n1", "n2", "fp"),
        ("s", "rack", "n2", "n1", "fp"),
        ("s", "rack", "n1", "n2", "other"),
    ):
        assert not auth.verify(*args, p)


def test_versions_must_share_major_minor():
    assert versions.compatible("0.1.0", "0.1.7")
    assert not versions.compatible("0.2.0", "0.1.0")
    assert "0.2.0" in versions.mismatch_message("0.2.0", "0.1.0") and "0.1.0" in versions.mismatch_message(
        "0.2.0", "0.1.0"
    )


E = [Endpoint("a", 0, "h", 1), Endpoint("a", 1, "h", 2), Endpoint("b", 0, "h", 3), Endpoint("b", 1, "h", 4)]


def test_choose_takes_distinct_regions_in_a_stable_order():
    picked = choose("rack1", E, 2, set())
    assert {e.region for e in picked} == {"a", "b"}
    assert choose("rack1", list(reversed(E)), 2, set()) == picked


def test_plan_links_replaces_a_dead_target_in_the_same_region_first():
    targets = [E[0], E[2]]
    usable = {e.key for e in E} - {E[0].key}
    plan = plan_links("r", E, targets, usable, 2)
    assert E[2] in plan and E[1] in plan and len(plan) == 2


def test_plan_links_falls_back_to_another_region():
    targets = [E[0], E[2]]
    usable = {E[2].key, E[3].key}
    plan = plan_links("r", E, targets, usable, 2)
    assert plan == [E[2]]  # region a is wholly dead; one link is all that is possible


def test_failover_plan_never_repeats_a_completed_action():
    assert failover_plan("on", "on") is None
    assert failover_plan("on", "off") == "on"
    assert failover_plan("off", "off") is None
    assert failover_plan("cycle", "off") == "on"
    assert failover_plan("cycle", "on") is None


def test_bmc_host():
    assert bmc_host("ipmi", {"power_address": "10.0.0.5:1623"}) == "10.0.0.5"
    assert bmc_host("redfish", {"power_address": "https://10.0.0.6"}) == "10.0.0.6"
    assert bmc_host("manual", {}) is None


def test_lease_rows_order_by_the_change_not_the_report():
    nets = [(1, ip_network("10.0.0.0/24")), (2, ip_network("10.0.0.0/16"))]
    assert subnet_for("10.0.0.5", nets) == 1
    commit = lease_row(
        {"action": "commit", "ip": "10.0.0.5", "mac": "AA:BB:cc:dd:ee:ff", "cltt": 100, "expires": 700, "time": 500},
        nets,
        7,
    )
    release = lease_row({"action": "release", "ip": "10.0.0.5", "mac": "aa:bb:cc:dd:ee:ff", "time": 200}, nets, 7)
    assert commit["state"] == "active" and commit["mac"] == "aa:bb:cc:dd:ee:ff"
    assert release["state"] == "released" and release["expires"] is None
    assert commit["changed"] < release["changed"]  # a late copy of the commit cannot undo the release
    assert lease_row({"action": "nonsense", "ip": "10.0.0.5"}, nets, 7) is None


def test_parse_ip_addr_keeps_real_interfaces_and_addresses():
    sample = json.dumps(
        [
            {
                "ifname": "lo",
                "link_type": "loopback",
                "address": "00:00:00:00:00:00",
                "flags": ["UP"],
                "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}],
            },
            {
                "ifname": "eth0",
                "link_type": "ether",
                "address": "52:54:00:12:34:56",
                "flags": ["UP"],
                "addr_info": [
                    {"family": "inet", "local": "10.0.0.2", "prefixlen": 24, "scope": "global"},
                    {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
                ],
            },
            {
                "ifname": "br0",
                "link_type": "ether",
                "address": "52:54:00:00:00:01",
                "flags": [],
                "linkinfo": {"info_kind": "bridge"},
                "addr_info": [],
            },
        ]
    )
    out = parse_ip_addr(sample)
    assert [i["name"] for i in out] == ["eth0", "br0"]
    assert out[0]["addresses"] == ["10.0.0.2/24", "fe80::1/64"] and out[0]["enabled"]
    assert out[1]["type"] == "bridge" and not out[1]["enabled"]


@pytest.mark.parametrize("bad", ["", "a:b", "a::c"])
def test_api_keys_have_three_parts(bad):
    with pytest.raises(ValueError):
        split_key(bad)


def test_a_dead_workers_racks_are_planned_on_the_workers_they_replace_it_with_themselves():
    """A rack that loses a link replaces it at once (plan_links, before any plan reaches
    it); the plan made when the worker is forgotten names the same worker while it is
    below its cap (with the least-loaded rule, about two in three of them joined a second
    worker), and no other link moves."""
    workers = [HaEndpoint(g, w) for g in ("a", "b") for w in range(4)]
    racks = [f"rack{i:04d}" for i in range(1000)]
    settled = plan_connections(racks, workers, {}, 2, 1.25)
    known = [Endpoint(w.region, w.worker, "h", 5250 + i) for i, w in enumerate(workers)]
    for dead in workers[:4]:
        current = {r: eps - {dead} for r, eps in settled.items()}
        plan = plan_connections(racks, [w for w in workers if w != dead], current, 2, 1.25)
        usable = {e.key for e in known if HaEndpoint(e.region, e.worker) != dead}
        orphans = [r for r, eps in settled.items() if dead in eps]
        same = 0
        for rack in orphans:
            targets = [e for e in known if HaEndpoint(e.region, e.worker) in settled[rack]]
            own = plan_links(rack, known, targets, usable, 2)
            same += {HaEndpoint(e.region, e.worker) for e in own} == plan[rack]
        assert len(orphans) > 200 and same == len(orphans), (dead, same)
        assert all(plan[r] >= current[r] for r in racks)


def test_with_a_light_worker_in_the_region_a_dead_workers_racks_still_go_where_they_choose():
    """The bench's second kill: the worker killed before is back and light (a return moves
    only what the caps need). A plan that filled it first (fair-share tiers) sent two in three
    of the next dead worker's racks there, racks that had already joined their own choice."""
    workers = [HaEndpoint(g, w) for g in ("a", "b") for w in range(4)]
    racks = [f"rack{i:04d}" for i in range(1000)]
    settled = plan_connections(racks, workers, {}, 2, 1.25)
    first, second = HaEndpoint("a", 0), HaEndpoint("a", 1)
    without = plan_connections(racks, [w for w in workers if w != first], settled, 2, 1.25)
    back = plan_connections(racks, workers, without, 2, 1.25)
    assert sum(first in eps for eps in back.values()) < 150  # light
    current = {r: eps - {second} for r, eps in back.items()}
    plan = plan_connections(racks, [w for w in workers if w != second], current, 2, 1.25)
    known = [Endpoint(w.region, w.worker, "h", 5250 + i) for i, w in enumerate(workers)]
    usable = {e.key for e in known if HaEndpoint(e.region, e.worker) != second}
    for rack in (r for r, eps in back.items() if second in eps):
        targets = [e for e in known if HaEndpoint(e.region, e.worker) in back[rack]]
        own = plan_links(rack, known, targets, usable, 2)
        assert {HaEndpoint(e.region, e.worker) for e in own} == plan[rack], rack
