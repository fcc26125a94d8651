"""DHCP failover pairs (metalplane.ha.dhcp_peers): roles, peers, the candidate secondary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metalplane.ha.dhcp_peers import (
    ha_state_status,
    kea_ha_state,
    kea_instance_name,
    pairing,
    pick_candidate,
    role_on_vlan,
)

racks = st.sampled_from([1, 2, 3, 4])


def test_dhcp_roles_and_candidate():
    assert role_on_vlan(1, 1, None) == "standalone"
    assert role_on_vlan(1, 1, 2) == "primary"
    assert role_on_vlan(2, 1, 2) == "secondary"
    assert role_on_vlan(3, 1, 2) is None
    assert pick_candidate(["r1", "r2", "r3"], "r1", None, {"r1", "r3"}) == "r3"
    assert pick_candidate(["r1", "r2"], "r1", "r2", {"r1", "r2"}) is None


def test_pairing_names_the_other_rack_or_serves_alone():
    assert pairing("primary", 1, 2, {1, 2}) == ("primary", 2)
    assert pairing("secondary", 1, 2, {1, 2}) == ("secondary", 1)
    assert pairing("standalone", 1, None, {1}) == ("standalone", None)
    # a peer with no IPv4 address on the VLAN cannot fail over: serve alone
    assert pairing("primary", 1, 2, {1}) == ("standalone", None)
    assert pairing("secondary", 1, 2, {2}) == ("standalone", None)


@given(racks, st.one_of(st.none(), racks), st.one_of(st.none(), racks), st.sets(racks))
def test_a_pair_agrees_on_each_other(rack, primary, secondary, addressed):
    """Every rack with a part gets one role; when both racks of a pair are addressed,
    each names the other as its peer; a rack never pairs with itself."""
    role = role_on_vlan(rack, primary, secondary)
    if rack not in (primary, secondary) or primary is None:
        assert role is None
        return
    assert role in ("standalone", "primary", "secondary")
    serving, peer = pairing(role, primary, secondary, addressed)
    if peer is None:
        assert serving == "standalone"
        return
    assert peer != rack or primary == secondary  # only a misconfigured VLAN names one rack twice
    assert peer in addressed
    back = role_on_vlan(peer, primary, secondary)
    if primary != secondary:
        assert back is not None and pairing(back, primary, secondary, addressed | {rack})[1] == rack


@given(
    st.lists(st.sampled_from(["r1", "r2", "r3", "r4"])),
    st.one_of(st.none(), st.sampled_from(["r1", "r2"])),
    st.one_of(st.none(), st.sampled_from(["r3"])),
    st.sets(st.sampled_from(["r1", "r2", "r3", "r4"])),
)
def test_candidate_is_the_first_live_other_rack_and_only_without_a_secondary(on_vlan, primary, secondary, alive):
    chosen = pick_candidate(on_vlan, primary, secondary, alive)
    if primary is None or secondary is not None:
        assert chosen is None
        return
    eligible = sorted(r for r in set(on_vlan) if r != primary and r in alive)
    assert chosen == (eligible[0] if eligible else None)
    assert pick_candidate(list(reversed(on_vlan)), primary, secondary, alive) == chosen  # input order is irrelevant


def kea_report(tmp_path, states: dict[str, str | None], dead: tuple[str, ...] = ()) -> str:
    """The dhcpd service text a rack sends, made by the rack's own KeaProcess.status()."""
    from metalplane.rack.dhcp.kea import KeaProcess

    class Running:
        returncode = None

    parts = []
    for name, ha_state in states.items():
        proc = KeaProcess(name, tmp_path / name)
        proc.process._wanted = True
        if name in dead:
            proc.process.last_exit = -9
        else:
            proc.process.proc, proc.process.pid = Running(), 4242  # type: ignore[assignment]
            proc.ha_state = ha_state
        parts.append(proc.status()[1])
    return "HA partner rack-2.lab is down, serving alone; " + "; ".join(parts)


def test_the_kea_ha_state_of_a_vlan_is_read_back_from_the_racks_report(tmp_path):
    primary = kea_instance_name("primary", "rack-2.lab", "hot-standby")
    secondary = kea_instance_name("secondary", "rack3", "load-balancing")
    assert primary == "ha-primary-rack-2_lab-hot-standby"
    assert kea_instance_name("standalone", None, None) == kea_instance_name("primary", None, "x") == "standalone"
    report = kea_report(tmp_path, {primary: "partner-down", secondary: None, "standalone": None})
    assert kea_ha_state(report, primary) == "partner-down"
    assert kea_ha_state(report, secondary) is None, "Kea has not said its state yet"
    assert kea_ha_state(report, "standalone") is None
    assert kea_ha_state(report, "ha-primary-rack9-hot-standby") is None, "not this rack's process"
    # A name that ends another's ("ha-primary-x-hot-standby" in "ha-primary-x-hot-standby2") is not it.
    assert kea_ha_state(kea_report(tmp_path, {primary + "2": "hot-standby"}), primary) is None
    down = kea_report(tmp_path, {primary: "hot-standby"}, dead=(primary,))
    assert kea_ha_state(down, primary) == "not running"
    assert [
        ha_state_status(s)
        for s in ("hot-standby", "load-balancing", "partner-down", "syncing", "not running", None, "Ready")
    ] == ["running", "running", "degraded", "degraded", "dead", "unknown", "unknown"]
    assert kea_ha_state(kea_report(tmp_path, {"x" + primary: "hot-standby"}), primary) is None
