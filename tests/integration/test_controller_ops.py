"""What MAAS lets an admin do to rack and region controllers: update, power
parameters, details, boot images, region delete; and every key MAAS declares."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select

from metalplane.region.api import bson
from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, region_processes
from metalplane.region.services import connections, controllers
from metalplane.region.services import racks as rack_services
from tests.support.api_users import add_user, drop_user

# MAAS 3.7's RackControllerHandler fields (+ resource_uri); regions have all but service_set.
RACK_KEYS = {
    "system_id",
    "hostname",
    "description",
    "hardware_uuid",
    "domain",
    "fqdn",
    "architecture",
    "cpu_count",
    "cpu_speed",
    "memory",
    "swap_size",
    "osystem",
    "distro_series",
    "power_type",
    "power_state",
    "ip_addresses",
    "interface_set",
    "zone",
    "status_action",
    "node_type",
    "node_type_name",
    "service_set",
    "current_commissioning_result_id",
    "current_testing_result_id",
    "current_installation_result_id",
    "version",
    "commissioning_status",
    "commissioning_status_name",
    "testing_status",
    "testing_status_name",
    "cpu_test_status",
    "cpu_test_status_name",
    "memory_test_status",
    "memory_test_status_name",
    "network_test_status",
    "network_test_status_name",
    "storage_test_status",
    "storage_test_status_name",
    "other_test_status",
    "other_test_status_name",
    "hardware_info",
    "tag_names",
    "interface_test_status",
    "interface_test_status_name",
    "resource_uri",
}
REGION_KEYS = RACK_KEYS - {"service_set"}


def ok(response, status: int = 200):
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response


@pytest.fixture
def fake_controllers(shared_region) -> Iterator[dict[str, str]]:
    """A stopped region, a stopped region+rack, a connected rack and a disconnected one,
    written to the database (no processes: these tests are about the model's rules)."""
    made = {kind: controllers.new_system_id() for kind in ("region", "both", "rack", "lost")}
    tag = secrets.token_hex(2)

    async def add(conn):
        await controllers.register_region(
            conn, made["region"], f"ops-region-{tag}", "0.1", controllers.RegionInfo(1, 10, 5240)
        )
        await controllers.register_region(
            conn, made["both"], f"ops-both-{tag}", "0.1", controllers.RegionInfo(1, 10, 5240)
        )
        await rack_services.register_rack(conn, made["both"], f"ops-both-{tag}", "0.1", [])
        rack_id = await rack_services.register_rack(conn, made["rack"], f"ops-rack-{tag}", "0.1", [])
        await rack_services.register_rack(conn, made["lost"], f"ops-lost-{tag}", "0.1", [])
        process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
        await connections.add_connection(conn, rack_id, process)

    async def drop(conn):
        await conn.execute(delete(nodes).where(nodes.c.system_id.in_(list(made.values()))))

    run_db(shared_region.config, add)
    yield made
    run_db(shared_region.config, drop)


def test_controllers_carry_every_key_maas_declares(api, fake_controllers):
    rack = ok(api.get(f"rackcontrollers/{fake_controllers['rack']}/"))
    region = ok(api.get(f"regioncontrollers/{fake_controllers['region']}/"))
    assert RACK_KEYS <= set(rack), RACK_KEYS - set(rack)
    assert REGION_KEYS <= set(region), REGION_KEYS - set(region)
    for key in ("commissioning_status", "interface_test_status"):
        assert (region[key], region[key + "_name"]) == (-1, "Unknown")
    assert region["hardware_info"]["system_vendor"] == "Unknown" and region["cpu_speed"] == 0
    assert region["power_type"] == "" and region["hardware_uuid"] is None


def test_update_a_region_controller(api, fake_controllers):
    path = f"regioncontrollers/{fake_controllers['region']}/"
    zone = ok(api.post("zones/", name=f"ops-zone-{secrets.token_hex(2)}"))
    try:
        changed = ok(api.put(path, description="second floor", zone=zone["name"], domain="maas"))
        assert (changed["description"], changed["zone"]["name"], changed["domain"]["name"]) == (
            "second floor",
            zone["name"],
            "maas",
        )
        assert ok(api.get(path)) == changed
        for fields, errors in [
            ({"zone": "nosuch"}, {"zone": ["Select a valid choice. That choice is not one of the available choices."]}),
            (
                {"domain": "nosuch"},
                {"domain": ["Select a valid choice. That choice is not one of the available choices."]},
            ),
        ]:
            response = api.put(path, **fields)
            assert (response.status_code, response.json()) == (400, errors)
        response = api.put(path, power_type="ipmi", power_parameters_power_address="not an address!")
        assert response.status_code == 400 and "power_parameters_power_address" in response.json()
        powered = ok(
            api.put(
                path,
                power_type="ipmi",
                power_parameters_power_address="10.9.9.9",
                power_parameters_power_user="maas",
                power_parameters_power_pass="secret",
            )
        )
        assert powered["power_type"] == "ipmi"
        params = ok(api.get(path, op="power_parameters"))
        assert (params["power_address"], params["power_pass"]) == ("10.9.9.9", "secret")
        everyone = ok(api.get("regioncontrollers/", op="power_parameters", id=fake_controllers["region"]))
        assert everyone == {fake_controllers["region"]: params}
    finally:
        api.put(path, zone="default")
        api.delete(f"zones/{zone['name']}/")


def test_update_a_rack_controller(api, fake_controllers):
    path = f"rackcontrollers/{fake_controllers['rack']}/"
    changed = ok(api.put(path, description="rack by the door"))
    assert changed["description"] == "rack by the door" and changed["node_type_name"] == "Rack controller"
    assert api.put("rackcontrollers/nosuch/", description="x").text == "No RackController matches the given query."


def test_non_admins_may_not(shared_region, fake_controllers):
    username, key = add_user(shared_region.config, "ops-user")
    try:
        with shared_region.api(key) as user:
            for method, path, op in [
                ("PUT", f"regioncontrollers/{fake_controllers['region']}/", None),
                ("GET", f"regioncontrollers/{fake_controllers['region']}/", "power_parameters"),
                ("DELETE", f"regioncontrollers/{fake_controllers['region']}/", None),
                ("GET", f"rackcontrollers/{fake_controllers['rack']}/", "list_boot_images"),
                ("POST", f"rackcontrollers/{fake_controllers['rack']}/", "import_boot_images"),
            ]:
                response = user.request(method, path, op, {"description": "x"} if method == "PUT" else None)
                assert (response.status_code, response.text) == (403, "This method is reserved for admin users.")
            assert user.get(f"regioncontrollers/{fake_controllers['region']}/", op="details").status_code == 200
    finally:
        drop_user(shared_region.config, username)


def test_details_are_bson(api, fake_controllers):
    response = api.get(f"regioncontrollers/{fake_controllers['region']}/", op="details")
    assert response.headers["content-type"] == "application/bson"
    assert bson.decode(response.content) == {"lshw": None, "lldp": None}
    assert api.get("regioncontrollers/nosuch/", op="details").status_code == 404


def test_a_running_region_cannot_be_deleted(api, shared_region):
    (running,) = [r for r in ok(api.get("regioncontrollers/")) if r["processes"]][:1]
    response = api.delete(f"regioncontrollers/{running['system_id']}/")
    assert (response.status_code, response.text) == (
        400,
        f"Unable to delete {running['hostname']} as it's currently running.",
    )
    assert ok(api.get(f"regioncontrollers/{running['system_id']}/"))["system_id"] == running["system_id"]


def test_a_stopped_region_is_deleted_and_a_region_rack_stays_a_rack(api, fake_controllers):
    ok(api.delete(f"regioncontrollers/{fake_controllers['region']}/"), 204)
    assert api.get(f"regioncontrollers/{fake_controllers['region']}/").text == (
        "No RegionController matches the given query."
    )
    ok(api.delete(f"regioncontrollers/{fake_controllers['both']}/"), 204)
    assert api.get(f"regioncontrollers/{fake_controllers['both']}/").status_code == 404
    rack = ok(api.get(f"rackcontrollers/{fake_controllers['both']}/"))
    assert (rack["node_type"], rack["node_type_name"]) == (2, "Rack controller")


def test_rack_boot_images(api, fake_controllers):
    name = f"custom/ops-{secrets.token_hex(2)}"
    made = ok(
        api.post(
            "boot-resources/",
            name=name,
            architecture="amd64/generic",
            filetype="tgz",
            content=secrets.token_bytes(2000),
        ),
        201,
    )
    try:
        listed = ok(api.get(f"rackcontrollers/{fake_controllers['rack']}/", op="list_boot_images"))
        assert (listed["connected"], listed["status"]) == (True, "synced")
        assert {"name": name, "architecture": "amd64", "subarches": ["generic"]} in listed["images"]
        lost = ok(api.get(f"rackcontrollers/{fake_controllers['lost']}/", op="list_boot_images"))
        assert (lost["connected"], lost["status"]) == (False, "unknown") and lost["images"] == listed["images"]
        response = api.post(f"rackcontrollers/{fake_controllers['rack']}/", op="import_boot_images")
        assert (response.status_code, response.text) == (202, "Accepted")
        assert api.post("rackcontrollers/", op="import_boot_images").status_code == 202
        assert api.get("rackcontrollers/nosuch/", op="list_boot_images").status_code == 404
    finally:
        api.delete(f"boot-resources/{made['id']}/")


def test_describe_power_types(api):
    types = {t["name"] for t in ok(api.get("rackcontrollers/", op="describe_power_types"))}
    assert {"ipmi", "redfish", "manual"} <= types
