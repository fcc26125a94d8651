"""The rack's other services end to end: two regions and two racks as real processes in
network namespaces, each region with its named and chronyd, each rack with its resolver,
chronyd and ARP listener, all driven through the API; real clients (dig, sntp, arping,
udhcpc) on a machine network that reaches nothing but its racks.

    mgmt 10.76.1.0/24: region1 .11, region2 .12, rack1 .2, rack2 .3, upstream .99 (a BIND
                       serving example.test: the outside world)
    pxe  10.76.0.0/24: rack1 .2, rack2 .3, machines (DHCP), arping hosts .61-.67
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from metalplane.ntp.config import ChronyConfig, ChronyPaths
from metalplane.ntp.config import render as render_chrony
from metalplane.region.bootstrap import run_db
from metalplane.region.dns import AuthoritativeDns, AuthoritativeOptions, DnsModel, Domain, Record
from metalplane.region.services import dnsresources
from tests.support.dhcp_clients import Lease
from tests.support.dns_lab import dig
from tests.support.netlab import Host, Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        any(shutil.which(t) is None for t in ("named", "dig", "chronyd", "sntp", "arping")),
        reason="bind9, bind9-dnsutils, chrony, sntp and iputils-arping are needed",
    ),
    pytest.mark.timeout(600),
]

MGMT, PXE = "10.76.1.0/24", "10.76.0.0/24"
REGIONS = {"region1": "10.76.1.11", "region2": "10.76.1.12"}
RACKS = {"rack1": ("10.76.1.2", "10.76.0.2"), "rack2": ("10.76.1.3", "10.76.0.3")}
PXE6 = "fd76::/64"
RACKS6 = {"rack1": "fd76::2", "rack2": "fd76::3"}
UPSTREAM, OUTSIDE_NAME, OUTSIDE_ADDRESS = "10.76.1.99", "www.example.test", "192.0.2.80"
ARPING = {f"h{n}": (f"10.76.0.{60 + n}", f"52:54:00:76:00:{60 + n:02x}") for n in range(1, 8)}


def outside_bind(lab: Lab, host: Host) -> None:
    """The upstream_dns a MAAS operator points at: a BIND of its own, authoritative for
    example.test (its files rendered as a region's, run as a plain lab process)."""
    dns = AuthoritativeDns(lab.workdir / "dns-upstream", threads=1, options=AuthoritativeOptions(port=53))
    plan = dns.render(
        DnsModel(
            domains=(Domain("example.test", (Record("www", "A", OUTSIDE_ADDRESS),)),),
            default_domain="example.test",
            nameservers=(ipaddress.ip_address(UPSTREAM),),
        )
    )
    layout = dns.server.layout
    layout.conf.write_text(plan.conf)
    for zone, zone_file in plan.files.items():
        layout.zone_file(zone).write_text(zone_file.text)
    host.spawn(["named", "-g", "-n", "1", "-c", str(layout.conf)], log=layout.directory / "named.log")


def outside_ntp(lab: Lab, host: Host) -> None:
    """The ntp_servers the regions follow: a chronyd serving its clock at stratum 3."""
    paths = ChronyPaths(lab.new_workdir("ntp-upstream"))
    paths.run_dir.mkdir(mode=0o700)
    paths.conf.write_text(render_chrony(ChronyConfig((), 3, (ipaddress.ip_network(MGMT),)), paths))
    host.spawn(["chronyd", "-x", "-d", "-u", "root", "-f", str(paths.conf)], log=paths.directory / "chronyd.log")


@pytest.fixture(scope="module")
def stack(databases):
    with Lab() as lab:
        lab.add_network("mgmt", MGMT)
        lab.add_network("pxe", PXE)
        region_hosts = {name: lab.add_host(name, {"mgmt": f"{ip}/24"}) for name, ip in REGIONS.items()}
        rack_hosts = {name: lab.add_host(name, {"mgmt": f"{m}/24", "pxe": f"{p}/24"}) for name, (m, p) in RACKS.items()}
        for name, host in rack_hosts.items():  # the machine network is dual-stack
            host.sysctl("net.ipv6.conf.pxe.accept_dad", 0)
            host.add_address("pxe", f"{RACKS6[name]}/64")
        upstream = lab.add_host("upstream", {"mgmt": f"{UPSTREAM}/24"})
        outside_bind(lab, upstream)
        outside_ntp(lab, upstream)
        s = Stack(lab, databases)
        for name, host in region_hosts.items():
            s.start_region(host, "mgmt", name=name, num_workers=1)
        s.cli("admin", "maas", "set-config", "name=upstream_dns", f"value={UPSTREAM}")
        s.cli("admin", "maas", "set-config", "name=dnssec_validation", "value=no")
        s.cli("admin", "maas", "set-config", "name=ntp_servers", f"value={UPSTREAM}")
        urls = [f"http://{ip}:5240/MAAS/" for ip in REGIONS.values()]
        for name, host in rack_hosts.items():
            s.add_rack(host, name, urls=urls)
            s.start_rack(name)
        wait_until(lambda: len(s.api("rack-controllers", "read")) == 2, 60, what="both racks registered")
        s.region_hosts, s.rack_hosts = region_hosts, rack_hosts
        s.client = lab.add_host("client", {"pxe": "10.76.0.50/24"})
        s.arping_hosts = {
            name: lab.add_host(name, {"pxe": f"{ip}/24"}, macs={"pxe": mac}) for name, (ip, mac) in ARPING.items()
        }
        s.figures = {}
        yield s
        print("figures:", s.figures)


def services(stack: Stack, kind: str, hostname: str) -> dict[str, tuple[str, str]]:
    """{name: (status, status_info)} of a controller's service_set, in one API read."""
    for node in stack.api(kind, "read"):
        if node["hostname"] == hostname:
            return {s["name"]: (s["status"], s["status_info"]) for s in node["service_set"]}
    raise AssertionError(f"no {kind} {hostname}")


def service(stack: Stack, kind: str, hostname: str, name: str) -> tuple[str, str]:
    return services(stack, kind, hostname)[name]


def rack_board(stack: Stack, rack: str) -> dict[str, dict[str, str]]:
    """What the rack says of itself on disk (it may have no region to tell)."""
    path: Path = stack.racks[rack][1] / "services.json"
    return json.loads(path.read_text())["services"] if path.exists() else {}


def test_the_racks_resolve_maas_names_through_the_regions_and_the_rest_upstream(stack):
    rack1 = stack.rack_hosts["rack1"]
    wait_until(
        lambda: service(stack, "rack-controllers", "rack1", "dns_rack")[0] == "running",
        30,
        what="rack1's resolver running",
    )
    wait_until(
        lambda: all(service(stack, "region-controllers", r, "bind9")[0] == "running" for r in REGIONS),
        30,
        what="both regions' named running",
    )
    answer = wait_until(
        lambda: (a := dig(rack1, RACKS["rack1"][1], "rack2.maas")).data and a, 15, what="rack2's name through rack1"
    )
    assert answer.data == [RACKS["rack2"][0], RACKS["rack2"][1]] or sorted(answer.data) == sorted(RACKS["rack2"])
    assert dig(rack1, RACKS["rack1"][1], OUTSIDE_NAME).data == [OUTSIDE_ADDRESS]


def test_a_machine_s_name_follows_its_dhcp_address_within_seconds(stack):
    """Created through the API, given an address by the rack's Kea: the name resolves through
    the rack within 5 s of the lease, the address resolves back to it; a new address (the
    old one released, the range moved) replaces the old one in DNS just as fast."""
    rack = RACKS["rack1"][1]
    stack.serve_dhcp(PXE, "10.76.0.100", "10.76.0.150", "rack1")
    m1 = stack.lab.add_host("m1", {"pxe": None}, macs={"pxe": "52:54:00:76:01:01"})
    stack.api(
        "machines",
        "create",
        "hostname=m1",
        "mac_addresses=52:54:00:76:01:01",
        "architecture=amd64/generic",
        "power_type=manual",
    )
    lease = m1.dhcp_udhcpc("pxe", timeout=20)
    assert lease.env.get("dns", "").split() == [rack]  # DHCP: the rack is the resolver
    assert lease.env.get("ntpsrv", "").split() == [rack]  # and the time server (option 42)
    t0 = time.monotonic()
    wait_until(lambda: dig(m1, rack, "m1.maas").data == [lease.ip], 5, interval=0.05, what="m1.maas through rack1")
    stack.figures["lease to answer"] = time.monotonic() - t0
    ptr = ipaddress.ip_address(lease.ip).reverse_pointer
    assert dig(m1, rack, ptr, "PTR").data == ["m1.maas."]

    client = stack.client
    running = m1.start_udhcpc("pxe", timeout=20, extra_args=["-R"])
    running.wait_lease(25)
    running.stop()  # SIGTERM with -R: DHCPRELEASE
    wait_until(
        lambda: dig(client, rack, "m1.maas").status == "NXDOMAIN",
        5,
        interval=0.05,
        what="the released address gone from DNS",
    )
    iprange = next(r for r in stack.api("ipranges", "read") if r["start_ip"] == "10.76.0.100")
    stack.api("iprange", "update", str(iprange["id"]), "start_ip=10.76.0.120")
    moved = wait_until(
        lambda: (ls := m1.dhcp_udhcpc("pxe", timeout=10)) and ls.ip != lease.ip and ls,
        30,
        interval=0.5,
        what="a new address for m1",
    )
    t0 = time.monotonic()
    wait_until(lambda: dig(client, rack, "m1.maas").data == [moved.ip], 5, interval=0.05, what="m1.maas's new address")
    stack.figures["moved lease to answer"] = time.monotonic() - t0
    assert dig(client, rack, ipaddress.ip_address(moved.ip).reverse_pointer, "PTR").data == ["m1.maas."]


def test_dhcp_names_the_subnet_s_dns_servers_and_the_default_domain(stack):
    """A subnet's dns_servers replace the racks in DHCP's DNS option; after set_default the
    machines are in the new domain: DHCP hands its name out, with the other domains after it
    in the search list (option 119), and the machine's name resolves in it through the rack
    (and no longer in maas). A machine given a domain of its own resolves in that one."""
    rack = RACKS["rack1"][1]
    subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == PXE)
    m2 = stack.lab.add_host("m2", {"pxe": None}, macs={"pxe": "52:54:00:76:01:02"})
    machine = stack.api(
        "machines",
        "create",
        "hostname=m2",
        "mac_addresses=52:54:00:76:01:02",
        "architecture=amd64/generic",
        "power_type=manual",
    )
    search = ["-O", "search"]  # udhcpc asks for option 119 only when told (systemd-networkd, dhclient ask)
    lease = m2.dhcp_udhcpc("pxe", timeout=20, extra_args=search)
    assert lease.env.get("domain") == "maas" and lease.env.get("dns", "").split() == [rack]
    assert lease.env.get("search", "").split() == ["maas"]
    stack.api("subnet", "update", str(subnet["id"]), f"dns_servers={UPSTREAM}")
    try:
        wait_until(
            lambda: m2.dhcp_udhcpc("pxe", timeout=10).env.get("dns", "").split() == [UPSTREAM],
            15,
            interval=0.5,
            what="the subnet's dns_servers in DHCP",
        )
    finally:
        stack.api("subnet", "update", str(subnet["id"]), "dns_servers=")
    domain = stack.api("domains", "create", "name=lab.test")
    stack.api("domain", "set-default", str(domain["id"]))
    try:
        moved = wait_until(
            lambda: (ls := m2.dhcp_udhcpc("pxe", timeout=10, extra_args=search)).env.get("domain") == "lab.test" and ls,
            15,
            interval=0.5,
            what="the new default domain in DHCP",
        )
        assert moved.env.get("dns", "").split() == [rack]
        assert moved.env.get("search", "").split() == ["lab.test", "maas"]
        wait_until(lambda: dig(m2, rack, "m2.lab.test").data == [moved.ip], 5, interval=0.1, what="m2.lab.test")
        wait_until(lambda: dig(m2, rack, "m2.maas").status == "NXDOMAIN", 5, interval=0.1, what="m2.maas gone")
    finally:
        stack.api("domain", "set-default", "0")
    wait_until(lambda: dig(m2, rack, "m2.maas").data, 5, interval=0.1, what="m2.maas back")
    stack.api("machine", "update", machine["system_id"], "domain=lab.test")  # a domain of its own
    try:
        wait_until(lambda: dig(m2, rack, "m2.lab.test").data == [moved.ip], 5, interval=0.1, what="m2 in lab.test")
        assert dig(m2, rack, moved.address.ip.reverse_pointer, "PTR").data == ["m2.lab.test."]
        wait_until(lambda: dig(m2, rack, "m2.maas").status == "NXDOMAIN", 5, interval=0.1, what="m2.maas gone")
    finally:
        stack.api("machine", "update", machine["system_id"], "domain=maas")
    stack.api("domain", "delete", str(domain["id"]))
    wait_until(lambda: dig(m2, rack, "m2.maas").data, 5, interval=0.1, what="m2.maas back")


