"""MAAS's wire format, response shapes and settings, against the shared region.

- Bodies as MAAS's JSON emitter writes them (4-space indent, UTF-8, `application/json;
  charset=utf-8`), describe/ compact and exactly `application/json`, X-MAAS-API-Hash on
  every API answer, `set-config` -> OK.
- Every resource metalplane serves carries every key MAAS's handler declares
  (tests/data/maas_fields.json), with MAAS's neutral value where metalplane has no data.
- get-config/set-config with MAAS's names, types, strings and messages.

Uses 10.204.0.0/16 and removes what it creates.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, region_processes
from metalplane.region.services import connections, controllers
from metalplane.region.services import racks as rack_services

FIELDS = json.loads((Path(__file__).parent.parent / "data" / "maas_fields.json").read_text())["resources"]
PREFIX = "/MAAS/api/2.0/"


def ok(response, status: int = 200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if status != 204 else None


def set_config(api, name: str, value: str) -> None:
    response = api.post("maas/", op="set_config", name=name, value=value)
    assert (response.status_code, response.text) == (200, "OK"), response.text


def missing_keys(resource: str, obj: dict) -> set[str]:
    spec = FIELDS[resource]
    return set(spec["keys"]) - set(spec["absent_unless"]) - set(obj)


def assert_shape(resource: str, obj: dict) -> None:
    missing = missing_keys(resource, obj)
    assert not missing, f"{resource} lacks MAAS's keys {sorted(missing)}"


# -- the JSON emitter ----------------------------------------------------------------------------


def test_objects_are_indented_utf8_json(api):
    name = f"wire-{secrets.token_hex(2)}"
    response = api.post("zones/", name=name, description="salle serveurs: ünïcødé ☃")
    try:
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.content.startswith(b'{\n    "')  # json.dumps(indent=4)
        assert "ünïcødé ☃".encode() in response.content and b"\\u" not in response.content
        assert response.json()["description"] == "salle serveurs: ünïcødé ☃"
        listed = api.get("zones/")
        assert listed.content.startswith(b'[\n    {\n        "')
    finally:
        api.delete(f"zones/{name}/")


def test_describe_is_compact_sorted_and_plain_application_json(shared_region):
    response = httpx.get(shared_region.url + "api/2.0/describe/")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert response.text == json.dumps(body, sort_keys=True)
    assert response.headers["x-maas-api-hash"] == body["hash"]


def test_the_api_hash_is_on_every_api_answer_and_the_same_wherever_from(shared_region, api):
    digest = httpx.get(shared_region.url + "api/2.0/describe/").json()["hash"]
    answers = [
        api.get("fabrics/"),
        api.get("fabrics/999999/"),
        api.post("fabrics/", name="bad name"),
        api.post("fabrics/", op="nonsense"),
        httpx.get(shared_region.url + "api/2.0/fabrics/"),
        httpx.get(shared_region.url + "api/2.0/no-such-thing/"),
        httpx.get(shared_region.url + "api/2.0/version/"),
        httpx.get(shared_region.url + "api/2.0/describe/", headers={"Host": "other.example:80"}),
    ]
    assert [r.status_code for r in answers] == [200, 404, 400, 400, 401, 404, 200, 200]
    assert {r.headers.get("x-maas-api-hash") for r in answers} == {digest}


def test_set_config_answers_ok_and_get_config_compact_json(api):
    before = api.get("maas/", op="get_config", name="maas_name")
    assert before.headers["content-type"] == "application/json" and before.text == json.dumps(before.json())
    response = api.post("maas/", op="set_config", name="maas_name", value="wire-test")
    assert (response.status_code, response.text, response.headers["content-type"]) == (200, "OK", "text/plain")
    assert api.get("maas/", op="get_config", name="maas_name").text == '"wire-test"'
    set_config(api, "maas_name", before.json())


def test_the_cli_prints_maas_json(shared_region, tmp_path):
    """`metalplane PROFILE machines read | head` shows 4-space-indented JSON; non-ASCII stays UTF-8."""
    env = {"METALPLANE_PROFILES": str(tmp_path / "profiles.json"), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "metalplane", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    cli("login", "wire", shared_region.url, shared_region.api_key)
    name = f"wire-{secrets.token_hex(2)}"
    cli("wire", "zones", "create", f"name={name}", "description=zône ☃")
    machine = json.loads(
        cli(
            "wire",
            "machines",
            "create",
            "architecture=amd64/generic",
            "mac_addresses=52:54:00:ee:02:01",
            f"hostname={name}",
            "description=ünï",
        )
    )
    try:
        out = cli("wire", "zones", "read")
        assert out.startswith("[\n    {\n        ")
        assert "zône ☃" in out
        head = cli("wire", "machines", "read").splitlines()[:10]
        assert head[0] == "[" and head[1] == "    {" and all(line.startswith("        ") for line in head[2:])
    finally:
        cli("wire", "machine", "delete", machine["system_id"])
        cli("wire", "zone", "delete", name)


# -- response shapes: every key MAAS declares ----------------------------------------------------------


@pytest.fixture
def rack(shared_region):
    """A rack controller node with one interface on a subnet, written straight to the database."""
    system_id, hostname = controllers.new_system_id(), f"wire-rack-{secrets.token_hex(2)}"

    async def add(conn):
        process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
        node_id = await rack_services.register_rack(
            conn,
            system_id,
            hostname,
            "0.1.0",
            [{"name": "eth0", "mac": "52:54:00:ee:00:01", "addresses": ["10.204.1.5/24"]}],
        )
        await connections.add_connection(conn, node_id, process)

    async def drop(conn):
        await conn.execute(delete(nodes).where(nodes.c.system_id == system_id))

    run_db(shared_region.config, add)
    yield system_id
    run_db(shared_region.config, drop)


def test_controllers_have_every_maas_key(api, rack):
    (shown,) = [r for r in ok(api.get("rackcontrollers/")) if r["system_id"] == rack]
    assert_shape("rack_controller", shown)
    assert_shape("rack_controller", ok(api.get(f"rackcontrollers/{rack}/")))
    (iface,) = shown["interface_set"]
    assert_shape("interface", iface)
    assert_shape("vlan", iface["vlan"])
    assert_shape("subnet", iface["links"][0]["subnet"])
    for region in ok(api.get("regioncontrollers/")):
        assert_shape("region_controller", region)
        assert_shape("region_controller", ok(api.get(f"regioncontrollers/{region['system_id']}/")))
        assert_shape("nested_zone", region["zone"])
        assert_shape("nested_domain", region["domain"])
    for key, neutral in FIELDS["rack_controller"]["neutral"].items():
        if key in ("hardware_info", "commissioning_status", "testing_status", "cpu_speed", "hardware_uuid"):
            assert shown[key] == neutral, key


def test_machines_have_every_maas_key(api):
    machine = ok(
        api.post(
            "machines/",
            architecture="amd64/generic",
            mac_addresses="52:54:00:ee:01:01",
            hostname=f"wire-{secrets.token_hex(2)}",
            power_type="manual",
        )
    )
    try:
        for shown in (
            machine,
            ok(api.get(f"machines/{machine['system_id']}/")),
            next(m for m in ok(api.get("machines/")) if m["system_id"] == machine["system_id"]),
        ):
            assert_shape("machine", shown)
            assert "constraints_by_type" not in shown  # only in allocate's answer
            assert_shape("nested_zone", shown["zone"])
            assert_shape("nested_pool", shown["pool"])
            assert_shape("nested_domain", shown["domain"])
            for iface in shown["interface_set"]:
                assert_shape("interface", iface)
            assert shown["boot_interface"] == shown["interface_set"][0]
            # what metalplane does not track yet shows MAAS's neutral values (libmaas' save() reads owner_data)
            for key in (
                "owner_data",
                "workload_annotations",
                "locked",
                "storage",
                "default_gateways",
                "pod",
                "blockdevice_set",
                "special_filesystems",
                "hardware_info",
                "testing_status_name",
            ):
                assert shown[key] == FIELDS["machine"]["neutral"][key], key
    finally:
        ok(api.delete(f"machines/{machine['system_id']}/"), 204)


def test_network_objects_have_every_maas_key(api):
    fabric = ok(api.post("fabrics/", name=f"wire-{secrets.token_hex(2)}"))
    try:
        assert_shape("fabric", fabric)
        vlan = ok(api.post(f"fabrics/{fabric['id']}/vlans/", vid=44))
        assert_shape("vlan", vlan)
        subnet = ok(api.post("subnets/", cidr="10.204.2.0/24", vlan=vlan["id"]))
        assert_shape("subnet", subnet)
        assert_shape("vlan", subnet["vlan"])
        iprange = ok(api.post("ipranges/", type="reserved", start_ip="10.204.2.10", end_ip="10.204.2.20"))
        assert_shape("iprange", iprange)
        assert_shape("user", iprange["user"])
        ok(api.delete(f"ipranges/{iprange['id']}/"), 204)
        ok(api.delete(f"subnets/{subnet['id']}/"), 204)
        space = ok(api.post("spaces/", name=f"wire-{secrets.token_hex(2)}"))
        assert_shape("space", space)
        ok(api.delete(f"spaces/{space['id']}/"), 204)
        zone = ok(api.get("zones/default/"))
        assert_shape("zone", zone)
        for user in ok(api.get("users/")):
            assert_shape("user", user)
    finally:
        for s in ok(api.get("subnets/")):
            if s["vlan"]["fabric_id"] == fabric["id"]:
                api.delete(f"subnets/{s['id']}/")
        api.delete(f"fabrics/{fabric['id']}/")


def test_boot_resources_have_every_maas_key(api):
    created = ok(
        api.post(
            "boot-resources/",
            name=f"custom/wire-{secrets.token_hex(2)}",
            architecture="amd64/generic",
            filetype="tgz",
            sha256="0" * 64,
            size="10",
        ),
        201,
    )
    try:
        for shown in (created, ok(api.get(f"boot-resources/{created['id']}/"))):
            assert_shape("boot_resource", shown)
            assert "sets" in shown
        listed = next(r for r in ok(api.get("boot-resources/")) if r["id"] == created["id"])
        assert_shape("boot_resource", listed)
        assert "sets" not in listed  # only on a single read
    finally:
        api.delete(f"boot-resources/{created['id']}/")


# -- settings over the API ------------------------------------------------------------------------------

SETTINGS = json.loads((Path(__file__).parent.parent / "data" / "maas_settings.json").read_text())


def test_every_maas_setting_can_be_read(api):
    for spec in SETTINGS["settings"]:
        response = api.get("maas/", op="get_config", name=spec["name"])
        assert response.status_code == 200, (spec["name"], response.text)
        if spec["name"] != "maas_name":
            value = response.json()
            assert value == spec["default"] or spec["name"] in ("maas_name",), (spec["name"], value)


def test_unknown_setting_answers_maas_error(api):
    for response in (
        api.get("maas/", op="get_config", name="nonsense"),
        api.post("maas/", op="set_config", name="nonsense", value="1"),
    ):
        body = ok(response, 400)
        assert list(body) == ["nonsense"]
        assert body["nonsense"][0].startswith("nonsense is not a valid config setting (valid settings are: maas_name, ")
    response = api.get("maas/", op="get_config")
    assert (response.status_code, response.text) == (400, "No provided name!")
    response = api.post("maas/", op="set_config", name="maas_name")
    assert (response.status_code, response.text) == (400, "No provided value!")


def test_lists_are_strings_and_ntp_server_is_an_alias(api):
    try:
        set_config(api, "upstream_dns", "8.8.8.8,8.8.4.4")
        assert ok(api.get("maas/", op="get_config", name="upstream_dns")) == "8.8.8.8 8.8.4.4"
        set_config(api, "ntp_server", "ntp.ubuntu.com, 10.0.0.1")
        assert ok(api.get("maas/", op="get_config", name="ntp_servers")) == "ntp.ubuntu.com 10.0.0.1"
        assert ok(api.get("maas/", op="get_config", name="ntp_server")) == "ntp.ubuntu.com 10.0.0.1"
    finally:
        set_config(api, "upstream_dns", "")
        set_config(api, "ntp_servers", "ntp.ubuntu.com")


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "upstream_dns",
            "dns.google",
            "Invalid IP address: dns.google; provide a list of space-separated IP addresses",
        ),
        ("ntp_servers", "bad name!", "Invalid hostname: Label contains disallowed characters: 'name!'."),
        ("ntp_servers", "fe80::1%eth0", "Failed to detect a valid IP address from 'fe80::1%eth0'."),
        ("maas_proxy_port", "80", "Unable to change port number. Port number is reserved for system services."),
        (
            "dnssec_validation",
            "maybe",
            "'maybe' is not a valid dnssec_validation.  It should be one of: 'auto', 'yes', 'no'.",
        ),
        # (not "ubuntu": writing back the value in force is accepted without images)
        ("default_osystem", "centos", "Unable to determine supported operating systems, due to missing boot images."),
        ("dhcp_lease_time", "5", "dhcp_lease_time: must be between 30 and 604800 seconds"),
    ],
)
def test_values_maas_refuses_change_nothing(api, name, value, message):
    before = api.get("maas/", op="get_config", name=name).json()
    body = ok(api.post("maas/", op="set_config", name=name, value=value), 400)
    assert body == {name: [message.removeprefix(f"{name}: ")]}
    assert api.get("maas/", op="get_config", name=name).json() == before


def test_set_config_is_for_admins(api, shared_region):
    from tests.conftest import create_user

    key = create_user(shared_region.config, f"wire-user-{secrets.token_hex(2)}")
    with shared_region.api(key) as user:
        response = user.post("maas/", op="set_config", name="maas_name", value="nope")
        assert (response.status_code, response.text) == (403, "This method is reserved for admin users.")
        assert user.get("maas/", op="get_config", name="ntp_servers").status_code == 200
