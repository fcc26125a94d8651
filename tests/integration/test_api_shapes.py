"""The MAAS 2.0 wire shapes: describe/, CRUD round-trips, content types, request encodings.

Runs against the shared region; every test removes what it creates and uses 10.202.100-179.0/24.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlencode

import httpx
import pytest

from metalplane.client.http import MaasHttp, oauth_header

PREFIX = "/MAAS/api/2.0/"


def ok(response, status: int = 200):
    """The expected status, a Content-Type on every response, and JSON for 2xx bodies."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers.get("content-type"), "every response needs a Content-Type (maascli crashes without)"
    if status == 204:
        assert response.content == b""
        return None
    assert response.headers["content-type"].split(";")[0] == "application/json"
    return response.json()


def gone(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers.get("content-type")


def without(obj: dict, *keys: str) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def fabric(api):
    created = ok(api.post("fabrics/", name=unique("shape")))
    yield created
    for s in ok(api.get("subnets/")):
        if s["vlan"]["fabric_id"] == created["id"]:
            api.delete(f"subnets/{s['id']}/")
    api.delete(f"fabrics/{created['id']}/")


# -- describe/ -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def description(shared_region):
    response = httpx.get(shared_region.url + "api/2.0/describe/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"  # exactly: maascli compares the string
    return response.json()


def handler(description: dict, name: str) -> dict:
    for resource in description["resources"]:
        found = resource["auth"] or resource["anon"]
        if found["name"] == name:
            return found
    raise AssertionError(f"{name} is not described")


def test_describe_lists_resources_sorted_with_handlers(description):
    names = [r["name"] for r in description["resources"]]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert description["doc"] == "MAAS API"
    assert len(description["hash"]) == 40
    for resource in description["resources"]:
        described = resource["auth"] or resource["anon"]
        assert resource["name"] == described["name"]
        assert set(described) == {"name", "doc", "params", "path", "uri", "actions"}
        assert [a["name"] for a in described["actions"]] == sorted(a["name"] for a in described["actions"])
        for action in described["actions"]:
            assert isinstance(action["doc"], str)
            assert action["restful"] == (action["op"] is None)
            assert action["method"] in ("GET", "POST", "PUT", "DELETE")
            if not action["restful"]:
                assert action["name"] == action["op"]
    # The legacy list: anonymous handlers first, then authenticated ones, the same objects.
    anon = [r["anon"] for r in description["resources"] if r["anon"]]
    auth = [r["auth"] for r in description["resources"] if r["auth"]]
    assert description["handlers"] == anon + auth


def test_version_is_the_anonymous_resource(description):
    (version,) = [r for r in description["resources"] if r["name"] == "VersionHandler"]
    assert version["auth"] is None and version["anon"]["path"] == PREFIX + "version/"
    fabrics = next(r for r in description["resources"] if r["name"] == "FabricsHandler")
    assert fabrics["anon"] is None and fabrics["auth"]["path"] == PREFIX + "fabrics/"


@pytest.mark.parametrize(
    "name, params",
    [
        ("FabricHandler", ["id"]),
        ("FabricsHandler", []),
        ("VlanHandler", ["fabric_id", "vid"]),
        ("VlansHandler", ["fabric_id"]),
        ("ZoneHandler", ["name"]),
        ("SubnetHandler", ["id"]),
        ("IPRangeHandler", ["id"]),
        ("SpaceHandler", ["id"]),
        ("RackControllerHandler", ["system_id"]),
        ("RegionControllerHandler", ["system_id"]),
        ("UserHandler", ["username"]),
        ("AccountHandler", []),
        ("UsersHandler", []),
        ("VersionHandler", []),
        ("PodsHandler", []),
        ("PodHandler", ["id"]),
        ("RaidsHandler", ["system_id"]),
        ("RaidHandler", ["system_id", "id"]),
        ("BcachesHandler", ["system_id"]),
        ("BcacheHandler", ["system_id", "id"]),
        ("BcacheCacheSetsHandler", ["system_id"]),
        ("BcacheCacheSetHandler", ["system_id", "id"]),
        ("VolumeGroupsHandler", ["system_id"]),
        ("VolumeGroupHandler", ["system_id", "id"]),
    ],
)
def test_handler_params_match_libmaas(description, name, params):
    found = handler(description, name)
    assert found["params"] == params
    assert found["path"].startswith(PREFIX)
    assert [p.strip("{}") for p in found["path"].split("/") if p.startswith("{")] == params


# POST actions MAAS documents without any parameter.
NO_ARGUMENTS = {
    ("DeviceHandler", "restore_default_configuration"),
    ("DeviceHandler", "restore_networking_configuration"),
    ("InterfaceHandler", "disconnect"),
    ("TagHandler", "rebuild"),
    ("NotificationHandler", "dismiss"),
    ("RackControllerHandler", "import_boot_images"),
    ("RackControllersHandler", "import_boot_images"),
    ("MachineHandler", "rescue_mode"),
    ("MachineHandler", "exit_rescue_mode"),
    ("PodHandler", "refresh"),
}


def test_actions_that_take_arguments_document_them(description):
    """maascli accepts key=value only where the doc has `:param` lines after its first paragraph."""
    for resource in description["resources"]:
        described = resource["auth"] or resource["anon"]
        for action in described["actions"]:
            if action["method"] in ("POST", "PUT") and (described["name"], action["name"]) not in NO_ARGUMENTS:
                title, _, rest = action["doc"].partition("\n\n")
                assert title and ":param " in rest, (described["name"], action["name"])
    update = next(a for a in handler(description, "VlanHandler")["actions"] if a["name"] == "update")
    for name in ("name", "vid", "mtu", "dhcp_on", "primary_rack", "secondary_rack", "relay_vlan", "space"):
        assert f":param {name}:" in update["doc"]


def test_the_vlan_handler_is_described_once_with_the_fabric_route(description):
    vlans = [r for r in description["resources"] if r["name"] == "VlanHandler"]
    assert len(vlans) == 1
    assert vlans[0]["auth"]["path"] == PREFIX + "fabrics/{fabric_id}/vlans/{vid}/"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("UsersHandler", {("read", "GET"), ("create", "POST"), ("whoami", "GET")}),
        (
            "AccountHandler",
            {
                ("create_authorisation_token", "POST"),
                ("delete_authorisation_token", "POST"),
                ("list_authorisation_tokens", "GET"),
            },
        ),
        ("FabricHandler", {("read", "GET"), ("update", "PUT"), ("delete", "DELETE")}),
        ("IPRangesHandler", {("read", "GET"), ("create", "POST")}),
        # What metalplane has none of (tests/integration/test_storage_layouts_api.py), with MAAS's actions.
        ("PodsHandler", {("read", "GET"), ("create", "POST")}),
        (
            "PodHandler",
            {
                ("read", "GET"),
                ("update", "PUT"),
                ("delete", "DELETE"),
                ("refresh", "POST"),
                ("parameters", "GET"),
                ("compose", "POST"),
                ("add_tag", "POST"),
                ("remove_tag", "POST"),
            },
        ),
        *[
            (name, {("read", "GET"), ("create", "POST")})
            for name in ("RaidsHandler", "BcachesHandler", "BcacheCacheSetsHandler", "VolumeGroupsHandler")
        ],
        *[
            (name, {("read", "GET"), ("update", "PUT"), ("delete", "DELETE")})
            for name in ("RaidHandler", "BcacheHandler", "BcacheCacheSetHandler")
        ],
        (
            "VolumeGroupHandler",
            {
                ("read", "GET"),
                ("update", "PUT"),
                ("delete", "DELETE"),
                ("create_logical_volume", "POST"),
                ("delete_logical_volume", "POST"),
            },
        ),
    ],
)
def test_actions(description, name, expected):
    actions = {(a["name"], a["method"]) for a in handler(description, name)["actions"]}
    assert expected <= actions


