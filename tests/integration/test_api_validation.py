"""Bad input gets MAAS's 400 naming the field and changes nothing; auth and lookups fail as MAAS's do.

Runs against the shared region. Every test builds what it needs on a fabric of its
own, in 10.202.0.0/16, and removes it afterwards.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, select

from metalplane.client.http import MaasHttp
from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, region_processes
from metalplane.region.services import connections, controllers, users
from metalplane.region.services import racks as rack_services
from metalplane.rpc.nodes import NodeType

# This file creates subnets in 10.202.1-99.0/24. Each test removes its own; a fresh
# /24 per test keeps one test's failed cleanup from failing the next.
THIRD_OCTETS = itertools.cycle(range(1, 90))
SECOND_CIDR = "10.202.95.0/24"
UNKNOWN_CIDR_ADDRESS = "10.202.96.10"


# -- helpers -------------------------------------------------------------------------------


def ok(response, status: int = 200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if status != 204 else None


def assert_rejected(response, *fields: str, message: str | None = None) -> dict:
    """MAAS's validation error: 400, JSON, the named fields and nothing else."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert set(body) == set(fields), body
    for reasons in body.values():
        assert reasons and all(isinstance(r, str) and r for r in reasons)
    if message is not None:
        assert all(body[f] == [message] for f in fields), body
    return body


def snapshot(api: MaasHttp) -> dict:
    """The whole network model as the API shows it."""
    return {path: ok(api.get(path)) for path in ("fabrics/", "subnets/", "ipranges/", "spaces/")}


def remove_fabric(api: MaasHttp, fabric_id: int) -> None:
    """Undo a test fabric: DHCP off, ranges, subnets, then the fabric (and its VLANs)."""
    vlan_ids = [v["id"] for v in ok(api.get(f"fabrics/{fabric_id}/vlans/"))]
    for vlan_id in vlan_ids:
        ok(api.put(f"vlans/{vlan_id}/", dhcp_on=False, primary_rack="", secondary_rack=""))
    subnet_ids = [s["id"] for s in ok(api.get("subnets/")) if s["vlan"]["id"] in vlan_ids]
    for r in ok(api.get("ipranges/")):
        if r["subnet"]["id"] in subnet_ids:
            ok(api.delete(f"ipranges/{r['id']}/"), 204)
    for subnet_id in subnet_ids:
        ok(api.delete(f"subnets/{subnet_id}/"), 204)
    ok(api.delete(f"fabrics/{fabric_id}/"), 204)


@pytest.fixture
def net(api):
    """A fabric of its own with a /24 on its untagged VLAN."""
    octet = next(THIRD_OCTETS)
    fabric = ok(api.post("fabrics/", name=f"val-{secrets.token_hex(3)}"))
    vlan = fabric["vlans"][0]
    cidr = f"10.202.{octet}.0/24"
    subnet = ok(api.post("subnets/", cidr=cidr, vlan=vlan["id"], gateway_ip=f"10.202.{octet}.1"))
    yield {"fabric": fabric, "vlan": vlan, "subnet": subnet, "cidr": cidr, "prefix": f"10.202.{octet}."}
    remove_fabric(api, fabric["id"])


@pytest.fixture
def racks(shared_region, net):
    """Two rack controller nodes on `net`'s VLAN, written straight to the database and
    marked connected: these tests are about the model's rules, and a real rack process
    given DHCP duties would start Kea on this host's interfaces."""
    made = [(controllers.new_system_id(), f"val-rack-{n}-{secrets.token_hex(2)}") for n in "ab"]

    async def add(conn):
        process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
        for n, (system_id, hostname) in enumerate(made):
            node_id = await rack_services.register_rack(
                conn,
                system_id,
                hostname,
                "0.1.0",
                [
                    {
                        "name": "eth0",
                        "mac": f"52:54:00:aa:00:{n:02x}",
                        "addresses": [f"{net['prefix']}{240 + n}/24"],
                    }
                ],
            )
            await connections.add_connection(conn, node_id, process)

    async def drop(conn):
        await conn.execute(delete(nodes).where(nodes.c.system_id.in_([s for s, _ in made])))

    run_db(shared_region.config, add)
    yield made
    run_db(shared_region.config, drop)


