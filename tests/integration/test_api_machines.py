"""machines/ and machines/{system_id}/ against a real region: MAAS's fields, read filters,
create (commissioning by admins), update of every documented field, uniqueness under races.

MACs here are 52:54:01:xx:xx:xx; every test removes what it creates.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.data.maas_node_fields import MACHINE_READ_KEYS
from tests.integration.test_api_nodes import FACTS, commission_with


def mac() -> str:
    value = secrets.randbits(24)
    return f"52:54:01:{value >> 16 & 255:02x}:{value >> 8 & 255:02x}:{value & 255:02x}"


def name(prefix: str = "m") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def made(api):
    """Machines a test creates (without commissioning unless asked), deleted afterwards."""
    created: list[str] = []

    def make(**fields) -> dict:
        fields.setdefault("architecture", "amd64/generic")
        fields.setdefault("mac_addresses", mac())
        fields.setdefault("commission", "false")
        response = api.post("machines/", **fields)
        assert response.status_code == 200, response.text
        created.append(response.json()["system_id"])
        return response.json()

    yield make
    for system_id in created:
        api.delete(f"machines/{system_id}/")


def test_a_machine_has_every_key_maas_declares_with_neutral_values(api, made):
    m = made(hostname=name())
    body = api.get(f"machines/{m['system_id']}/").json()
    assert MACHINE_READ_KEYS - set(body) == set()
    assert body["owner_data"] == {} and body["workload_annotations"] == {}
    assert body["pool"] == {
        "id": 0,
        "name": "default",
        "description": "Default pool",
        "resource_uri": "/MAAS/api/2.0/resourcepool/0/",
    }
    assert body["status_name"] == "New" and body["status_message"] == "New" and body["locked"] is False
    assert body["boot_interface"]["mac_address"] == body["interface_set"][0]["mac_address"]
    assert body["commissioning_status"] == -1 and body["commissioning_status_name"] == "Unknown"
    assert body["storage"] == 0.0 and body["blockdevice_set"] == [] and body["boot_disk"] is None
    assert body["hardware_info"]["system_vendor"] == "Unknown" and len(body["hardware_info"]) == 18
    assert body["default_gateways"] == {
        "ipv4": {"gateway_ip": None, "link_id": None},
        "ipv6": {"gateway_ip": None, "link_id": None},
    }
    assert body["numanode_set"] == [{"index": 0, "cores": [], "memory": 0, "hugepages_set": []}]
    assert "constraints_by_type" not in body  # only allocate answers carry it


def test_an_admins_new_machine_starts_commissioning_unless_told_not_to(api, made):
    commissioned = made(hostname=name(), commission="true")
    assert commissioned["status_name"] == "Commissioning"
    assert commissioned["current_commissioning_result_id"] is not None
    assert commissioned["commissioning_status_name"] == "Running"
    events = api.get("events/", op="query", id=commissioned["system_id"], level="DEBUG").json()["events"]
    assert {"User starting node commissioning", "Commissioning"} <= {e["type"] for e in events}
    assert made(hostname=name())["status_name"] == "New"


def test_a_users_new_machine_is_not_commissioned(shared_region, made):
    from tests.conftest import create_user

    key = create_user(shared_region.config, name("u"))
    with shared_region.api(key) as user_api:
        response = user_api.post("machines/", architecture="amd64/generic", mac_addresses=mac(), hostname=name())
        assert response.status_code == 200, response.text
        assert response.json()["status_name"] == "New"
    with shared_region.api() as admin:
        admin.delete(f"machines/{response.json()['system_id']}/")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("zone", "nosuch", "Select a valid choice. That choice is not one of the available choices."),
        ("pool", "nosuch", "Select a valid choice. That choice is not one of the available choices."),
        ("hostname", "bad_name", "Host label cannot contain underscore: 'bad_name'."),
        ("hostname", "-x", "Label cannot start or end with hyphen: '-x'."),
        ("domain", "nosuch", "Unable to find domain nosuch"),
        ("mac_addresses", "zz:zz", "'zz:zz' is not a valid MAC address."),
    ],
)
def test_create_refuses_what_maas_refuses(api, field, value, error):
    fields = {"architecture": "amd64/generic", "mac_addresses": mac(), "commission": "false", field: value}
    response = api.post("machines/", **fields)
    assert response.status_code == 400, response.text
    assert response.json() == {field: [error]}


def test_create_validates_the_architecture(api):
    response = api.post("machines/", architecture="vax/generic", mac_addresses=mac(), commission="false")
    assert response.status_code == 400
    message = response.json()["architecture"][0]
    assert message.startswith("'vax/generic' is not a valid architecture.  It should be one of: ")
    assert "'amd64/generic'" in message
    assert api.post("machines/", mac_addresses=mac(), commission="false").json() == {
        "architecture": ["This field is required."]
    }
    assert api.post("machines/", architecture="amd64/generic", commission="false").json() == {
        "mac_addresses": ["This field is required."]
    }


def test_a_bare_architecture_gets_its_subarchitecture(api, made):
    assert made(architecture="arm64")["architecture"] == "arm64/generic"
    assert made(architecture="amd64", subarchitecture="hwe-22.04")["architecture"] == "amd64/hwe-22.04"


def test_unsupported_commissioning_options_are_refused_not_ignored(api):
    response = api.post("machines/", architecture="amd64/generic", mac_addresses=mac(), enable_ssh="1")
    assert response.status_code == 400 and "enable_ssh" in response.json()


def test_hostname_and_mac_are_unique(api, made):
    first = made(hostname=name())
    again = api.post(
        "machines/", architecture="amd64/generic", mac_addresses=mac(), hostname=first["hostname"], commission="false"
    )
    assert again.status_code == 400 and again.json() == {"hostname": ["Node with this Hostname already exists."]}
    taken = first["interface_set"][0]["mac_address"]
    again = api.post("machines/", architecture="amd64/generic", mac_addresses=taken, commission="false")
    assert again.json() == {"mac_addresses": [f"MAC address {taken} already in use on {first['hostname']}."]}


def test_sixteen_identical_concurrent_creates_make_one_machine(api, shared_region):
    hostname, address = name("race"), mac()

    def create(_: int) -> int:
        with shared_region.api() as client:
            return client.post(
                "machines/", architecture="amd64/generic", mac_addresses=address, hostname=hostname, commission="false"
            ).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(create, range(16)))
    found = api.get("machines/", hostname=hostname).json()
    for m in found:
        api.delete(f"machines/{m['system_id']}/")
    assert sorted(statuses) == [200] + [400] * 15
    assert len(found) == 1


def test_concurrent_creates_of_one_mac_under_different_hostnames_make_one_machine(api, shared_region):
    """The MAC alone is unique under a race (the database index, not only the hostname's)."""
    address, prefix = mac(), name("racemac")

    def create(i: int) -> tuple[int, str]:
        with shared_region.api() as client:
            response = client.post(
                "machines/",
                architecture="amd64/generic",
                mac_addresses=address,
                hostname=f"{prefix}-{i}",
                commission="false",
            )
            return response.status_code, response.text

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(8)))
    found = api.get("machines/", mac_address=address).json()
    for m in found:
        api.delete(f"machines/{m['system_id']}/")
    assert sorted(status for status, _ in answers) == [200] + [400] * 7, answers
    assert all("mac_addresses" in text for status, text in answers if status == 400), answers
    assert len(found) == 1