def test_paths_of_pods_and_storage_layouts_are_maas_s(description):
    """MAAS's urls_api.py routes (the singular forms are what MAAS's describe/ gives)."""
    paths = {
        "PodsHandler": "pods/",
        "PodHandler": "pods/{id}/",
        "RaidsHandler": "nodes/{system_id}/raids/",
        "RaidHandler": "nodes/{system_id}/raid/{id}/",
        "BcachesHandler": "nodes/{system_id}/bcaches/",
        "BcacheHandler": "nodes/{system_id}/bcache/{id}/",
        "BcacheCacheSetsHandler": "nodes/{system_id}/bcache-cache-sets/",
        "BcacheCacheSetHandler": "nodes/{system_id}/bcache-cache-set/{id}/",
        "VolumeGroupsHandler": "nodes/{system_id}/volume-groups/",
        "VolumeGroupHandler": "nodes/{system_id}/volume-group/{id}/",
    }
    assert {name: handler(description, name)["path"] for name in paths} == {n: PREFIX + p for n, p in paths.items()}


def test_describe_uri_comes_from_the_host_header(shared_region):
    url = shared_region.url + "api/2.0/describe/"
    for host, proto in (("maas.example.test:5240", None), ("[2001:db8::5]:80", None), ("lb.example.test", "https")):
        headers = {"Host": host, **({"X-Forwarded-Proto": proto} if proto else {})}
        body = httpx.get(url, headers=headers).json()
        fabric = handler(body, "FabricHandler")
        assert fabric["uri"] == f"{proto or 'http'}://{host}{PREFIX}fabrics/{{id}}/"
        for resource in body["resources"]:
            described = resource["auth"] or resource["anon"]
            assert described["uri"] == f"{proto or 'http'}://{host}{described['path']}"


