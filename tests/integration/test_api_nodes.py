"""The node resources beside machines/, against a real region: nodes/, interfaces and
their links, ipaddresses/, block devices and partitions from commissioning facts,
node-results and script sets, devices/, tags (XPath over the hardware document),
resource pools, events and notifications.

Commissioning reports are posted to the metadata API exactly as the ephemeral
image posts them (docs/boot.md); the image itself is exercised in tests/system.
Addresses: 10.202.200-209.0/24; MACs 52:54:02:xx:xx:xx.
"""

from __future__ import annotations

import base64
import secrets

import httpx
import pytest
from sqlalchemy import select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import node_tokens, nodes
from tests.data.maas_node_fields import (
    BLOCK_DEVICE_KEYS,
    DEVICE_KEYS,
    INTERFACE_KEYS,
    IP_ADDRESS_KEYS,
    NODE_RESULT_KEYS,
    NOTIFICATION_KEYS,
    PARTITION_KEYS,
    RESOURCE_POOL_KEYS,
    SCRIPT_SET_KEYS,
    TAG_KEYS,
)


def mac() -> str:
    value = secrets.randbits(24)
    return f"52:54:02:{value >> 16 & 255:02x}:{value >> 8 & 255:02x}:{value & 255:02x}"


def name(prefix: str = "n") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


FACTS = {
    "architecture": "amd64/generic",
    "boot_method": "pxe",
    "firmware": "bios",
    "kernel": "6.1.0",
    "cpu_count": 4,
    "cpu_model": "QEMU Virtual CPU version 2.5+",
    "memory_mib": 7953,
    "memory_physical_mib": 8192,
    "disks": [
        {
            "name": "vda",
            "size_bytes": 17179869184,
            "model": "QEMU HARDDISK",
            "serial": "MPDISK1",
            "rotational": True,
            "removable": False,
            "partitions": [{"number": 1, "size_bytes": 536870912}, {"number": 2, "size_bytes": 1073741824}],
        },
        {"name": "vdb", "size_bytes": 1073741824, "model": "", "serial": "", "rotational": False, "removable": True},
    ],
    "interfaces": [{"name": "eth0", "mac": "", "driver": "virtio_net", "link_up": True, "speed_mbps": 1000}],
    "image": {"version": "test", "kernel": "6.1.0"},
}


@pytest.fixture
def machine(api):
    made: list[str] = []

    def make(**fields) -> dict:
        fields = {
            "architecture": "amd64/generic",
            "mac_addresses": mac(),
            "commission": "false",
            "hostname": name("m"),
            **fields,
        }
        response = api.post("machines/", **fields)
        assert response.status_code == 200, response.text
        made.append(response.json()["system_id"])
        return response.json()

    yield make
    for system_id in made:
        api.delete(f"machines/{system_id}/")


def commission_with(shared_region, api, system_id: str, facts: dict, scripts: dict[str, int]) -> dict:
    """Commission a (manual-power) machine and report as the ephemeral image does."""
    assert api.post(f"machines/{system_id}/", op="commission").status_code == 200

    async def token_of(conn) -> str:
        node_id = (await conn.execute(select(nodes.c.id).where(nodes.c.system_id == system_id))).scalar_one()
        return (await conn.execute(select(node_tokens.c.token).where(node_tokens.c.node_id == node_id))).scalar_one()

    token = run_db(shared_region.config, token_of)
    base = shared_region.url.rstrip("/").removesuffix("/MAAS") + "/MAAS/metadata/"
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=base, headers=headers) as meta:
        assert meta.post("commission/facts", json=facts).status_code == 200
        for script, status in scripts.items():
            assert (
                meta.post(
                    f"commission/scripts/{script}?exit_status={status}&runtime=3",
                    content=f"output of {script}\n".encode(),
                ).status_code
                == 200
            )
        failed = [s for s, status in scripts.items() if status != 0]
        assert (
            meta.post(
                "commission/done", json={"result": "failed" if failed else "ok", "failed_scripts": failed}
            ).status_code
            == 200
        )
    return api.get(f"machines/{system_id}/").json()


