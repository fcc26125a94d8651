"""The rack's DHCP engine against real kea-dhcp4 processes and real DHCP clients,
each rack and client in its own network namespace (tests.support.netlab)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from metalplane.rack.dhcp import DhcpService, DhcpSettings, InvalidDhcpState, KeaConfigError, prefix_wrap
from tests.support.netlab import Host, Lab, list_netns

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("kea-dhcp4") is None, reason="kea-dhcp4 not installed"),
    pytest.mark.timeout(180),
    pytest.mark.asyncio(loop_scope="session"),  # the same loop as the fixtures
]

NET = "10.50.0.0/24"
RACK1, RACK2, GW = "10.50.0.2", "10.50.0.3", "10.50.0.1"
KNOWN_MAC = "52:54:00:aa:bb:01"


def subnet(**over: Any) -> dict[str, Any]:
    s = {
        "subnet_id": 1,
        "cidr": NET,
        "gateway_ip": GW,
        "dns_servers": [RACK1],
        "ntp_servers": [RACK1],
        "domain_name": "maas",
        "pools": [["10.50.0.100", "10.50.0.199"]],
        "reserved": [],
        "lease_time": 60,
    }
    s.update(over)
    return s


def dhcp_state(
    name: str = "rack1",
    address: str = RACK1,
    role: str = "standalone",
    mode: str | None = None,
    peer: tuple[str, str] | None = None,
    hosts: list | None = None,
    **subnet_over: Any,
) -> dict[str, Any]:
    return {
        "server_name": name,
        "vlans": [
            {
                "vlan_id": 5001,
                "vid": 0,
                "mtu": 1500,
                "interface": "pxe",
                "self_address": address,
                "role": role,
                "mode": mode,
                "peer": {"name": peer[0], "address": peer[1]} if peer else None,
                "subnets": [subnet(**subnet_over)],
            }
        ],
        "hosts": hosts or [],
        "boot": {
            "http_port": 5248,
            "loaders": {"bios": "lpxelinux.0", "uefi-x64": "bootx64.efi", "uefi-arm64": "grubaa64.efi"},
        },
    }


def ha_states(mode: str) -> tuple[dict, dict]:
    return (
        dhcp_state("rack1", RACK1, "primary", mode, ("rack2", RACK2)),
        dhcp_state("rack2", RACK2, "secondary", mode, ("rack1", RACK1)),
    )


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = Lab()
    lab.start()
    try:
        lab.add_network("pxe", NET)
        yield lab
    finally:
        lab.close()
        assert [n for n in list_netns() if n.startswith(lab.prefix + "-")] == []


class Services:
    """DhcpService objects made by a test, stopped at its end whatever happens."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.made: list[DhcpService] = []

    def make(self, host: Host, name: str | None = None, **kw: Any) -> DhcpService:
        state_dir = self.lab.workdir / f"dhcp-{name or host.name}"
        svc = DhcpService(state_dir, wrap=prefix_wrap(host.command([])), **kw)
        self.made.append(svc)
        return svc


@pytest.fixture
async def services(lab: Lab) -> AsyncIterator[Services]:
    s = Services(lab)
    try:
        yield s
    finally:
        for svc in s.made:
            if not svc._closed:
                await svc.stop()
        for svc in s.made:  # nothing of ours outlives the test
            for proc in svc.instances.values():
                assert not proc.running()


def kea_pids(host: Host) -> list[int]:
    out = []
    for pid in host.pids():
        try:
            if os.readlink(f"/proc/{pid}/exe").endswith("kea-dhcp4"):
                out.append(pid)
        except OSError:
            pass
    return out


async def udhcpc(host: Host, *extra: str, timeout: float = 15):
    return await asyncio.to_thread(host.dhcp_udhcpc, "pxe", timeout=timeout, extra_args=list(extra))


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(interval)


async def ha_state(svc: DhcpService) -> str | None:
    proc = next(iter(svc.instances.values()))
    try:
        return (await proc.command("ha-heartbeat", timeout=2))["arguments"]["state"]
    except Exception:  # not up (yet)
        return None


async def wait_ha(primary: DhcpService, secondary: DhcpService, state: str, timeout: float = 30) -> None:
    async def both() -> bool:
        return (await ha_state(primary), await ha_state(secondary)) == (state, state)

    await wait_for(both, timeout, f"both servers in {state}")


