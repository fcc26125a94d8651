"""Domains, DNS resources and records, discoveries, the DNS/NTP settings and the regions'
service_set through the API, against a region of their own (MAAS's paths, fields, rules).

The region here runs on this host's network, so without its named and chronyd
(tests.support.processes); the daemons are tests/system/test_rack_services.py's.
"""

from __future__ import annotations

import shutil
import time

import pytest

from metalplane.client.http import MaasHttp
from metalplane.region.bootstrap import run_db
from metalplane.region.services import dhcp, discoveries, dns_model, leases, racks
from tests.conftest import create_admin, create_user, make_region_config
from tests.integration.test_api_nodes import FACTS, commission_with
from tests.support.databases import world_traversable_tempdir
from tests.support.processes import RegionProcess, wait_until


def ok(response, status: int = 200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if status != 204 else None


def refused(response, field: str, part: str = "") -> list[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == [field], body
    assert any(part in reason for reason in body[field]), body
    return body[field]


@pytest.fixture(scope="module")
def dns_region(databases):
    root = world_traversable_tempdir("mp-dnsapi-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data", num_workers=1)
    key = create_admin(config)
    process = RegionProcess(config, root / "region")
    process.start_and_wait()
    yield process, key
    process.stop()
    databases.drop_database(dbname)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def api(dns_region):
    process, key = dns_region
    with MaasHttp(process.url, key) as client:
        yield client


def register_rack(process: RegionProcess, system_id: str, hostname: str, mac: str, address: str) -> int:
    """A rack registered as rackd registers itself, with one interface (eth1) at `address`."""
    return run_db(
        process.config,
        lambda conn: racks.register_rack(
            conn, system_id, hostname, "0.1.0", [{"name": "eth1", "mac": mac, "addresses": [address]}]
        ),
    )


def test_domains_default_create_rules_set_default_and_delete(api, dns_region):
    default = ok(api.get("domains/"))
    assert default == [
        {
            "id": 0,
            "name": "maas",
            "ttl": None,
            "authoritative": True,
            "resource_record_count": 0,
            "is_default": True,
            "resource_uri": "/MAAS/api/2.0/domains/0/",
        }
    ]
    lab = ok(api.post("domains/", name="lab.example", ttl="120"))
    assert (lab["name"], lab["ttl"], lab["is_default"]) == ("lab.example", 120, False)
    refused(api.post("domains/", name="lab.example"), "name", "already exists")
    refused(api.post("domains/", name="bad_name!"), "name", "Domain name contains invalid characters.")
    refused(api.post("domains/", name="x", ttl="0"), "ttl", "greater than or equal to 1")
    refused(api.post("domains/", name="x", forward_dns_servers="192.0.2.1"), "forward_dns_servers")
    # a domain named like a subnet's reverse zone is refused: BIND could not serve both
    subnet = ok(api.post("subnets/", cidr="10.203.7.0/24"))
    refused(api.post("domains/", name="7.203.10.in-addr.arpa"), "name", "also a reverse zone")
    refused(api.post("subnets/", cidr="10.203.0.0/16"), "cidr", "would overlap with existing subnets")
    assert [d["name"] for d in ok(api.get("domains/"))] == ["maas", "lab.example"]

    machine = ok(
        api.post("machines/", mac_addresses="52:54:00:d0:00:01", architecture="amd64/generic", power_type="manual")
    )
    assert machine["domain"]["name"] == "maas" and machine["fqdn"].endswith(".maas")
    assert ok(api.get(machine["domain"]["resource_uri"].removeprefix("/MAAS/api/2.0/")))["name"] == "maas"
    ok(api.post(f"domains/{lab['id']}/", op="set_default"))
    machine = ok(api.get(f"machines/{machine['system_id']}/"))
    assert machine["domain"]["id"] == lab["id"] and machine["fqdn"] == f"{machine['hostname']}.lab.example"
    assert [d["is_default"] for d in ok(api.get("domains/"))] == [False, True]
    assert api.delete(f"domains/{lab['id']}/").status_code == 400  # the default cannot go
    ok(api.post("domains/0/", op="set_default"))
    ok(api.delete(f"domains/{lab['id']}/"), 204)
    assert api.get(f"domains/{lab['id']}/").status_code == 404
    ok(api.delete(f"machines/{machine['system_id']}/"), 204)
    ok(api.delete(f"subnets/{subnet['id']}/"), 204)


def test_dns_resources_and_records_with_maas_s_rules(api, dns_region):
    www = ok(
        api.post("dnsresources/", name="www", domain="maas", ip_addresses="10.203.1.5 2001:db8::5", address_ttl="60")
    )
    assert www["fqdn"] == "www.maas" and www["address_ttl"] == 60
    assert [a["ip"] for a in www["ip_addresses"]] == ["10.203.1.5", "2001:db8::5"]
    assert ok(api.get(f"dnsresources/{www['id']}/")) == www
    refused(api.post("dnsresources/", fqdn="www.maas"), "name", "Labels must be unique within their zone.")
    refused(api.post("dnsresources/", name="x", domain="maas", ip_addresses="10.203.1.999"), "ip_addresses")
    moved = ok(api.put(f"dnsresources/{www['id']}/", ip_addresses="10.203.1.6"))
    assert [a["ip"] for a in moved["ip_addresses"]] == ["10.203.1.6"]

    cname = ok(api.post("dnsresourcerecords/", fqdn="alias.maas", rrtype="cname", rrdata="www"))
    assert (cname["fqdn"], cname["rrtype"], cname["rrdata"]) == ("alias.maas", "CNAME", "www")
    refused(api.post("dnsresourcerecords/", fqdn="www.maas", rrtype="CNAME", rrdata="x"), "rrtype", "cannot coexist")
    refused(
        api.post("dnsresourcerecords/", fqdn="alias.maas", rrtype="TXT", rrdata="hello"), "rrtype", "cannot coexist"
    )
    alias = ok(api.get("dnsresources/", fqdn="alias.maas"))[0]
    refused(
        api.put(f"dnsresources/{alias['id']}/", ip_addresses="10.203.1.7"),
        "ip_addresses",
        "Cannot add address: CNAME present.",
    )
    refused(api.post("dnsresourcerecords/", fqdn="mail.maas", rrtype="MX", rrdata="70000 mx"), "rrdata", "Invalid MX")
    refused(api.post("dnsresourcerecords/", fqdn="mail.maas", rrtype="A", rrdata="10.0.0.1"), "rrtype", "is not one of")
    mx = ok(api.post("dnsresourcerecords/", name="@", domain="0", rrtype="MX", rrdata="10 www.maas."))
    assert mx["fqdn"] == "maas"
    assert {r["rrtype"] for r in ok(api.get("dnsresourcerecords/", domain="maas"))} == {"CNAME", "MX"}
    # The read filters, shared by both listings: an fqdn, a name, an rrtype in any case.
    assert [r["id"] for r in ok(api.get("dnsresourcerecords/", rrtype="mx"))] == [mx["id"]]
    assert [r["id"] for r in ok(api.get("dnsresourcerecords/", fqdn="alias.maas"))] == [cname["id"]]
    assert [r["id"] for r in ok(api.get("dnsresourcerecords/", name="alias", rrtype="CNAME"))] == [cname["id"]]
    assert ok(api.get("dnsresourcerecords/", name="alias", rrtype="MX")) == []
    assert [r["fqdn"] for r in ok(api.get("dnsresources/", rrtype="cname"))] == ["alias.maas"]
    assert [r["fqdn"] for r in ok(api.get("dnsresources/", name="www", domain="maas"))] == ["www.maas"]
    assert ok(api.get("domains/0/"))["resource_record_count"] == 3  # 2 records + 1 address
    ok(api.put(f"dnsresourcerecords/{mx['id']}/", rrdata="20 www.maas."))
    assert ok(api.get(f"dnsresourcerecords/{mx['id']}/"))["rrdata"] == "20 www.maas."
    for record in (cname, mx):
        ok(api.delete(f"dnsresourcerecords/{record['id']}/"), 204)
    assert api.get(f"dnsresources/{alias['id']}/").status_code == 404  # nothing left on it
    ok(api.delete(f"dnsresources/{www['id']}/"), 204)
    assert ok(api.get("dnsresources/")) == []


def test_implied_records_of_nodes_with_leased_addresses(api, dns_region):
    process, _ = dns_region
    machine = ok(
        api.post(
            "machines/",
            hostname="leased1",
            mac_addresses="52:54:00:d0:00:02",
            architecture="amd64/generic",
            power_type="manual",
        )
    )
    rack_id = run_db(process.config, lambda conn: racks.register_rack(conn, "rk0001", "rack0", "0.1.0", []))

    async def lease(conn):
        return await leases.apply_events(
            conn,
            rack_id,
            [
                {
                    "id": 1,
                    "key": "k1",
                    "action": "commit",
                    "ip": "10.203.2.50",
                    "mac": "52:54:00:d0:00:02",
                    "lease_time": 600,
                    "expires": int(time.time()) + 600,
                    "cltt": int(time.time()),
                    "time": time.time(),
                }
            ],
        )

    assert run_db(process.config, lease) == 1
    implied = [r for r in ok(api.get("dnsresources/", all="true")) if r["fqdn"] == "leased1.maas"]
    assert implied and implied[0]["ip_addresses"] is None
    assert [(r["rrtype"], r["rrdata"]) for r in implied[0]["resource_records"]] == [("A", "10.203.2.50")]
    ok(api.delete(f"machines/{machine['system_id']}/"), 204)
    ok(api.delete(f"rackcontrollers/{'rk0001'}/"), 204)


def test_settings_are_checked_before_any_daemon_sees_them(api):
    for name, value, part in [
        ("upstream_dns", "192.0.2.1 dns.example.com", "Invalid IP address: dns.example.com"),
        (
            "ntp_servers",
            "ntp.example.com bad_host!",
            "Invalid hostname: Host label cannot contain underscore: 'bad_host!'",
        ),
        ("dnssec_validation", "sure", "'sure' is not a valid dnssec_validation"),
        ("network_discovery", "maybe", "'maybe' is not a valid network_discovery"),
        ("default_dns_ttl", "soon", "Enter a whole number."),
    ]:
        response = api.post("maas/", op="set_config", name=name, value=value)
        assert response.status_code == 400 and part in response.text, (name, response.text)
    assert api.post("maas/", op="set_config", name="upstream_dns", value="192.0.2.1 2001:db8::53").status_code == 200
    assert ok(api.get("maas/", op="get_config", name="upstream_dns")) == "192.0.2.1 2001:db8::53"  # MAAS's string
    assert ok(api.get("maas/", op="get_config", name="network_discovery")) == "enabled"


def test_discoveries_shapes_filters_and_clear(api, dns_region):
    process, _ = dns_region
    rack_id = register_rack(process, "rk0002", "rack2", "52:54:00:d0:01:01", "10.203.3.2/24")
    now = time.time()

    async def report(conn):
        return await discoveries.record(
            conn,
            rack_id,
            [
                {"ip": "10.203.3.77", "mac": "52:54:00:d0:01:77", "interface": "eth1", "vid": None, "time": now - 5},
                {"ip": "10.203.3.78", "mac": "52:54:00:d0:01:78", "interface": "eth1", "vid": None, "time": now},
                {"ip": "10.203.3.2", "mac": "52:54:00:d0:01:01", "interface": "eth1", "vid": None, "time": now - 1},
                # a replay older than what is stored changes nothing
                {"ip": "10.203.3.77", "mac": "52:54:00:d0:01:99", "interface": "eth1", "vid": None, "time": now - 60},
            ],
        )

    assert run_db(process.config, report) == 3
    found = ok(api.get("discovery/"))
    assert [d["ip"] for d in found] == ["10.203.3.78", "10.203.3.2", "10.203.3.77"]  # newest first
    first = found[0]
    assert set(first) == {
        "discovery_id",
        "ip",
        "mac_address",
        "mac_organization",
        "last_seen",
        "hostname",
        "fabric_name",
        "vid",
        "observer",
        "resource_uri",
    }
    assert first["observer"]["hostname"] == "rack2" and first["observer"]["interface_name"] == "eth1"
    assert first["fabric_name"] and first["last_seen"].endswith("Z")
    assert ok(api.get(first["resource_uri"].removeprefix("/MAAS/api/2.0/"))) == first
    assert found[2]["mac_address"] == "52:54:00:d0:01:77"
    # the rack's own MAC and address are known to MAAS
    assert "10.203.3.2" not in [d["ip"] for d in ok(api.get("discovery/", op="by_unknown_mac"))]
    assert "10.203.3.2" not in [d["ip"] for d in ok(api.get("discovery/", op="by_unknown_ip"))]
    assert len(ok(api.get("discovery/", op="by_unknown_ip_and_mac"))) == 2
    assert api.get("discovery/bm90LWFuLWlk/").status_code == 404

    process_config = process.config
    with MaasHttp(process.url, create_user(process_config, "plain-user")) as user_api:
        assert user_api.post("discovery/", op="clear", all="true").status_code == 403
    assert api.post("discovery/", op="clear").status_code == 400
    ok(api.post("discovery/", op="clear", neighbours="true"), 204)
    assert ok(api.get("discovery/")) == []
    ok(api.delete("rackcontrollers/rk0002/"), 204)


def test_region_controllers_show_their_services(api):
    def shown() -> dict[str, tuple[str, str]]:
        region = ok(api.get("regioncontrollers/"))[0]
        return {s["name"]: (s["status"], s["status_info"]) for s in region["service_set"]}

    services = wait_until(
        lambda: (found := shown()) and found["bind9"][0] != "unknown" and found,
        10,
        what="the region's first status report",
    )
    region = ok(api.get("regioncontrollers/"))[0]
    assert set(services) == {"regiond", "bind9", "ntp_region"}
    assert services["regiond"][0] == "running"
    # this region runs on the host's network: no named or chronyd (dns_port, ntp_port 0)
    assert services["bind9"] == ("off", "not run by this region (dns_port: 0 in regiond.conf)")
    assert region["domain"]["resource_uri"] == "/MAAS/api/2.0/domains/0/"

    # Each status change of the region's services is an event of the region (issue 16), once:
    # the reports that follow every 5 s change nothing.
    def changes() -> list[str]:
        found = ok(api.get("events/", op="query", hostname=region["hostname"], limit="1000"))["events"]
        return [e["description"] for e in found if e["type"] == "Service status changed"]

    seen = wait_until(lambda: len(found := changes()) >= 3 and found, 10, what="the region's status events")
    assert sorted(seen) == [
        "bind9: unknown -> off (not run by this region (dns_port: 0 in regiond.conf))",
        "ntp_region: unknown -> off (not run by this region (ntp_port: 0 in regiond.conf))",
        "regiond: unknown -> running (1 worker live)",  # recorded by its own heartbeat
    ], seen


def test_dhcp_hands_out_the_racks_or_the_subnet_s_dns_servers_and_the_default_domain(api, dns_region):
    """The DHCP state a rack serves (what its Kea hands out, rendered in test_dhcp_kea): the
    rack as DNS server unless the subnet's dns_servers says otherwise, and the default domain's
    name as the domain, following set_default and a rename (MAAS's get_dhcp_configure_for)."""
    process, _ = dns_region
    rack_id = register_rack(process, "rk0003", "rack3", "52:54:00:d0:03:01", "10.203.9.2/24")
    subnet = next(s for s in ok(api.get("subnets/")) if s["cidr"] == "10.203.9.0/24")
    ok(api.post("ipranges/", type="dynamic", start_ip="10.203.9.100", end_ip="10.203.9.150", subnet=str(subnet["id"])))
    vlan = subnet["vlan"]
    ok(api.put(f"fabrics/{vlan['fabric_id']}/vlans/{vlan['vid']}/", dhcp_on="true", primary_rack="rk0003"))

    def served() -> dict:
        state = run_db(process.config, lambda conn: dhcp.rack_dhcp_state(conn, rack_id))
        (served_vlan,) = state["vlans"]
        (served_subnet,) = served_vlan["subnets"]
        return served_subnet

    assert (served()["dns_servers"], served()["domain_name"], served()["search_list"]) == (
        ["10.203.9.2"],
        "maas",
        ["maas"],
    )
    ok(api.put(f"subnets/{subnet['id']}/", dns_servers="192.0.2.53 192.0.2.54"))
    assert served()["dns_servers"] == ["192.0.2.53", "192.0.2.54"]
    ok(api.put(f"subnets/{subnet['id']}/", dns_servers=""))
    assert served()["dns_servers"] == ["10.203.9.2"]

    lab = ok(api.post("domains/", name="dhcp.example"))
    elsewhere = ok(api.post("domains/", name="elsewhere.example", authoritative="false"))
    assert served()["search_list"] == ["maas", "dhcp.example"]  # MAAS's: the default, then other authoritative ones
    ok(api.post(f"domains/{lab['id']}/", op="set_default"))
    try:
        assert (served()["domain_name"], served()["search_list"]) == ("dhcp.example", ["dhcp.example", "maas"])
        ok(api.put(f"domains/{lab['id']}/", name="dhcp2.example"))
        assert (served()["domain_name"], served()["search_list"]) == ("dhcp2.example", ["dhcp2.example", "maas"])
    finally:
        ok(api.post("domains/0/", op="set_default"))
    assert served()["domain_name"] == "maas"
    ok(api.delete(f"domains/{lab['id']}/"), 204)
    ok(api.delete(f"domains/{elsewhere['id']}/"), 204)
    assert served()["search_list"] == ["maas"]
    ok(api.put(f"fabrics/{vlan['fabric_id']}/vlans/{vlan['vid']}/", dhcp_on="false"))
    ok(api.delete("rackcontrollers/rk0003/"), 204)


def test_nodes_are_named_in_the_domain_they_are_given(api, dns_region):
    """MAAS's NodeForm and ControllerForm: a machine, device or controller takes `domain` by id
    or by name on create and update (an unknown one is a 400 on domain); an FQDN hostname names
    the host and an existing domain. The node is shown, listed, allocated, reported on its
    subnet and served in DNS in its own domain; the others stay in the default one."""
    process, _ = dns_region
    lab = ok(api.post("domains/", name="nodes.example"))
    subnet = ok(api.post("subnets/", cidr="10.203.11.0/24"))
    created: list[str] = []

    def machine(**fields) -> dict:
        shown = ok(
            api.post("machines/", architecture="amd64/generic", power_type="manual", commission="false", **fields)
        )
        created.append(shown["system_id"])
        return shown

    try:
        by_name = machine(hostname="dom1", mac_addresses="52:54:00:d0:11:01", domain="nodes.example")
        assert (by_name["domain"]["name"], by_name["fqdn"]) == ("nodes.example", "dom1.nodes.example")
        by_id = machine(hostname="dom2", mac_addresses="52:54:00:d0:11:02", domain=str(lab["id"]))
        assert by_id["domain"]["id"] == lab["id"]
        fqdn = machine(hostname="dom3.nodes.example", mac_addresses="52:54:00:d0:11:03")
        assert (fqdn["hostname"], fqdn["domain"]["name"], fqdn["fqdn"]) == (
            "dom3",
            "nodes.example",
            "dom3.nodes.example",
        )
        plain = machine(hostname="dom4", mac_addresses="52:54:00:d0:11:04")
        assert plain["fqdn"] == "dom4.maas"
        for fields, errors in [
            ({"domain": "nosuch"}, {"domain": ["Unable to find domain nosuch"]}),
            ({"domain": "99999"}, {"domain": ["Unable to find domain 99999"]}),
            ({"hostname": "dom5.nosuch.example"}, {"hostname": ["Nonexistant domain."]}),
        ]:
            response = api.post(
                "machines/",
                architecture="amd64/generic",
                mac_addresses="52:54:00:d0:11:05",
                commission="false",
                **fields,
            )
            assert (response.status_code, response.json()) == (400, errors)

        # update: by name, by id, by an FQDN hostname; a bad one changes nothing
        moved = ok(api.put(f"machines/{plain['system_id']}/", domain="nodes.example"))
        assert moved["fqdn"] == "dom4.nodes.example"
        assert ok(api.put(f"machines/{plain['system_id']}/", domain="0"))["fqdn"] == "dom4.maas"
        renamed = ok(api.put(f"machines/{plain['system_id']}/", hostname="dom4b.nodes.example"))
        assert (renamed["hostname"], renamed["fqdn"]) == ("dom4b", "dom4b.nodes.example")
        bad = api.put(f"machines/{plain['system_id']}/", domain="nosuch", description="x")
        assert (bad.status_code, bad.json()) == (400, {"domain": ["Unable to find domain nosuch"]})
        assert ok(api.get(f"machines/{plain['system_id']}/"))["description"] == ""
        ok(api.put(f"machines/{plain['system_id']}/", hostname="dom4", domain="maas"))
        assert {m["hostname"] for m in ok(api.get("machines/", domain="nodes.example"))} == {"dom1", "dom2", "dom3"}
        assert {n["hostname"] for n in ok(api.get("nodes/", domain="nodes.example"))} == {"dom1", "dom2", "dom3"}

        # devices: the same fields; a child given no domain takes its parent's (MAAS's DeviceForm)
        device = ok(api.post("devices/", hostname="dev1", mac_addresses="52:54:00:d0:11:11", domain="nodes.example"))
        created.append(device["system_id"])
        assert device["fqdn"] == "dev1.nodes.example"
        child = ok(
            api.post("devices/", hostname="dev2", mac_addresses="52:54:00:d0:11:12", parent=by_name["system_id"])
        )
        created.append(child["system_id"])
        assert child["fqdn"] == "dev2.nodes.example"
        refused(api.put(f"devices/{child['system_id']}/", domain="nosuch"), "domain", "Unable to find domain nosuch")
        assert ok(api.put(f"devices/{child['system_id']}/", domain="maas"))["fqdn"] == "dev2.maas"
        iface = device["interface_set"][0]["id"]
        linked = ok(
            api.post(
                f"nodes/{device['system_id']}/interfaces/{iface}/",
                op="link_subnet",
                mode="STATIC",
                subnet=str(subnet["id"]),
                ip_address="10.203.11.21",
            )
        )
        assert linked["links"][0]["ip_address"] == "10.203.11.21"
        (on_subnet,) = ok(api.get(f"subnets/{subnet['id']}/", op="ip_addresses"))
        assert on_subnet["node_summary"]["fqdn"] == "dev1.nodes.example"

        # controllers: by name or id; MAAS's ControllerForm text for an unknown one
        register_rack(process, "rk0011", "rack11", "52:54:00:d0:11:21", "10.203.11.2/24")
        rack = ok(api.put("rackcontrollers/rk0011/", domain="nodes.example"))
        assert rack["fqdn"] == "rack11.nodes.example"
        refused(api.put("rackcontrollers/rk0011/", domain="nosuch"), "domain", "Select a valid choice.")
        assert ok(api.put("rackcontrollers/rk0011/", domain="0"))["domain"]["name"] == "maas"
        ok(api.put("rackcontrollers/rk0011/", domain=str(lab["id"])))

        # DNS: each node's records in its own domain, not in the default one
        def served() -> dict[str, set[tuple[str, str]]]:
            model, _ = run_db(process.config, lambda conn: dns_model.build(conn, ["10.203.11.2"]))
            return {d.name: {(r.name, r.rrdata) for r in d.records} for d in model.domains}

        zones = served()
        assert {("dev1", "10.203.11.21"), ("rack11", "10.203.11.2")} <= zones["nodes.example"]
        assert not {name for name, _ in zones["maas"]} & {"dev1", "rack11"}
        implied = {r["fqdn"] for r in ok(api.get("dnsresources/", all="true")) if r["id"] == -1}
        assert {"dev1.nodes.example", "rack11.nodes.example"} <= implied
        ok(api.put(f"devices/{device['system_id']}/", domain="maas"))
        zones = served()
        assert ("dev1", "10.203.11.21") in zones["maas"] and ("dev1", "10.203.11.21") not in zones["nodes.example"]

        # allocation by FQDN: the hostname and the domain must both match
        for m in (by_name, plain):
            assert commission_with(process, api, m["system_id"], FACTS, {"00-cpuinfo": 0})["status_name"] == "Ready"
        assert api.post("machines/", op="allocate", name="dom1.maas", dry_run="true").status_code == 409
        assert api.post("machines/", op="allocate", name="dom4.nodes.example", dry_run="true").status_code == 409
        got = ok(api.post("machines/", op="allocate", name="dom1.nodes.example"))
        assert got["system_id"] == by_name["system_id"]
        assert ok(api.post("machines/", op="allocate", name="dom4.maas"))["system_id"] == plain["system_id"]
        refused_delete = api.delete(f"domains/{lab['id']}/")
        assert refused_delete.status_code == 400 and "node(s) are in it" in refused_delete.text
    finally:
        for system_id in created:
            api.delete(f"machines/{system_id}/")
            api.delete(f"devices/{system_id}/")
        api.delete("rackcontrollers/rk0011/")
        ok(api.delete(f"subnets/{subnet['id']}/"), 204)
    ok(api.delete(f"domains/{lab['id']}/"), 204)