@pytest.fixture
def user_api(shared_region):
    """A client signed as a fresh non-admin user."""
    username = f"val-user-{secrets.token_hex(3)}"

    async def add(conn):
        user = await users.create_user(conn, username, "pw", f"{username}@example.com", is_superuser=False)
        return (await users.create_token(conn, user.id, "tests")).api_key

    async def drop(conn):
        await users.delete_user(conn, username)

    with shared_region.api(run_db(shared_region.config, add)) as client:
        yield client
    run_db(shared_region.config, drop)


def add_range(api, net, kind: str, first: int, last: int) -> dict:
    return ok(
        api.post(
            "ipranges/",
            type=kind,
            subnet=net["subnet"]["id"],
            start_ip=net["prefix"] + str(first),
            end_ip=net["prefix"] + str(last),
        )
    )


# -- subnets and IP ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    "cidr, message",
    [
        ("10.202.250.0/33", "Required format: <network>/<prefixlen>."),
        ("10.202.250.0", "Required format: <network>/<prefixlen>."),
        ("10.202.256.0/24", "Required format: <network>/<prefixlen>."),
        ("lab-network", "Required format: <network>/<prefixlen>."),
        ("0.0.0.0/0", "Prefix length must be greater than 0."),
        ("", "This field is required."),
    ],
)
def test_bad_cidr_is_rejected(api, cidr, message):
    before = snapshot(api)
    assert_rejected(api.post("subnets/", cidr=cidr), "cidr", message=message)
    assert snapshot(api) == before


def test_missing_cidr_is_rejected(api):
    before = snapshot(api)
    assert_rejected(api.post("subnets/", name="no-cidr"), "cidr", message="This field is required.")
    assert snapshot(api) == before


def test_bad_cidr_on_update_changes_nothing(api, net):
    before = snapshot(api)
    assert_rejected(api.put(f"subnets/{net['subnet']['id']}/", cidr="10.202.0.0/40", description="x"), "cidr")
    assert snapshot(api) == before


def test_duplicate_cidr_is_rejected(api, net):
    before = snapshot(api)
    assert_rejected(api.post("subnets/", cidr=net["cidr"]), "cidr", message="Subnet with this Cidr already exists.")
    assert snapshot(api) == before


def test_gateway_outside_the_subnet_is_rejected(api, net):
    before = snapshot(api)
    assert_rejected(
        api.put(f"subnets/{net['subnet']['id']}/", gateway_ip="10.203.0.1"),
        "gateway_ip",
        message="Gateway IP must be within CIDR range.",
    )
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "start, end, fields, message",
    [
        ("10.202.99.10", "10.202.99.20", ("start_ip", "end_ip"), "IP addresses must be within subnet: {cidr}."),
        ("10.202.0.250", "{prefix}20", ("start_ip",), "Start IP address must be within subnet: {cidr}."),
        ("{prefix}250", "10.202.250.10", ("end_ip",), "End IP address must be within subnet: {cidr}."),
        ("{prefix}0", "{prefix}20", ("start_ip",), "Reserved network address cannot be included in IP range."),
        ("{prefix}200", "{prefix}255", ("end_ip",), "Broadcast address cannot be included in IP range."),
        ("{prefix}20", "{prefix}10", ("end_ip",), "End IP address must not be less than Start IP address."),
        (
            "{prefix}10",
            "2001:db8::1",
            ("start_ip", "end_ip"),
            "Start IP address and end IP address must be in the same address family.",
        ),
    ],
)
def test_range_outside_its_subnet_is_rejected(api, net, start, end, fields, message):
    def fill(text: str) -> str:
        return text.format(cidr=net["cidr"], prefix=net["prefix"])

    before = snapshot(api)
    response = api.post(
        "ipranges/", type="reserved", subnet=net["subnet"]["id"], start_ip=fill(start), end_ip=fill(end)
    )
    assert_rejected(response, *fields, message=fill(message))
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "kind, message",
    [
        ("reserved", "Requested reserved range conflicts with an existing range."),
        ("dynamic", "Requested dynamic range conflicts with an existing IP address or range."),
    ],
)
@pytest.mark.parametrize("first, last", [(15, 25), (5, 10), (20, 30), (12, 13), (2, 100)])
def test_range_overlapping_another_is_rejected(api, net, kind, message, first, last):
    add_range(api, net, "reserved", 10, 20)
    before = snapshot(api)
    response = api.post(
        "ipranges/",
        type=kind,
        subnet=net["subnet"]["id"],
        start_ip=net["prefix"] + str(first),
        end_ip=net["prefix"] + str(last),
    )
    assert_rejected(response, "start_ip", "end_ip", message=message)
    assert snapshot(api) == before