# -- CRUD round-trips ----------------------------------------------------------------------


def test_fabric_crud(api):
    name = unique("shape-fab")
    created = ok(api.post("fabrics/", name=name, description="first", class_type="10g"))
    assert without(created, "id", "vlans") == {
        "name": name,
        "class_type": "10g",
        "description": "first",
        "resource_uri": f"{PREFIX}fabrics/{created['id']}/",
    }
    (untagged,) = created["vlans"]
    assert (untagged["vid"], untagged["name"], untagged["mtu"], untagged["fabric_id"]) == (
        0,
        "untagged",
        1500,
        created["id"],
    )
    assert ok(api.get(f"fabrics/{created['id']}/")) == created
    assert created in ok(api.get("fabrics/"))

    updated = ok(api.put(f"fabrics/{created['id']}/", description="second"))  # partial: name untouched
    assert updated == {**created, "description": "second"}
    renamed = ok(api.put(f"fabrics/{created['id']}/", name=name + "-b"))
    assert renamed == {**updated, "name": name + "-b", "vlans": [{**untagged, "fabric": name + "-b"}]}

    ok(api.delete(f"fabrics/{created['id']}/"), 204)
    gone(api.get(f"fabrics/{created['id']}/"))
    assert created["id"] not in [f["id"] for f in ok(api.get("fabrics/"))]


def test_default_fabric_and_default_vlan_cannot_be_deleted(api, fabric):
    response = api.delete("fabrics/0/")
    assert (response.status_code, response.text) == (400, "This fabric is the default fabric, it cannot be deleted.")
    response = api.delete(f"fabrics/{fabric['id']}/vlans/0/")
    assert (response.status_code, response.text) == (
        400,
        "This VLAN is the default VLAN in the fabric, it cannot be deleted.",
    )


def test_vlan_crud_on_both_routes(api, fabric):
    base = f"fabrics/{fabric['id']}/vlans/"
    created = ok(api.post(base, vid=202, name="v202", mtu=9000, description="tagged"))
    assert without(created, "id") == {
        "name": "v202",
        "vid": 202,
        "fabric": fabric["name"],
        "fabric_id": fabric["id"],
        "mtu": 9000,
        "description": "tagged",
        "primary_rack": None,
        "secondary_rack": None,
        "dhcp_on": False,
        "external_dhcp": None,
        "relay_vlan": None,
        "space": "undefined",
        "candidate_secondary_rack": None,
        "resource_uri": f"{PREFIX}vlans/{created['id']}/",
    }
    assert ok(api.get(f"{base}202/")) == created
    assert ok(api.get(f"vlans/{created['id']}/")) == created
    assert [v["vid"] for v in ok(api.get(base))] == [0, 202]

    renamed = ok(api.put(f"{base}202/", name="renamed"))  # partial: mtu and description kept
    assert renamed == {**created, "name": "renamed"}
    retagged = ok(api.put(f"vlans/{created['id']}/", vid=203))
    assert retagged == {**renamed, "vid": 203}
    gone(api.get(f"{base}202/"))
    assert ok(api.get(f"{base}203/")) == retagged

    ok(api.delete(f"vlans/{created['id']}/"), 204)
    gone(api.get(f"vlans/{created['id']}/"))
    assert [v["vid"] for v in ok(api.get(base))] == [0]


def test_vlan_space_by_name(api, fabric):
    space = ok(api.post("spaces/", name=unique("shape-space")))
    try:
        vlan = ok(api.put(f"vlans/{fabric['vlans'][0]['id']}/", space=space["name"]))
        assert vlan["space"] == space["name"]
        assert [v["id"] for v in ok(api.get(f"spaces/{space['id']}/"))["vlans"]] == [vlan["id"]]
        assert ok(api.put(f"vlans/{vlan['id']}/", space="undefined"))["space"] == "undefined"
    finally:
        api.delete(f"spaces/{space['id']}/")


