"""The pure decisions behind the Subnets, VLAN, Machines pages and the login limits:
address accounting and MAAS's dynamic range suggestion, search parsing, where a
refusal is shown, and who a failed login is counted against."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metalplane.region.errors import Invalid
from metalplane.region.services.address_space import (
    free_blocks,
    suggest_dynamic_range,
    taken_blocks,
    usable_block,
    usage,
)
from metalplane.region.services.login_limits import Keys, retry_after
from metalplane.region.services.machine_list import Search, like_pattern, parse_search
from metalplane.region.ui.pages.machines import parse_filter, query_of
from metalplane.region.ui.pages.subnets import place_errors
from metalplane.region.ui.templating import count

# -- addresses ---------------------------------------------------------------------------------


def test_an_ipv4_subnet_does_not_count_its_network_and_broadcast():
    assert usable_block("10.0.0.0/24").size == 254
    assert usable_block("10.0.0.0/31").size == 2
    assert usable_block("10.0.0.7/32").size == 1
    assert usable_block("2001:db8::/120").size == 256


def test_usage_counts_ranges_and_addresses_once():
    u = usage("10.0.0.0/24", [("10.0.0.10", "10.0.0.59"), ("10.0.0.50", "10.0.0.69")], ["10.0.0.1", "10.0.0.60"])
    assert (u.total, u.unavailable, u.available, u.percent) == (254, 61, 193, 24)
    assert u.largest_free == 254 - 69


def test_the_suggestion_is_maas_top_quarter_of_an_empty_subnet():
    # MAAS (IPRangeStatistics): 64 addresses, .191-.254, never the broadcast.
    assert suggest_dynamic_range("10.0.0.0/24", [], []) == ("10.0.0.191", "10.0.0.254")
    assert suggest_dynamic_range("10.0.0.0/24", [], ["10.0.0.1"]) == ("10.0.0.191", "10.0.0.254")


def test_the_suggestion_takes_at_most_half_of_what_is_left():
    # .2-.205 taken: 49 free (.206-.254), the largest block is all of them: half (24) at its top.
    assert suggest_dynamic_range("10.0.0.0/24", [("10.0.0.2", "10.0.0.205")], ["10.0.0.1"]) == (
        "10.0.0.231",
        "10.0.0.254",
    )


def test_no_suggestion_when_nothing_sensible_is_free():
    assert suggest_dynamic_range("10.0.0.0/24", [("10.0.0.1", "10.0.0.254")], []) is None
    assert suggest_dynamic_range("10.0.0.0/30", [], ["10.0.0.1"]) is None


def test_an_ipv6_suggestion_stays_ipv6():
    start, end = suggest_dynamic_range("2001:db8::/64", [], ["2001:db8::1"])
    assert ip_address(start).version == 6 and ip_address(end) == ip_address("2001:db8::ffff:ffff:ffff:ffff")


@st.composite
def subnets_with_holdings(draw):
    prefix = draw(st.integers(22, 30))
    network = ip_network(f"10.{draw(st.integers(0, 255))}.0.0/{prefix}", strict=False)
    usable = usable_block(str(network))
    spans = []
    for _ in range(draw(st.integers(0, 4))):
        a = draw(st.integers(usable.first, usable.last))
        b = draw(st.integers(a, min(usable.last, a + draw(st.integers(0, 300)))))
        spans.append((str(ip_address(a)), str(ip_address(b))))
    singles = [str(ip_address(draw(st.integers(usable.first, usable.last)))) for _ in range(draw(st.integers(0, 5)))]
    return str(network), spans, singles


@settings(max_examples=300, deadline=None)
@given(subnets_with_holdings())
def test_a_suggestion_is_free_bounded_and_accounted(case):
    cidr, spans, singles = case
    taken = taken_blocks(cidr, spans, singles)
    free = free_blocks(cidr, taken)
    u = usage(cidr, spans, singles)
    assert u.unavailable + sum(b.size for b in free) == u.total
    suggestion = suggest_dynamic_range(cidr, spans, singles)
    if suggestion is None:
        return
    first, last = (int(ip_address(a)) for a in suggestion)
    assert first < last
    assert any(b.first <= first and last <= b.last for b in free), "inside one free block"
    assert last - first + 1 <= (u.total >> 2) + 1, "at most a quarter of the subnet (and one)"
    largest = max(b.size for b in free)
    if largest <= u.total >> 2:
        assert last - first + 1 <= u.available >> 1, "from a block no bigger than a quarter, at most half the free"


# -- machine search ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", Search("none", "")),
        ("   ", Search("none", "")),
        ("52:54:00:AB:cd:01", Search("mac", "52:54:00:ab:cd:01")),
        ("52-54-00-ab-cd-01", Search("mac", "52:54:00:ab:cd:01")),
        ("5254.00ab.cd01", Search("mac", "52:54:00:ab:cd:01")),
        ("52:54:00", Search("mac_prefix", "52:54:00")),
        ("52:54:0", Search("mac_prefix", "52:54:0")),
        # six groups, the last one short: still being typed, not MAAS's one-digit form
        ("52:54:a1:00:00:0", Search("mac_prefix", "52:54:a1:00:00:0")),
        ("52:", Search("mac_prefix", "52:")),
        ("52", Search("hostname", "52")),
        ("node-12", Search("hostname", "node-12")),
        ("Node_%", Search("hostname", "Node_%")),
    ],
)
def test_a_search_is_a_mac_a_mac_prefix_or_part_of_a_hostname(text, expected):
    assert parse_search(text) == expected


def test_a_search_is_literal_in_like_and_bounded():
    assert like_pattern("a_b%c\\") == "a\\_b\\%c\\\\"
    with pytest.raises(Invalid) as refused:
        parse_search("x" * 201)
    assert list(refused.value.errors) == ["q"]


def test_filters_refuse_a_status_maas_does_not_have_and_keep_the_query_for_paging():
    assert parse_filter("4", "default", "52:54").status == 4
    for bad in ("99", "ready", "-1"):
        with pytest.raises(Invalid) as refused:
            parse_filter(bad, "", "")
        assert list(refused.value.errors) == ["status"]
    assert query_of("4", "", "node 1", 2) == "status=4&q=node+1&page=2"
    assert query_of("", "", "") == ""


# -- the DHCP dialog -----------------------------------------------------------------------------


def test_each_api_message_goes_beside_the_field_it_names():
    assert place_errors({"start_ip": ["a"], "end_ip": ["b"]}) == {"start_ip": ["a"], "end_ip": ["b"]}
    assert place_errors({"dhcp_on": ["no range"]}) == {"dynamic_range": ["no range"]}
    assert place_errors({"__all__": ["primary = secondary"]}) == {"racks": ["primary = secondary"]}
    assert place_errors({"relay_vlan": ["x"], "__all__": ["y"]}) == {"racks": ["x", "y"]}, "never dropped"


# -- login limits --------------------------------------------------------------------------------


def test_failures_count_against_the_address_the_proxy_saw():
    keys = Keys.of("alice", "198.51.100.7")
    assert keys.limits() == {"user:alice": 5, "addr:198.51.100.7": 20}


def test_retry_after_is_what_is_left_of_the_window():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after(start, start + timedelta(seconds=10)) == 50
    assert retry_after(start, start + timedelta(seconds=59, milliseconds=900)) == 1
    assert retry_after(start, start + timedelta(seconds=75)) == 1


def test_address_counts_read_as_people_read_them():
    assert count(254) == "254" and count(1022) == "1,022"
    assert count(1 << 64) == "2^64"
    assert count((1 << 64) - 1) == "about 1.84 \u00d7 10^19"
