"""Which address a subnet hands out next (MAAS's get_next_ip_for_allocation, for static and
AUTO links and reservations) and which machine addresses become DHCP host reservations."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from metalplane.region.services.address_space import next_free
from metalplane.region.services.dhcp import host_entries


def test_the_first_address_of_the_smallest_free_block_outside_ranges_and_used_ones():
    ranges = [("dynamic", "10.0.0.100", "10.0.0.199"), ("reserved", "10.0.0.2", "10.0.0.9")]
    # free: .10-.99 (90), .200-.254 (55): the smaller block first
    assert next_free("10.0.0.0/24", ranges, ["10.0.0.1"]) == "10.0.0.200"
    assert next_free("10.0.0.0/24", ranges, ["10.0.0.1", "10.0.0.200", "10.0.0.201"]) == "10.0.0.202"
    # a hole left by a released address is the smallest block of all
    used = ["10.0.0.1"] + [f"10.0.0.{n}" for n in range(200, 255) if n != 230]
    assert next_free("10.0.0.0/24", ranges, used) == "10.0.0.230"


def test_ties_go_to_the_lowest_block_and_the_gateway_is_never_handed_out():
    assert next_free("10.0.0.0/29", [], ["10.0.0.1"]) == "10.0.0.2"  # .2-.6: network, broadcast skipped
    # .2-.3 and .5-.6: a tie, the lower one
    assert next_free("10.0.0.0/29", [("dynamic", "10.0.0.4", "10.0.0.4")], ["10.0.0.1"]) == "10.0.0.2"
    assert next_free("10.0.0.0/29", [("dynamic", "10.0.0.5", "10.0.0.5")], []) == "10.0.0.6"  # .1-.4 vs .6
    assert next_free("10.0.0.0/29", [("dynamic", "10.0.0.3", "10.0.0.6")], ["10.0.0.1"]) == "10.0.0.2"


def test_a_full_subnet_has_none():
    full = [("dynamic", "10.0.0.3", "10.0.0.6")]
    assert next_free("10.0.0.0/29", full, ["10.0.0.1"]) == "10.0.0.2"
    assert next_free("10.0.0.0/29", full, ["10.0.0.1", "10.0.0.2"]) is None
    assert next_free("10.0.0.4/32", [], ["10.0.0.4"]) is None


def test_an_unmanaged_subnet_hands_out_only_inside_its_reserved_ranges():
    ranges = [("reserved", "10.0.0.50", "10.0.0.53"), ("dynamic", "10.0.0.51", "10.0.0.51")]
    assert next_free("10.0.0.0/24", ranges, ["10.0.0.1"], managed=False) == "10.0.0.50"
    assert next_free("10.0.0.0/24", ranges, ["10.0.0.50"], managed=False) == "10.0.0.52"
    assert next_free("10.0.0.0/24", ranges, ["10.0.0.50", "10.0.0.52", "10.0.0.53"], managed=False) is None
    assert next_free("10.0.0.0/24", [], [], managed=False) is None


def test_ipv6_keeps_the_anycast_address_and_a_64s_low_block():
    assert next_free("2001:db8::/64", [], []) == "2001:db8::1:0:0"
    assert next_free("2001:db8::/120", [], ["2001:db8::1"]) == "2001:db8::2"
    assert next_free("2001:db8::/127", [], []) == "2001:db8::"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=24, max_value=30),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 20)), max_size=4),
    st.sets(st.integers(0, 255), max_size=40),
)
def test_whatever_is_handed_out_is_free_and_none_means_nothing_is(prefix, spans, used_offsets):
    network = ip_network(f"10.9.0.0/{prefix}")
    size = network.num_addresses

    def at(n: int) -> str:
        return str(network.network_address + n % size)

    ranges = [("dynamic" if n % 2 else "reserved", at(a), at(min(a + w, size - 1))) for n, (a, w) in enumerate(spans)]
    ranges = [(k, s, e) for k, s, e in ranges if ip_address(s) <= ip_address(e)]
    used = {at(n) for n in used_offsets}

    def free(a: str) -> bool:
        x = ip_address(a)
        return (
            a not in used
            and x not in (network.network_address, network.broadcast_address)
            and not any(ip_address(s) <= x <= ip_address(e) for _, s, e in ranges)
        )

    got = next_free(str(network), ranges, used)
    if got is None:
        assert not any(free(str(a)) for a in network)
    else:
        assert free(got) and ip_address(got) in network


def test_each_machine_mac_is_one_host_with_its_first_ipv4_address_when_that_is_safe():
    macs = [(1, "52:54:00:00:00:01", "a"), (2, "52:54:00:00:00:02", "b"), (3, "52:54:00:00:00:03", "c")]
    held = {1: ["2001:db8::5", "10.0.0.5", "10.0.0.6"], 2: ["10.0.0.1"], 3: ["10.0.0.5"]}
    assert host_entries(macs, held, {"10.0.0.1"}) == [
        {"mac": "52:54:00:00:00:01", "hostname": "a", "ip": "10.0.0.5"},
        {"mac": "52:54:00:00:00:02", "hostname": "b", "ip": None},  # a gateway's: the rack would refuse it
        {"mac": "52:54:00:00:00:03", "hostname": "c", "ip": None},  # already a's
    ]
    assert host_entries(macs[:1], {}, set()) == [{"mac": "52:54:00:00:00:01", "hostname": "a", "ip": None}]