async def lease_known(svc: DhcpService, ip: str) -> bool:
    proc = next(iter(svc.instances.values()))
    answer = await proc.command("lease4-get", {"ip-address": ip})
    return answer["result"] == 0 and answer["arguments"]["ip-address"] == ip


# --------------------------------------------------------------------------- single rack


async def test_single_rack_pools_reservations_and_boot_classes(lab: Lab, services: Services):
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    svc = services.make(rack)
    # dynamic 100-105 with 101-104 reserved: only .100 and .105 may ever be handed out
    state = dhcp_state(
        pools=[["10.50.0.100", "10.50.0.105"]],
        reserved=[["10.50.0.101", "10.50.0.104"]],
        hosts=[
            {"mac": KNOWN_MAC, "hostname": "node1", "ip": "10.50.0.50"},
            {"mac": "52:54:00:aa:bb:02", "hostname": "node2", "ip": None},
        ],
    )
    assert await svc.apply(state) == {"standalone": "started"}
    assert svc.status()[0] == "running"
    config = json.loads((svc.state_dir / "standalone" / "kea-dhcp4.json").read_text())
    assert config["Dhcp4"]["subnet4"][0]["pools"] == [
        {"pool": "10.50.0.100-10.50.0.100"},
        {"pool": "10.50.0.105-10.50.0.105"},
    ]

    known = lab.add_host("known", {"pxe": None}, macs={"pxe": KNOWN_MAC})
    lease = await udhcpc(known)
    assert lease.ip == "10.50.0.50" and lease.server_id == RACK1
    assert lease.routers == (GW,) and lease.env.get("hostname") == "node1"
    assert lease.env.get("domain") == "maas" and lease.env.get("dns") == RACK1

    # PXE by architecture (option 93) and iPXE (option 77), seen by udhcpc as siaddr/boot_file
    uefi = await udhcpc(lab.add_host("uefi", {"pxe": None}), "-x", "0x5d:0007")
    bios = await asyncio.to_thread(
        lab.add_host("bios", {"pxe": None}).dhcp_dhclient,
        "pxe",
        timeout=15,
        config="option pxe-arch code 93 = unsigned integer 16;\nsend pxe-arch 0;\n",
    )
    assert {uefi.ip, bios.ip} == {"10.50.0.100", "10.50.0.105"}  # never the reserved .101-.104
    assert uefi.env.get("boot_file") == "bootx64.efi" and uefi.env.get("siaddr") == RACK1
    assert bios.client == "dhclient" and bios.env.get("new_filename") == "lpxelinux.0"
    # the pool is exhausted now: a third client gets nothing from the reserved range
    with pytest.raises(TimeoutError):
        await udhcpc(lab.add_host("nothing", {"pxe": None}), timeout=3)

    # more room, then iPXE and arm64
    await svc.apply(dhcp_state(hosts=state["hosts"]))
    ipxe = await udhcpc(lab.add_host("ipxe", {"pxe": None}), "-x", "0x5d:0007", "-x", "0x4d:69505845")
    assert ipxe.env.get("boot_file") == f"http://{RACK1}:5248/ipxe.cfg"
    arm = await udhcpc(lab.add_host("arm", {"pxe": None}), "-x", "0x5d:000b")
    assert arm.env.get("boot_file") == "grubaa64.efi"
    plain = await udhcpc(lab.add_host("plain", {"pxe": None}))
    assert "boot_file" not in plain.env


