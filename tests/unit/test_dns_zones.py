"""The region's zones from its DNS model: MAAS's forward and reverse rules (pure functions),
and the generated files checked by BIND's own named-checkzone when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import ip_address as A
from ipaddress import ip_network as N
from pathlib import Path

import pytest

from metalplane.region.dns.service import next_serial
from metalplane.region.dns.zones import (
    DnsModel,
    Domain,
    InvalidDnsModel,
    Record,
    Subnet,
    forward_zones,
    ptr_owner,
    render_zone,
    reverse_zone_name,
    reverse_zone_networks,
    reverse_zones,
    rfc2317_glue,
    rfc2317_parent,
    validate,
    zones,
)

NS = (A("10.0.0.1"),)


def dns(*domains: Domain, subnets: tuple[Subnet, ...] = (), **kw) -> DnsModel:
    return DnsModel(domains=domains or (Domain("maas"),), subnets=subnets, nameservers=kw.pop("nameservers", NS), **kw)


def by_name(model: DnsModel) -> dict[str, object]:
    return {z.name: z for z in zones(model)}


# --------------------------------------------------------------------------- reverse zone layout


@pytest.mark.parametrize(
    "cidr, names",
    [
        ("10.50.0.0/24", ["0.50.10.in-addr.arpa"]),
        ("10.50.0.0/16", ["50.10.in-addr.arpa"]),
        ("10.0.0.0/8", ["10.in-addr.arpa"]),
        (
            "10.50.4.0/22",
            ["4.50.10.in-addr.arpa", "5.50.10.in-addr.arpa", "6.50.10.in-addr.arpa", "7.50.10.in-addr.arpa"],
        ),
        ("172.16.0.0/12", [f"{i}.172.in-addr.arpa" for i in range(16, 32)]),
        ("10.50.0.128/26", ["128-26.0.50.10.in-addr.arpa"]),
        ("10.50.0.128/25", ["128-25.0.50.10.in-addr.arpa"]),
        ("10.50.0.7/32", ["7-32.0.50.10.in-addr.arpa"]),
        ("2001:db8::/64", ["0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"]),
        ("2001:db8::/62", [f"{i}.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" for i in range(4)]),
        ("2001:db8::/48", ["0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"]),
        ("2001:db8::c/126", ["c-126." + A("2001:db8::c").reverse_pointer.split(".", 1)[1]]),
    ],
)
def test_reverse_zones_follow_octet_and_nibble_boundaries(cidr: str, names: list[str]):
    assert [reverse_zone_name(n) for n in reverse_zone_networks(N(cidr))] == names


def test_ptr_owners_are_fully_qualified_inside_their_zone():
    assert ptr_owner(A("10.50.0.5"), N("10.50.0.0/24")) == "5.0.50.10.in-addr.arpa."
    assert ptr_owner(A("10.50.3.5"), N("10.50.0.0/16")) == "5.3.50.10.in-addr.arpa."
    assert ptr_owner(A("10.50.0.130"), N("10.50.0.128/26")) == "130.128-26.0.50.10.in-addr.arpa."
    assert ptr_owner(A("2001:db8::5"), N("2001:db8::/64")) == A("2001:db8::5").reverse_pointer + "."


def test_rfc2317_glue_points_each_address_into_the_small_zone():
    assert rfc2317_parent(N("10.50.0.128/26")) == N("10.50.0.0/24")
    assert rfc2317_parent(N("10.50.0.0/24")) is None and rfc2317_parent(N("2001:db8::/124")) is None
    assert rfc2317_glue(N("10.50.0.128/26")) == (
        "$GENERATE 128-191 $.0.50.10.in-addr.arpa. IN CNAME $.128-26.0.50.10.in-addr.arpa."
    )
    line = rfc2317_glue(N("2001:db8::c/126"))
    assert line.startswith("$GENERATE 12-15 ${0,1,x}.0.0.0.") and "IN CNAME ${0,1,x}.c-126.0.0." in line


# --------------------------------------------------------------------------- zones of a model


def test_forward_zones_ns_addresses_records_and_delegation():
    model = dns(
        Domain(
            "maas",
            (
                Record("node1", "A", "10.50.0.5"),
                Record("node1", "AAAA", "2001:db8::5"),
                Record("@", "MX", "10  mail"),
                Record("_x._tcp", "SRV", "0 5 80 node1"),
                Record("t", "TXT", 'say "hi"'),
            ),
            ttl=60,
        ),
        Domain("lab.maas", (Record("bmc", "A", "10.51.0.9"),)),
        Domain("deep.lab.maas"),
        Domain("other", authoritative=False),
        nameservers=(A("10.0.0.1"), A("2001:db8::1")),
    )
    zs = {z.name: z for z in forward_zones(model)}
    assert sorted(zs) == ["deep.lab.maas", "lab.maas", "maas"]  # not the non-authoritative one
    maas = zs["maas"]
    assert maas.ttl == 60 and zs["lab.maas"].ttl == 30  # domain ttl, else default_ttl
    assert maas.lines == (
        "@ IN A 10.0.0.1",
        "@ IN AAAA 2001:db8::1",  # the NS name's addresses
        "lab IN NS maas.",  # only the direct child
        "node1 IN A 10.50.0.5",
        "node1 IN AAAA 2001:db8::5",
        "@ IN MX 10 mail",
        "_x._tcp IN SRV 0 5 80 node1",
        't IN TXT "say \\"hi\\""',
    )
    assert zs["lab.maas"].lines == ("deep IN NS maas.", "bmc IN A 10.51.0.9")


def test_the_ns_name_inside_a_delegated_child_gets_glue():
    model = dns(Domain("maas"), Domain("region.maas"), default_domain="region.maas")
    zs = {z.name: z for z in forward_zones(model)}
    assert zs["maas"].lines == ("region IN NS region.maas.", "region IN A 10.0.0.1")
    assert zs["region.maas"].lines == ("@ IN A 10.0.0.1",)


def test_reverse_zones_by_rdns_mode_with_ptrs_and_rfc2317_glue():
    model = dns(
        Domain(
            "maas",
            (
                Record("a", "A", "10.50.0.5"),
                Record("b", "A", "10.50.0.130"),
                Record("c", "A", "10.60.0.200"),
                Record("d", "A", "10.70.5.9"),
                Record("*", "A", "10.50.0.6"),
                Record("e", "AAAA", "2001:db8::e"),
            ),
        ),
        subnets=(
            Subnet(N("10.50.0.0/24")),
            Subnet(N("10.50.0.128/26"), "rfc2317"),
            Subnet(N("10.60.0.192/26"), "rfc2317"),
            Subnet(N("10.70.0.0/16"), "disabled"),
            Subnet(N("2001:db8::/64")),
        ),
    )
    zs = {z.name: z for z in reverse_zones(model)}
    assert sorted(zs) == [
        "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "0.50.10.in-addr.arpa",
        "0.60.10.in-addr.arpa",
        "128-26.0.50.10.in-addr.arpa",
        "192-26.0.60.10.in-addr.arpa",
    ]
    parent = zs["0.50.10.in-addr.arpa"]
    # the /24 holds the /26's glue and no PTR of its own for the /26's addresses; no PTR for a wildcard
    assert parent.lines == (
        "$GENERATE 128-191 $.0.50.10.in-addr.arpa. IN CNAME $.128-26.0.50.10.in-addr.arpa.",
        "5.0.50.10.in-addr.arpa. IN PTR a.maas.",
    )
    assert zs["128-26.0.50.10.in-addr.arpa"].lines == ("130.128-26.0.50.10.in-addr.arpa. IN PTR b.maas.",)
    # no subnet covers 10.60.0.0/24: a zone made only for the glue
    glue = zs["0.60.10.in-addr.arpa"]
    assert glue.glue_only and glue.lines == (
        "$GENERATE 192-255 $.0.60.10.in-addr.arpa. IN CNAME $.192-26.0.60.10.in-addr.arpa.",
    )
    assert zs["0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"].lines == (
        f"{A('2001:db8::e').reverse_pointer}. IN PTR e.maas.",
    )


def test_enabled_small_subnet_has_its_zone_but_no_glue():
    model = dns(
        Domain("maas", (Record("b", "A", "10.50.0.130"),)),
        subnets=(Subnet(N("10.50.0.0/24")), Subnet(N("10.50.0.128/26"), "enabled")),
    )
    zs = {z.name: z for z in reverse_zones(model)}
    assert zs["0.50.10.in-addr.arpa"].lines == ("130.0.50.10.in-addr.arpa. IN PTR b.maas.",)
    assert zs["128-26.0.50.10.in-addr.arpa"].lines == ("130.128-26.0.50.10.in-addr.arpa. IN PTR b.maas.",)


def test_glue_in_a_16_zone_is_fully_qualified():
    model = dns(subnets=(Subnet(N("10.50.0.0/16")), Subnet(N("10.50.3.0/27"), "rfc2317")))
    zs = {z.name: z for z in reverse_zones(model)}
    assert zs["50.10.in-addr.arpa"].lines == (
        "$GENERATE 0-31 $.3.50.10.in-addr.arpa. IN CNAME $.0-27.3.50.10.in-addr.arpa.",
    )
    assert "3.50.10.in-addr.arpa" not in zs  # the /16 zone holds the glue: no extra zone


def test_overlapping_subnets_share_one_zone():
    model = dns(
        Domain("maas", (Record("a", "A", "10.50.0.5"),)), subnets=(Subnet(N("10.50.0.0/23")), Subnet(N("10.50.0.0/24")))
    )
    zs = reverse_zones(model)
    assert [z.name for z in zs] == ["0.50.10.in-addr.arpa", "1.50.10.in-addr.arpa"]
    assert zs[0].lines == ("5.0.50.10.in-addr.arpa. IN PTR a.maas.",)


def test_render_zone_soa_and_ns():
    zone = forward_zones(dns(Domain("maas", (Record("n", "A", "10.0.0.9", ttl=5),))))[0]
    text = render_zone(zone, 1234, "maas")
    assert text.splitlines()[1:] == [
        "$ORIGIN maas.",
        "$TTL 30",
        "@ IN SOA maas. nobody.example.com. ( 1234 600 1800 604800 30 )",
        "@ IN NS maas.",
        "@ IN A 10.0.0.1",
        "n 5 IN A 10.0.0.9",
    ]


def test_serials_only_go_up():
    assert next_serial(None, 1700000000.7) == 1700000000
    assert next_serial(1700000000, 1700000000.2) == 1700000001  # twice in a second
    assert next_serial(2000000000, 1700000000) == 2000000001  # the clock went back
    with pytest.raises(ValueError):
        next_serial(2**32 - 1, 0)


# --------------------------------------------------------------------------- validation


def test_validation_names_each_faulty_field():
    model = DnsModel(
        domains=(
            Domain(
                "maas",
                (
                    Record("bad name", "A", "10.0.0.1"),
                    Record("x", "A", "2001:db8::1"),
                    Record("y", "AAAA", "10.0.0.1"),
                    Record("z", "HINFO", "a b"),
                    Record("w", "MX", "mail"),
                    Record("v", "CNAME", "a b"),
                    Record("u", "A", "1.2.3.4", ttl=-1),
                ),
            ),
            Domain("maas"),
            Domain("-bad-"),
        ),
        subnets=(Subnet(N("10.0.0.0/24"), "sometimes"),),
        default_domain="nothere",
        default_ttl=-5,
    )
    with pytest.raises(InvalidDnsModel) as err:
        validate(model)
    errors = "\n".join(err.value.errors)
    for expected in (
        "default_ttl: -5",
        "domains[0].records[0].name: 'bad name'",
        "domains[0].records[1].rrdata: '2001:db8::1' is not an IPv4 address",
        "domains[0].records[2].rrdata: '10.0.0.1' is not an IPv6 address",
        "domains[0].records[3].rrtype: 'HINFO'",
        "domains[0].records[4].rrdata: 'mail'",
        "domains[0].records[5].rrdata",
        "domains[0].records[6].ttl: -1",
        "domains[1].name: domain maas is given twice",
        "domains[2].name: '-bad-'",
        "default_domain: 'nothere'",
        "nameservers: at least one",
        "subnets[0].rdns_mode: 'sometimes'",
    ):
        assert expected in errors, expected


def test_a_domain_named_like_a_reverse_zone_is_refused():
    with pytest.raises(InvalidDnsModel, match="also a reverse zone"):
        zones(dns(Domain("maas"), Domain("0.50.10.in-addr.arpa"), subnets=(Subnet(N("10.50.0.0/24")),)))


# --------------------------------------------------------------------------- BIND agrees


@pytest.mark.skipif(shutil.which("named-checkzone") is None, reason="bind9-utils not installed")
def test_every_generated_zone_loads_in_named_checkzone(tmp_path: Path):
    model = dns(
        Domain(
            "maas",
            (
                Record("a", "A", "10.50.0.5"),
                Record("b", "A", "10.50.0.130"),
                Record("www", "CNAME", "a"),
                Record("@", "MX", "10 a"),
                Record("t", "TXT", "x y"),
                Record("_s._tcp", "SRV", "1 2 3 a"),
                Record("e", "AAAA", "2001:db8::e"),
            ),
        ),
        Domain("lab.maas", (Record("bmc", "A", "10.60.0.9"),)),
        subnets=(
            Subnet(N("10.50.0.0/24")),
            Subnet(N("10.50.0.128/26"), "rfc2317"),
            Subnet(N("10.60.0.0/22")),
            Subnet(N("10.70.0.64/27"), "rfc2317"),
            Subnet(N("2001:db8::/64")),
            Subnet(N("2001:db8:1::8/125"), "rfc2317"),
        ),
    )
    all_zones = zones(model)
    assert len(all_zones) == 2 + 1 + 1 + 4 + 2 + 1 + 2
    for zone in all_zones:
        path = tmp_path / f"db.{zone.name}"
        path.write_text(render_zone(zone, 7, "maas"))
        out = subprocess.run(["named-checkzone", zone.name, str(path)], capture_output=True, text=True)
        assert out.returncode == 0, (zone.name, out.stdout, path.read_text())
