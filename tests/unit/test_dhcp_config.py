"""Pure DHCP config: validation, grouping into Kea instances, rendering (and
`kea-dhcp4 -t` on what is rendered, when Kea is installed)."""

from __future__ import annotations

import copy
import ipaddress
import json
import shutil
import subprocess
from typing import Any

import pytest

from metalplane.rack.dhcp import config as c

IP = ipaddress.IPv4Address


def vlan(
    vlan_id: int = 5001,
    iface: str = "eth1",
    net: str = "10.50.0",
    role: str = "standalone",
    mode: str | None = None,
    peer: tuple[str, str] | None = None,
    subnet_id: int | None = None,
    **subnet: Any,
) -> dict[str, Any]:
    s = {
        "subnet_id": subnet_id or vlan_id,
        "cidr": f"{net}.0/24",
        "gateway_ip": f"{net}.1",
        "dns_servers": [f"{net}.2"],
        "ntp_servers": [f"{net}.2"],
        "domain_name": "maas",
        "pools": [[f"{net}.100", f"{net}.199"]],
        "reserved": [[f"{net}.150", f"{net}.160"]],
        "lease_time": 600,
    }
    s.update(subnet)
    return {
        "vlan_id": vlan_id,
        "vid": 0,
        "mtu": 1500,
        "interface": iface,
        "self_address": f"{net}.2",
        "role": role,
        "mode": mode,
        "peer": {"name": peer[0], "address": peer[1]} if peer else None,
        "subnets": [s],
    }


def state(*vlans: dict, hosts: list | None = None, boot: dict | None = None, name: str = "rack1") -> dict:
    return {
        "server_name": name,
        "vlans": list(vlans) or [vlan()],
        "hosts": hosts or [],
        "boot": boot
        if boot is not None
        else {
            "http_port": 5248,
            "loaders": {"bios": "lpxelinux.0", "uefi-x64": "bootx64.efi", "uefi-arm64": "grubaa64.efi"},
        },
    }


def rendered(raw: dict) -> list[dict]:
    st, insts = c.plan(raw)
    return [c.render(i, st, c.Paths(f"/tmp/{i.name}.csv", f"/tmp/{i.name}.sock"))["Dhcp4"] for i in insts]


def errors_of(raw: dict) -> str:
    with pytest.raises(c.InvalidDhcpState) as e:
        c.plan(raw)
    return str(e.value)


# --------------------------------------------------------------------------- pools


def r(a: str, b: str) -> tuple[IP, IP]:
    return IP(a), IP(b)


def test_subtract_cuts_reserved_ranges_out_of_pools():
    assert c.subtract([r("10.0.0.100", "10.0.0.199")], [r("10.0.0.150", "10.0.0.160")]) == [
        r("10.0.0.100", "10.0.0.149"),
        r("10.0.0.161", "10.0.0.199"),
    ]
    assert c.subtract([r("10.0.0.100", "10.0.0.199")], [r("10.0.0.50", "10.0.0.120"), r("10.0.0.190", "10.0.1.9")]) == [
        r("10.0.0.121", "10.0.0.189")
    ]
    assert c.subtract([r("10.0.0.100", "10.0.0.110")], [r("10.0.0.100", "10.0.0.110")]) == []
    assert c.subtract([r("10.0.0.1", "10.0.0.5"), r("10.0.0.6", "10.0.0.9")], []) == [r("10.0.0.1", "10.0.0.9")]


def test_rendered_pools_never_contain_reserved_addresses():
    (d,) = rendered(
        state(
            vlan(
                pools=[["10.50.0.100", "10.50.0.199"], ["10.50.0.210", "10.50.0.220"]],
                reserved=[["10.50.0.150", "10.50.0.160"], ["10.50.0.215", "10.50.0.215"]],
            )
        )
    )
    pools = [p["pool"] for p in d["subnet4"][0]["pools"]]
    assert pools == [
        "10.50.0.100-10.50.0.149",
        "10.50.0.161-10.50.0.199",
        "10.50.0.210-10.50.0.214",
        "10.50.0.216-10.50.0.220",
    ]