def test_update_applies_every_documented_field(api, made):
    m = made(hostname=name())
    zone = api.post("zones/", name=name("z")).json()
    pool = api.post("resourcepools/", name=name("p")).json()
    try:
        new_name = name()
        response = api.put(
            f"machines/{m['system_id']}/",
            hostname=new_name,
            description="rack 7",
            architecture="arm64/generic",
            min_hwe_kernel="hwe-22.04",
            zone=zone["name"],
            pool=pool["name"],
            swap_size="2G",
            cpu_count="8",
            memory="16384",
            domain="maas",
            disable_ipv4="false",
        )
        assert response.status_code == 200, response.text
        body = api.get(f"machines/{m['system_id']}/").json()
        assert (body["hostname"], body["description"], body["architecture"], body["min_hwe_kernel"]) == (
            new_name,
            "rack 7",
            "arm64/generic",
            "hwe-22.04",
        )
        assert (body["zone"]["name"], body["pool"]["name"], body["swap_size"]) == (
            zone["name"],
            pool["name"],
            2_000_000_000,
        )
        assert (body["cpu_count"], body["memory"]) == (8, 16384)
        assert [n["cpu_count"] for n in [body]] == [8] and body["numanode_set"][0]["cores"] == list(range(8))
    finally:
        api.put(f"machines/{m['system_id']}/", zone="default", pool="default")
        api.delete(f"zones/{zone['name']}/")
        api.delete(f"resourcepool/{pool['id']}/")