@pytest.fixture
def subnet(api):
    fabric = api.post("fabrics/", name=name("f")).json()
    vlan_id = fabric["vlans"][0]["id"]
    cidr = f"10.202.{200 + secrets.randbelow(10)}.0/24"
    for s in api.get("subnets/").json():
        if s["cidr"] == cidr:
            pytest.skip(f"{cidr} is in use by another test")
    made = api.post("subnets/", cidr=cidr, vlan=str(vlan_id), gateway_ip=cidr.replace(".0/24", ".1")).json()
    yield made
    api.delete(f"subnets/{made['id']}/")
    api.delete(f"fabrics/{fabric['id']}/")


# -- nodes/ ---------------------------------------------------------------------------------


def test_nodes_lists_every_type_in_its_shape(api, machine):
    m = machine()
    listed = {n["system_id"]: n for n in api.get("nodes/").json()}
    assert listed[m["system_id"]]["resource_uri"] == f"/MAAS/api/2.0/machines/{m['system_id']}/"
    assert any(n["node_type"] in (3, 4) for n in listed.values())  # the region itself
    one = api.get(f"nodes/{m['system_id']}/").json()
    assert one["system_id"] == m["system_id"] and "owner_data" in one
    assert api.get("nodes/", hostname=m["hostname"]).json()[0]["system_id"] == m["system_id"]
    assert api.get("nodes/", mac_address=m["interface_set"][0]["mac_address"]).json()[0]["system_id"] == m["system_id"]
    assert api.get("nodes/nosuch/").text == "No Node matches the given query."
    assert api.get("nodes/", op="is_registered", mac_address=m["interface_set"][0]["mac_address"]).json() is True
    assert api.get("nodes/", op="is_registered", mac_address=mac()).json() is False
    assert api.get(f"nodes/{m['system_id']}/", op="power_parameters").json() == {}
    assert api.delete(f"nodes/{m['system_id']}/").status_code == 204
    assert api.get(f"machines/{m['system_id']}/").status_code == 404


def test_nodes_set_zone(api, machine):
    m = machine()
    zone = api.post("zones/", name=name("z")).json()
    try:
        assert api.post("nodes/", op="set_zone", zone=zone["name"], nodes=m["system_id"]).status_code in (200, 204)
        assert api.get(f"machines/{m['system_id']}/").json()["zone"]["name"] == zone["name"]
        bad = api.post("nodes/", op="set_zone", zone="nosuch", nodes=m["system_id"])
        assert bad.status_code == 400 and "zone" in bad.json()
    finally:
        api.post("nodes/", op="set_zone", zone="default", nodes=m["system_id"])
        api.delete(f"zones/{zone['name']}/")


# -- interfaces -----------------------------------------------------------------------------


def test_every_node_resource_uri_of_an_interface_resolves(api, machine):
    m = machine()
    (iface,) = m["interface_set"]
    shown = api.get(iface["resource_uri"].removeprefix("/MAAS/api/2.0/"))
    assert shown.status_code == 200
    assert set(shown.json()) == INTERFACE_KEYS
    assert api.get(f"nodes/{m['system_id']}/interfaces/").json() == [shown.json()]
    assert api.get(f"nodes/{m['system_id']}/interfaces/name:eth0/").json()["id"] == iface["id"]
    assert api.get(f"nodes/{m['system_id']}/interfaces/999999/").text == "No Interface matches the given query."
    assert api.get(f"nodes/{m['system_id']}/interfaces/2147483648/").status_code == 404