async def test_each_vlan_is_sent_to_the_racks_address_on_it(lab: Lab, services: Services):
    lab.add_network("pxe2", "10.60.0.0/24")
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24", "pxe2": "10.60.0.2/24"})
    second = dhcp_state()["vlans"][0] | {
        "vlan_id": 5002,
        "interface": rack.ifname("pxe2"),
        "self_address": "10.60.0.2",
        "subnets": [
            subnet(
                subnet_id=2,
                cidr="10.60.0.0/24",
                gateway_ip="10.60.0.1",
                dns_servers=[],
                ntp_servers=[],
                pools=[["10.60.0.100", "10.60.0.199"]],
            )
        ],
    }
    state = dhcp_state()
    state["vlans"][0]["interface"] = rack.ifname("pxe")
    state["vlans"].append(second)
    svc = services.make(rack)
    assert await svc.apply(state) == {"standalone": "started"}
    for network, address in (("pxe", RACK1), ("pxe2", "10.60.0.2")):
        host = lab.add_host(f"ipxe-{network}", {network: None})
        ipxe = await asyncio.to_thread(
            host.dhcp_udhcpc, network, timeout=15, extra_args=["-x", "0x5d:0000", "-x", "0x4d:69505845"]
        )
        assert ipxe.env.get("boot_file") == f"http://{address}:5248/ipxe.cfg"
        host = lab.add_host(f"bios-{network}", {network: None})
        bios = await asyncio.to_thread(host.dhcp_udhcpc, network, timeout=15, extra_args=["-x", "0x5d:0000"])
        assert bios.env.get("boot_file") == "lpxelinux.0" and bios.env.get("siaddr") == address


async def test_bad_states_never_reach_kea(lab: Lab, services: Services):
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    svc = services.make(rack)
    bad = dhcp_state(pools=[["10.50.0.1", "10.50.0.20"]])  # hands out the gateway
    with pytest.raises(InvalidDhcpState) as err:
        await svc.apply(bad)
    assert "gateway_ip 10.50.0.1" in str(err.value) and "vlans[0].subnets[0].pools" in str(err.value)
    assert svc.status()[0] == "off" and "gateway_ip" in svc.status()[1]
    assert kea_pids(rack) == [] and not (svc.state_dir / "standalone").exists()

    good = dhcp_state()
    await svc.apply(good)
    pid = kea_pids(rack)
    lease = await udhcpc(lab.add_host("c1", {"pxe": None}))
    # valid for us, refused by Kea (no such interface on this rack): Kea's words, old config kept
    wrong = dhcp_state()
    wrong["vlans"][0]["interface"] = "eth9"
    before = (svc.state_dir / "standalone" / "kea-dhcp4.json").read_text()
    with pytest.raises(KeaConfigError) as err:
        await svc.apply(wrong)
    assert "interface 'eth9' doesn't exist" in str(err.value)
    assert (svc.state_dir / "standalone" / "kea-dhcp4.json").read_text() == before
    assert kea_pids(rack) == pid and svc.status()[0] == "running"
    assert await lease_known(svc, lease.ip)


async def test_config_change_keeps_leases_and_off_stops_kea(lab: Lab, services: Services):
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    svc = services.make(rack)
    await svc.apply(dhcp_state())
    leases = [await udhcpc(lab.add_host(f"c{i}", {"pxe": None})) for i in range(3)]
    pid = kea_pids(rack)
    # new DNS, lease time and an extra pool: applied live through the control socket
    changed = dhcp_state(
        dns_servers=["10.50.0.9"],
        lease_time=120,
        pools=[["10.50.0.100", "10.50.0.199"], ["10.50.0.210", "10.50.0.219"]],
    )
    assert await svc.apply(changed) == {"standalone": "reconfigured"}
    assert await svc.apply(changed) == {"standalone": "unchanged"}
    assert kea_pids(rack) == pid  # same process
    for lease in leases:
        assert await lease_known(svc, lease.ip)
    new = await udhcpc(lab.add_host("after", {"pxe": None}))
    assert new.ip not in {lease.ip for lease in leases}
    assert new.env.get("dns") == "10.50.0.9" and new.lease_time == 120

    assert await svc.apply({"vlans": []}) == {"standalone": "stopped"}
    assert svc.status()[0] == "off"
    assert kea_pids(rack) == []
    # on again: the leases are still on disk and loaded again
    await svc.apply(changed)
    for lease in leases + [new]:
        assert await lease_known(svc, lease.ip)


async def test_crashed_kea_is_restarted(lab: Lab, services: Services):
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    svc = services.make(rack, settings=DhcpSettings(restart_backoff=(0.5, 5.0)))
    await svc.apply(dhcp_state())
    lease = await udhcpc(lab.add_host("c1", {"pxe": None}))
    proc = svc.instances["standalone"]
    old = proc.pid
    os.kill(old, signal.SIGKILL)
    await wait_for(lambda: svc.status()[0] == "dead", 5, "status dead")
    assert "killed by SIGKILL" in svc.status()[1]
    await wait_for(lambda: proc.running() and proc.pid != old and svc.status()[0] == "running", 10, "restart")
    await wait_for(lambda: proc.socket_path.exists(), 5, "control socket")
    await wait_for(lambda: lease_known(svc, lease.ip), 5, "lease after restart")
    assert proc.restarts == 1 and "restarts 1" in svc.status()[1]