def test_moving_a_range_onto_another_is_rejected(api, net):
    add_range(api, net, "reserved", 10, 20)
    mine = add_range(api, net, "dynamic", 100, 150)
    before = snapshot(api)
    response = api.put(f"ipranges/{mine['id']}/", start_ip=net["prefix"] + "20", comment="moved")
    assert_rejected(response, "start_ip", "end_ip")
    assert snapshot(api) == before


def test_dynamic_range_over_a_racks_own_address_is_rejected(api, net, racks):
    """DHCP would hand out the rack's address (every rack refuses such a state): 400, as MAAS
    refuses a dynamic range over any address in use."""
    before = snapshot(api)
    response = api.post(
        "ipranges/",
        type="dynamic",
        subnet=net["subnet"]["id"],
        start_ip=net["prefix"] + "230",
        end_ip=net["prefix"] + "250",
    )
    assert_rejected(
        response,
        "start_ip",
        "end_ip",
        message="Requested dynamic range conflicts with an existing IP address or range.",
    )
    dynamic = add_range(api, net, "dynamic", 100, 200)
    assert_rejected(api.put(f"ipranges/{dynamic['id']}/", end_ip=net["prefix"] + "241"), "start_ip", "end_ip")
    reserved = add_range(api, net, "reserved", 230, 250)  # reserving the rack's address is fine
    ok(api.delete(f"ipranges/{reserved['id']}/"), 204)
    ok(api.delete(f"ipranges/{dynamic['id']}/"), 204)
    assert snapshot(api) == before


def test_dynamic_range_over_the_gateway_is_rejected(api, net):
    before = snapshot(api)
    response = api.post(
        "ipranges/",
        type="dynamic",
        subnet=net["subnet"]["id"],
        start_ip=net["prefix"] + "1",
        end_ip=net["prefix"] + "50",
    )
    assert_rejected(
        response,
        "start_ip",
        "end_ip",
        message="Requested dynamic range conflicts with an existing IP address or range.",
    )
    assert snapshot(api) == before


def test_range_type_is_checked(api, net):
    before = snapshot(api)
    fields = {"subnet": net["subnet"]["id"], "start_ip": net["prefix"] + "10", "end_ip": net["prefix"] + "20"}
    assert_rejected(api.post("ipranges/", **fields), "type", message="This field is required.")
    assert_rejected(
        api.post("ipranges/", type="static", **fields),
        "type",
        message="Select a valid choice. static is not one of the available choices.",
    )
    assert snapshot(api) == before


def test_range_without_a_subnet_for_its_addresses_is_rejected(api):
    before = snapshot(api)
    response = api.post("ipranges/", type="reserved", start_ip=UNKNOWN_CIDR_ADDRESS, end_ip=UNKNOWN_CIDR_ADDRESS)
    assert_rejected(response, "subnet", message="This field is required.")
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "new_cidr, reason",
    [
        ("{prefix}0/25", "IP addresses must be within subnet: {prefix}0/25."),
        ("{prefix}128/25", "Reserved network address cannot be included in IP range."),
    ],
)
def test_cidr_change_that_would_cut_a_range_is_rejected(api, net, new_cidr, reason):
    add_range(api, net, "reserved", 128, 200)
    new_cidr, reason = new_cidr.format(prefix=net["prefix"]), reason.format(prefix=net["prefix"])
    before = snapshot(api)
    response = api.put(f"subnets/{net['subnet']['id']}/", cidr=new_cidr, gateway_ip="")
    body = assert_rejected(response, "cidr")
    assert body["cidr"] == [f"IP range {net['prefix']}128-{net['prefix']}200 would not fit {new_cidr}: {reason}"]
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "name, message",
    [
        ("slash/name", "Enter a valid value."),
        ("dot.name", "Enter a valid value."),
        (" leading-space", "Enter a valid value."),
        ("-leading-dash", "Enter a valid value."),
        ("z" * 257, "Ensure this value has at most 256 characters (it has 257)."),
        ("a\x00b", "Null characters are not allowed."),
    ],
)
def test_bad_zone_names_are_rejected(api, name, message):
    before = ok(api.get("zones/"))
    assert_rejected(api.post("zones/", name=name), "name", message=message)
    assert_rejected(api.put("zones/default/", name=name), "name", message=message)
    assert ok(api.get("zones/")) == before