def test_subnet_crud_by_id_and_by_cidr(api, fabric):
    vlan = fabric["vlans"][0]
    cidr = "10.202.100.0/24"
    created = ok(
        api.post(
            "subnets/",
            cidr="10.202.100.77/24",
            vlan=vlan["id"],
            gateway_ip="10.202.100.1",
            dns_servers="10.202.100.2, 10.202.100.3",
            description="lab",
        )
    )
    assert without(created, "id", "vlan") == {
        "name": cidr,
        "description": "lab",
        "cidr": cidr,
        "gateway_ip": "10.202.100.1",
        "dns_servers": ["10.202.100.2", "10.202.100.3"],
        "rdns_mode": 2,
        "allow_dns": True,
        "allow_proxy": True,
        "active_discovery": False,
        "managed": True,
        "disabled_boot_architectures": [],
        "space": "undefined",
        "resource_uri": f"{PREFIX}subnets/{created['id']}/",
    }
    assert created["vlan"] == vlan
    assert ok(api.get(f"subnets/{created['id']}/")) == created
    assert ok(api.get(f"subnets/{cidr}/")) == created
    assert created in ok(api.get("subnets/"))

    updated = ok(api.put(f"subnets/{created['id']}/", description="changed"))  # partial: the gateway stays
    assert updated == {**created, "description": "changed"}
    updated = ok(api.put(f"subnets/{cidr}/", name="lab-net", gateway_ip=""))
    assert updated == {**created, "description": "changed", "name": "lab-net", "gateway_ip": None}
    assert ok(api.get("subnets/lab-net/")) == updated

    ok(api.delete(f"subnets/{cidr}/"), 204)
    gone(api.get(f"subnets/{created['id']}/"))
    gone(api.get(f"subnets/{cidr}/"))