def test_link_subnet_modes_unlink_gateway_and_disconnect(api, machine, subnet):
    m = machine()
    base = f"nodes/{m['system_id']}/interfaces/{m['interface_set'][0]['id']}/"
    gateway = subnet["gateway_ip"]
    static = api.post(base, op="link_subnet", mode="STATIC", subnet=str(subnet["id"]), default_gateway="true")
    assert static.status_code == 200, static.text
    (link,) = static.json()["links"]
    assert link["mode"] == "static" and link["subnet"]["id"] == subnet["id"]
    assert link["ip_address"].startswith(subnet["cidr"].rsplit(".", 1)[0]) and link["ip_address"] != gateway
    assert static.json()["vlan"]["id"] == subnet["vlan"]["id"]
    shown = api.get(f"machines/{m['system_id']}/").json()
    assert shown["default_gateways"]["ipv4"] == {"gateway_ip": gateway, "link_id": link["id"]}
    assert shown["ip_addresses"] == [link["ip_address"]]

    auto = api.post(base, op="link_subnet", mode="auto", subnet=str(subnet["id"])).json()
    assert [x["mode"] for x in auto["links"]] == ["static", "auto"]
    assert "ip_address" not in auto["links"][1]
    dhcp = api.post(base, op="link_subnet", mode="dhcp", subnet=str(subnet["id"]))
    assert dhcp.status_code == 200
    again = api.post(base, op="link_subnet", mode="dhcp")
    assert again.json() == {"mode": ["Interface is already set to DHCP."]}
    taken = api.post(base, op="link_subnet", mode="static", subnet=str(subnet["id"]), ip_address=link["ip_address"])
    assert taken.status_code == 400 and "ip_address" in taken.json()
    bad_mode = api.post(base, op="link_subnet", mode="bogus", subnet=str(subnet["id"]))
    assert bad_mode.json() == {
        "mode": ["'bogus' is not a valid mode.  It should be one of: 'auto', 'dhcp', 'static', 'link_up'."]
    }

    gw = api.post(base, op="set_default_gateway", link_id=str(auto["links"][1]["id"]))
    assert gw.status_code == 200, gw.text
    assert (
        api.get(f"machines/{m['system_id']}/").json()["default_gateways"]["ipv4"]["link_id"] == auto["links"][1]["id"]
    )

    unlinked = api.post(base, op="unlink_subnet", id=str(link["id"]))
    assert unlinked.status_code == 200 and link["id"] not in [x["id"] for x in unlinked.json()["links"]]
    assert api.post(base, op="unlink_subnet", id="999999").status_code == 400

    gone = api.post(base, op="disconnect").json()
    assert gone["links"] == [] and gone["vlan"] is None


