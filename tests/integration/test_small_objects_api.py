"""package-repositories/, license-keys/, dhcp-snippets/, files/ and static-routes/
against a real region: MAAS's fields, rules, messages and permissions."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest

from metalplane.client.http import MaasHttp
from tests.support.api_users import user_api

PREFIX = "/MAAS/api/2.0/"
ADMIN_METHOD = "This method is reserved for admin users."


def ok(response, status: int = 200):
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    if status == 204 or not response.headers.get("content-type", "").startswith("application/json"):
        return response
    return response.json()


@pytest.fixture
def user(shared_region) -> Iterator[MaasHttp]:
    with user_api(shared_region, "small-user") as client:
        yield client


@pytest.fixture
def nets(api) -> Iterator[list[dict]]:
    """Two IPv4 subnets and an IPv6 one on the default fabric."""
    made = [ok(api.post("subnets/", cidr=cidr)) for cidr in ("10.202.160.0/24", "10.202.161.0/24", "fd20:2:160::/64")]
    yield made
    for s in made:
        api.delete(f"subnets/{s['id']}/")


# -- package repositories ------------------------------------------------------------------


REPOSITORY_KEYS = {
    "id",
    "name",
    "url",
    "distributions",
    "disabled_pockets",
    "disabled_components",
    "disable_sources",
    "components",
    "arches",
    "key",
    "enabled",
    "resource_uri",
}


def test_maas_default_archives_are_there(api):
    found = {r["name"]: r for r in ok(api.get("package-repositories/"))}
    main, ports = found["main_archive"], found["ports_archive"]
    assert set(main) == REPOSITORY_KEYS
    assert (main["url"], main["arches"], main["enabled"], main["disable_sources"]) == (
        "http://archive.ubuntu.com/ubuntu",
        ["amd64", "i386"],
        True,
        True,
    )
    assert (ports["url"], ports["arches"]) == (
        "http://ports.ubuntu.com/ubuntu-ports",
        ["armhf", "arm64", "ppc64el", "s390x"],
    )
    assert ok(api.get(f"package-repositories/{main['id']}/")) == main
    assert ok(api.get("package-repositories/main_archive/")) == main
    response = api.delete(f"package-repositories/{main['id']}/")
    assert (response.status_code, response.text) == (400, "Cannot delete default Ubuntu archives.")
    response = api.put(f"package-repositories/{main['id']}/", enabled="false")
    assert response.json() == {"__all__": ["Default repositories may not be disabled."]}
    response = api.put(f"package-repositories/{main['id']}/", components="main")
    assert response.json() == {
        "components": ["This is a default Ubuntu repository. Please update 'disabled_components' instead."]
    }
    changed = ok(
        api.put(
            f"package-repositories/{main['id']}/",
            disabled_pockets="backports",
            disabled_components=["universe", "multiverse"],
        )
    )
    assert (changed["disabled_pockets"], changed["disabled_components"]) == (["backports"], ["universe", "multiverse"])
    restored = ok(api.put(f"package-repositories/{main['id']}/", disabled_pockets="", disabled_components=""))
    assert restored == main


def test_custom_repository(api, user):
    name = f"ppa-{secrets.token_hex(2)}"
    made = ok(
        api.post(
            "package-repositories/",
            name=name,
            url="ppa:owner/name",
            distributions="jammy,noble",
            components=["main", "contrib"],
            key="KEYDATA",
        )
    )
    assert (made["url"], made["distributions"], made["components"], made["arches"], made["enabled"]) == (
        "ppa:owner/name",
        ["jammy", "noble"],
        ["main", "contrib"],
        ["amd64", "i386"],
        True,
    )
    assert ok(user.get(f"package-repositories/{made['id']}/")) == made
    response = user.post("package-repositories/", name="x", url="http://x.example/")
    assert (response.status_code, response.text) == (403, ADMIN_METHOD)
    assert user.delete(f"package-repositories/{made['id']}/").status_code == 403
    response = api.post("package-repositories/", name=name, url="http://x.example/")
    assert response.json() == {"name": ["Package repository with this Name already exists."]}
    response = api.put(f"package-repositories/{made['id']}/", disabled_components="universe")
    assert response.json() == {
        "disabled_components": ["This is a custom repository. Please update 'components' instead."]
    }
    ok(api.delete(f"package-repositories/{made['id']}/"), 204)
    assert api.get(f"package-repositories/{made['id']}/").text == "No PackageRepository matches the given query."


@pytest.mark.parametrize(
    "fields, errors",
    [
        ({"url": "http://x.example/"}, {"name": ["This field is required."]}),
        ({"name": "n"}, {"url": ["This field is required."]}),
        ({"name": "n", "url": "not a url"}, {"url": ["Enter a valid repository URL or PPA location."]}),
        (
            {"name": "n" * 42, "url": "http://x.example/"},
            {"name": ["Ensure this value has at most 41 characters (it has 42)."]},
        ),
        (
            {"name": "n", "url": "http://x.example/", "disabled_pockets": "proposed"},
            {
                "disabled_pockets": [
                    "'proposed' is not a valid Ubuntu archive pocket. You can only disable ['updates', 'security', "
                    "'backports']."
                ]
            },
        ),
    ],
)
def test_bad_repositories_are_refused(api, fields, errors):
    before = ok(api.get("package-repositories/"))
    response = api.post("package-repositories/", **fields)
    assert (response.status_code, response.json()) == (400, errors)
    assert ok(api.get("package-repositories/")) == before


# -- license keys ---------------------------------------------------------------------------


def test_license_keys(api, user):
    key = "ABCDE-12345-FGHIJ-67890-KLMNO"
    made = ok(api.post("license-keys/", osystem="windows", distro_series="win2019", license_key=key))
    try:
        assert made == {
            "osystem": "windows",
            "distro_series": "win2019",
            "license_key": key,
            "resource_uri": f"{PREFIX}license-key/windows/win2019",
        }
        assert made in ok(api.get("license-keys/"))
        assert ok(api.get("license-key/windows/win2019")) == made
        response = api.post("license-keys/", distro_series="windows/win2019", license_key=key)
        assert response.json() == {
            "__all__": ["License key with this operating system and distro series already exists."]
        }
        other = "ZZZZZ-12345-FGHIJ-67890-KLMNO"
        assert ok(api.put("license-key/windows/win2019", license_key=other))["license_key"] == other
        assert api.put("license-key/windows/win2019", license_key="bad").json() == {"__all__": ["Invalid license key."]}
        for method in ("GET", "PUT", "DELETE"):
            response = user.request(method, "license-key/windows/win2019")
            assert (response.status_code, response.text) == (403, "User is not allowed access to this API.")
    finally:
        ok(api.delete("license-key/windows/win2019"), 204)
    assert api.get("license-key/windows/win2019").text == "No LicenseKey matches the given query."
    assert api.delete("license-key/windows/win2019").status_code == 204  # MAAS: already gone is fine
    response = api.post("license-keys/", osystem="ubuntu", distro_series="noble", license_key=key)
    assert response.json() == {"osystem": ["'ubuntu' is not a valid osystem.  It should be one of: 'windows'."]}


# -- DHCP snippets -------------------------------------------------------------------------


SNIPPET_KEYS = {
    "id",
    "name",
    "value",
    "history",
    "description",
    "enabled",
    "node",
    "subnet",
    "global_snippet",
    "resource_uri",
}


def test_dhcp_snippet_versions_and_revert(api):
    made = ok(api.post("dhcp-snippets/", name="opt-a", value="option a 1;\r\n", description="first"))
    try:
        assert set(made) == SNIPPET_KEYS
        assert (made["value"], made["enabled"], made["global_snippet"], made["node"], made["subnet"]) == (
            "option a 1;\n",
            True,
            True,
            None,
            None,
        )
        assert [h["value"] for h in made["history"]] == ["option a 1;\n"]
        second = ok(api.put(f"dhcp-snippets/{made['id']}/", value="option a 2;"))
        third = ok(api.put(f"dhcp-snippets/{made['id']}/", value="option a 3;", enabled="false"))
        assert [h["value"] for h in third["history"]] == ["option a 3;", "option a 2;", "option a 1;\n"]
        assert third["enabled"] is False and third["description"] == "first"
        assert ok(api.put(f"dhcp-snippets/{made['id']}/", value="option a 3;"))["history"] == third["history"]
        assert ok(api.get("dhcp-snippets/opt-a/"))["id"] == made["id"]  # by name
        back = ok(api.post(f"dhcp-snippets/{made['id']}/", op="revert", to="-1"))
        assert back["value"] == "option a 2;" and back["history"] == second["history"]
        first_id = made["history"][0]["id"]
        assert ok(api.post(f"dhcp-snippets/{made['id']}/", op="revert", to=str(first_id)))["value"] == "option a 1;\n"
        for to, message in (
            ("-5", "Goes too far back."),
            ("99999", "99999 not found in history"),
            ("x", "x is an invalid 'to' value"),
        ):
            response = api.post(f"dhcp-snippets/{made['id']}/", op="revert", to=to)
            assert (response.status_code, response.json()) == (400, {"__all__": [message]})
        response = api.post(f"dhcp-snippets/{made['id']}/", op="revert")
        assert response.json() == {"__all__": ["You must specify where to revert to"]}
    finally:
        ok(api.delete(f"dhcp-snippets/{made['id']}/"), 204)
    assert api.get(f"dhcp-snippets/{made['id']}/").text == "No DHCPSnippet matches the given query."


def test_dhcp_snippet_targets(api, nets, user):
    subnet = nets[0]
    made = ok(api.post("dhcp-snippets/", name="on-subnet", value="x;", subnet=f"cidr:{subnet['cidr']}"))
    try:
        assert made["subnet"]["id"] == subnet["id"] and made["global_snippet"] is False
        range_ = ok(api.post("ipranges/", type="reserved", start_ip="10.202.160.10", end_ip="10.202.160.20"))
        assert ok(api.put(f"dhcp-snippets/{made['id']}/", iprange=str(range_["id"])))["subnet"]["id"] == subnet["id"]
        other = ok(api.put(f"dhcp-snippets/{made['id']}/", subnet=str(nets[1]["id"])))
        assert other["subnet"]["id"] == nets[1]["id"]
        regions = ok(api.get("regioncontrollers/"))
        on_node = ok(api.put(f"dhcp-snippets/{made['id']}/", node=regions[0]["hostname"]))
        assert on_node["subnet"] is None and on_node["node"]["system_id"] == regions[0]["system_id"]
        assert ok(api.put(f"dhcp-snippets/{made['id']}/", global_snippet="true"))["global_snippet"] is True
        response = api.post(
            "dhcp-snippets/", name="both", value="x;", subnet=str(subnet["id"]), node=regions[0]["system_id"]
        )
        assert response.json() == {
            "__all__": ["A DHCP snippet cannot be enabled on a node and subnet at the same time."]
        }
        assert api.post("dhcp-snippets/", name="n", value="x;", subnet="nosuch").json() == {
            "subnet": ["Select a valid choice. That choice is not one of the available choices."]
        }
        assert api.post("dhcp-snippets/", name="n", value="x;", node="nosuch").json() == {
            "node": ["Select a valid choice. nosuch is not one of the available choices."]
        }
        assert api.post("dhcp-snippets/", name="n").json() == {"value": ["This field is required."]}
        assert user.post("dhcp-snippets/", name="n", value="x").status_code == 403
        assert ok(user.get(f"dhcp-snippets/{made['id']}/"))["id"] == made["id"]
    finally:
        for s in ok(api.get("dhcp-snippets/")):
            api.delete(f"dhcp-snippets/{s['id']}/")
        for r in ok(api.get("ipranges/")):
            if r["subnet"]["id"] == subnet["id"]:
                api.delete(f"ipranges/{r['id']}/")


# -- files ----------------------------------------------------------------------------------


def test_files(api, user, shared_region):
    name = f"file-{secrets.token_hex(3)}.bin"
    data = secrets.token_bytes(70_000) + b"\x00\xff"
    response = api.post("files/", filename=name, file=data)
    assert (response.status_code, response.text) == (201, "")
    (listed,) = [f for f in ok(api.get("files/", prefix="file-")) if f["filename"] == name]
    assert set(listed) == {"filename", "anon_resource_uri", "resource_uri"}
    assert listed["resource_uri"] == f"{PREFIX}files/{name}/"
    assert api.get("files/", op="get", filename=name).content == data
    key = listed["anon_resource_uri"].split("key=")[1]
    assert api.get("files/", op="get_by_key", key=key).content == data
    read = ok(api.get(f"files/{name}/"))
    assert base64.b64decode(read["content"]) == data and read["anon_resource_uri"] == listed["anon_resource_uri"]
    ok(api.post("files/", filename=name, file=b"replaced"), 201)
    assert api.get("files/", op="get", filename=name).content == b"replaced"
    assert ok(api.get("files/", prefix="file-"))[0]["anon_resource_uri"] == listed["anon_resource_uri"]
    # Another user sees none of it by name, but the key is a capability.
    assert name not in [f["filename"] for f in ok(user.get("files/"))]
    assert user.get(f"files/{name}/").status_code == 404
    assert user.get("files/", op="get_by_key", key=key).content == b"replaced"
    ok(api.delete("files/", filename=name), 204)
    response = api.get(f"files/{name}/")
    assert (response.status_code, response.text, response.headers["workaround"]) == (404, "Not Found", "bug1123986")
    response = api.get("files/", op="get", filename=name)
    assert (response.status_code, response.text) == (404, "File not found")
    assert api.get("files/", op="get_by_key", key=key).text == "No FileStorage matches the given query."


def test_file_refusals(api):
    assert (api.post("files/", file=b"x").text, api.post("files/", filename="f").text) == (
        "Filename not supplied",
        "File not supplied",
    )
    response = api.post("files/", filename="big", file=b"\x00" * (32 * 1024 * 1024 + 1))
    # Past the API's body limit the region answers before reading the body (413).
    assert response.status_code == 413
    assert api.get("files/", op="get").text == "No provided filename!"
    assert "big" not in [f["filename"] for f in ok(api.get("files/"))]


# -- static routes --------------------------------------------------------------------------


def test_static_routes(api, nets, user):
    src, dst, v6 = nets
    made = ok(
        api.post("static-routes/", source=src["id"], destination=f"cidr:{dst['cidr']}", gateway_ip="10.202.160.1")
    )
    try:
        assert set(made) == {"id", "source", "destination", "gateway_ip", "metric", "resource_uri"}
        assert (made["source"]["id"], made["destination"]["id"], made["gateway_ip"], made["metric"]) == (
            src["id"],
            dst["id"],
            "10.202.160.1",
            0,
        )
        assert made["source"] == ok(api.get(f"subnets/{src['id']}/"))
        assert ok(user.get(f"static-routes/{made['id']}/")) == made
        assert made in ok(api.get("static-routes/"))
        changed = ok(api.put(f"static-routes/{made['id']}/", metric="7"))
        assert changed["metric"] == 7 and changed["gateway_ip"] == "10.202.160.1"
        response = api.post("static-routes/", source=src["id"], destination=dst["id"], gateway_ip="10.202.160.1")
        assert response.json() == {
            "__all__": ["Static route with this Source, Destination and Gateway IP already exists."]
        }
        for fields, errors in [
            ({"destination": dst["id"], "gateway_ip": "10.202.160.1"}, {"source": ["This field is required."]}),
            (
                {"source": src["id"], "destination": dst["id"], "gateway_ip": "10.202.161.1"},
                {"gateway_ip": ["Enter an IP address in 10.202.160.0/24."]},
            ),
            (
                {"source": src["id"], "destination": src["id"], "gateway_ip": "10.202.160.2"},
                {"__all__": ["source and destination cannot be the same subnet."]},
            ),
            (
                {"source": src["id"], "destination": v6["id"], "gateway_ip": "10.202.160.2"},
                {"__all__": ["source and destination must be the same IP version."]},
            ),
            (
                {"source": "nosuch", "destination": dst["id"], "gateway_ip": "10.202.160.2"},
                {"source": ["Select a valid choice. That choice is not one of the available choices."]},
            ),
            (
                {"source": src["id"], "destination": dst["id"], "gateway_ip": "fe80::1%eth0"},
                {"gateway_ip": ["Enter a valid IPv4 or IPv6 address."]},
            ),
        ]:
            response = api.post("static-routes/", **fields)
            assert (response.status_code, response.json()) == (400, errors), fields
        response = api.post(
            "static-routes/", source=src["id"], destination=dst["id"], gateway_ip="10.202.160.3", metric="-1"
        )
        assert response.status_code == 400 and "metric" in response.json()
        assert (
            user.post("static-routes/", source=src["id"], destination=dst["id"], gateway_ip="10.202.160.9").text
        ) == ADMIN_METHOD
        assert (
            user.put(f"static-routes/{made['id']}/", metric="1").status_code,
            user.delete(f"static-routes/{made['id']}/").status_code,
        ) == (403, 403)
    finally:
        ok(api.delete(f"static-routes/{made['id']}/"), 204)
    assert api.get(f"static-routes/{made['id']}/").text == "No StaticRoute matches the given query."
    assert api.get("static-routes/99999999999/").status_code == 404


def test_deleting_a_subnet_deletes_its_routes(api):
    a, b = (ok(api.post("subnets/", cidr=c)) for c in ("10.202.162.0/24", "10.202.163.0/24"))
    route = ok(api.post("static-routes/", source=a["id"], destination=b["id"], gateway_ip="10.202.162.1"))
    ok(api.delete(f"subnets/{b['id']}/"), 204)
    assert api.get(f"static-routes/{route['id']}/").status_code == 404
    ok(api.delete(f"subnets/{a['id']}/"), 204)