# --------------------------------------------------------------------------- rendering


def test_standalone_render_has_options_leases_classes_and_reservations():
    hosts = [
        {"mac": "52-54-00-AA-BB-01", "hostname": "node1", "ip": "10.50.0.50"},
        {"mac": "52:54:00:aa:bb:02", "hostname": "node2", "ip": None},
        {"mac": "52:54:00:aa:bb:03", "hostname": "far", "ip": "10.60.0.9"},
    ]  # another rack's subnet
    (d,) = rendered(state(hosts=hosts))
    assert d["interfaces-config"] == {
        "interfaces": ["eth1"],
        "dhcp-socket-type": "raw",
        "service-sockets-max-retries": 5,
        "service-sockets-retry-wait-time": 2000,
    }
    assert d["lease-database"]["type"] == "memfile" and d["lease-database"]["persist"] is True
    assert d["lease-database"]["name"] == "/tmp/standalone.csv"
    assert d["control-socket"] == {"socket-type": "unix", "socket-name": "/tmp/standalone.sock"}
    sub = d["subnet4"][0]
    assert sub["id"] == 5001 and sub["subnet"] == "10.50.0.0/24" and sub["valid-lifetime"] == 600
    opts = {o["name"]: o["data"] for o in sub["option-data"]}
    assert opts == {
        "routers": "10.50.0.1",
        "domain-name-servers": "10.50.0.2",
        "ntp-servers": "10.50.0.2",
        "domain-name": "maas",
        "domain-search": "maas",  # a state without search_list (an older region's): the domain alone
    }
    assert sub["reservations"] == [
        {"hw-address": "52:54:00:aa:bb:01", "ip-address": "10.50.0.50", "hostname": "node1"},
        {"hw-address": "52:54:00:aa:bb:02", "hostname": "node2"},
    ]
    classes = {k["name"]: k for k in d["client-classes"]}
    assert classes["ipxe"]["test"] == "substring(option[77].hex,0,4) == 'iPXE'"
    assert "boot-file-name" not in classes["ipxe"]
    # the script URL is the rack's address on this VLAN, from a class the VLAN's subnets require
    assert classes["ipxe-vlan5001"] == {
        "name": "ipxe-vlan5001",
        "test": "member('ipxe')",
        "only-if-required": True,
        "boot-file-name": "http://10.50.0.2:5248/ipxe.cfg",
    }
    assert sub["require-client-classes"] == ["ipxe-vlan5001"] and sub["next-server"] == "10.50.0.2"
    assert classes["pxe-bios"]["test"] == "option[93].hex == 0x0000 and not member('ipxe')"
    assert (
        classes["pxe-uefi-x64"]["test"]
        == "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('ipxe')"
    )
    assert classes["pxe-uefi-arm64"]["test"] == "option[93].hex == 0x000b and not member('ipxe')"
    assert {k.get("boot-file-name") for k in classes.values()} >= {"lpxelinux.0", "bootx64.efi", "grubaa64.efi"}
    assert not any("next-server" in k for k in classes.values())  # per subnet, not per class
    libs = [h["library"].rsplit("/", 1)[1] for h in d["hooks-libraries"]]
    assert libs == ["libdhcp_lease_cmds.so"]


def test_each_vlan_boots_from_the_racks_address_on_it():
    (d,) = rendered(state(vlan(5001, "eth1", "10.50.0"), vlan(5002, "eth2", "10.60.0")))
    subnets = {s["id"]: s for s in d["subnet4"]}
    assert subnets[5001]["next-server"] == "10.50.0.2" and subnets[5002]["next-server"] == "10.60.0.2"
    assert subnets[5002]["require-client-classes"] == ["ipxe-vlan5002"]
    urls = {k["name"]: k.get("boot-file-name") for k in d["client-classes"]}
    assert urls["ipxe-vlan5001"] == "http://10.50.0.2:5248/ipxe.cfg"
    assert urls["ipxe-vlan5002"] == "http://10.60.0.2:5248/ipxe.cfg"


