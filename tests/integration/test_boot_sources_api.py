"""boot-sources/ and their selections, and `boot-resources import` without arguments
importing what they select, against a real region and a mirror on disk."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest

from metalplane.client.http import MaasHttp
from metalplane.images.publish import publish_image
from tests.support.api_users import add_user, drop_user
from tests.support.processes import wait_until

PREFIX = "/MAAS/api/2.0/"
DEFAULT_URL = "http://images.maas.io/ephemeral-v3/stable/"
ADMINS_ONLY = "User is not allowed access to this API."


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.text)
    if status == 204:
        return None
    return response.json() if response.headers["content-type"].startswith("application/json") else response.text


@pytest.fixture
def source(api) -> Iterator[dict]:
    made = ok(
        api.post(
            "boot-sources/", url=f"http://mirror-{secrets.token_hex(3)}.example/stable/", keyring_filename="/etc/k.gpg"
        ),
        201,
    )
    yield made
    api.delete(f"boot-sources/{made['id']}/")


def test_a_new_region_has_maas_default_source_and_selection(region):
    with region.api() as api:
        (default,) = ok(api.get("boot-sources/"))
        assert (default["url"], default["keyring_filename"], default["keyring_data"]) == (
            DEFAULT_URL,
            "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
            "",
        )
        assert set(default) == {"id", "url", "keyring_filename", "keyring_data", "created", "updated", "resource_uri"}
        assert default["created"].endswith("Z") and default["resource_uri"] == f"{PREFIX}boot-sources/{default['id']}/"
        (selection,) = ok(api.get(f"boot-sources/{default['id']}/selections/"))
        assert selection == {
            "boot_source_id": default["id"],
            "id": selection["id"],
            "os": "ubuntu",
            "release": "noble",
            "arches": ["amd64"],
            "subarches": ["*"],
            "labels": ["*"],
            "resource_uri": f"{PREFIX}boot-sources/{default['id']}/selections/{selection['id']}/",
        }
        response = api.delete(f"boot-sources/{default['id']}/selections/{selection['id']}/")
        assert (response.status_code, response.text) == (
            400,
            "Unable to delete ubuntu noble. It is the operating system used for commissioning.",
        )


def test_boot_source_create_update_delete(api, source):
    assert ok(api.get(f"boot-sources/{source['id']}/")) == source
    assert source in ok(api.get("boot-sources/"))
    keyring = b"\x99\x01\x0dbinary keyring"
    updated = ok(api.put(f"boot-sources/{source['id']}/", keyring_filename="", keyring_data=keyring))
    assert (updated["keyring_filename"], base64.b64decode(updated["keyring_data"])) == ("", keyring)
    updated = ok(api.put(f"boot-sources/{source['id']}/", url="https://elsewhere.example/"))
    assert updated["url"] == "https://elsewhere.example/" and updated["created"] == source["created"]
    response = api.post("boot-sources/", url="https://elsewhere.example/", keyring_filename="/k")
    assert (response.status_code, response.json()) == (400, {"url": ["Boot source with this Url already exists."]})
    ok(api.delete(f"boot-sources/{source['id']}/"), 204)
    assert api.get(f"boot-sources/{source['id']}/").text == "No BootSource matches the given query."


@pytest.mark.parametrize(
    "fields, errors",
    [
        ({"url": "not a url", "keyring_filename": "/k"}, {"url": ["Enter a valid URL."]}),
        ({"keyring_filename": "/k"}, {"url": ["This field is required."]}),
        ({"url": "http://x.example/"}, {"__all__": ["One of keyring_data or keyring_filename must be specified."]}),
        (
            {"url": "http://x.example/", "keyring_filename": "/k", "keyring_data": b"data"},
            {"__all__": ["Only one of keyring_filename or keyring_data can be specified."]},
        ),
    ],
)
def test_bad_boot_sources_are_refused(api, fields, errors):
    before = ok(api.get("boot-sources/"))
    response = api.post("boot-sources/", **fields)
    assert (response.status_code, response.json()) == (400, errors)
    assert ok(api.get("boot-sources/")) == before


def test_selections(api, source):
    base = f"boot-sources/{source['id']}/selections/"
    made = ok(api.post(base, os="ubuntu", release="jammy", arches=["amd64", "arm64"], labels="candidate"), 201)
    assert (made["arches"], made["subarches"], made["labels"]) == (["amd64", "arm64"], ["*"], ["candidate"])
    assert ok(api.get(base + f"{made['id']}/")) == made
    changed = ok(api.put(base + f"{made['id']}/", arches="amd64,i386"))
    assert changed["arches"] == ["amd64", "i386"] and changed["release"] == "jammy"
    response = api.post(base, os="ubuntu", release="jammy")
    assert (response.status_code, response.json()) == (
        400,
        {"__all__": ["Boot source selection with this Boot source, Os and Release already exists."]},
    )
    assert api.post(base, os="ubuntu").json() == {"release": ["This field is required."]}
    assert api.post(base, os="u" * 21, release="x").json() == {
        "os": ["Ensure this value has at most 20 characters (it has 21)."]
    }
    ok(api.delete(base + f"{made['id']}/"), 204)
    assert api.get(base + f"{made['id']}/").text == "No BootSourceSelection matches the given query."
    assert api.get("boot-sources/987654/selections/").text == "No BootSource matches the given query."


def test_only_admins_see_boot_sources(shared_region, source):
    username, key = add_user(shared_region.config, "bs-user")
    try:
        with shared_region.api(key) as user:
            for method, path in [
                ("GET", "boot-sources/"),
                ("GET", f"boot-sources/{source['id']}/"),
                ("POST", "boot-sources/"),
                ("DELETE", f"boot-sources/{source['id']}/"),
                ("GET", f"boot-sources/{source['id']}/selections/"),
            ]:
                response = user.request(method, path)
                assert (response.status_code, response.text) == (403, ADMINS_ONLY), (method, path)
    finally:
        drop_user(shared_region.config, username)


def publish(mirror, release: str, data: bytes) -> None:
    staging = mirror.parent / f"staging-{release}"
    staging.mkdir(parents=True, exist_ok=True)
    files = {}
    for ftype in ("boot-kernel", "boot-initrd"):
        files[ftype] = staging / ftype
        files[ftype].write_bytes(data + ftype.encode())
    publish_image(
        mirror,
        os_name="ephemeral",
        release=release,
        arch="amd64",
        subarch="generic",
        version="20260101.1",
        files=files,
        title=f"Test {release}",
    )


def wait_import(api: MaasHttp) -> dict:
    wait_until(lambda: not ok(api.get("boot-resources/", op="is_importing")), 60, 0.2, "import to end")
    return ok(api.get("boot-resources/", op="import_status"))["imports"][0]


def test_import_without_arguments_takes_what_the_sources_select(region, workdir):
    mirror = workdir / "mirror"
    publish(mirror, "wanted", secrets.token_bytes(50_000))
    publish(mirror, "unwanted", secrets.token_bytes(50_000))
    with region.api() as api:
        for s in ok(api.get("boot-sources/")):
            ok(api.delete(f"boot-sources/{s['id']}/"), 204)
        response = api.post("boot-resources/", op="import")
        assert (response.status_code, response.text) == (
            400,
            "No boot sources are configured: add one with boot-sources create, or import from url=... or path=....",
        )
        made = ok(api.post("boot-sources/", url=f"file://{mirror}/", keyring_filename="/unused.gpg"), 201)
        response = api.post("boot-resources/", op="import")
        assert response.status_code == 400 and response.text.startswith("No boot source has a selection")
        ok(api.post(f"boot-sources/{made['id']}/selections/", os="ephemeral", release="wanted", arches="amd64"), 201)
        response = api.post("boot-resources/", op="import")
        assert response.status_code == 200 and response.text.startswith("Import of boot resources started")
        job = wait_import(api)
        assert job["state"] == "done" and job["source"] == str(mirror), job
        names = {r["name"] for r in ok(api.get("boot-resources/"))}
        assert "ephemeral/wanted" in names and "ephemeral/unwanted" not in names
        # With url= the whole mirror comes, whatever the selections say.
        ok(api.post("boot-resources/", op="import", url=f"file://{mirror}/"))
        assert wait_import(api)["state"] == "done"
        assert {"ephemeral/wanted", "ephemeral/unwanted"} <= {r["name"] for r in ok(api.get("boot-resources/"))}


def test_a_source_that_cannot_be_reached_fails_the_job_not_the_request(region, workdir):
    with region.api() as api:
        for s in ok(api.get("boot-sources/")):
            api.delete(f"boot-sources/{s['id']}/")
        made = ok(api.post("boot-sources/", url="http://127.0.0.1:9/nothing/", keyring_filename="/k"), 201)
        ok(api.post(f"boot-sources/{made['id']}/selections/", os="ubuntu", release="noble"), 201)
        response = api.post("boot-resources/", op="import")
        assert response.status_code == 200
        job = wait_import(api)
        assert job["state"] == "failed" and "http://127.0.0.1:9/nothing/" in job["message"], job