def test_zone_names_follow_maas_rule(api):
    """MAAS's MODEL_NAME_VALIDATOR (^\\w[ \\w-]*$): spaces inside and non-ASCII letters are fine."""
    for name in (f"row {secrets.token_hex(2)}", f"zône-{secrets.token_hex(2)}"):
        created = ok(api.post("zones/", name=name))
        assert ok(api.get(f"zones/{name}/")) == created
        ok(api.delete(f"zones/{name}/"), 204)


# -- DHCP on a VLAN ------------------------------------------------------------------------


def test_dhcp_on_without_a_primary_rack_is_rejected(api, net):
    add_range(api, net, "dynamic", 100, 200)
    before = snapshot(api)
    assert_rejected(
        api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True),
        "__all__",
        message="dhcp can only be turned on when a primary rack controller is set.",
    )
    assert snapshot(api) == before


def test_dhcp_on_without_a_dynamic_range_is_rejected(api, net, racks):
    add_range(api, net, "reserved", 100, 200)  # a reserved range is not enough
    before = snapshot(api)
    response = api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True, primary_rack=racks[0][0])
    assert_rejected(response, "dhcp_on", message="dhcp can only be turned on when a dynamic IP range is defined.")
    assert snapshot(api) == before  # the primary rack was not set either


@pytest.mark.parametrize("secondary_by", ["system_id", "hostname"])
def test_primary_equal_to_secondary_is_rejected(api, net, racks, secondary_by):
    add_range(api, net, "dynamic", 100, 200)
    system_id, hostname = racks[0]
    before = snapshot(api)
    response = api.put(
        f"vlans/{net['vlan']['id']}/",
        dhcp_on=True,
        primary_rack=system_id,
        secondary_rack=system_id if secondary_by == "system_id" else hostname,
    )
    assert_rejected(response, "__all__", message="The primary and secondary rack must be different")
    assert snapshot(api) == before


def test_secondary_equal_to_the_current_primary_is_rejected(api, net, racks):
    add_range(api, net, "dynamic", 100, 200)
    system_id, hostname = racks[0]
    vlan = ok(api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True, primary_rack=hostname))
    assert (vlan["dhcp_on"], vlan["primary_rack"], vlan["secondary_rack"]) == (True, system_id, None)
    before = snapshot(api)
    assert_rejected(
        api.put(f"vlans/{net['vlan']['id']}/", secondary_rack=system_id),
        "__all__",
        message=f"{system_id} is already set as the primary rack controller",
    )
    assert snapshot(api) == before


@pytest.mark.parametrize("field", ["primary_rack", "secondary_rack"])
def test_unknown_rack_is_rejected(api, net, racks, field):
    add_range(api, net, "dynamic", 100, 200)
    known = {"primary_rack": racks[0][0]} if field == "secondary_rack" else {}
    before = snapshot(api)
    response = api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True, **known, **{field: "no-such-rack"})
    assert_rejected(response, field, message="Select a valid choice. no-such-rack is not one of the available choices.")
    assert snapshot(api) == before


def test_a_region_controller_is_not_a_rack(api, net):
    region = ok(api.get("regioncontrollers/"))[0]
    assert region["node_type"] == NodeType.REGION_CONTROLLER
    before = snapshot(api)
    assert_rejected(api.put(f"vlans/{net['vlan']['id']}/", primary_rack=region["system_id"]), "primary_rack")
    assert snapshot(api) == before