def test_loaders_without_ipxe_still_send_pxe_clients_to_the_rack():
    (d,) = rendered(state(boot={"loaders": {"bios": "undionly.kpxe"}}))
    assert [k["name"] for k in d["client-classes"]] == ["pxe-bios"]
    assert d["client-classes"][0]["test"] == "option[93].hex == 0x0000"
    assert d["subnet4"][0]["next-server"] == "10.50.0.2" and "require-client-classes" not in d["subnet4"][0]


def test_no_boot_means_no_client_classes():
    (d,) = rendered(state(boot={}))
    assert "client-classes" not in d and "next-server" not in d["subnet4"][0]


def test_vlans_group_into_one_instance_per_relationship():
    raw = state(
        vlan(5001, "eth1", "10.50.0"),
        vlan(5002, "eth2", "10.51.0", "primary", "hot-standby", ("rack2", "10.51.0.3")),
        vlan(5003, "eth3", "10.52.0", "primary", "hot-standby", ("rack2", "10.52.0.3")),
        vlan(5004, "eth4", "10.53.0", "secondary", "load-balancing", ("rack3", "10.53.0.3")),
        vlan(5005, "eth5", "10.54.0"),
    )
    st, insts = c.plan(raw)
    by_name = {i.name: i for i in insts}
    assert sorted(by_name) == ["ha-primary-rack2-hot-standby", "ha-secondary-rack3-load-balancing", "standalone"]
    assert [v.vlan_id for v in by_name["standalone"].vlans] == [5001, 5005]
    hs = by_name["ha-primary-rack2-hot-standby"]
    assert [v.vlan_id for v in hs.vlans] == [5002, 5003]
    assert hs.ha_listen == (IP("10.51.0.2"), c.DEFAULT_HA_PORT) and hs.ha_peer == (IP("10.51.0.3"), c.DEFAULT_HA_PORT)
    d = c.render(hs, st, c.Paths("/l", "/s"))["Dhcp4"]
    assert d["interfaces-config"]["interfaces"] == ["eth2", "eth3"]
    assert d["multi-threading"]["enable-multi-threading"] is True
    ha_lib = d["hooks-libraries"][1]
    assert ha_lib["library"].endswith("libdhcp_ha.so") and d["hooks-libraries"][0]["library"].endswith("lease_cmds.so")
    ha = ha_lib["parameters"]["high-availability"][0]
    assert ha["mode"] == "hot-standby" and ha["this-server-name"] == "rack1"
    assert ha["peers"] == [
        {"name": "rack1", "url": "http://10.51.0.2:5280/", "role": "primary", "auto-failover": True},
        {"name": "rack2", "url": "http://10.51.0.3:5280/", "role": "standby", "auto-failover": True},
    ]
    assert ha["multi-threading"]["http-dedicated-listener"] is True
    for k, v in {
        "heartbeat-delay": 1000,
        "max-response-delay": 3000,
        "max-ack-delay": 1000,
        "max-unacked-clients": 0,
    }.items():
        assert ha[k] == v
    lb = c.render(by_name["ha-secondary-rack3-load-balancing"], st, c.Paths("/l", "/s"))["Dhcp4"]
    lb_ha = lb["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert lb_ha["mode"] == "load-balancing"
    assert [(p["name"], p["role"]) for p in lb_ha["peers"]] == [("rack3", "primary"), ("rack1", "secondary")]


@pytest.mark.parametrize(
    "role, mode", [("primary", "hot-standby"), ("secondary", "hot-standby"), ("primary", "load-balancing")]
)
def test_ha_hook_threads_and_synchronous_replication(role, mode):
    # bench/dhcp_bench.py --variant http-0 / http-2: fewer HTTP threads ran faster but left
    # leases on the primary only after overload; listener 4 / client 8 never did
    [d] = rendered(state(vlan(role=role, mode=mode, peer=("rack2", "10.50.0.3"))))
    ha = d["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert ha["multi-threading"] == {
        "enable-multi-threading": True,
        "http-dedicated-listener": True,
        "http-listener-threads": 4,
        "http-client-threads": 8,
    }
    # replication stays synchronous: the primary answers only once the partner has the lease
    assert ha["send-lease-updates"] is True and ha["wait-backup-ack"] is False
    assert (
        "delayed-updates-limit" not in ha
    )  # Kea's default: 0 in hot-standby (refused otherwise), 100 in load-balancing
    assert "parked-packet-limit" not in d  # Kea's default, 256: 1024, 4096 and no limit measured no better


def test_both_racks_of_a_pair_render_matching_peers():
    a = state(vlan(role="primary", mode="hot-standby", peer=("rack2", "10.50.0.3")), name="rack1")
    b = copy.deepcopy(a)
    b["server_name"] = "rack2"
    b["vlans"][0].update(self_address="10.50.0.3", role="secondary", peer={"name": "rack1", "address": "10.50.0.2"})
    (da,), (db,) = rendered(a), rendered(b)
    ha_a = da["hooks-libraries"][1]["parameters"]["high-availability"][0]
    ha_b = db["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert ha_a["peers"] == ha_b["peers"]
    assert (ha_a["this-server-name"], ha_b["this-server-name"]) == ("rack1", "rack2")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda s: s["vlans"][0]["subnets"][0].update(pools=[["10.50.0.1", "10.50.0.20"]]),
            "vlans[0].subnets[0].pools: a dynamic range would hand out gateway_ip 10.50.0.1",
        ),
        (lambda s: s["vlans"][0]["subnets"][0].update(pools=[["10.50.0.200", "10.50.0.100"]]), "ends before it starts"),
        (
            lambda s: s["vlans"][0]["subnets"][0].update(pools=[["10.50.0.100", "10.50.1.10"]]),
            "not inside 10.50.0.0/24",
        ),
        (
            lambda s: s["vlans"][0]["subnets"][0].update(
                pools=[["10.50.0.100", "10.50.0.150"], ["10.50.0.140", "10.50.0.199"]]
            ),
            "overlap",
        ),
        (lambda s: s["vlans"][0]["subnets"][0].update(cidr="10.50.0.1/24"), "host bits zero"),
        (lambda s: s["vlans"][0]["subnets"][0].update(gateway_ip="10.60.0.1"), "10.60.0.1 is not in 10.50.0.0/24"),
        (lambda s: s["vlans"][0]["subnets"][0].update(lease_time=0), "lease_time"),
        (lambda s: s["vlans"][0].update(self_address="10.70.0.2"), "is in none of the VLAN's subnets"),
        (lambda s: s["vlans"][0].update(role="primary"), "needs a peer"),
        (
            lambda s: s["vlans"][0].update(role="primary", peer={"name": "rack2", "address": "10.50.0.2"}),
            "this rack's own",
        ),
        (lambda s: s["vlans"][0].update(role="boss"), "expected one of standalone, primary, secondary"),
        (
            lambda s: s["vlans"][0].update(role="primary", mode="split", peer={"name": "r2", "address": "10.50.0.3"}),
            "vlans[0].mode",
        ),
        (lambda s: s["hosts"].append({"mac": "nope", "ip": None}), "hosts[0].mac"),
        (
            lambda s: s["hosts"].extend(
                [{"mac": "52:54:00:00:00:01", "ip": "10.50.0.9"}, {"mac": "52:54:00:00:00:02", "ip": "10.50.0.9"}]
            ),
            "reserved for both",
        ),
        (lambda s: s["hosts"].append({"mac": "52:54:00:00:00:01", "ip": "10.50.0.1"}), "belongs to a rack or gateway"),
        (lambda s: s.update(surprise=1), "unknown field 'surprise'"),
        (lambda s: s["boot"].update(http_port="5248"), "boot.http_port: expected a TCP port"),
        (lambda s: s["boot"].update(http_port=0), "boot.http_port: expected a TCP port"),
        (lambda s: s["boot"].update(tftp_server="10.50.0.2"), "unknown field 'tftp_server'"),
        (lambda s: s["boot"]["loaders"].update(sparc="x"), "unknown architecture 'sparc'"),
    ],
)
def test_impossible_states_are_refused_with_the_field(mutate, message):
    raw = state()
    mutate(raw)
    assert message in errors_of(raw)