def test_interface_update_and_tags(api, machine, subnet):
    m = machine()
    base = f"nodes/{m['system_id']}/interfaces/{m['interface_set'][0]['id']}/"
    updated = api.put(base, name="boot0", mtu="9000", vlan=str(subnet["vlan"]["id"]), link_speed="1000")
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["name"], body["effective_mtu"], body["vlan"]["id"], body["link_speed"]) == (
        "boot0",
        9000,
        subnet["vlan"]["id"],
        1000,
    )
    assert api.put(base, name="this-name-is-far-too-long").status_code == 400
    assert api.put(base, mtu="100").json() == {"mtu": ["Ensure this value is greater than or equal to 552."]}
    assert api.put(base, vlan="999999").json() == {
        "vlan": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert api.post(base, op="add_tag", tag="uplink").json()["tags"] == ["uplink"]
    assert api.post(base, op="remove_tag", tag="uplink").json()["tags"] == []


def test_controller_interfaces_cannot_be_deleted_or_linked(api, shared_region):
    from metalplane.region.services import racks

    system_id, address = f"rk{secrets.token_hex(3)}", f"10.202.209.{secrets.randbelow(200) + 10}/24"

    async def register(conn) -> None:
        await racks.register_rack(
            conn,
            system_id,
            name("rack"),
            "test",
            [{"name": "eth0", "mac": mac(), "type": "physical", "enabled": True, "addresses": [address]}],
        )

    run_db(shared_region.config, register)
    try:
        rack = api.get(f"rackcontrollers/{system_id}/").json()
        (iface,) = rack["interface_set"]
        assert set(iface) == INTERFACE_KEYS
        assert iface["links"][0]["mode"] == "static" and iface["links"][0]["ip_address"] == address.split("/")[0]
        base = f"nodes/{system_id}/interfaces/{iface['id']}/"
        assert api.get(base).json() == iface
        assert api.delete(base).text == "Cannot delete interface interface on a controller."
        assert api.post(base, op="link_subnet", mode="dhcp").text == "Cannot link subnet interface on a controller."
        assert api.put(base, name="x").status_code == 400  # a controller's interface takes vlan and link facts only
        assert api.put(base, link_speed="1000").json()["link_speed"] == 1000
    finally:
        api.delete(f"rackcontrollers/{system_id}/")
        subnet_cidr = address.rsplit(".", 1)[0] + ".0/24"
        for s in api.get("subnets/").json():
            if s["cidr"] == subnet_cidr:
                api.delete(f"subnets/{s['id']}/")


# -- ipaddresses ----------------------------------------------------------------------------


def test_reserve_list_and_release(api, subnet):
    reserved = api.post("ipaddresses/", op="reserve", subnet=subnet["cidr"])
    assert reserved.status_code == 200, reserved.text
    body = reserved.json()
    assert set(body) >= IP_ADDRESS_KEYS and body["alloc_type_name"] == "User reserved"
    assert body["owner"]["username"] == "admin" and body["subnet"]["id"] == subnet["id"]
    chosen = subnet["cidr"].replace(".0/24", ".77")
    assert api.post("ipaddresses/", op="reserve", ip=chosen).json()["ip"] == chosen
    assert api.post("ipaddresses/", op="reserve", ip=chosen).status_code == 400
    listed = {a["ip"] for a in api.get("ipaddresses/").json()}
    assert {body["ip"], chosen} <= listed
    assert api.post("ipaddresses/", op="reserve", ip="192.0.2.1").text == "No known subnet for IP address: 192.0.2.1."
    assert api.post("ipaddresses/", op="reserve").text == "Must supply either the 'subnet' or the 'ip' parameter."
    assert api.post("ipaddresses/", op="release", ip=chosen).status_code == 204
    assert api.post("ipaddresses/", op="release", ip=body["ip"]).status_code == 204
    assert api.post("ipaddresses/", op="release", ip=chosen).status_code == 400
    assert not {body["ip"], chosen} & {a["ip"] for a in api.get("ipaddresses/").json()}


# -- commissioning data: block devices, partitions, results, tags, events -------------------


def test_commissioning_facts_make_block_devices_and_partitions(api, shared_region, machine):
    m = machine()
    done = commission_with(shared_region, api, m["system_id"], FACTS, {"00-cpuinfo": 0, "20-block-devices": 0})
    assert done["status_name"] == "Ready" and done["commissioning_status_name"] == "Passed"
    assert done["storage"] == (17179869184 + 1073741824) / 1e6
    assert [d["name"] for d in done["physicalblockdevice_set"]] == ["vda", "vdb"]
    assert done["boot_disk"]["name"] == "vda" and done["hardware_info"]["cpu_model"] == FACTS["cpu_model"]
    disks = api.get(f"nodes/{m['system_id']}/blockdevices/").json()
    vda = disks[0]
    assert set(vda) == BLOCK_DEVICE_KEYS
    assert (vda["size"], vda["model"], vda["serial"], vda["tags"]) == (
        17179869184,
        "QEMU HARDDISK",
        "MPDISK1",
        ["rotary"],
    )
    assert vda["used_for"] == "GPT partitioned with 2 partitions" and vda["partition_table_type"] == "GPT"
    assert disks[1]["tags"] == ["ssd", "removable"] and disks[1]["used_for"] == "Unused"
    assert api.get(vda["resource_uri"].removeprefix("/MAAS/api/2.0/")).json() == vda
    parts = api.get(f"nodes/{m['system_id']}/blockdevices/{vda['id']}/partitions/").json()
    assert [p["size"] for p in parts] == [536870912, 1073741824]
    assert set(parts[0]) == PARTITION_KEYS
    assert api.get(parts[0]["resource_uri"].removeprefix("/MAAS/api/2.0/")).json() == parts[0]
    assert api.get(f"nodes/{m['system_id']}/blockdevices/999999/").text == "No BlockDevice matches the given query."


def test_script_results_in_maas_shapes(api, shared_region, machine):
    m = machine()
    done = commission_with(shared_region, api, m["system_id"], FACTS, {"00-cpuinfo": 0, "99-check": 1})
    assert done["status_name"] == "Failed commissioning" and done["commissioning_status_name"] == "Failed"
    sets = api.get(f"nodes/{m['system_id']}/results/").json()
    (only,) = sets
    assert set(only) == SCRIPT_SET_KEYS and only["type_name"] == "Commissioning" and only["status_name"] == "Failed"
    assert {r["name"]: r["status_name"] for r in only["results"]} == {"00-cpuinfo": "Passed", "99-check": "Failed"}
    assert only["results"][0]["runtime"] == "0:00:03"
    current = api.get(f"nodes/{m['system_id']}/results/current-commissioning/", include_output="1").json()
    assert current["id"] == only["id"] == done["current_commissioning_result_id"]
    outputs = {r["name"]: base64.b64decode(r["output"]).decode() for r in current["results"]}
    assert outputs["99-check"] == "output of 99-check\n"
    download = api.get(f"nodes/{m['system_id']}/results/{only['id']}/", op="download", filters="99-check")
    assert download.content == b"output of 99-check\n"
    assert api.get(f"nodes/{m['system_id']}/results/current-testing/").status_code == 400
    legacy = api.get("installation-results/", system_id=m["system_id"]).json()
    assert {r["name"] for r in legacy} == {"00-cpuinfo", "99-check"}
    assert NODE_RESULT_KEYS <= set(legacy[0])
    assert api.get("commissioning-results/", system_id=m["system_id"], name="99-check").json()[0]["script_result"] == 1
    events = api.get("events/", op="query", id=m["system_id"]).json()
    types = [e["type"] for e in events["events"]]
    assert types[0] == "Failed commissioning" and "Node commissioning failure" in types


def test_defined_tags_follow_the_hardware_document(api, shared_region, machine):
    m = machine()
    commission_with(shared_region, api, m["system_id"], FACTS, {"00-cpuinfo": 0})
    many_cpus, big_disk = name("cpus"), name("disk")
    made = api.post("tags/", name=many_cpus, definition='count(//node[@class="processor"]) >= 4', comment="4+ CPUs")
    assert made.status_code == 200, made.text
    assert set(made.json()) == TAG_KEYS
    try:
        assert many_cpus in api.get(f"machines/{m['system_id']}/").json()["tag_names"]
        assert m["system_id"] in [x["system_id"] for x in api.get(f"tags/{many_cpus}/", op="machines").json()]
        changed = api.put(f"tags/{many_cpus}/", definition='count(//node[@class="processor"]) >= 64')
        assert changed.status_code == 200
        assert many_cpus not in api.get(f"machines/{m['system_id']}/").json()["tag_names"]
        api.post("tags/", name=big_disk, definition='//node[@class="disk"]/size > 10000000000')
        assert m["system_id"] in [x["system_id"] for x in api.get("machines/", tags=big_disk).json()]
        assert api.post(f"tags/{big_disk}/", op="rebuild").json() == {"rebuilding": big_disk}
        bad = api.post("tags/", name=name("bad"), definition="//node[")
        assert bad.status_code == 400 and bad.json()["definition"][0].startswith("Invalid XPath expression: ")
    finally:
        api.delete(f"tags/{many_cpus}/")
        api.delete(f"tags/{big_disk}/")


def test_manual_tags(api, machine):
    m = machine()
    tag = name("t")
    assert api.post("tags/", name=tag, comment="by hand").status_code == 200
    try:
        assert api.post(f"tags/{tag}/", op="update_nodes", add=m["system_id"]).json() == {"added": 1, "removed": 0}
        assert api.get(f"machines/{m['system_id']}/").json()["tag_names"] == [tag]
        assert {x["system_id"] for x in api.get(f"tags/{tag}/", op="nodes").json()} == {m["system_id"]}
        assert api.get(f"tags/{tag}/", op="devices").json() == []
        assert api.get("machines/", tags=tag).json()[0]["system_id"] == m["system_id"]
        assert api.get("machines/", not_tags=tag, id=m["system_id"]).json() == []
        conflict = api.post(f"tags/{tag}/", op="update_nodes", add=m["system_id"], definition="//x")
        assert conflict.status_code == 409
        assert conflict.text == "Definition supplied '//x' doesn't match current definition ''"
        assert api.post(f"tags/{tag}/", op="update_nodes", remove=m["system_id"]).json() == {"added": 0, "removed": 1}
        assert api.post("tags/", name="bad name").json() == {"name": ["Enter a valid value."]}
        assert api.post("tags/", name=tag).json() == {"name": ["Tag with this Name already exists."]}
    finally:
        api.delete(f"tags/{tag}/")
    assert api.get(f"tags/{tag}/").text == "No Tag matches the given query."


# -- devices --------------------------------------------------------------------------------


def test_devices(api, machine, subnet):
    parent = machine()
    created = api.post("devices/", hostname=name("d"), mac_addresses=mac(), parent=parent["system_id"])
    assert created.status_code == 200, created.text
    d = created.json()
    try:
        assert set(d) == DEVICE_KEYS and d["parent"] == parent["system_id"] and d["node_type_name"] == "Device"
        assert d["owner"] == "admin"
        assert api.get("devices/").status_code == 200
        assert d["system_id"] in [x["system_id"] for x in api.get("devices/").json()]
        iface = d["interface_set"][0]
        linked = api.post(
            f"nodes/{d['system_id']}/interfaces/{iface['id']}/",
            op="link_subnet",
            mode="static",
            subnet=str(subnet["id"]),
        )
        assert linked.status_code == 200, linked.text
        assert (
            api.post(f"nodes/{d['system_id']}/interfaces/{iface['id']}/", op="link_subnet", mode="dhcp").status_code
            == 400
        )
        shown = api.get(f"devices/{d['system_id']}/").json()
        assert shown["ip_addresses"] == [linked.json()["links"][0]["ip_address"]]
        second = api.post(f"nodes/{d['system_id']}/interfaces/", op="create_physical", mac_address=mac())
        assert second.status_code == 200 and second.json()["name"] == "eth1"
        updated = api.put(f"devices/{d['system_id']}/", hostname=name("d2"), parent="")
        assert updated.status_code == 200 and updated.json()["parent"] is None
        assert api.post("devices/", mac_addresses="").json() == {"mac_addresses": ["This field is required."]}
        assert api.post("devices/", mac_addresses=mac(), parent="nosuch").status_code == 400
    finally:
        assert api.delete(f"devices/{d['system_id']}/").status_code == 204
    assert api.get(f"devices/{d['system_id']}/").text == "No Device matches the given query."


def test_a_users_device_is_theirs(shared_region, api):
    from tests.conftest import create_user

    key = create_user(shared_region.config, name("u"))
    with shared_region.api(key) as user_api:
        mine = user_api.post("devices/", mac_addresses=mac()).json()
        annotated = user_api.post(f"devices/{mine['system_id']}/", op="set_workload_annotations", rack="7")
        assert annotated.status_code == 200 and annotated.json()["owner_data"] == {"rack": "7"}
        cleared = user_api.post(f"devices/{mine['system_id']}/", op="set_owner_data", rack="")
        assert cleared.json()["workload_annotations"] == {}
    theirs = api.post("devices/", mac_addresses=mac()).json()
    try:
        with shared_region.api(key) as user_api:
            assert theirs["system_id"] not in [x["system_id"] for x in user_api.get("devices/").json()]
            assert user_api.get(f"devices/{theirs['system_id']}/").status_code == 404
            assert user_api.delete(f"devices/{theirs['system_id']}/").status_code == 404
            assert user_api.delete(f"devices/{mine['system_id']}/").status_code == 204
    finally:
        api.delete(f"devices/{theirs['system_id']}/")


# -- resource pools -------------------------------------------------------------------------


def test_resource_pools(api, machine):
    default = api.get("resourcepool/0/").json()
    assert default == {
        "id": 0,
        "name": "default",
        "description": "Default pool",
        "resource_uri": "/MAAS/api/2.0/resourcepool/0/",
    }
    made = api.post("resourcepools/", name=name("p"), description="gpu").json()
    assert set(made) == RESOURCE_POOL_KEYS and made["resource_uri"] == f"/MAAS/api/2.0/resourcepool/{made['id']}/"
    assert api.get(f"resourcepool/{made['name']}/").json()["id"] == made["id"]
    assert api.post("resourcepools/", name=made["name"]).json() == {
        "name": ["Resource pool with this Name already exists."]
    }
    renamed = api.put(f"resourcepool/{made['id']}/", name=made["name"] + "x").json()
    m = machine(pool=renamed["name"])
    assert m["pool"]["id"] == made["id"]
    assert api.delete(f"resourcepool/{made['id']}/").text == "Pool has machines in it, it cannot be deleted."
    api.put(f"machines/{m['system_id']}/", pool="default")
    assert api.delete(f"resourcepool/{made['id']}/").status_code == 204
    assert api.delete("resourcepool/0/").text == "This is the default pool, it cannot be deleted."
    assert api.get("resourcepool/99999/").text == "No ResourcePool matches the given query."


# -- events ---------------------------------------------------------------------------------


def test_events_query_shape_and_paging(api, machine):
    m = machine(commission="true")
    page = api.get("events/", op="query", id=m["system_id"], level="DEBUG", limit="2").json()
    assert set(page) == {"count", "events", "next_uri", "prev_uri"} and page["count"] == 2
    first = page["events"][0]
    assert set(first) == {"username", "node", "hostname", "id", "level", "created", "type", "description"}
    assert first["node"] == m["system_id"] and first["hostname"] == m["hostname"]
    import datetime

    datetime.datetime.strptime(first["created"], "%a, %d %b. %Y %H:%M:%S")
    older = api.get(page["prev_uri"].removeprefix("/MAAS/api/2.0/")).json()
    assert older["events"] and max(e["id"] for e in older["events"]) < min(e["id"] for e in page["events"])
    assert api.get("events/", op="query", level="LOUD").text == "Unrecognised log level: LOUD"
    assert (
        api.get("events/", op="query", limit="1001").text
        == "Requested number of events 1001 is greater than limit: 1000"
    )
    assert api.get("events/", op="query", after="1", before="2").status_code == 400
    infos = api.get("events/", op="query", id=m["system_id"]).json()["events"]
    assert all(e["level"] in ("INFO", "WARNING", "ERROR", "CRITICAL") for e in infos)


# -- notifications --------------------------------------------------------------------------


def test_notifications(api, shared_region):
    from tests.conftest import create_user

    made = api.post("notifications/", message="Disk almost full", category="warning", users="true")
    assert made.status_code == 200, made.text
    n = made.json()
    assert set(n) == NOTIFICATION_KEYS and n["category"] == "warning"
    key = create_user(shared_region.config, name("u"))
    with shared_region.api(key) as user_api:
        assert n["id"] in [x["id"] for x in user_api.get("notifications/").json()]
        assert user_api.post(f"notifications/{n['id']}/", op="dismiss").status_code == 204
        assert n["id"] not in [x["id"] for x in user_api.get("notifications/").json()]
        assert user_api.post("notifications/", message="x").status_code == 403
    assert n["id"] in [x["id"] for x in api.get("notifications/").json()]
    updated = api.put(f"notifications/{n['id']}/", message="Disk full", category="error").json()
    assert (updated["message"], updated["category"]) == ("Disk full", "error")
    assert api.post("notifications/", message="x", category="loud").status_code == 400
    assert api.delete(f"notifications/{n['id']}/").status_code == 204
    assert api.get(f"notifications/{n['id']}/").text == "No Notification matches the given query."


# -- no 5xx for what cannot name anything -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "fields", "status"),
    [
        ("GET", "nodes/%00/", {}, 404),
        ("GET", "machines/%00/", {}, 404),
        ("GET", "devices/%00/", {}, 404),
        ("GET", "tags/%00/", {}, 404),
        ("GET", "resourcepool/2147483648/", {}, 404),
        ("GET", "resourcepool/%00/", {}, 404),
        ("GET", "notifications/2147483648/", {}, 404),
        ("GET", "machines/", {"zone": "\x00"}, 400),
        ("GET", "machines/", {"hostname": "\x00"}, 400),
        ("GET", "events/", {"op": "query", "owner": "a\x00b"}, 400),
        ("GET", "events/", {"op": "query", "after": str(2**70)}, 400),
        (
            "POST",
            "machines/",
            {
                "architecture": "amd64/generic",
                "mac_addresses": "52:54:02:00:00:01",
                "zone": "\x00",
                "commission": "false",
            },
            400,
        ),
        ("POST", "ipaddresses/", {"op": "reserve", "subnet": "2147483648"}, 400),
        ("POST", "nodes/", {"op": "set_zone", "zone": "default", "nodes": "\x00"}, 400),
    ],
)
def test_impossible_names_are_4xx(api, method, path, fields, status):
    op = fields.pop("op", None)
    response = api.request(method, path, op, fields)
    assert response.status_code == status, response.text


def test_impossible_interface_and_subnet_ids(api, machine):
    m = machine()
    base = f"nodes/{m['system_id']}/interfaces/"
    assert api.get(base + "2147483648/").status_code == 404
    assert api.get(base + "%00/").status_code == 404
    iface = f"{base}{m['interface_set'][0]['id']}/"
    assert api.post(iface, op="link_subnet", mode="static", subnet="2147483648").json() == {
        "subnet": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert api.get(f"nodes/{m['system_id']}/results/2147483648/").status_code == 400
    assert api.get(f"nodes/{m['system_id']}/blockdevices/2147483648/").status_code == 404