@pytest.mark.parametrize(
    "word, value",
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_fields_read_as_django_does(api, fabric, word, value):
    subnet = ok(
        api.post(
            "subnets/", cidr="10.202.104.0/24", vlan=fabric["vlans"][0]["id"], allow_dns=not value, managed=not value
        )
    )
    updated = ok(api.put(f"subnets/{subnet['id']}/", allow_dns=word, managed=word))
    assert updated == {**subnet, "allow_dns": value, "managed": value}
    response = api.put(f"subnets/{subnet['id']}/", allow_dns="maybe")
    assert (response.status_code, list(response.json())) == (400, ["allow_dns"])


def test_subnet_on_a_fabric_and_vid(api, fabric):
    ok(api.post(f"fabrics/{fabric['id']}/vlans/", vid=101))
    created = ok(api.post("subnets/", cidr="10.202.101.0/24", fabric=fabric["name"], vid=101))
    assert (created["vlan"]["fabric_id"], created["vlan"]["vid"]) == (fabric["id"], 101)
    response = api.post("subnets/", cidr="10.202.102.0/24", fabric=fabric["id"], vid=102)
    assert (response.status_code, response.json()) == (
        400,
        {"vid": [f"No VLAN with vid 102 in fabric {fabric['name']}."]},
    )


def test_iprange_crud(api, fabric):
    subnet = ok(api.post("subnets/", cidr="10.202.103.0/24", vlan=fabric["vlans"][0]["id"]))
    created = ok(
        api.post("ipranges/", type="reserved", start_ip="10.202.103.10", end_ip="10.202.103.20", comment="switches")
    )
    me = ok(api.get("users/", op="whoami"))
    assert created == {
        "id": created["id"],
        "type": "reserved",
        "start_ip": "10.202.103.10",
        "end_ip": "10.202.103.20",
        "comment": "switches",
        "user": me,
        "subnet": subnet,
        "resource_uri": f"{PREFIX}ipranges/{created['id']}/",
    }
    assert ok(api.get(f"ipranges/{created['id']}/")) == created
    assert created in ok(api.get("ipranges/"))
    dynamic = ok(
        api.post("ipranges/", type="dynamic", subnet=subnet["cidr"], start_ip="10.202.103.100", end_ip="10.202.103.200")
    )
    assert (dynamic["type"], dynamic["comment"]) == ("dynamic", "")

    updated = ok(api.put(f"ipranges/{created['id']}/", comment="routers"))  # partial: addresses stay
    assert updated == {**created, "comment": "routers"}
    moved = ok(api.put(f"ipranges/{created['id']}/", end_ip="10.202.103.30"))
    assert moved == {**updated, "end_ip": "10.202.103.30"}

    for r in (created, dynamic):
        ok(api.delete(f"ipranges/{r['id']}/"), 204)
        gone(api.get(f"ipranges/{r['id']}/"))


def test_space_crud(api):
    name = unique("shape-space")
    created = ok(api.post("spaces/", name=name, description="dmz"))
    assert created == {
        "id": created["id"],
        "name": name,
        "description": "dmz",
        "vlans": [],
        "subnets": [],
        "resource_uri": f"{PREFIX}spaces/{created['id']}/",
    }
    assert ok(api.get(f"spaces/{created['id']}/")) == created
    assert created in ok(api.get("spaces/"))
    assert ok(api.put(f"spaces/{created['id']}/", description="edge")) == {**created, "description": "edge"}
    assert ok(api.put(f"spaces/{created['id']}/", name=name + "-b"))["name"] == name + "-b"
    ok(api.delete(f"spaces/{created['id']}/"), 204)
    gone(api.get(f"spaces/{created['id']}/"))


def test_zone_crud(api):
    name = unique("shape-zone")
    created = ok(api.post("zones/", name=name, description="rack row 1"))
    assert created == {
        "id": created["id"],
        "name": name,
        "description": "rack row 1",
        "resource_uri": f"{PREFIX}zones/{name}/",
    }
    assert ok(api.get(f"zones/{name}/")) == created
    assert created in ok(api.get("zones/"))
    assert ok(api.put(f"zones/{name}/", description="row 2")) == {**created, "description": "row 2"}
    renamed = ok(api.put(f"zones/{name}/", name=name + "-b"))
    assert renamed == {
        **created,
        "name": name + "-b",
        "description": "row 2",
        "resource_uri": f"{PREFIX}zones/{name}-b/",
    }
    gone(api.get(f"zones/{name}/"))
    response = api.post("zones/", name=name + "-b")
    assert (response.status_code, response.json()) == (400, {"name": ["Physical zone with this Name already exists."]})
    ok(api.delete(f"zones/{name}-b/"), 204)
    gone(api.get(f"zones/{name}-b/"))


def test_zones_and_users_are_listed_by_name(api):
    created = [ok(api.post("zones/", name=name)) for name in ("shape-zz", "shape-aa")]
    try:
        names = [z["name"] for z in ok(api.get("zones/"))]
        assert names == sorted(names) and {"default", "shape-zz", "shape-aa"} <= set(names)
        usernames = [u["username"] for u in ok(api.get("users/"))]
        assert usernames == sorted(usernames) and "admin" in usernames
    finally:
        for zone in created:
            api.delete(f"zones/{zone['name']}/")


def test_default_zone_is_there_and_stays(api):
    default = ok(api.get("zones/default/"))
    assert (default["name"], default["resource_uri"]) == ("default", f"{PREFIX}zones/default/")
    assert api.delete("zones/default/").status_code == 400
    assert ok(api.get("zones/default/")) == default


# -- account tokens and users --------------------------------------------------------------


def test_account_token_create_list_delete(api, shared_region):
    token = ok(api.post("account/", op="create_authorisation_token", name="shape-token"))
    assert set(token) == {"token_key", "token_secret", "consumer_key", "name"}
    assert token["name"] == "shape-token"
    key = f"{token['consumer_key']}:{token['token_key']}:{token['token_secret']}"
    assert [len(part) for part in key.split(":")] == [18, 18, 32]
    assert {"name": "shape-token", "token": key} in ok(api.get("account/", op="list_authorisation_tokens"))

    with shared_region.api(key) as other:
        assert ok(other.get("users/", op="whoami"))["username"] == "admin"
    ok(api.post("account/", op="delete_authorisation_token", token_key=token["token_key"]), 204)
    with shared_region.api(key) as other:
        assert other.get("users/", op="whoami").status_code == 401
    assert key not in [t["token"] for t in ok(api.get("account/", op="list_authorisation_tokens"))]


def test_a_token_without_a_name_gets_maas_default_name(api):
    token = ok(api.post("account/", op="create_authorisation_token"))
    try:
        assert token["name"] == "MAAS consumer"
    finally:
        ok(api.post("account/", op="delete_authorisation_token", token_key=token["token_key"]), 204)


def test_account_errors(api):
    response = api.post("account/", op="delete_authorisation_token")
    assert (response.status_code, response.text) == (400, "No provided token_key!")
    assert api.post("account/", op="delete_authorisation_token", token_key="nosuchtoken").status_code == 404
    response = api.post("account/", op="no_such_op")
    assert (response.status_code, response.text) == (400, "Unrecognised signature: method=POST op=no_such_op")


def test_whoami_and_user_read(api):
    me = ok(api.get("users/", op="whoami"))
    assert me == {
        "username": "admin",
        "email": "admin@example.com",
        "is_superuser": True,
        "is_local": True,
        "resource_uri": f"{PREFIX}users/admin/",
    }
    assert ok(api.get("users/admin/")) == me
    assert me in ok(api.get("users/"))


# -- request encodings ---------------------------------------------------------------------


def signed(shared_region, method: str, path: str, **kwargs) -> httpx.Response:
    url = shared_region.url + "api/2.0/" + path
    headers = {"Authorization": oauth_header(shared_region.api_key, url), **kwargs.pop("headers", {})}
    return httpx.request(method, url, headers=headers, **kwargs)


def plain_multipart(fields: dict[str, str], boundary: str) -> bytes:
    """The 2.0-era apiclient encoding: no transfer encoding, unquoted boundary."""
    lines = []
    for name, value in fields.items():
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"', "", value]
    return ("\r\n".join(lines + [f"--{boundary}--", ""])).encode()


def base64_multipart(fields: dict[str, str], boundary: str) -> bytes:
    """As libmaas and maascli send: every part base64, headers in varying order, quoted boundary."""
    parts = []
    for name, value in fields.items():
        parts.append(
            f"--{boundary}\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: form-data; name="{name}"\r\nMIME-Version: 1.0\r\n'
            f'Content-Type: text/plain; charset="utf-8"\r\n\r\n'
            f"{base64.b64encode(value.encode()).decode()}\r\n"
        )
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


@pytest.mark.parametrize("encoding", ["client", "base64", "plain-multipart", "urlencoded"])
def test_request_body_encodings(api, shared_region, encoding):
    name = unique(f"enc-{encoding}")
    fields = {"name": name, "description": "zone with ünïcode"}
    if encoding == "client":
        response = api.post("zones/", **fields)
    elif encoding == "urlencoded":
        response = signed(
            shared_region,
            "POST",
            "zones/",
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        boundary = "===============1988393219770087686==" if encoding == "base64" else "xYzZYxBoundaryBoundary"
        encode = base64_multipart if encoding == "base64" else plain_multipart
        quoted = f'"{boundary}"' if encoding == "base64" else boundary
        response = signed(
            shared_region,
            "POST",
            "zones/",
            content=encode(fields, boundary),
            headers={"Content-Type": f"multipart/form-data; boundary={quoted}"},
        )
    try:
        assert without(ok(response), "id", "resource_uri") == fields
    finally:
        api.delete(f"zones/{name}/")


def test_update_with_form_urlencoded_body(api, shared_region):
    name = unique("enc-put")
    ok(api.post("zones/", name=name))
    try:
        response = signed(
            shared_region,
            "PUT",
            f"zones/{name}/",
            content=urlencode({"description": "via form"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert ok(response)["description"] == "via form"
    finally:
        api.delete(f"zones/{name}/")


def test_empty_multipart_as_libmaas_sends_it(api, shared_region):
    """libmaas sends `--B\\r\\n\\r\\n--B--` when an action has no data."""
    boundary = "===============0123456789=="
    response = signed(
        shared_region,
        "POST",
        "account/?op=create_authorisation_token",
        content=f"--{boundary}\r\n\r\n--{boundary}--".encode(),
        headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"'},
    )
    token = ok(response)
    ok(api.post("account/", op="delete_authorisation_token", token_key=token["token_key"]), 204)


def test_post_with_no_body(api, shared_region):
    response = signed(shared_region, "POST", "account/?op=create_authorisation_token")
    token = ok(response)
    ok(api.post("account/", op="delete_authorisation_token", token_key=token["token_key"]), 204)


def test_every_error_has_a_content_type(api, shared_region):
    with MaasHttp(shared_region.url) as anonymous:
        responses = [
            anonymous.get("fabrics/"),
            api.get("fabrics/999999/"),
            api.post("fabrics/", name="bad name"),
            api.post("fabrics/", op="nonsense"),
            api.delete("fabrics/0/"),
        ]
    assert [r.status_code for r in responses] == [401, 404, 400, 400, 400]
    assert all(r.headers.get("content-type") for r in responses)