def test_refusals_across_vlans():
    assert "interface eth1 already serves vlan 5001" in errors_of(state(vlan(5001), vlan(5002, net="10.51.0")))
    assert "overlaps 10.50.0.0/24" in errors_of(state(vlan(5001), vlan(5002, "eth2", "10.50.0", subnet_id=7)))
    assert "subnet_id 5001" in errors_of(state(vlan(5001), vlan(5002, "eth2", "10.51.0", subnet_id=5001)))
    mixed = state(
        vlan(5001, "eth1", "10.50.0", "primary", "hot-standby", ("rack2", "10.50.0.3")),
        vlan(5002, "eth2", "10.51.0", "secondary", "hot-standby", ("rack2", "10.51.0.3")),
    )
    assert "both primary and secondary toward rack2" in errors_of(mixed)
    no_name = state(vlan(role="primary", mode="hot-standby", peer=("rack2", "10.50.0.3")))
    del no_name["server_name"]
    assert "needs the state's server_name" in errors_of(no_name)


def test_every_error_is_reported_at_once():
    raw = state()
    raw["vlans"][0]["subnets"][0].update(gateway_ip="bad", lease_time=-1)
    raw["hosts"] = [{"mac": "zz"}]
    err = errors_of(raw)
    assert "gateway_ip" in err and "lease_time" in err and "hosts[0].mac" in err