def test_valid_dhcp_settings_are_accepted(api, net, racks):
    """The control case for the rejections above, through both VLAN routes."""
    add_range(api, net, "dynamic", 100, 200)
    (a, _), (b, b_host) = racks
    vlan = ok(api.put(f"fabrics/{net['fabric']['id']}/vlans/0/", dhcp_on=True, primary_rack=a, secondary_rack=b_host))
    assert (vlan["dhcp_on"], vlan["primary_rack"], vlan["secondary_rack"]) == (True, a, b)
    vlan = ok(api.put(f"vlans/{vlan['id']}/", primary_rack=""))  # clearing the primary promotes the secondary
    assert (vlan["dhcp_on"], vlan["primary_rack"], vlan["secondary_rack"]) == (True, b, None)


def test_dhcp_keeps_its_last_dynamic_range_and_subnet(api, net, racks):
    dynamic = add_range(api, net, "dynamic", 100, 200)
    ok(api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True, primary_rack=racks[0][0]))
    before = snapshot(api)
    response = api.delete(f"subnets/{net['subnet']['id']}/")
    assert (response.status_code, response.text) == (
        400,
        (
            "Cannot delete a subnet that is actively servicing a dynamic IP range. "
            "(Delete the dynamic range or disable DHCP first.)"
        ),
    )
    assert response.headers["content-type"].startswith("text/plain")
    response = api.delete(f"ipranges/{dynamic['id']}/")
    assert response.status_code == 400
    assert response.text.startswith("Cannot delete the last dynamic range of VLAN ")
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "fields, key, message",
    [
        ({"vid": "4095"}, "vid", "VID must be between 0 and 4094."),
        ({"vid": "abc"}, "vid", "Enter a whole number."),
        ({"vid": "202", "mtu": "100"}, "mtu", "Ensure this value is greater than or equal to 552."),
        ({"vid": "202", "mtu": "65536"}, "mtu", "MTU must be between 552 and 65535."),
        ({}, "vid", "This field is required."),
    ],
)
def test_bad_vlan_is_rejected(api, net, fields, key, message):
    before = snapshot(api)
    assert_rejected(api.post(f"fabrics/{net['fabric']['id']}/vlans/", **fields), key, message=message)
    assert snapshot(api) == before


def test_duplicate_vid_is_rejected(api, net):
    base = f"fabrics/{net['fabric']['id']}/vlans/"
    tagged = ok(api.post(base, vid=202))
    before = snapshot(api)
    message = "A VLAN with the specified VID already exists in the destination fabric."
    assert_rejected(api.post(base, vid=202), "__all__", message=message)
    assert_rejected(api.put(f"vlans/{tagged['id']}/", vid=0), "__all__", message=message)
    assert snapshot(api) == before


def test_fabric_with_subnets_cannot_be_deleted(api, net):
    before = snapshot(api)
    response = api.delete(f"fabrics/{net['fabric']['id']}/")
    assert (response.status_code, response.text) == (
        400,
        f"Can't delete fabric; the following subnets are still present: {net['cidr']}",
    )
    assert snapshot(api) == before


def test_bad_fabric_names_are_rejected(api, net):
    before = snapshot(api)
    assert_rejected(api.post("fabrics/", name="has space"), "name", message="Invalid fabric name: has space.")
    assert_rejected(
        api.post("fabrics/", name=net["fabric"]["name"]), "name", message="Fabric with this Name already exists."
    )
    assert_rejected(
        api.put(f"fabrics/{net['fabric']['id']}/", name="fabric-0"), "name", message="Reserved fabric name."
    )
    assert snapshot(api) == before


# -- authentication, lookups, permissions --------------------------------------------------