# --------------------------------------------------------------------------- HA


async def test_ha_hot_standby_failover_and_failback(lab: Lab, services: Services):
    r1 = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    r2 = lab.add_host("rack2", {"pxe": f"{RACK2}/24"})
    # no automatic restart of the primary: the test plays the rack that died
    primary = services.make(r1, settings=DhcpSettings(restart_backoff=None))
    standby = services.make(r2)
    s1, s2 = ha_states("hot-standby")
    await asyncio.gather(primary.apply(s1), standby.apply(s2))
    await wait_ha(primary, standby, "hot-standby")

    before = []
    for i in range(3):
        lease = await udhcpc(lab.add_host(f"c{i}", {"pxe": None}))
        assert lease.server_id == RACK1  # the primary answers everything
        before.append(lease)
    for lease in before:  # replicated at once
        assert await lease_known(standby, lease.ip)

    spare = lab.add_host("new", {"pxe": None})
    os.kill(primary.instances[next(iter(primary.instances))].pid, signal.SIGKILL)
    killed = time.monotonic()
    lease = await udhcpc(spare, timeout=15)
    failover = time.monotonic() - killed
    assert lease.server_id == RACK2
    assert failover < 5.0, f"failover took {failover:.2f}s"
    print(f"\nhot-standby failover: new client leased from the standby {failover:.2f}s after kill -9")
    await wait_for(lambda: standby.status()[0] == "degraded", 5, "standby reports degraded")
    assert "partner rack1 is down" in standby.status()[1]
    assert primary.status()[0] == "dead"

    # failback: the primary comes back, syncs from the standby, takes over
    t0 = time.monotonic()
    await primary.apply(s1)
    await wait_ha(primary, standby, "hot-standby")
    print(f"failback: both in hot-standby {time.monotonic() - t0:.2f}s after the primary's restart")
    for known in before + [lease]:
        assert await lease_known(primary, known.ip)
        assert await lease_known(standby, known.ip)
    after = await udhcpc(lab.add_host("after", {"pxe": None}))
    assert after.server_id == RACK1
    await wait_for(lambda: lease_known(standby, after.ip), 5, "replicated after failback")
    # the statuses follow the HA states the service polls every 2 s
    await wait_for(lambda: primary.status()[0] == "running" and standby.status()[0] == "running", 5, "both running")


async def test_ha_load_balancing_serves_from_both(lab: Lab, services: Services):
    r1 = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    r2 = lab.add_host("rack2", {"pxe": f"{RACK2}/24"})
    primary, secondary = services.make(r1), services.make(r2)
    s1, s2 = ha_states("load-balancing")
    await asyncio.gather(primary.apply(s1), secondary.apply(s2))
    await wait_ha(primary, secondary, "load-balancing")
    leases = [await udhcpc(lab.add_host(f"c{i}", {"pxe": None})) for i in range(10)]
    servers = {lease.server_id for lease in leases}
    assert servers == {RACK1, RACK2}, servers
    for lease in leases:
        assert await lease_known(primary, lease.ip) and await lease_known(secondary, lease.ip)


# --------------------------------------------------------------------------- lease events


