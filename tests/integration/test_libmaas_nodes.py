"""python-libmaas 0.6.8, unchanged, on the node resources: machines (save() included),
nodes, devices, interfaces and their links, block devices and partitions, tags,
resource pools and events.

What libmaas itself gets wrong against MAAS 3.7 (not metalplane's to fix):
- `Machine.save()` sends owner_data changes with `set_owner_data`, which only the
  machine's owner may do (MAAS answers 409 otherwise), so it works on allocated
  machines only; these tests change other fields.
- `Node.save()` on the generic nodes/ handler calls `update`, which MAAS's NodeHandler
  does not have; only machine, device and controller objects can be saved.
- `Events.query(level=...)` sends the level name, and `Event.created` is parsed with
  MAAS's legacy "%a, %d %b. %Y %H:%M:%S" format (metalplane sends exactly that).
They use 10.202.210-219.0/24 and MACs 52:54:03:xx:xx:xx, and remove what they create.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from maas.client.enum import LinkMode

from tests.integration.test_api_nodes import FACTS, commission_with
from tests.integration.test_libmaas import client  # noqa: F401  (the fixture)


def mac() -> str:
    value = secrets.randbits(24)
    return f"52:54:03:{value >> 16 & 255:02x}:{value >> 8 & 255:02x}:{value & 255:02x}"


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def machine(client, api):  # noqa: F811
    made = client.machines.create("amd64/generic", [mac()], "manual", hostname=name("lm"))
    yield made
    api.delete(f"machines/{made.system_id}/")


def test_machines_create_read_and_save(client, api, machine):  # noqa: F811
    # An admin's new machine starts commissioning, as in MAAS.
    assert machine.status_name == "Commissioning" and machine.owner_data == {}
    assert machine.system_id in {m.system_id for m in client.machines.list()}
    again = client.machines.get(machine.system_id)
    assert (again.hostname, again.architecture, again.pool.name, again.zone.name) == (
        machine.hostname,
        "amd64/generic",
        "default",
        "default",
    )
    assert again.boot_interface.mac_address == again.interfaces[0].mac_address
    again.hostname = name("renamed")
    again.cpus = 6
    again.memory = 4096
    again.architecture = "arm64/generic"
    again.save()
    shown = api.get(f"machines/{machine.system_id}/").json()
    assert (shown["hostname"], shown["cpu_count"], shown["memory"], shown["architecture"]) == (
        again.hostname,
        6,
        4096,
        "arm64/generic",
    )
    assert [m.system_id for m in client.machines.list(hostnames=[again.hostname])] == [machine.system_id]
    assert client.machines.get_power_parameters_for([machine.system_id]) == {machine.system_id: {}}
    assert client.machines.get(machine.system_id).hostname == again.hostname


def test_machine_zone_and_pool_change(client, api, machine):  # noqa: F811
    zone = client.zones.create(name=name("lz"))
    pool = client.resource_pools.create(name=name("lp"), description="libmaas")
    try:
        found = client.machines.get(machine.system_id)
        found.zone = zone
        found.save()
        assert api.get(f"machines/{machine.system_id}/").json()["zone"]["name"] == zone.name
        assert api.put(f"machines/{machine.system_id}/", pool=pool.name).status_code == 200
        assert client.machines.get(machine.system_id).pool.id == pool.id
    finally:
        api.put(f"machines/{machine.system_id}/", zone="default", pool="default")
        zone.delete()
        pool.delete()


def test_interfaces_and_links(client, api):  # noqa: F811
    fabric = client.fabrics.create(name=name("lf"))
    vlan = fabric.vlans.get_default()
    cidr = f"10.202.{210 + secrets.randbelow(10)}.0/24"
    subnet = client.subnets.create(cidr, vlan, gateway_ip=cidr.replace(".0/24", ".1"))
    ready = api.post(
        "machines/", architecture="amd64/generic", mac_addresses=mac(), commission="false", hostname=name("li")
    ).json()  # interfaces change in New, Ready, Allocated and Broken
    try:
        interface = client.machines.get(ready["system_id"]).interfaces[0]
        assert interface.type.value == "physical" and interface.vlan is None
        link = interface.links.create(LinkMode.STATIC, subnet=subnet, default_gateway=True)
        assert link.mode == LinkMode.STATIC and link.subnet.id == subnet.id and link.ip_address
        refreshed = client.machines.get(ready["system_id"]).interfaces[0]
        assert refreshed.vlan.id == vlan.id and [x.id for x in refreshed.links] == [link.id]
        refreshed.links[0].set_as_default_gateway()
        refreshed.links[0].delete()
        refreshed = client.machines.get(ready["system_id"]).interfaces[0]
        refreshed.name = "lan0"
        refreshed.tags = ["boot"]
        refreshed.save()
        shown = api.get(f"nodes/{ready['system_id']}/interfaces/{refreshed.id}/").json()
        assert (shown["name"], shown["tags"]) == ("lan0", ["boot"])
        refreshed.disconnect()
        assert api.get(f"nodes/{ready['system_id']}/interfaces/{refreshed.id}/").json()["vlan"] is None
    finally:
        api.delete(f"machines/{ready['system_id']}/")
        subnet.delete()
        fabric.delete()


def test_block_devices_and_partitions(client, api, shared_region):  # noqa: F811
    made = api.post(
        "machines/", architecture="amd64/generic", mac_addresses=mac(), commission="false", hostname=name("lb")
    ).json()
    try:
        loop = asyncio.get_event_loop()
        commission_with(shared_region, api, made["system_id"], FACTS, {"00-cpuinfo": 0})
        asyncio.set_event_loop(loop)  # run_db's asyncio.run leaves the thread without the client's loop
        found = client.machines.get(made["system_id"])
        disks = found.block_devices
        assert [d.name for d in disks] == ["vda", "vdb"]
        vda = disks[0]
        assert (vda.size, vda.model, vda.serial, vda.type.value) == (
            17179869184,
            "QEMU HARDDISK",
            "MPDISK1",
            "physical",
        )
        assert [p.size for p in vda.partitions] == [536870912, 1073741824]
        assert found.boot_disk.id == vda.id
    finally:
        api.delete(f"machines/{made['system_id']}/")


def test_tags(client, machine):  # noqa: F811
    tag = client.tags.create(name=name("lt"), comment="libmaas")
    try:
        assert tag.name in {t.name for t in client.tags.list()}
        assert client.tags.get(tag.name).comment == "libmaas"
        found = client.machines.get(machine.system_id)
        found.tags.add(tag)
        assert tag.name in [t.name for t in client.machines.get(machine.system_id).tags]
        found.tags.remove(tag)
        assert [t.name for t in client.machines.get(machine.system_id).tags] == []
    finally:
        tag.delete()


def test_resource_pools(client):  # noqa: F811
    assert client.resource_pools.get(0).name == "default"
    pool = client.resource_pools.create(name=name("lp"), description="first")
    try:
        assert pool.id in {p.id for p in client.resource_pools.list()}
        pool.description = "second"
        pool.save()
        assert client.resource_pools.get(pool.id).description == "second"
    finally:
        pool.delete()


def test_devices(client, api):  # noqa: F811
    device = client.devices.create([mac()], hostname=name("ld"))
    try:
        assert device.system_id in {d.system_id for d in client.devices.list()}
        found = client.devices.get(device.system_id)
        assert found.hostname == device.hostname and found.interfaces[0].mac_address
    finally:
        device.delete()
    assert api.get(f"devices/{device.system_id}/").status_code == 404


def test_events(client, machine):  # noqa: F811
    events = client.events.query(system_ids=[machine.system_id], level="DEBUG")
    assert len(events) >= 2
    newest = next(iter(events))
    assert newest.system_id == machine.system_id and newest.created.year >= 2024
    assert {e.event_type for e in events} >= {"Commissioning", "User starting node commissioning"}
    older = events.prev()
    assert all(e.event_id < min(x.event_id for x in events) for e in older)