def daemon_pids(host: Host, comm: str) -> list[int]:
    return [pid for pid in host.pids() if Path(f"/proc/{pid}/comm").read_text().strip() == comm]


def restarts(info: str) -> int:
    return int(info.rsplit("restarts ", 1)[1].split()[0].rstrip(";,")) if "restarts " in info else -1


def kill_chronyd_within_5_s(stack: Stack, host: Host, kind: str, hostname: str, name: str) -> float:
    """kill -9 of `host`'s chronyd: seconds until `hostname`'s `name` in `kind` read shows
    the restart (its count goes up); fails after 5 s."""
    before = restarts(service(stack, kind, hostname, name)[1])
    (chronyd,) = daemon_pids(host, "chronyd")
    os.kill(chronyd, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(
        lambda: restarts(service(stack, kind, hostname, name)[1]) > max(before, 0),
        5,
        interval=0.1,
        what=f"{hostname}'s {name} to show chronyd's restart",
    )
    return time.monotonic() - killed


def test_kill_9_of_one_region_s_named_loses_no_query(stack):
    """The rack forwards the MAAS zones to both regions: with one named killed, 20 names
    nobody asked before (nothing cached) all resolve; the death shows in bind9 at once."""
    region = stack.regions["region1"][1]

    async def names(conn):
        for n in range(20):
            await dnsresources.create_resource(
                conn, {"name": f"q{n}", "domain": "maas", "ip_addresses": f"10.76.2.{n + 1}"}
            )

    run_db(region, names)
    rack, client = RACKS["rack1"][1], stack.client
    wait_until(
        lambda: all(service(stack, "region-controllers", r, "bind9")[0] == "running" for r in REGIONS),
        10,
        what="both regions serving the new names",
    )
    time.sleep(1)  # the zones' reload done everywhere: the 20 names are in both regions' zones
    before = restarts(service(stack, "region-controllers", "region1", "bind9")[1])
    (pid,) = daemon_pids(stack.region_hosts["region1"], "named")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    answers = [dig(client, rack, f"q{n}.maas", timeout=3) for n in range(20)]
    assert [a.data for a in answers] == [[f"10.76.2.{n + 1}"] for n in range(20)], answers
    stack.figures["20 uncached names after kill -9 of one named"] = time.monotonic() - killed
    # the region reports the death and the restart (its supervisor's callback, within 5 s)
    wait_until(
        lambda: restarts(service(stack, "region-controllers", "region1", "bind9")[1]) > before,
        5,
        interval=0.2,
        what="region1's bind9 to show named's restart",
    )
    assert service(stack, "region-controllers", "region1", "bind9")[0] == "running"


def test_kill_9_of_a_rack_s_named_and_chronyd_shows_in_its_service_set_within_5_s(stack):
    """The rack's resolver and chronyd are supervised by the rack: each death reaches the
    region's `service_set` within 5 s (the restart count), and both serve again."""
    rack, client = stack.rack_hosts["rack1"], stack.client
    wait_until(
        lambda: service(stack, "rack-controllers", "rack1", "dns_rack")[0] == "running",
        30,
        what="rack1's resolver running",
    )
    before = restarts(service(stack, "rack-controllers", "rack1", "dns_rack")[1])
    (named,) = daemon_pids(rack, "named")
    os.kill(named, signal.SIGKILL)
    killed = time.monotonic()
    wait_until(
        lambda: restarts(service(stack, "rack-controllers", "rack1", "dns_rack")[1]) > before,
        5,
        interval=0.1,
        what="rack1's dns_rack to show named's restart",
    )
    stack.figures["kill -9 of a rack's named to dns_rack in the API"] = time.monotonic() - killed
    wait_until(lambda: dig(client, RACKS["rack1"][1], "rack2.maas").data, 10, what="rack1 resolving again")

    took = kill_chronyd_within_5_s(stack, rack, "rack-controllers", "rack1", "ntp_rack")
    stack.figures["kill -9 of a rack's chronyd to ntp_rack in the API"] = took
    wait_until(
        lambda: daemon_pids(rack, "chronyd") and sntp(client, RACKS["rack1"][1]),
        30,
        interval=0.5,
        what="rack1 serving time again",
    )


def test_bad_input_is_refused_at_the_api_and_a_refused_zone_keeps_the_last_good_one(stack):
    rack, client = RACKS["rack1"][1], stack.client
    resolver_conf = stack.racks["rack1"][1] / "dns-rack" / "named" / "named.conf"
    before = resolver_conf.read_text()
    bad = stack.cli("admin", "maas", "set-config", "name=upstream_dns", "value=dns.example.com", check=False)
    assert bad.returncode == 2 and "Invalid IP address: dns.example.com" in bad.stdout
    bad = stack.cli("admin", "maas", "set-config", "name=ntp_servers", "value=ntp.example.com bad_host!", check=False)
    assert bad.returncode == 2 and "bad_host!" in bad.stdout
    bad = stack.cli("admin", "subnets", "create", "cidr=10.76.0.0/16", check=False)
    assert bad.returncode == 2 and "would overlap with existing subnets" in bad.stdout
    bad = stack.cli("admin", "domains", "create", "name=0.76.10.in-addr.arpa", check=False)
    assert bad.returncode == 2 and "also a reverse zone" in bad.stdout
    time.sleep(1)
    assert resolver_conf.read_text() == before  # nothing of it reached the rack's named

    # Valid for MAAS, refused by BIND: an NS for the zone whose name has no address.
    ns = stack.api("dnsresource-records", "create", "fqdn=maas", "rrtype=NS", "rrdata=ns2.maas.")
    for region in REGIONS:
        wait_until(
            lambda r=region: service(stack, "region-controllers", r, "bind9")[0] == "degraded",
            10,
            what=f"{region}'s bind9 degraded",
        )
    info = service(stack, "region-controllers", "region1", "bind9")[1]
    assert "NS 'ns2.maas' has no address records (A or AAAA)" in info, info
    assert dig(client, rack, "q1.maas").data == ["10.76.2.2"]  # the last good zone serves
    stack.api("dnsresource-record", "delete", str(ns["id"]))
    wait_until(
        lambda: all(service(stack, "region-controllers", r, "bind9")[0] == "running" for r in REGIONS),
        10,
        what="bind9 running again",
    )


def sntp(host: Host, server: str) -> bool:
    return host.run(["sntp", "-t", "2", server], check=False, timeout=20).returncode == 0


def test_machines_get_time_from_their_rack(stack):
    rack = RACKS["rack1"][1]
    wait_until(
        lambda: all(service(stack, "region-controllers", r, "ntp_region")[0] == "running" for r in REGIONS),
        60,
        interval=1,
        what="the regions synchronised to ntp_servers",
    )
    wait_until(
        lambda: service(stack, "rack-controllers", "rack1", "ntp_rack")[0] == "running",
        60,
        interval=1,
        what="rack1 synchronised to the regions",
    )
    assert sntp(stack.client, rack)
    info = service(stack, "rack-controllers", "rack1", "ntp_rack")[1]
    assert any(f"synchronised to {ip} " in info for ip in REGIONS.values()), info


def test_a_region_s_chronyd_death_and_a_stopped_region_show_in_its_service_set(stack):
    """ntp_region follows the region's chronyd as bind9 follows its named (a kill -9 shows
    within 5 s); a region that stops shows regiond, bind9 and ntp_region dead on the other
    region's API within 5 s, and running again once it is back."""
    took = kill_chronyd_within_5_s(stack, stack.region_hosts["region1"], "region-controllers", "region1", "ntp_region")
    stack.figures["kill -9 of a region's chronyd to ntp_region in the API"] = took

    stack.stop_region("region2")  # the CLI talks to region1
    stopped = time.monotonic()
    wait_until(
        lambda: (
            {name: status for name, (status, _) in services(stack, "region-controllers", "region2").items()}
            == {"regiond": "dead", "bind9": "dead", "ntp_region": "dead"}
        ),
        5,
        interval=0.2,
        what="region2's services dead",
    )
    stack.figures["region stopped to its services dead in the API"] = time.monotonic() - stopped
    # The death is an event of region2's, recorded by the region that saw it.
    dead = "regiond: running -> dead"
    wait_until(lambda: dead in regiond_events(stack, "region2"), 5, what="region2's death event")
    stack.restart_region("region2")
    wait_until(
        lambda: (
            (found := services(stack, "region-controllers", "region2"))["regiond"][0] == found["bind9"][0] == "running"
        ),
        30,
        interval=0.5,
        what="region2 running again",
    )
    wait_until(
        lambda: regiond_events(stack, "region2")[-1].startswith("regiond: dead -> "), 10, what="region2's return event"
    )
    assert regiond_events(stack, "region2").count(dead) == 1


def regiond_events(stack: Stack, hostname: str) -> list[str]:
    """The regiond status changes among the controller's events, oldest first."""
    found = stack.api("events", "query", f"hostname={hostname}", "level=INFO", "limit=100")["events"]
    changes = [e["description"] for e in found if e["type"] == "Service status changed"]
    return [d.split(" (")[0] for d in reversed(changes) if d.startswith("regiond: ")]


def arping(host: Host, target: str) -> None:
    host.run(["arping", "-c", "1", "-w", "1", "-I", "pxe", target], check=False, timeout=10)


def discovered(stack: Stack) -> dict[str, str]:
    return {d["ip"]: d["mac_address"] for d in stack.api("discoveries", "read")}


def test_arp_seen_by_the_racks_is_in_discoveries_within_seconds(stack):
    t0 = time.monotonic()
    for name in ("h1", "h2", "h3"):
        arping(stack.arping_hosts[name], RACKS["rack1"][1])
    wait_until(
        lambda: all(discovered(stack).get(ARPING[n][0]) == ARPING[n][1] for n in ("h1", "h2", "h3")),
        10,
        interval=0.25,
        what="three hosts in discoveries",
    )
    stack.figures["arping to discoveries"] = time.monotonic() - t0
    observers = {d["observer"]["hostname"] for d in stack.api("discoveries", "read") if d["ip"] == ARPING["h1"][0]}
    assert observers <= {"rack1", "rack2"} and observers


def test_without_any_region_the_rack_keeps_serving_and_queues_what_it_sees(stack):
    # A MAAS name with a 1 s TTL, asked once through rack1 while the regions are up.
    stack.api("dnsresources", "create", "fqdn=stale.maas", "ip_addresses=10.76.2.99", "address_ttl=1")
    rack = RACKS["rack1"][1]
    wait_until(lambda: dig(stack.client, rack, "stale.maas").data == ["10.76.2.99"], 10, what="stale.maas")
    time.sleep(2)  # the region's change announcement flushes the rack's cache of maas: let it land first
    assert dig(stack.client, rack, "stale.maas").data == ["10.76.2.99"]
    for region in REGIONS:
        stack.stop_region(region)
    stopped = time.monotonic()
    # Long expired, its source gone: the resolver answers from its stale cache, not SERVFAIL.
    time.sleep(2)
    stale = dig(stack.client, rack, "stale.maas", timeout=3)
    assert stale.status == "NOERROR" and stale.data == ["10.76.2.99"], stale
    assert dig(stack.client, rack, "never-asked.maas", timeout=3).status in ("SERVFAIL", "TIMEOUT")
    unseen = ("h4", "h6", "h7")
    for name in unseen:
        arping(stack.arping_hosts[name], RACKS["rack1"][1])
    assert sntp(stack.client, RACKS["rack1"][1])  # the rack still serves time
    wait_until(
        lambda: rack_board(stack, "rack1").get("ntp_rack", {}).get("status") == "degraded",
        40,
        interval=0.5,
        what="rack1 to say its time is degraded",
    )
    stack.figures["regions stopped to ntp_rack degraded"] = time.monotonic() - stopped
    assert sntp(stack.client, RACKS["rack1"][1])
    assert dig(stack.client, RACKS["rack1"][1], OUTSIDE_NAME).data == [OUTSIDE_ADDRESS]
    for region in REGIONS:
        stack.restart_region(region)
    wait_until(
        lambda: all(discovered(stack).get(ARPING[n][0]) == ARPING[n][1] for n in unseen),
        30,
        interval=0.5,
        what="what rack1 saw meanwhile, reported once a region is back",
    )


def test_network_discovery_disabled_stops_new_rows(stack):
    stack.cli("admin", "maas", "set-config", "name=network_discovery", "value=disabled")
    wait_until(
        lambda: rack_board(stack, "rack1").get("discovery", {}).get("status") == "off", 10, what="rack1's listener off"
    )
    wait_until(
        lambda: rack_board(stack, "rack2").get("discovery", {}).get("status") == "off", 10, what="rack2's listener off"
    )
    arping(stack.arping_hosts["h5"], RACKS["rack1"][1])
    time.sleep(3)
    assert ARPING["h5"][0] not in discovered(stack)
    stack.cli("admin", "maas", "set-config", "name=network_discovery", "value=enabled")


def duid(text: str | None) -> tuple[int, ...]:
    """A DUID as bytes, whether written 00:01:... (Kea) or 0:1:... (dhclient)."""
    return tuple(int(part, 16) for part in (text or "").strip().split(":") if part)


def server_duid(stack: Stack, rack: str) -> tuple[int, ...]:
    found = sorted((stack.racks[rack][1] / "dhcp").glob("v6-*/kea-dhcp6-serverid"))
    return duid(found[0].read_text()) if found else ()


def new_dhcpv6_lease(
    clients: list[Host], stagger: float = 0.5, limit: float = 8.0
) -> tuple[Lease | None, float | None]:
    """The first lease any of `clients` gets (a new one starts every `stagger` s and all keep
    running), and when the Solicit its server answered was sent (monotonic; None without a
    lease within `limit` s): the moment a server was seen serving, without the client's own
    schedule (dhclient -6 backs off 1, 2, 4 s between Solicits; staggered starts keep some
    client soliciting every `stagger` s). A Solicit's time is when its client's log showed it
    (polled every 50 ms: never early)."""
    start, running = time.monotonic(), []
    sent: dict[int, list[float]] = {}  # client index -> when each of its Solicits was seen
    try:
        while time.monotonic() - start < limit:
            if len(running) < len(clients) and time.monotonic() - start >= stagger * len(running):
                running.append(clients[len(running)].start_dhclient6("pxe", timeout=10))
            served = next((n for n, c in enumerate(running) if c.current() is not None), None)
            now = time.monotonic()
            for n, c in enumerate(running):
                seen = sent.setdefault(n, [])
                seen += [now] * (c.log().count("XMT: Solicit on") - len(seen))
            if served is not None:
                # the Solicit answered: the last one its client sent before the Advertise came
                answered = running[served].log().split("RCV: Advertise", 1)[0].count("XMT: Solicit on")
                return running[served].current(), sent[served][answered - 1]
            time.sleep(0.05)
        return None, None
    finally:
        for c in running:
            c.stop()


def moment_when(check, limit: float, what: str) -> float:
    """When (monotonic) `check()` first held, polled as fast as it answers; fails after `limit` s."""
    wait_until(check, limit, interval=0.05, what=what)
    return time.monotonic()


def test_dhcpv6_from_the_primary_then_the_secondary_within_5_s_of_its_death(stack):
    """kea-dhcp6 on both racks of the VLAN (Kea HA hot-standby on the racks' IPv4 addresses):
    a client gets an address from the primary; after kill -9 of the primary's kea-dhcp6 a new
    client is served within 5 s (by the standby, or by the primary's Kea restarted by its rack
    and synced from the standby) and dhcpd6 shows the restart within 5 s; after kill -9 of the
    whole primary rack, by the secondary. "Served" is the Solicit answered: the lease follows
    on the client's own clock (its back-off between Solicits is not the server's failover)."""
    subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == PXE6)
    stack.api(
        "ipranges", "create", "type=dynamic", f"subnet={subnet['id']}", "start_ip=fd76::1000", "end_ip=fd76::1fff"
    )
    fabric_id, vid = str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"])
    stack.api("vlan", "update", fabric_id, vid, "primary_rack=rack1", "secondary_rack=rack2", "dhcp_on=true")
    for rack in RACKS:
        wait_until(
            lambda r=rack: daemon_pids(stack.rack_hosts[r], "kea-dhcp6") and server_duid(stack, r),
            30,
            what=f"kea-dhcp6 on {rack}",
        )
    wait_until(
        lambda: service(stack, "rack-controllers", "rack2", "dhcpd6")[0] == "running",
        20,
        what="dhcpd6 running on the secondary",
    )
    clients = [stack.lab.add_host(f"c6{n}", {"pxe": None}) for n in "abcdefghijklm"]
    for client in clients:  # a DHCPv6 client needs its link-local address past DAD
        wait_until(
            lambda c=client: (
                "tentative" not in (out := c.run(["ip", "-6", "addr", "show", "dev", "pxe"]).stdout) and "fe80" in out
            ),
            10,
            what="link-local addresses",
        )
    first = clients[0].start_dhclient6("pxe").wait_lease(25)
    assert ipaddress.ip_address(first.ip) in ipaddress.ip_network(PXE6)
    assert duid(first.server_id) == server_duid(stack, "rack1")  # hot-standby: the primary answers
    # dhcpd6 follows the HA state, which the rack polls every 2 s (degraded until hot-standby)
    wait_until(
        lambda: service(stack, "rack-controllers", "rack1", "dhcpd6")[0] == "running",
        5,
        what="dhcpd6 running on the primary",
    )

    with ThreadPoolExecutor(1) as pool:  # dhcpd6's restart is watched from the kill, beside the clients
        for pid in daemon_pids(stack.rack_hosts["rack1"], "kea-dhcp6"):
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        restart = pool.submit(
            moment_when,
            lambda: restarts(service(stack, "rack-controllers", "rack1", "dhcpd6")[1]) >= 1,
            5.0,
            "rack1's dhcpd6 to show the restart",
        )
        lease, answered = new_dhcpv6_lease(clients[1:7])
        got = time.monotonic()
        assert lease is not None and answered is not None and answered - killed < 5.0, lease
        stack.figures["kill -9 of the primary's kea-dhcp6 to an answered DHCPv6 Solicit"] = answered - killed
        stack.figures["kill -9 of the primary's kea-dhcp6 to a new DHCPv6 lease"] = got - killed
        assert duid(lease.server_id) in (server_duid(stack, "rack1"), server_duid(stack, "rack2"))
        stack.figures["kill -9 of the primary's kea-dhcp6 to its restart in dhcpd6"] = restart.result() - killed
    wait_until(
        lambda: (
            duid((c := clients[7].start_dhclient6("pxe").wait_lease(10)).server_id) == server_duid(stack, "rack1") and c
        ),
        30,
        interval=1,
        what="the primary serving again",
    )

    for pid in stack.rack_hosts["rack1"].pids():  # the whole primary rack: rackd and its daemons
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    lease, answered = new_dhcpv6_lease(clients[8:])
    got = time.monotonic()
    assert lease is not None and answered is not None and answered - killed < 5.0, lease
    stack.figures["kill -9 of the primary rack to an answered DHCPv6 Solicit"] = answered - killed
    stack.figures["kill -9 of the primary rack to a new DHCPv6 lease"] = got - killed
    assert duid(lease.server_id) == server_duid(stack, "rack2")