async def test_lease_events_commit_release_expiry_survive_restart(lab: Lab, services: Services):
    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    state_dir = lab.workdir / "dhcp-rack1"
    svc = services.make(rack, settings=DhcpSettings(reclaim_interval=1))
    await svc.apply(dhcp_state(lease_time=4))
    # consumer offline: nothing is acked
    held = lab.add_host("held", {"pxe": None})
    lease_expiring = await udhcpc(held)  # exits, no release: will expire
    rel = lab.add_host("rel", {"pxe": None})
    client = await asyncio.to_thread(rel.start_udhcpc, "pxe", once=False, extra_args=["-R"])
    lease_released = await asyncio.to_thread(client.wait_lease, 15)
    client.stop()  # SIGTERM + -R: DHCPRELEASE
    mac_held, mac_rel = held.mac("pxe"), rel.mac("pxe")

    def actions() -> list[tuple[str, str]]:
        return [(e["action"], e["mac"]) for e in svc.events.pending()]

    await wait_for(
        lambda: ("release", mac_rel) in actions() and ("expiry", mac_held) in actions(), 20, "release and expiry events"
    )
    events = svc.events.pending()
    commit = next(e for e in events if e["action"] == "commit" and e["mac"] == mac_held)
    assert commit["ip"] == lease_expiring.ip and commit["lease_time"] == 4 and commit["subnet_id"] == 1
    release = next(e for e in events if e["action"] == "release")
    assert release["ip"] == lease_released.ip
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len({e["key"] for e in events}) == len(events)

    # the rack restarts: a new service object on the same state dir, Kea restarted too
    await svc.stop()
    svc2 = services.make(rack, settings=DhcpSettings(reclaim_interval=1))
    assert svc2.state_dir == state_dir
    assert [e["id"] for e in svc2.events.pending()] == ids  # all still there, in order
    await svc2.apply(dhcp_state(lease_time=4))
    third_host = lab.add_host("third", {"pxe": None})
    third = await udhcpc(third_host)
    got: list[dict] = []

    async def consume() -> None:
        async for batch in svc2.events.batches(max_events=2):
            got.extend(batch)
            if any(e["action"] == "commit" and e["mac"] == third_host.mac("pxe") for e in batch):
                return

    await asyncio.wait_for(consume(), 10)
    assert [e["id"] for e in got][: len(ids)] == ids  # replayed first, none lost
    assert len({e["id"] for e in got}) == len(got)
    assert [e["ip"] for e in got if e["mac"] == third_host.mac("pxe")] == [third.ip]
    # the reread lease file added no duplicates
    assert sum(1 for e in got if e["action"] == "commit" and e["mac"] == mac_held) == 1
    svc2.events.ack(got[-1]["id"])
    assert svc2.events.pending() == []


# --------------------------------------------------------------------------- the region's state, served


async def served_model(conn, rack: Host, system_id: str) -> tuple[int, dict[str, Any], Any]:
    """In the region's database: NET on a VLAN whose DHCP `rack` serves alone (dynamic
    .100-.199). (The rack's id, the subnet, an admin.)"""
    from metalplane.region.bootstrap import ensure_defaults
    from metalplane.region.services import network, racks, subnets, users

    await ensure_defaults(conn)
    made = await network.create_fabric(conn, "dhcp-lab", "", None)
    vlan_id = next(v["id"] for v in made.vlans if v["fabric_id"] == made.fabrics[0]["id"])
    subnet = (await subnets.create_subnet(conn, {"cidr": NET, "vlan": str(vlan_id), "gateway_ip": GW})).subnets[0]
    rack_id = await racks.register_rack(
        conn,
        system_id,
        "rack1",
        "test",
        [{"name": rack.ifname("pxe"), "mac": "52:54:00:ab:cd:01", "addresses": [f"{RACK1}/24"]}],
    )
    admin = await users.create_user(conn, "dhcp-admin", "pw", "", is_superuser=True)
    await subnets.create_range(
        conn,
        {"type": "dynamic", "start_ip": "10.50.0.100", "end_ip": "10.50.0.199", "subnet": str(subnet["id"])},
        admin,
    )
    await network.update_vlan(conn, network.VlanRef(vlan_id=vlan_id), {"dhcp_on": True, "primary_rack": system_id})
    return rack_id, subnet, admin