def test_update_sets_the_power_type_and_parameters(api, made):
    m = made(hostname=name())
    path = f"machines/{m['system_id']}/"
    response = api.put(
        path,
        power_type="ipmi",
        power_parameters_power_address="10.9.0.5",
        power_parameters_power_user="root",
        power_parameters_power_pass="pw",
    )
    assert response.status_code == 200, response.text
    assert response.json()["power_type"] == "ipmi"
    shown = api.get(path, op="power_parameters").json()
    assert (shown["power_address"], shown["power_user"], shown["power_pass"]) == ("10.9.0.5", "root", "pw")
    bad = api.put(path, power_parameters_power_address="not an address!")
    assert bad.status_code == 400 and list(bad.json()) == ["power_parameters_power_address"], bad.text
    # skip_check stores what is given unchecked; it is a flag, never a stored parameter
    skipped = api.put(path, power_parameters_power_address="not an address!", power_parameters_skip_check="true")
    assert skipped.status_code == 200, skipped.text
    shown = api.get(path, op="power_parameters").json()
    assert shown["power_address"] == "not an address!" and "skip_check" not in shown
    again = api.put(path, power_parameters_power_address="10.9.0.6")  # a checked update still works after it
    assert again.status_code == 200, again.text
    assert api.get(path, op="power_parameters").json()["power_address"] == "10.9.0.6"
    assert api.put(path, power_type="manual").status_code == 200
    assert api.get(path, op="power_parameters").json() == {}


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"zone": "nosuch"}, "zone"),
        ({"pool": "nosuch"}, "pool"),
        ({"cpu_count": "-1"}, "cpu_count"),
        ({"cpu_count": "2147483648"}, "cpu_count"),
        ({"memory": "lots"}, "memory"),
        ({"swap_size": "12Q"}, "swap_size"),
        ({"architecture": "vax/generic"}, "architecture"),
        ({"disable_ipv4": "true"}, "disable_ipv4"),
        ({"hostname": "a..b"}, "hostname"),
    ],
)
def test_update_answers_400_and_changes_nothing(api, made, fields, error_field):
    m = made(hostname=name(), description="before")
    response = api.put(f"machines/{m['system_id']}/", description="after", **fields)
    assert response.status_code == 400, response.text
    assert error_field in response.json()
    assert api.get(f"machines/{m['system_id']}/").json()["description"] == "before"


