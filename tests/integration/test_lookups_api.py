"""MAAS's lookups by name and specifier (fabric-3, name:, cidr:, ip:, vlan:, ...) and
its "undefined" pseudo-space, against a real region."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

PREFIX = "/MAAS/api/2.0/"


def ok(response, status: int = 200):
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    return response.json() if status != 204 else None


@pytest.fixture
def world(api) -> Iterator[dict]:
    """A fabric with a named, tagged VLAN in a space, and three subnets (one nested)."""
    tag = secrets.token_hex(2)
    fabric = ok(api.post("fabrics/", name=f"look-{tag}", class_type=f"class-{tag}"))
    space = ok(api.post("spaces/", name=f"look-space-{tag}"))
    vlan = ok(api.post(f"fabrics/{fabric['id']}/vlans/", vid="77", name=f"look-vlan-{tag}", space=space["name"]))
    untagged = ok(api.get(f"fabrics/{fabric['id']}/vlans/0/"))
    outer = ok(api.post("subnets/", cidr="10.202.151.0/24", name=f"outer-{tag}", vlan=untagged["id"]))
    inner = ok(api.post("subnets/", cidr="10.202.150.0/24", name=f"inner-{tag}", vlan=vlan["id"]))
    v6 = ok(api.post("subnets/", cidr="fd20:2:150::/64", name=f"six-{tag}", vlan=vlan["id"]))
    yield {
        "tag": tag,
        "fabric": fabric,
        "space": space,
        "vlan": vlan,
        "untagged": untagged,
        "outer": outer,
        "inner": inner,
        "v6": v6,
    }
    for s in (inner, outer, v6):
        api.delete(f"subnets/{s['id']}/")
    api.delete(f"fabrics/{fabric['id']}/")
    api.delete(f"spaces/{space['id']}/")


def test_fabrics_by_specifier(api, world):
    fabric = world["fabric"]
    for spec in (
        str(fabric["id"]),
        f"fabric-{fabric['id']}",
        fabric["name"],
        f"name:{fabric['name']}",
        f"class:class-{world['tag']}",
    ):
        assert ok(api.get(f"fabrics/{spec}/"))["id"] == fabric["id"], spec
    assert ok(api.get("fabrics/fabric-0/"))["id"] == 0
    for spec in ("nosuch", "fabric-987654", "99999999999", "name:nosuch"):
        response = api.get(f"fabrics/{spec}/")
        assert (response.status_code, response.text) == (404, "No Fabric matches the given query."), spec
    renamed = ok(api.put(f"fabrics/{fabric['name']}/", description="by name"))
    assert renamed["description"] == "by name"
    assert ok(api.get(f"fabrics/{fabric['name']}/vlans/"))[0]["fabric_id"] == fabric["id"]


def test_vlans_by_specifier_within_a_fabric(api, world):
    fabric, vlan = world["fabric"], world["vlan"]
    for spec in (
        "77",
        "vid:77",
        vlan["name"],
        f"name:{vlan['name']}",
        f"id:{vlan['id']}",
        f"subnet:{world['inner']['id']}",
        f"space:{world['space']['name']}",
    ):
        assert ok(api.get(f"fabrics/{fabric['name']}/vlans/{spec}/"))["id"] == vlan["id"], spec
    assert ok(api.get(f"fabrics/fabric-{fabric['id']}/vlans/untagged/"))["id"] == world["untagged"]["id"]
    assert ok(api.get(f"fabrics/{fabric['id']}/vlans/space:undefined/"))["id"] == world["untagged"]["id"]
    response = api.get(f"fabrics/{fabric['id']}/vlans/5000/")
    assert (response.status_code, response.text) == (404, "VLAN tag (VID) out of range (0-4094; 0 for untagged.)")
    assert api.get(f"fabrics/0/vlans/{vlan['name']}/").status_code == 404  # another fabric's VLAN
    assert api.get("vlans/99999999999/").status_code == 404


@pytest.mark.parametrize(
    "spec, which",
    [
        ("{inner[id]}", "inner"),
        ("id:{inner[id]}", "inner"),
        ("10.202.150.0/24", "inner"),
        ("cidr:10.202.150.0/24", "inner"),
        ("cidr:10.202.150.7/24", "inner"),
        ("name:{inner[name]}", "inner"),
        ("{inner[name]}", "inner"),
        ("ip:10.202.150.9", "inner"),
        ("ip:10.202.151.9", "outer"),
        ("vlan:{vlan[name]}", None),
        ("vid:77", None),
        ("space:{space[name]}", None),
        ("fd20:2:150::/64", "v6"),
        ("ip:fd20:2:150::5", "v6"),
    ],
)
def test_subnets_by_specifier(api, world, spec, which):
    spec = spec.format(**world)
    response = api.get(f"subnets/{spec}/")
    if which is None:  # the VLAN holds two subnets: MAAS's 403
        assert (response.status_code, response.text) == (403, "Too many Subnet objects match the given query.")
    else:
        assert ok(response)["id"] == world[which]["id"], spec


def test_subnet_specifiers_that_name_nothing(api, world):
    for spec in ("nosuch", "cidr:10.202.199.0/24", "ip:10.202.199.1", "987654", "99999999999"):
        response = api.get(f"subnets/{spec}/")
        assert (response.status_code, response.text) == (404, "No Subnet matches the given query."), spec
    assert api.get("subnets/id:abc/").text == "Subnet ID must be numeric."
    assert api.get("subnets/ip:not-an-ip/").status_code == 400
    assert api.get(f"subnets/fabric:{world['fabric']['name']}/").status_code == 403  # all three are on it


def test_spaces_by_name(api, world):
    space = world["space"]
    for spec in (str(space["id"]), space["name"], f"name:{space['name']}", f"subnet:{world['inner']['id']}"):
        assert ok(api.get(f"spaces/{spec}/"))["id"] == space["id"], spec
    assert ok(api.put(f"spaces/{space['name']}/", description="by name"))["description"] == "by name"
    assert api.get("spaces/nosuch/").text == "No Space matches the given query."


def test_the_undefined_space(api, world):
    """Listed last while some VLAN has no space, readable as -1 and undefined, never changed."""
    spaces = ok(api.get("spaces/"))
    undefined = spaces[-1]
    assert (undefined["id"], undefined["name"], undefined["resource_uri"]) == (
        -1,
        "undefined",
        f"{PREFIX}spaces/undefined/",
    )
    assert undefined["description"].startswith("Backward compatibility object")
    assert world["untagged"]["id"] in [v["id"] for v in undefined["vlans"]]
    assert world["vlan"]["id"] not in [v["id"] for v in undefined["vlans"]]
    assert world["outer"]["id"] in [s["id"] for s in undefined["subnets"]]
    assert ok(api.get("spaces/-1/")) == undefined == ok(api.get("spaces/undefined/"))
    assert [s["name"] for s in spaces].count("undefined") == 1
    response = api.delete("spaces/undefined/")
    assert (response.status_code, response.text) == (400, "Space cannot be deleted: undefined")
    response = api.put("spaces/-1/", description="x")
    assert (response.status_code, response.text) == (400, "Space cannot be modified: undefined")