async def test_ntp_servers_by_name_leave_dhcp_working(lab: Lab, services: Services, databases):
    """`set-config name=ntp_servers value=ntp.ubuntu.com` (MAAS's default) is valid, and the
    DHCP state the region then builds is one a rack serves: option 42 names the rack
    itself. With ntp_external_only, the literal addresses among ntp_servers are named.
    (Before, the hostname went into option 42 and every rack refused every DHCP change.)"""
    from metalplane.identity import new_system_id
    from metalplane.region.bootstrap import run_db
    from metalplane.region.services import dhcp, settings

    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    system_id = new_system_id()
    dbname = databases.new_database()
    config = databases.config(dbname)

    async def model(conn) -> int:
        return (await served_model(conn, rack, system_id))[0]

    def state_after(*changes: tuple[str, str]) -> dict[str, Any]:
        async def work(conn):
            for name, value in changes:
                await settings.set_setting(conn, name, value)
            state = await dhcp.rack_dhcp_state(conn, rack_id)
            return state | {"boot": dhcp_state()["boot"]}

        return run_db(config, work)

    try:
        rack_id = await asyncio.to_thread(run_db, config, model)
        svc = services.make(rack)
        state = await asyncio.to_thread(state_after, ("ntp_servers", "ntp.ubuntu.com"))
        assert state["vlans"][0]["subnets"][0]["ntp_servers"] == [RACK1]
        assert await svc.apply(state) == {"standalone": "started"}
        lease = await udhcpc(lab.add_host("client", {"pxe": None}))
        assert lease.ip.startswith("10.50.0.1") and lease.env.get("ntpsrv") == RACK1

        state = await asyncio.to_thread(
            state_after, ("ntp_servers", "192.0.2.123 ntp.ubuntu.com"), ("ntp_external_only", "true")
        )
        assert await svc.apply(state) == {"standalone": "reconfigured"}
        lease = await udhcpc(lab.add_host("client2", {"pxe": None}))
        assert lease.env.get("ntpsrv") == "192.0.2.123"
    finally:
        databases.drop_database(dbname)


async def test_a_claimed_auto_address_is_what_the_machine_gets_by_dhcp_until_released(
    lab: Lab, services: Services, databases
):
    """A machine's AUTO link claimed at deploy (auto_addresses.claim, as start_deployment does)
    becomes a host reservation in the state the region builds: real Kea hands the machine's MAC
    exactly that address and its hostname. Released, the MAC gets a pool address again."""
    from sqlalchemy import update

    from metalplane.identity import new_system_id
    from metalplane.region.bootstrap import run_db
    from metalplane.region.db.tables import nodes
    from metalplane.region.services import auto_addresses, dhcp, interfaces, machines

    rack = lab.add_host("rack1", {"pxe": f"{RACK1}/24"})
    system_id = new_system_id()
    dbname = databases.new_database()
    config = databases.config(dbname)

    async def model(conn) -> tuple[int, int]:
        rack_id, subnet, admin = await served_model(conn, rack, system_id)
        shown = await machines.create_machine(
            conn, {"hostname": "auto1", "mac_addresses": [KNOWN_MAC], "deployed": True}
        )
        node = shown.nodes[0]
        await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(status=10))  # Allocated
        await interfaces.link_subnet(
            conn, node["system_id"], f"mac:{KNOWN_MAC}", {"mode": "auto", "subnet": str(subnet["id"])}, admin
        )
        return rack_id, node["id"]

    def state_after(work) -> dict[str, Any]:
        async def go(conn):
            await work(conn)
            return await dhcp.rack_dhcp_state(conn, rack_id) | {"boot": dhcp_state()["boot"]}

        return run_db(config, go)

    try:
        rack_id, node_id = await asyncio.to_thread(run_db, config, model)
        claimed: list[str] = []

        async def claim(conn) -> None:
            claimed.extend(await auto_addresses.claim(conn, node_id))

        state = await asyncio.to_thread(state_after, claim)
        (ip,) = claimed
        assert ip.startswith("10.50.0.") and ip not in (GW, RACK1) and not 100 <= int(ip.rsplit(".", 1)[1]) <= 199
        svc = services.make(rack)
        assert await svc.apply(state) == {"standalone": "started"}
        lease = await udhcpc(lab.add_host("machine", {"pxe": None}, macs={"pxe": KNOWN_MAC}))
        assert lease.ip == ip and lease.env.get("hostname") == "auto1"

        state = await asyncio.to_thread(state_after, lambda conn: auto_addresses.release(conn, node_id))
        assert {"mac": KNOWN_MAC, "hostname": "auto1", "ip": None} in state["hosts"]
        assert await svc.apply(state) == {"standalone": "reconfigured"}
        again = await udhcpc(lab.add_host("machine2", {"pxe": None}, macs={"pxe": KNOWN_MAC}))
        assert again.ip.startswith("10.50.0.1") and again.ip != ip and again.env.get("hostname") == "auto1"
    finally:
        databases.drop_database(dbname)
