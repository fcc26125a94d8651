"""The rack's other services end to end: two regions and two racks as real processes in
network namespaces, each region with its named and chronyd, each rack with its resolver,
chronyd and ARP listener, all driven through the API; real clients (dig, sntp, arping,
udhcpc) on a machine network that reaches nothing but its racks.

    mgmt 10.76.1.0/24: region1 .11, region2 .12, rack1 .2, rack2 .3, upstream .99 (a BIND
                       serving example.test: the outside world)
    pxe  10.76.0.0/24: rack1 .2, rack2 .3, machines (DHCP), arping hosts .61-.64
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from metalplane.region.dns import AuthoritativeDns, AuthoritativeOptions, DnsModel, Domain, Record
from tests.support.dns_lab import dig
from tests.support.netlab import Host, Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("named", "dig", "chronyd", "sntp", "arping")),
                       reason="bind9, bind9-dnsutils, chrony, sntp and iputils-arping are needed"),
    pytest.mark.timeout(600),
]

MGMT, PXE = "10.76.1.0/24", "10.76.0.0/24"
REGIONS = {"region1": "10.76.1.11", "region2": "10.76.1.12"}
RACKS = {"rack1": ("10.76.1.2", "10.76.0.2"), "rack2": ("10.76.1.3", "10.76.0.3")}
UPSTREAM, OUTSIDE_NAME, OUTSIDE_ADDRESS = "10.76.1.99", "www.example.test", "192.0.2.80"
ARPING = {f"h{n}": (f"10.76.0.{60 + n}", f"52:54:00:76:00:{60 + n:02x}") for n in range(1, 5)}


def outside_bind(lab: Lab, host: Host) -> None:
    """The upstream_dns a MAAS operator points at: a BIND of its own, authoritative for
    example.test (its files rendered as a region's, run as a plain lab process)."""
    dns = AuthoritativeDns(lab.workdir / "dns-upstream", threads=1, options=AuthoritativeOptions(port=53))
    plan = dns.render(DnsModel(domains=(Domain("example.test", (Record("www", "A", OUTSIDE_ADDRESS),)),),
                               default_domain="example.test", nameservers=(ipaddress.ip_address(UPSTREAM),)))
    layout = dns.server.layout
    layout.conf.write_text(plan.conf)
    for zone, zone_file in plan.files.items():
        layout.zone_file(zone).write_text(zone_file.text)
    host.spawn(["named", "-g", "-n", "1", "-c", str(layout.conf)], log=layout.directory / "named.log")


@pytest.fixture(scope="module")
def stack(databases):
    with Lab() as lab:
        lab.add_network("mgmt", MGMT)
        lab.add_network("pxe", PXE)
        region_hosts = {name: lab.add_host(name, {"mgmt": f"{ip}/24"}) for name, ip in REGIONS.items()}
        rack_hosts = {name: lab.add_host(name, {"mgmt": f"{m}/24", "pxe": f"{p}/24"})
                      for name, (m, p) in RACKS.items()}
        outside_bind(lab, lab.add_host("upstream", {"mgmt": f"{UPSTREAM}/24"}))
        s = Stack(lab, databases)
        for name, host in region_hosts.items():
            s.start_region(host, "mgmt", name=name, num_workers=1)
        s.api("maas", "set-config", "name=upstream_dns", f"value={UPSTREAM}")
        s.api("maas", "set-config", "name=dnssec_validation", "value=no")
        urls = [f"http://{ip}:5240/MAAS/" for ip in REGIONS.values()]
        for name, host in rack_hosts.items():
            s.add_rack(host, name, urls=urls)
            s.start_rack(name)
        wait_until(lambda: len(s.api("rack-controllers", "read")) == 2, 60, what="both racks registered")
        s.region_hosts, s.rack_hosts = region_hosts, rack_hosts
        yield s


def service(stack: Stack, kind: str, hostname: str, name: str) -> tuple[str, str]:
    for node in stack.api(kind, "read"):
        if node["hostname"] == hostname:
            found = {s["name"]: (s["status"], s["status_info"]) for s in node["service_set"]}
            return found[name]
    raise AssertionError(f"no {kind} {hostname}")


def rack_board(stack: Stack, rack: str) -> dict[str, dict[str, str]]:
    """What the rack says of itself on disk (it may have no region to tell)."""
    path: Path = stack.racks[rack][1] / "services.json"
    return json.loads(path.read_text())["services"] if path.exists() else {}


def test_the_racks_resolve_maas_names_through_the_regions_and_the_rest_upstream(stack):
    rack1 = stack.rack_hosts["rack1"]
    wait_until(lambda: service(stack, "rack-controllers", "rack1", "dns_rack")[0] == "running", 30,
               what="rack1's resolver running")
    wait_until(lambda: all(service(stack, "region-controllers", r, "bind9")[0] == "running" for r in REGIONS), 30,
               what="both regions' named running")
    answer = wait_until(lambda: (a := dig(rack1, RACKS["rack1"][1], "rack2.maas")).data and a, 15,
                        what="rack2's name through rack1")
    assert answer.data == [RACKS["rack2"][0], RACKS["rack2"][1]] or sorted(answer.data) == sorted(RACKS["rack2"])
    assert dig(rack1, RACKS["rack1"][1], OUTSIDE_NAME).data == [OUTSIDE_ADDRESS]