def test_an_administrator_cannot_delete_itself(shared_region):
    username = f"val-admin-{secrets.token_hex(3)}"

    async def add(conn):
        user = await users.create_user(conn, username, "pw", "", is_superuser=True)
        return (await users.create_token(conn, user.id, "tests")).api_key

    with shared_region.api(run_db(shared_region.config, add)) as client:
        response = client.delete(f"users/{username}/")
        assert (response.status_code, response.text) == (400, "An administrator cannot self-delete.")
        assert ok(client.get("users/", op="whoami"))["username"] == username
    with shared_region.api() as admin:
        ok(admin.delete(f"users/{username}/"), 204)
        assert admin.get(f"users/{username}/").status_code == 404


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "fabrics/"),
        ("GET", "subnets/"),
        ("GET", "zones/default/"),
        ("POST", "zones/"),
        ("GET", "users/?op=whoami"),
        ("GET", "rackcontrollers/"),
        ("GET", "account/?op=list_authorisation_tokens"),
    ],
)
def test_unauthenticated_calls_get_401(shared_region, method, path):
    with MaasHttp(shared_region.url) as anonymous:
        response = anonymous.request(method, path, data={"name": "nope"} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["content-type"]


def test_a_wrong_key_gets_401(shared_region):
    consumer, token, secret = shared_region.api_key.split(":")
    for key in (f"{consumer}:{token}:wrong-secret", f"{consumer}:nosuchtoken:{secret}"):
        with MaasHttp(shared_region.url, key) as client:
            response = client.get("users/", op="whoami")
        assert response.status_code == 401, key
        assert response.text.startswith("Authorization Error")


def test_anonymous_resources_need_no_key(shared_region):
    with MaasHttp(shared_region.url) as anonymous:
        assert anonymous.get("version/").status_code == 200
        assert anonymous.get("describe/").status_code == 200


MISSING = [
    "fabrics/987654/",
    "fabrics/not-a-number/",
    "subnets/987654/",
    "subnets/10.202.254.0/24/",
    "ipranges/987654/",
    "vlans/987654/",
    "fabrics/0/vlans/3999/",
    "fabrics/987654/vlans/0/",
    "zones/no-such-zone/",
    "spaces/987654/",
]


# The VLAN collection has no PUT or DELETE, and MAAS users have no update (deleting a
# missing user answers 204 in MAAS), so those paths are only read.
@pytest.mark.parametrize(
    "method, path",
    [
        *[(m, p) for p in MISSING for m in ("GET", "PUT", "DELETE")],
        ("GET", "fabrics/987654/vlans/"),
        ("GET", "users/no-such-user/"),
    ],
)
def test_missing_objects_get_404(api, path, method):
    before = snapshot(api)
    response = api.request(method, path, data={"description": "x"} if method == "PUT" else None)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert snapshot(api) == before


@pytest.mark.parametrize(
    "method, path, fields",
    [
        ("POST", "fabrics/", {"name": "not-allowed"}),
        ("PUT", "fabrics/0/", {"description": "not allowed"}),
        ("DELETE", "fabrics/{fabric}/", {}),
        ("POST", "fabrics/{fabric}/vlans/", {"vid": "202"}),
        ("PUT", "vlans/{vlan}/", {"name": "not-allowed"}),
        ("POST", "subnets/", {"cidr": "10.202.252.0/24"}),
        ("PUT", "subnets/{subnet}/", {"description": "not allowed"}),
        ("DELETE", "subnets/{subnet}/", {}),
        ("POST", "zones/", {"name": "not-allowed"}),
        ("POST", "spaces/", {"name": "not-allowed"}),
        ("POST", "users/", {"username": "sneaky", "password": "pw"}),
        ("DELETE", "users/admin/", {}),
        ("DELETE", "vlans/{vlan}/", {}),
        ("PUT", "zones/default/", {"description": "not allowed"}),
        ("DELETE", "zones/default/", {}),
    ],
)
def test_non_admin_gets_403_for_admin_actions(api, user_api, net, method, path, fields):
    path = path.format(fabric=net["fabric"]["id"], vlan=net["vlan"]["id"], subnet=net["subnet"]["id"])
    before = snapshot(api), ok(api.get("zones/")), ok(api.get("users/"))
    response = user_api.request(method, path, data=fields)
    assert response.status_code == 403, response.text
    assert response.text == "This method is reserved for admin users."
    assert response.headers["content-type"].startswith("text/plain")
    assert (snapshot(api), ok(api.get("zones/")), ok(api.get("users/"))) == before


def test_non_admin_may_read_and_manage_only_own_reserved_ranges(api, user_api, net):
    assert ok(user_api.get("fabrics/")) == ok(api.get("fabrics/"))
    assert ok(user_api.get("users/", op="whoami"))["is_superuser"] is False

    before = snapshot(api)
    response = user_api.post(
        "ipranges/",
        type="dynamic",
        subnet=net["subnet"]["id"],
        start_ip=net["prefix"] + "100",
        end_ip=net["prefix"] + "120",
    )
    assert response.status_code == 403
    assert response.text == "Unable to create dynamic IP range. You don't have sufficient privileges."
    assert snapshot(api) == before

    admins = add_range(api, net, "reserved", 10, 20)
    before = snapshot(api)
    response = user_api.delete(f"ipranges/{admins['id']}/")
    assert (response.status_code, response.text) == (403, "Unable to delete IP range. You don't own the IP range.")
    response = user_api.put(f"ipranges/{admins['id']}/", comment="mine now")
    assert (response.status_code, response.text) == (403, "Unable to modify IP range. You don't own the IP range.")
    assert snapshot(api) == before

    own = ok(
        user_api.post(
            "ipranges/",
            type="reserved",
            subnet=net["subnet"]["id"],
            start_ip=net["prefix"] + "30",
            end_ip=net["prefix"] + "40",
        )
    )
    assert own["user"]["username"] == ok(user_api.get("users/", op="whoami"))["username"]
    ok(user_api.delete(f"ipranges/{own['id']}/"), 204)


# -- rules hold under concurrent writes ----------------------------------------------------


def at_once(shared_region, calls) -> list:
    """Run each (method, path, data) on its own connection, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        method, path, data = call
        with shared_region.api() as client:
            barrier.wait()
            return client.request(method, path, data=data)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_overlapping_ranges_admit_exactly_one(api, net, shared_region):
    calls = [
        (
            "POST",
            "ipranges/",
            {
                "type": "reserved",
                "subnet": net["subnet"]["id"],
                "start_ip": net["prefix"] + str(10 + i),
                "end_ip": net["prefix"] + str(50 + i),
            },
        )
        for i in range(8)
    ]
    responses = at_once(shared_region, calls)
    assert sorted(r.status_code for r in responses) == [200] + [400] * 7
    mine = [r for r in ok(api.get("ipranges/")) if r["subnet"]["id"] == net["subnet"]["id"]]
    assert len(mine) == 1


def test_dhcp_keeps_a_dynamic_range_under_concurrent_deletes(api, net, racks, shared_region):
    """Two subnets of a DHCP VLAN each hold one dynamic range; deleting both at once must leave one."""
    second = ok(api.post("subnets/", cidr=SECOND_CIDR, vlan=net["vlan"]["id"]))
    for _attempt in range(5):
        ranges = [
            add_range(api, net, "dynamic", 100, 200),
            ok(
                api.post(
                    "ipranges/", type="dynamic", subnet=second["id"], start_ip="10.202.95.100", end_ip="10.202.95.200"
                )
            ),
        ]
        ok(api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=True, primary_rack=racks[0][0]))
        responses = at_once(shared_region, [("DELETE", f"ipranges/{r['id']}/", None) for r in ranges])
        assert sorted(r.status_code for r in responses) == [204, 400], [r.text for r in responses]
        left = [r for r in ok(api.get("ipranges/")) if r["subnet"]["vlan"]["id"] == net["vlan"]["id"]]
        assert [r["type"] for r in left] == ["dynamic"]
        ok(api.put(f"vlans/{net['vlan']['id']}/", dhcp_on=False))
        for r in left:
            ok(api.delete(f"ipranges/{r['id']}/"), 204)


def test_enabling_dhcp_races_deleting_the_only_dynamic_range(api, net, racks, shared_region):
    vlan_path = f"vlans/{net['vlan']['id']}/"
    for _attempt in range(8):
        dynamic = add_range(api, net, "dynamic", 100, 200)
        responses = at_once(
            shared_region,
            [
                ("PUT", vlan_path, {"dhcp_on": "true", "primary_rack": racks[0][0]}),
                ("DELETE", f"ipranges/{dynamic['id']}/", None),
            ],
        )
        vlan = ok(api.get(vlan_path))
        left = [r for r in ok(api.get("ipranges/")) if r["subnet"]["vlan"]["id"] == net["vlan"]["id"]]
        assert not (vlan["dhcp_on"] and not left), [r.text for r in responses]
        assert sum(r.status_code in (200, 204) for r in responses) >= 1
        ok(api.put(vlan_path, dhcp_on=False, primary_rack=""))
        for r in left:
            ok(api.delete(f"ipranges/{r['id']}/"), 204)
