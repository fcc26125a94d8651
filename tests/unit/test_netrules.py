"""MAAS's network validation rules (netrules): pure functions, MAAS's keys and messages."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalplane.region.services import netrules
from metalplane.region.services.netrules import ALL, DhcpState, Span

BOTH = {"start_ip", "end_ip"}


def check(kind, start, end, cidr="10.0.0.0/24", existing=(), used=()):
    return netrules.check_range(kind, start, end, cidr, list(existing), list(used))


# -- CIDR, gateway, DNS servers -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10.1.2.0/24", "10.1.2.0/24"),
        ("10.1.2.77/24", "10.1.2.0/24"),  # host bits are dropped, as MAAS stores network.cidr
        (" 192.168.0.0/16 ", "192.168.0.0/16"),
        ("2001:db8::/64", "2001:db8::/64"),
        ("10.9.9.9/32", "10.9.9.9/32"),
    ],
)
def test_parse_cidr_accepts_networks(text, expected):
    network, errors = netrules.parse_cidr(text)
    assert errors == {}
    assert str(network) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "This field is required."),
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("nonsense", "Required format: <network>/<prefixlen>."),
        ("10.1.2.0", "Required format: <network>/<prefixlen>."),
        ("10.1.2.0/33", "Required format: <network>/<prefixlen>."),
        ("10.1.300.0/24", "Required format: <network>/<prefixlen>."),
        ("2001:db8::/129", "Required format: <network>/<prefixlen>."),
        ("0.0.0.0/0", "Prefix length must be greater than 0."),
        ("::/0", "Prefix length must be greater than 0."),
    ],
)
def test_parse_cidr_rejects_with_maas_message(text, message):
    network, errors = netrules.parse_cidr(text)
    assert network is None
    assert errors == {"cidr": [message]}


def test_gateway_must_be_inside_the_network():
    net = IPv4Network("10.0.0.0/24")
    assert netrules.check_gateway(net, None) == {}
    assert netrules.check_gateway(net, "") == {}
    assert netrules.check_gateway(net, "10.0.0.1") == {}
    assert netrules.check_gateway(net, "10.0.1.1") == {"gateway_ip": ["Gateway IP must be within CIDR range."]}
    assert netrules.check_gateway(net, "2001:db8::1") == {"gateway_ip": ["Gateway IP must be within CIDR range."]}
    assert netrules.check_gateway(net, "10.0.0.x") == {"gateway_ip": ["Enter a valid IPv4 or IPv6 address."]}


def test_ipv6_link_local_gateway_is_allowed_on_ipv6_only():
    v6, _ = netrules.parse_cidr("2001:db8::/64")
    assert netrules.check_gateway(v6, "fe80::1") == {}
    assert netrules.check_gateway(v6, "2001:db9::1") == {"gateway_ip": ["Gateway IP must be within CIDR range."]}


def test_dns_servers_split_on_commas_and_spaces():
    assert netrules.parse_dns_servers(["8.8.8.8, 1.1.1.1", "2001:db8::53"]) == (
        ["8.8.8.8", "1.1.1.1", "2001:db8::53"],
        {},
    )
    assert netrules.parse_dns_servers(["8.8.8.8 9.9.9.9"]) == (["8.8.8.8", "9.9.9.9"], {})
    assert netrules.parse_dns_servers([""]) == ([], {})
    assert netrules.parse_dns_servers(["8.8.8.8,bogus"]) == ([], {"dns_servers": ["Invalid IP address: bogus."]})


# -- fabrics and VLANs ---------------------------------------------------------------------


def test_fabric_names():
    assert netrules.check_fabric_name("lab-fabric_1", None) == {}
    assert netrules.check_fabric_name("bad name", None) == {"name": ["Invalid fabric name: bad name."]}
    assert netrules.check_fabric_name("fabric-7", None) == {"name": ["Reserved fabric name."]}
    assert netrules.check_fabric_name("fabric-7", 8) == {"name": ["Reserved fabric name."]}
    assert netrules.check_fabric_name("fabric-7", 7) == {}  # a fabric may keep its own default name


@pytest.mark.parametrize(
    "vid, errors",
    [
        (0, {}),
        (4094, {}),
        (None, {"vid": ["This field is required."]}),
        (-1, {"vid": ["VID must be between 0 and 4094."]}),
        (4095, {"vid": ["VID must be between 0 and 4094."]}),
    ],
)
def test_vid(vid, errors):
    assert netrules.check_vid(vid) == errors


@pytest.mark.parametrize(
    "mtu, errors",
    [
        (None, {}),
        (552, {}),
        (65535, {}),
        (551, {"mtu": ["Ensure this value is greater than or equal to 552."]}),
        (65536, {"mtu": ["MTU must be between 552 and 65535."]}),
    ],
)
def test_mtu(mtu, errors):
    assert netrules.check_mtu(mtu) == errors


# -- IP ranges -----------------------------------------------------------------------------


def test_a_range_inside_the_subnet_is_accepted():
    assert check("reserved", "10.0.0.1", "10.0.0.254") == {}
    assert check("dynamic", "10.0.0.100", "10.0.0.100") == {}


@pytest.mark.parametrize(
    "kind, message",
    [
        (None, "This field is required."),
        ("", "This field is required."),
        ("static", "Select a valid choice. static is not one of the available choices."),
    ],
)
def test_range_type(kind, message):
    assert check(kind, "10.0.0.10", "10.0.0.20") == {"type": [message]}


@pytest.mark.parametrize("start, end", [(None, "10.0.0.5"), ("10.0.0.5", None), ("", "")])
def test_range_needs_both_addresses(start, end):
    message = "Start IP address and end IP address are both required."
    assert check("reserved", start, end) == {"start_ip": [message], "end_ip": [message]}


@pytest.mark.parametrize(
    "start, end, fields",
    [
        ("10.0.0.x", "10.0.0.5", ["start_ip"]),
        ("10.0.0.5", "fe80::1%eth0", ["end_ip"]),  # Python takes the zone id, PostgreSQL's inet does not
        ("fe80::1%eth0", "fe80::2%eth0", ["start_ip", "end_ip"]),
    ],
)
def test_range_addresses_must_be_addresses(start, end, fields):
    assert check("reserved", start, end) == {f: ["Enter a valid IPv4 or IPv6 address."] for f in fields}


@pytest.mark.parametrize("cidr", ["fe80::%eth0/64", "10.0.0.0/24\x00"])
def test_cidr_with_a_zone_id_or_nul_is_refused(cidr):
    assert netrules.parse_cidr(cidr) == (None, {"cidr": ["Required format: <network>/<prefixlen>."]})


def test_gateway_with_a_zone_id_is_refused():
    net = netrules.parse_cidr("fd02::/64")[0]
    assert netrules.check_gateway(net, "fd02::1%eth0") == {"gateway_ip": ["Enter a valid IPv4 or IPv6 address."]}
    assert netrules.parse_dns_servers(["10.0.0.1 fd02::1%eth0"]) == (
        [],
        {"dns_servers": ["Invalid IP address: fd02::1%eth0."]},
    )


def test_range_addresses_in_one_family():
    message = "Start IP address and end IP address must be in the same address family."
    assert check("reserved", "10.0.0.5", "2001:db8::5") == {"start_ip": [message], "end_ip": [message]}


def test_range_order_is_reported_on_end_ip_only():
    assert check("reserved", "10.0.0.20", "10.0.0.10") == {
        "end_ip": ["End IP address must not be less than Start IP address."]
    }


def test_range_outside_the_subnet():
    both = "IP addresses must be within subnet: 10.0.0.0/24."
    assert check("reserved", "10.0.1.1", "10.0.1.5") == {"start_ip": [both], "end_ip": [both]}
    assert check("reserved", "9.255.255.250", "10.0.0.5") == {
        "start_ip": ["Start IP address must be within subnet: 10.0.0.0/24."]
    }
    assert check("reserved", "10.0.0.250", "10.0.1.5") == {
        "end_ip": ["End IP address must be within subnet: 10.0.0.0/24."]
    }
    assert check("reserved", "2001:db8::1", "2001:db8::5") == {"start_ip": [both], "end_ip": [both]}


def test_range_excludes_network_and_broadcast_addresses():
    assert check("reserved", "10.0.0.0", "10.0.0.10") == {
        "start_ip": ["Reserved network address cannot be included in IP range."]
    }
    assert check("dynamic", "10.0.0.200", "10.0.0.255") == {
        "end_ip": ["Broadcast address cannot be included in IP range."]
    }
    # /31 and /32 have neither (RFC 3021).
    assert check("reserved", "10.0.0.0", "10.0.0.1", cidr="10.0.0.0/31") == {}
    assert check("reserved", "10.0.0.7", "10.0.0.7", cidr="10.0.0.7/32") == {}
    # IPv6 has no broadcast, but the subnet-router anycast address is still excluded.
    assert check("reserved", "2001:db8::", "2001:db8::ff", cidr="2001:db8::/64") == {
        "start_ip": ["Reserved network address cannot be included in IP range."]
    }


def test_ipv6_dynamic_ranges_hold_at_least_256_addresses():
    message = "IPv6 dynamic range must be at least 256 addresses in size."
    assert check("dynamic", "2001:db8::100", "2001:db8::1fe", cidr="2001:db8::/64") == {
        "start_ip": [message],
        "end_ip": [message],
    }
    assert check("dynamic", "2001:db8::100", "2001:db8::1ff", cidr="2001:db8::/64") == {}
    assert check("reserved", "2001:db8::100", "2001:db8::101", cidr="2001:db8::/64") == {}


@pytest.mark.parametrize(
    "start, end",
    [
        ("10.0.0.15", "10.0.0.25"),  # overlaps the top
        ("10.0.0.5", "10.0.0.10"),  # touches the first address
        ("10.0.0.20", "10.0.0.30"),  # touches the last address
        ("10.0.0.12", "10.0.0.13"),  # inside
        ("10.0.0.1", "10.0.0.100"),  # around
    ],
)
def test_overlapping_ranges_are_rejected(start, end):
    existing = [Span("10.0.0.10", "10.0.0.20", "reserved")]
    reserved = "Requested reserved range conflicts with an existing range."
    dynamic = "Requested dynamic range conflicts with an existing IP address or range."
    assert check("reserved", start, end, existing=existing) == {"start_ip": [reserved], "end_ip": [reserved]}
    assert check("dynamic", start, end, existing=existing) == {"start_ip": [dynamic], "end_ip": [dynamic]}


def test_adjacent_ranges_do_not_overlap():
    existing = [Span("10.0.0.10", "10.0.0.20", "dynamic")]
    assert check("reserved", "10.0.0.1", "10.0.0.9", existing=existing) == {}
    assert check("dynamic", "10.0.0.21", "10.0.0.30", existing=existing) == {}


def test_used_addresses_block_dynamic_ranges_only():
    dynamic = "Requested dynamic range conflicts with an existing IP address or range."
    assert check("dynamic", "10.0.0.1", "10.0.0.9", used=["10.0.0.1"]) == {"start_ip": [dynamic], "end_ip": [dynamic]}
    assert check("reserved", "10.0.0.1", "10.0.0.9", used=["10.0.0.1"]) == {}
    assert check("dynamic", "10.0.0.2", "10.0.0.9", used=["10.0.0.1"]) == {}


def test_ranges_must_still_fit_a_changed_cidr():
    ranges = [Span("10.0.0.10", "10.0.0.20", "reserved"), Span("10.0.0.128", "10.0.0.200", "dynamic")]
    assert netrules.check_ranges_fit("10.0.0.0/24", ranges) == {}
    assert netrules.check_ranges_fit("10.0.0.0/23", ranges) == {}
    assert netrules.check_ranges_fit("10.0.0.0/25", ranges) == {
        "cidr": [
            "IP range 10.0.0.128-10.0.0.200 would not fit 10.0.0.0/25: IP addresses must be within subnet: 10.0.0.0/25."
        ]
    }
    assert netrules.check_ranges_fit("10.0.0.128/25", ranges[1:]) == {
        "cidr": [
            "IP range 10.0.0.128-10.0.0.200 would not fit 10.0.0.128/25: "
            "Reserved network address cannot be included in IP range."
        ]
    }
    assert netrules.check_ranges_fit("10.0.0.0/28", ranges[:1]) == {
        "cidr": [
            "IP range 10.0.0.10-10.0.0.20 would not fit 10.0.0.0/28: End IP address must be within subnet: 10.0.0.0/28."
        ]
    }
    assert netrules.check_ranges_fit("10.0.0.0/24", []) == {}


SUBNETS = st.builds(
    lambda base, prefix: IPv4Network((base, prefix), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(20, 30),
)


@st.composite
def subnet_and_ranges(draw):
    """A subnet, some existing ranges in it (maybe overlapping each other) and a candidate."""
    net = draw(SUBNETS)
    first, last = int(net.network_address), int(net.broadcast_address)
    # Candidates may stray a little outside the subnet on either side.
    address = st.integers(max(0, first - 4), min(2**32 - 1, last + 4))

    def span(lo: int, hi: int) -> tuple[str, str]:
        return str(IPv4Address(min(lo, hi))), str(IPv4Address(max(lo, hi)))

    inside = st.integers(first + 1, last - 1)
    existing = [Span(*span(a, b), "reserved") for a, b in draw(st.lists(st.tuples(inside, inside), max_size=4))]
    start, end = draw(address), draw(address)
    return net, existing, str(IPv4Address(start)), str(IPv4Address(end)), draw(st.sampled_from(netrules.RANGE_TYPES))


@given(subnet_and_ranges())
def test_accepted_ranges_lie_inside_and_overlap_nothing(case):
    net, existing, start, end, kind = case
    if netrules.check_range(kind, start, end, str(net), existing, []):
        return
    first, last = ip_address(start), ip_address(end)
    assert first <= last
    assert first in net and last in net
    assert first != net.network_address and last != net.broadcast_address
    for span in existing:
        assert last < ip_address(span.start) or first > ip_address(span.end)


@given(subnet_and_ranges())
def test_every_rejection_names_a_field(case):
    net, existing, start, end, kind = case
    errors = netrules.check_range(kind, start, end, str(net), existing, [])
    assert set(errors) <= {"start_ip", "end_ip"}
    assert all(reasons and all(isinstance(r, str) and r for r in reasons) for reasons in errors.values())


@given(st.lists(st.tuples(st.integers(1, 254), st.integers(1, 254)), max_size=30))
def test_ranges_accepted_one_after_another_never_overlap(pairs):
    accepted: list[Span] = []
    for a, b in pairs:
        start, end = f"10.0.0.{min(a, b)}", f"10.0.0.{max(a, b)}"
        if not check("reserved", start, end, existing=accepted):
            accepted.append(Span(start, end, "reserved"))
    taken: set[int] = set()
    for span in accepted:
        addresses = set(range(int(ip_address(span.start)), int(ip_address(span.end)) + 1))
        assert not taken & addresses
        taken |= addresses


# -- DHCP on a VLAN ------------------------------------------------------------------------


def dhcp(dhcp_on=True, primary=1, secondary=None, has_dynamic_range=True, primary_alive=True):
    return netrules.check_dhcp(DhcpState(dhcp_on, primary, secondary, has_dynamic_range, primary_alive))


def test_dhcp_on_with_primary_and_dynamic_range_is_fine():
    assert dhcp() == {}
    assert dhcp(secondary=2) == {}
    assert dhcp(dhcp_on=False, primary=None, has_dynamic_range=False) == {}


def test_dhcp_needs_a_dynamic_range_first():
    # MAAS's field cleaner runs before clean(), so this wins over the missing primary.
    assert dhcp(primary=None, has_dynamic_range=False) == {
        "dhcp_on": ["dhcp can only be turned on when a dynamic IP range is defined."]
    }


def test_dhcp_needs_a_primary_rack():
    assert dhcp(primary=None) == {ALL: ["dhcp can only be turned on when a primary rack controller is set."]}


def test_primary_and_secondary_must_differ():
    message = {ALL: ["The primary and secondary rack must be different"]}
    assert dhcp(primary=3, secondary=3) == message
    assert dhcp(dhcp_on=False, primary=3, secondary=3) == message


def test_secondary_needs_a_primary():
    assert dhcp(dhcp_on=False, primary=None, secondary=2) == {
        "secondary_rack": ["A secondary rack controller needs a primary rack controller."]
    }


def test_secondary_needs_a_live_primary():
    errors = dhcp(secondary=2, primary_alive=False)
    assert list(errors) == [ALL]
    assert errors[ALL][0].startswith("The primary rack controller must be up and running")
    assert dhcp(secondary=None, primary_alive=False) == {}


def test_secondary_may_not_repeat_the_current_primary():
    assert netrules.check_secondary_not_primary(1, primary_given=False, secondary=1, label="rack-a") == {
        ALL: ["rack-a is already set as the primary rack controller"]
    }
    assert netrules.check_secondary_not_primary(1, primary_given=True, secondary=1, label="rack-a") == {}
    assert netrules.check_secondary_not_primary(1, primary_given=False, secondary=2, label="rack-b") == {}
    assert netrules.check_secondary_not_primary(None, primary_given=False, secondary=None, label="") == {}


def rack_change(current=(None, None), primary=None, secondary=None):
    """`primary`/`secondary`: omitted (None), cleared ("") or a rack id."""
    return netrules.resolve_rack_change(
        current[0],
        current[1],
        None if primary in (None, "") else primary,
        None if secondary in (None, "") else secondary,
        primary is not None,
        secondary is not None,
    )


def test_rack_change_keeps_what_is_not_given():
    assert rack_change((1, 2)) == (1, 2)
    assert rack_change((1, 2), primary=3) == (3, 2)
    assert rack_change((1, 2), secondary=3) == (1, 3)
    assert rack_change((1, None), secondary="") == (1, None)


def test_clearing_the_primary_promotes_the_secondary():
    assert rack_change((1, 2), primary="") == (2, None)
    assert rack_change((1, None), primary="") == (None, None)
    assert rack_change((1, 2), primary="", secondary="") == (None, None)


def test_making_the_secondary_primary_clears_the_secondary():
    assert rack_change((1, 2), primary=2) == (2, None)
    assert rack_change((1, 2), primary=2, secondary=1) == (2, 1)  # an explicit swap


RACK = st.one_of(st.none(), st.integers(1, 4))
GIVEN = st.one_of(st.none(), st.just(""), st.integers(1, 4))


@given(RACK, RACK, GIVEN, GIVEN, st.booleans())
def test_no_rack_change_that_passes_leaves_a_broken_pair(cur_primary, cur_secondary, primary, secondary, on):
    if cur_primary is None:
        cur_secondary = None  # a VLAN never holds a secondary without a primary
    new_primary, new_secondary = rack_change((cur_primary, cur_secondary), primary, secondary)
    if dhcp(on, new_primary, new_secondary):
        return
    assert new_secondary is None or new_primary not in (None, new_secondary)
    assert not on or new_primary is not None