def test_dhcp_off_is_a_valid_empty_state():
    st, insts = c.plan({"vlans": []})
    assert not st.enabled and insts == []
    st, insts = c.plan(None)
    assert insts == []


# --------------------------------------------------------------------------- Kea agrees

KEA = shutil.which("kea-dhcp4")


@pytest.mark.skipif(KEA is None, reason="kea-dhcp4 not installed")
@pytest.mark.parametrize(
    "role, mode",
    [
        ("standalone", None),
        ("primary", "hot-standby"),
        ("secondary", "hot-standby"),
        ("primary", "load-balancing"),
        ("secondary", "load-balancing"),
    ],
)
def test_kea_dhcp4_accepts_the_rendered_config(tmp_path, role, mode):
    # interface "lo" exists everywhere; `kea-dhcp4 -t` checks interfaces exist
    raw = state(
        vlan(
            iface="lo",
            role=role,
            mode=mode,
            peer=("rack2", "10.50.0.3") if mode else None,
            search_list=["maas", "lab.example", "zz.test"],
        ),
        hosts=[{"mac": "52:54:00:aa:bb:01", "hostname": "node1", "ip": "10.50.0.50"}],
    )
    for d in rendered(raw):
        d["lease-database"]["name"] = str(tmp_path / "leases.csv")
        d["control-socket"]["socket-name"] = str(tmp_path / "k.sock")
        path = tmp_path / "kea.json"
        path.write_text(json.dumps({"Dhcp4": d}))
        proc = subprocess.run([KEA, "-t", str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- lease events (no Kea)
# Kept here with the other pure DHCP tests: memfile records -> events, the
# durable queue, LFC rotation, and seeding a new instance's lease file.

HEADER = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n"


def rec(ip: str, mac: str, valid: int, expire: int, state: int = 0, host: str = "") -> str:
    return f"{ip},{mac},,{valid},{expire},1,0,0,{host},{state},\n"


def test_memfile_records_become_deduplicated_events(tmp_path):
    from metalplane.rack.dhcp.leases import LeaseQueue, LeaseTailer

    path = tmp_path / "leases4.csv"
    q = LeaseQueue(tmp_path / "q.sqlite3")
    t = LeaseTailer("standalone", path, q)
    path.write_text(
        HEADER + rec("10.0.0.5", "aa:bb:cc:00:00:01", 600, 1600, host="n1&#x2cx") + "10.0.0.6,aa:bb"
    )  # a record Kea is still writing
    assert t.poll() == 1
    with open(path, "a") as f:
        f.write(":cc:00:00:02,,600,1600,1,0,0,,0,\n")  # ... now complete
        f.write(rec("10.0.0.5", "aa:bb:cc:00:00:01", 600, 1600))  # the same lease again (HA sync)
        f.write(rec("10.0.0.5", "aa:bb:cc:00:00:01", 600, 1900))  # renewed
        f.write(rec("10.0.0.6", "aa:bb:cc:00:00:02", 0, 1700))  # released (deleted)
        f.write(rec("10.0.0.5", "aa:bb:cc:00:00:01", 600, 1900, state=2))  # expired, reclaimed
        f.write(rec("10.0.0.5", "aa:bb:cc:00:00:01", 0, 1900, state=2))  # flushed later: no event
    t.poll()
    events = q.pending()
    assert [(e["action"], e["ip"]) for e in events] == [
        ("commit", "10.0.0.5"),
        ("commit", "10.0.0.6"),
        ("commit", "10.0.0.5"),
        ("release", "10.0.0.6"),
        ("expiry", "10.0.0.5"),
    ]
    assert events[0]["hostname"] == "n1,x" and events[0]["cltt"] == 1000 and events[0]["lease_time"] == 600
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert len({e["key"] for e in events}) == 5

    # LFC: the file is renamed to .2 after one more record, and a new one started
    with open(path, "a") as f:
        f.write(rec("10.0.0.7", "aa:bb:cc:00:00:03", 600, 2000))
    path.rename(tmp_path / "leases4.csv.2")
    path.write_text(
        HEADER
        + rec("10.0.0.7", "aa:bb:cc:00:00:03", 600, 2000)  # compacted copy: no event
        + rec("10.0.0.8", "aa:bb:cc:00:00:04", 600, 2100)
    )
    t.poll()
    assert [(e["action"], e["ip"]) for e in q.pending(events[-1]["id"])] == [
        ("commit", "10.0.0.7"),
        ("commit", "10.0.0.8"),
    ]

    # durable: a new queue and tailer on the same files repeat nothing and lose nothing
    q.ack(events[1]["id"])
    q.close()
    q2 = LeaseQueue(tmp_path / "q.sqlite3")
    assert [e["id"] for e in q2.pending()] == [e["id"] for e in events[2:]] + [
        events[-1]["id"] + 1,
        events[-1]["id"] + 2,
    ]
    t2 = LeaseTailer("standalone", path, q2)
    assert t2.poll() == 0
    q2.close()


def test_a_new_instance_is_seeded_with_the_leases_of_its_subnets(tmp_path):
    from metalplane.rack.dhcp.service import DhcpService

    old = tmp_path / "standalone"
    old.mkdir()
    (old / "leases4.csv").write_text(
        HEADER + rec("10.50.0.5", "aa:bb:cc:00:00:01", 600, 1600) + "10.60.0.5,aa:bb:cc:00:00:02,,600,1600,9,0,0,,0,\n"
    )
    svc = DhcpService(tmp_path)
    raw = state(vlan(5001, role="primary", mode="hot-standby", peer=("rack2", "10.50.0.3"), subnet_id=1))
    _, (inst,) = c.plan(raw)
    proc = svc._process(inst)
    assert svc._seed_leases(proc, inst) == 1
    assert proc.lease_file.read_text() == HEADER + rec("10.50.0.5", "aa:bb:cc:00:00:01", 600, 1600)
    assert svc._seed_leases(proc, inst) == 0  # never over an existing lease file
    svc.events.close()


def test_dhcpv6_names_every_host_also_those_with_an_ipv4_reservation():
    """A machine whose AUTO link holds an IPv4 address keeps its name under DHCPv6."""
    raw = {
        "server_name": "rack1",
        "vlans6": [
            {
                "vlan_id": 5001,
                "interface": "eth1",
                "subnets": [{"subnet_id": 7, "cidr": "2001:db8::/64", "pools": [["2001:db8::1:0", "2001:db8::1:ff"]]}],
            }
        ],
        "hosts": [
            {"mac": "52:54:00:aa:bb:01", "hostname": "node1", "ip": "10.50.0.50"},
            {"mac": "52:54:00:aa:bb:02", "hostname": "node2", "ip": None},
        ],
    }
    st, insts = c.plan(raw)
    (v6,) = [i for i in insts if i.family == 6]
    d = c.render6(v6, st, c.Paths("/tmp/v6.csv", "/tmp/v6.sock"))["Dhcp6"]
    assert d["subnet6"][0]["reservations"] == [
        {"hw-address": "52:54:00:aa:bb:01", "hostname": "node1"},
        {"hw-address": "52:54:00:aa:bb:02", "hostname": "node2"},
    ]


def test_option_data_keeps_options_with_a_value_and_joins_lists():
    assert c._option_data(
        ("routers", ipaddress.IPv4Address("10.0.0.1")),
        ("dns-servers", [ipaddress.IPv6Address("fd00::2"), ipaddress.IPv6Address("fd00::3")]),
        ("sntp-servers", []),
        ("domain-search", None),
        ("domain-name", ""),
        ("interface-mtu", 9000),
    ) == [
        {"name": "routers", "data": "10.0.0.1"},
        {"name": "dns-servers", "data": "fd00::2, fd00::3"},
        {"name": "interface-mtu", "data": "9000"},
    ]


def _v6_state(**subnet: Any) -> dict:
    return {
        "server_name": "rack1",
        "vlans6": [
            {
                "vlan_id": 5001,
                "interface": "lo",
                "subnets": [
                    {"subnet_id": 7, "cidr": "2001:db8::/64", "pools": [["2001:db8::1:0", "2001:db8::1:ff"]], **subnet}
                ],
            }
        ],
    }


def _rendered6(raw: dict) -> dict:
    st, insts = c.plan(raw)
    (v6,) = [i for i in insts if i.family == 6]
    return c.render6(v6, st, c.Paths("/tmp/v6.csv", "/tmp/v6.sock"))["Dhcp6"]


def test_the_search_list_is_option_119_and_dhcpv6_s_domain_search():
    """MAAS hands out the default domain, then the other authoritative domains, as the DNS
    search list: DHCPv4 option 119 (domain-search) beside option 15, DHCPv6 option 24."""
    (d,) = rendered(state(vlan(domain_name="lab.example", search_list=["lab.example", "maas", "zz.test."])))
    opts = {o["name"]: o["data"] for o in d["subnet4"][0]["option-data"]}
    assert (opts["domain-name"], opts["domain-search"]) == ("lab.example", "lab.example, maas, zz.test")
    d6 = _rendered6(_v6_state(domain_name="lab.example", search_list=["lab.example", "maas"]))
    opts6 = {o["name"]: o["data"] for o in d6["subnet6"][0]["option-data"]}
    assert opts6["domain-search"] == "lab.example, maas"
    d6 = _rendered6(_v6_state(domain_name="maas"))  # an older region's state: the domain alone
    assert {o["name"]: o["data"] for o in d6["subnet6"][0]["option-data"]}["domain-search"] == "maas"
    d6 = _rendered6(_v6_state())
    assert "domain-search" not in {o["name"] for o in d6["subnet6"][0]["option-data"]}


def test_a_search_list_with_a_bad_name_is_refused_at_its_path():
    assert "vlans[0].subnets[0].search_list: expected a domain name" in errors_of(
        state(vlan(search_list=["maas", "bad name"]))
    )
    assert "search_list" in errors_of(state(vlan(search_list="maas")))


@pytest.mark.skipif(shutil.which("kea-dhcp6") is None, reason="kea-dhcp6 not installed")
def test_kea_dhcp6_accepts_the_search_list(tmp_path):
    d = _rendered6(_v6_state(domain_name="maas", search_list=["maas", "lab.example"]))
    d["lease-database"]["name"] = str(tmp_path / "leases6.csv")
    d["control-socket"]["socket-name"] = str(tmp_path / "k6.sock")
    path = tmp_path / "kea6.json"
    path.write_text(json.dumps({"Dhcp6": d}))
    proc = subprocess.run(
        [shutil.which("kea-dhcp6") or "", "-t", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
