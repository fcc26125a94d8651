"""Authoritative DNS on regions and the rack's resolver, with real named processes and
real dig, each host in its own network namespace (tests.support.dns_lab)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator

import pytest

from metalplane.dns import NamedConfigError, ZoneFile
from metalplane.rack.dns import RackResolver, RegionDnsServer, ResolverConfig
from metalplane.region.dns import AuthoritativeDns, AuthoritativeOptions, DnsModel, Domain, Record, Subnet
from metalplane.supervised import prefix_wrap
from tests.support.dns_lab import (
    OUTSIDE_ADDRESS,
    OUTSIDE_NAME,
    PXE,
    RACK_MGMT,
    DnsLab,
    dig,
    region_address,
)
from tests.support.netlab import Lab, list_netns

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        shutil.which("named") is None or shutil.which("dig") is None, reason="bind9 and bind9-dnsutils not installed"
    ),
    pytest.mark.timeout(180),
    pytest.mark.asyncio(loop_scope="session"),
]

A = ipaddress.ip_address
N = ipaddress.ip_network


def model(*records: Record, ttl: int | None = None) -> DnsModel:
    base = (Record("node1", "A", "10.70.0.5"), Record("node2", "A", "10.70.0.150"), Record("web", "CNAME", "node1"))
    return DnsModel(
        domains=(Domain("maas", base + records, ttl=ttl), Domain("lab.maas", (Record("bmc1", "A", "10.70.1.40"),))),
        subnets=(Subnet(N(PXE), "enabled"), Subnet(N("10.70.0.128/26"), "rfc2317"), Subnet(N("10.70.1.0/24"))),
        nameservers=tuple(A(region_address(i)) for i in range(2)),
    )


@pytest.fixture
async def dns() -> AsyncIterator[DnsLab]:
    lab = Lab()
    lab.start()
    dl = None
    try:
        dl = DnsLab(lab, regions=2)
        await dl.start(model())
        yield dl
    finally:
        if dl is not None:
            await dl.stop()
        lab.close()
        assert [n for n in list_netns() if n.startswith(lab.prefix + "-")] == []


async def test_names_reverse_names_and_outside_names_through_the_rack(dns: DnsLab):
    assert dns.dig("node1.maas").data == ["10.70.0.5"]
    assert dns.dig("web.maas").data == ["node1.maas.", "10.70.0.5"]
    assert dns.dig("bmc1.lab.maas").data == ["10.70.1.40"]  # a child domain, delegated
    assert dns.dig("nothing.maas").status == "NXDOMAIN"
    assert dns.dig("5.0.70.10.in-addr.arpa", "PTR").data == ["node1.maas."]
    # RFC 2317: 10.70.0.150 lives in the /26's own zone, reached through the /24's CNAME glue
    assert dns.dig("150.0.70.10.in-addr.arpa", "PTR").data == ["150.128-26.0.70.10.in-addr.arpa.", "node2.maas."]
    assert dns.dig("40.1.70.10.in-addr.arpa", "PTR").data == ["bmc1.lab.maas."]
    # everything else goes to upstream_dns, a BIND in its own namespace
    assert dns.dig(OUTSIDE_NAME).data == [OUTSIDE_ADDRESS]
    # the client cannot reach a region itself: the answers above came through its rack
    assert dig(dns.client, region_address(0), "node1.maas", port=5247).status == "TIMEOUT"
    for svc in [*dns.regions, dns.resolver]:
        assert svc.status()[0] == "running", svc.status()


async def test_dnssec_validation_on_still_answers_the_maas_zones(dns: DnsLab):
    # With validation on, the unsigned MAAS zones are in validate-except; without that the rack would
    # find no chain of trust for them (there is no root here) and answer SERVFAIL.
    for mode in ("yes", "auto"):
        dns.dnssec_validation = mode
        assert await dns.resolver.apply(dns.resolver_config(model())) == "reconfigured"
        await dns.resolver.flush()
        assert dns.dig("node1.maas").data == ["10.70.0.5"]
        assert dns.dig("5.0.70.10.in-addr.arpa", "PTR").data == ["node1.maas."]
    conf = dns.resolver.server.layout.conf.read_text()
    assert 'validate-except { "0.70.10.in-addr.arpa"; ' in conf and "dnssec-validation auto;" in conf
    # the control: the same configuration without validate-except cannot answer for maas. (With "yes"
    # BIND validates only below trust anchors configured by hand, so it would answer either way.)
    bare = "".join(line + "\n" for line in conf.splitlines() if "validate-except" not in line)
    await dns.resolver.server.apply(bare, {})
    await dns.resolver.flush()
    assert dns.dig("node1.maas").status == "SERVFAIL"


async def test_a_change_reaches_the_clients_within_5_seconds(dns: DnsLab):
    assert dns.dig("node1.maas").data == ["10.70.0.5"]  # now cached by the rack (TTL 30)
    assert dns.dig("new1.maas").status == "NXDOMAIN"  # and so is this "no"
    t0 = time.monotonic()
    applied = await dns.publish(model(Record("new1", "A", "10.70.0.77")))
    assert sorted(applied[0].changed) == ["0.70.10.in-addr.arpa", "maas"]
    await dns.until_answer("new1.maas", ["10.70.0.77"], timeout=5)
    created = time.monotonic() - t0
    assert dns.dig("77.0.70.10.in-addr.arpa", "PTR").data == ["new1.maas."]
    # the machine's address changes
    t0 = time.monotonic()
    await dns.publish(model(Record("new1", "A", "10.70.0.78")))
    await dns.until_answer("new1.maas", ["10.70.0.78"], timeout=5)
    moved = time.monotonic() - t0
    assert created < 5 and moved < 5
    print(f"created -> answered {created:.3f}s, changed -> answered {moved:.3f}s")
    # serials only ever go up, and only for zones that changed
    s1 = dns.regions[0].server.serials
    await dns.publish(model(Record("new1", "A", "10.70.0.78"), Record("other", "TXT", "v=1")))
    s2 = dns.regions[0].server.serials
    assert s2["maas"] > s1["maas"] and s2["0.70.10.in-addr.arpa"] == s1["0.70.10.in-addr.arpa"]


async def test_kill_9_of_one_region_the_other_answers(dns: DnsLab):
    names = [f"m{i}.maas" for i in range(20)]
    await dns.publish(model(*(Record(n.split(".")[0], "A", f"10.70.0.{10 + i}") for i, n in enumerate(names))))
    victim = dns.regions[0]
    pid = victim.server.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    while victim.status()[0] != "dead":
        assert time.monotonic() - t0 < 5, victim.status()
        await asyncio.sleep(0.05)
    assert "SIGKILL" in victim.status()[1]
    # none of these was asked before: each goes to a region; every one is answered
    started = time.monotonic()
    for i, name in enumerate(names):
        got = await dns.adig(name)
        assert got.data == [f"10.70.0.{10 + i}"], (name, got)
    print(f"20 names through the rack with region1 dead: {time.monotonic() - started:.2f}s")
    # the supervisor brings the victim back with its last good configuration
    t0 = time.monotonic()
    while victim.status()[0] != "running":
        assert time.monotonic() - t0 < 10, victim.status()
        await asyncio.sleep(0.05)
    # "running" is the process started; it answers once named has loaded the zone
    t0 = time.monotonic()
    while (answer := dig(dns.rack, region_address(0), "m3.maas", port=5247).data) != ["10.70.0.13"]:
        assert time.monotonic() - t0 < 5, answer
        await asyncio.sleep(0.1)
    assert victim.server.process.restarts == 1


async def test_a_refused_configuration_keeps_the_last_good_one_serving(dns: DnsLab):
    region = dns.regions[0]
    good_serials = dict(region.server.serials)
    bad = model(Record("web", "A", "10.70.0.9"))  # web is a CNAME already: BIND refuses the zone
    with pytest.raises(NamedConfigError) as err:
        await region.apply(bad)
    assert "CNAME and other data" in err.value.message
    status, text = region.status()
    assert status == "degraded" and "CNAME and other data" in text, text
    assert region.server.serials == good_serials
    assert "web.maas. IN A" not in region.server.layout.zone_file("maas").read_text().replace(" 30 ", " ")
    # the last good zone keeps answering, from this region directly too
    assert dig(dns.rack, region_address(0), "web.maas", port=5247).data == ["node1.maas.", "10.70.0.5"]
    assert dns.dig("node1.maas").data == ["10.70.0.5"]
    # and after a restart of named it is still the last good one that loads
    os.kill(region.server.process.pid, signal.SIGKILL)
    t0 = time.monotonic()
    while not (region.server.process.running() and region.server.process.restarts == 1):
        assert time.monotonic() - t0 < 10
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert dig(dns.rack, region_address(0), "web.maas", port=5247).data == ["node1.maas.", "10.70.0.5"]
    # a good configuration clears the refusal
    await region.apply(model(Record("fixed", "A", "10.70.0.9")))
    assert region.status()[0] == "running"
    # a named.conf BIND refuses is refused the same way (the resolver's here)
    resolver = dns.resolver
    with pytest.raises(NamedConfigError) as err:
        await resolver.server.apply(resolver.render(dns.resolver_config(model())) + "bogus-option yes;\n", {})
    assert "unknown option 'bogus-option'" in err.value.message
    assert resolver.status()[0] == "degraded"
    assert dns.dig("node1.maas").data == ["10.70.0.5"]


async def test_a_zone_named_does_not_load_as_expected_is_rolled_back(dns: DnsLab):
    """named-checkzone passed, but named does not serve the new serial: the previous file comes back."""
    server = dns.regions[0].server
    server.reload_timeout = 1.0
    path = server.layout.zone_file("maas")
    before = path.read_text()
    serial = server.serials["maas"]
    changed = before.replace("10.70.0.5", "10.70.0.6")  # the SOA inside still says `serial`
    with pytest.raises(NamedConfigError, match="did not load maas"):
        await server.apply(server.layout.conf.read_text(), {"maas": ZoneFile(changed, serial + 1)})
    assert path.read_text() == before and server.serials["maas"] == serial
    assert server.status()[0] == "degraded"
    t0 = time.monotonic()
    while dig(dns.rack, region_address(0), "node1.maas", port=5247).data != ["10.70.0.5"]:
        assert time.monotonic() - t0 < 5
        await asyncio.sleep(0.1)


async def test_region_and_rack_on_one_host_share_it_without_a_port_clash(dns: DnsLab):
    """The all-in-one plan: the authoritative named on :5247, the resolver on :53, two control ports."""
    host = dns.lab.add_host("allinone", {"pxe": "10.70.0.3/24"})
    wrap = prefix_wrap(host.command([]))
    region = AuthoritativeDns(
        dns.lab.workdir / "aio-region",
        wrap=wrap,
        threads=1,
        options=AuthoritativeOptions(listen=(A("10.70.0.3"), A("127.0.0.1"))),
    )
    rack = RackResolver(dns.lab.workdir / "aio-rack", wrap=wrap, threads=1)
    try:
        local = DnsModel(
            domains=(Domain("maas", (Record("solo", "A", "10.70.0.33"),)),),
            subnets=(Subnet(N(PXE)),),
            nameservers=(A("10.70.0.3"),),
        )
        await region.apply(local)
        await rack.apply(
            ResolverConfig(
                zones=("maas", "0.70.10.in-addr.arpa"),
                regions=(RegionDnsServer(A("127.0.0.1")),),
                listen=(A("10.70.0.3"),),
                allow=(N(PXE),),
            )
        )
        assert dig(dns.client, "10.70.0.3", "solo.maas").data == ["10.70.0.33"]
        assert dig(dns.client, "10.70.0.3", "33.0.70.10.in-addr.arpa", "PTR").data == ["solo.maas."]
        assert region.status()[0] == rack.status()[0] == "running"
        listening = host.run(["ss", "-ulnpH"]).stdout
        assert ":5247" in listening and "10.70.0.3:53" in listening and "127.0.0.1:53" in listening
    finally:
        await asyncio.gather(region.stop(), rack.stop())


async def test_the_resolver_listens_on_its_vlans_and_the_region_never_recurses(dns: DnsLab):
    stranger = dns.lab.add_host("stranger", {"mgmt": "10.70.1.77/24"})
    # the rack resolves on its pxe address (and 127.0.0.1), not on its mgmt address
    assert dig(stranger, RACK_MGMT, "node1.maas").status == "TIMEOUT"
    assert dig(dns.rack, "127.0.0.1", "node1.maas").data == ["10.70.0.5"]
    # the region's authoritative server answers anyone for its zones, but resolves nothing else
    assert dig(stranger, region_address(0), "node1.maas", port=5247).data == ["10.70.0.5"]
    assert dig(stranger, region_address(0), OUTSIDE_NAME, port=5247).status == "REFUSED"