def test_read_filters(api, made):
    zone = api.post("zones/", name=name("z")).json()
    try:
        a = made(hostname=name(), zone=zone["name"])
        b = made(hostname=name())
        ids = {a["system_id"], b["system_id"]}

        def found(**filters) -> set[str]:
            response = api.get("machines/", **filters)
            assert response.status_code == 200, response.text
            return {m["system_id"] for m in response.json()} & ids

        assert found(hostname=a["hostname"]) == {a["system_id"]}
        assert found(hostname=[a["hostname"], b["hostname"]]) == ids
        assert found(mac_address=b["interface_set"][0]["mac_address"].upper()) == {b["system_id"]}
        assert found(id=a["system_id"]) == {a["system_id"]}
        assert found(not_id=a["system_id"]) == {b["system_id"]}
        assert found(zone=zone["name"]) == {a["system_id"]}
        assert found(not_in_zone=zone["name"]) == {b["system_id"]}
        assert found(pool="default") == ids
        assert found(status="new") == ids and found(status="ready") == set()
        assert found(arch="amd64") == ids and found(arch="amd64/generic") == ids
        assert found(domain="maas") == ids
        assert found(owner="admin") == set()
    finally:
        for m in api.get("machines/", zone=zone["name"]).json():
            api.delete(f"machines/{m['system_id']}/")
        api.delete(f"zones/{zone['name']}/")


def test_owner_and_agent_name_filters_find_allocated_machines(api, shared_region, made):
    a, b = made(hostname=name()), made(hostname=name())
    ids = {a["system_id"], b["system_id"]}
    for m in (a, b):
        assert commission_with(shared_region, api, m["system_id"], FACTS, {"00-cpuinfo": 0})["status_name"] == "Ready"
    agent = name("agent")
    taken = api.post("machines/", op="allocate", system_id=a["system_id"], agent_name=agent)
    assert taken.status_code == 200, taken.text
    try:

        def found(**filters) -> set[str]:
            response = api.get("machines/", **filters)
            assert response.status_code == 200, response.text
            return {m["system_id"] for m in response.json()} & ids

        assert found(owner="admin") == {a["system_id"]}
        assert found(not_owner="admin") == {b["system_id"]}
        assert found(agent_name=agent) == {a["system_id"]}
        assert found(agent_name=name("other")) == set()
        assert found(owner="admin", agent_name=agent, status="allocated") == {a["system_id"]}
    finally:
        api.post(f"machines/{a['system_id']}/", op="release")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": "nosuch"}, {"status": ["Select a valid choice. nosuch is not one of the available choices."]}),
        ({"zone": "nosuch"}, {"zone": ["No such zone(s): nosuch."]}),
        ({"pool": "nosuch"}, {"pool": ["No such pool(s): nosuch."]}),
        ({"tags": "nosuch"}, {"tags": ["No such tag(s): 'nosuch'."]}),
        ({"owner": "nosuch"}, {"owner": ["No such owner: 'nosuch'."]}),
        ({"arch": "vax"}, {"arch": ["Architecture not recognised."]}),
        ({"mac_address": "zz"}, {"mac_address": ["Invalid parameter: invalid MAC address format"]}),
        ({"colour": "red"}, {"colour": ["No such constraint."]}),
        ({"cpu_count": "many"}, {"cpu_count": ["Invalid CPU count: number required."]}),
    ],
)
def test_read_filter_errors(api, filters, expected):
    response = api.get("machines/", **filters)
    assert response.status_code == 400
    assert response.json() == expected


def test_deleting_a_zone_moves_its_machines_to_the_default_zone(api, made):
    zone = api.post("zones/", name=name("z")).json()
    m = made(hostname=name(), zone=zone["name"])
    assert api.delete(f"zones/{zone['name']}/").status_code == 204
    assert api.get(f"machines/{m['system_id']}/").json()["zone"]["name"] == "default"
    assert api.delete("zones/default/").status_code == 400


def test_details_is_bson(api, made):
    m = made(hostname=name())
    response = api.get(f"machines/{m['system_id']}/", op="details")
    assert response.status_code == 200 and response.headers["content-type"] == "application/bson"
    import bson  # pymongo's, which python-libmaas brings

    assert bson.decode(response.content) == {"lshw": None, "lldp": None}
