"""pods/ and a machine's raids/, bcaches/, bcache-cache-sets/ and volume-groups/ over
the wire: what metalplane has of them (none) in MAAS 3.7.3's words, statuses and order
of checks (maasserver/api/pods.py, raid.py, bcache.py, bcache_cacheset.py,
volume_groups.py), for an admin, a user and garbage in the URI.

Uses MACs 52:54:04:xx:xx:xx and removes what it creates.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from metalplane.client.http import MaasHttp
from tests.support.api_users import user_api

ADMIN_METHOD = "This method is reserved for admin users."
NO_MACHINE = "No Machine matches the given query."
# list path, singular path, what MAAS says of an object it does not find
LAYOUTS = [
    ("raids", "raid", "No RAID matches the given query."),
    ("bcaches", "bcache", "No Bcache matches the given query."),
    ("bcache-cache-sets", "bcache-cache-set", ""),  # MAAS's bare Http404 once the machine is found
    ("volume-groups", "volume-group", "No VolumeGroup matches the given query."),
    ("volume-groups", "volume-groups", "No VolumeGroup matches the given query."),  # MAAS's plural route
]
CREATES = [  # list path, what is sent, the field the 400 names
    ("raids", {"level": "raid-1", "block_devices": ["1", "2"]}, "block_devices"),
    ("raids", {"level": "raid-1", "partitions": ["1", "2"]}, "partitions"),
    ("raids", {"level": "raid-0"}, "block_devices"),
    ("bcaches", {"name": "bcache0", "backing_partition": "3", "cache_set": "1"}, "backing_partition"),
    ("bcache-cache-sets", {"cache_partition": "3"}, "cache_partition"),
    ("bcache-cache-sets", {}, "cache_device"),
    ("volume-groups", {"name": "vg0", "block_devices": "1"}, "block_devices"),
]
GARBAGE_IDS = ["abc", "0", "-1", "2147483648", "99999999999999999999999", "a%00b", "%E2%98%83", "x" * 300]


@pytest.fixture
def machine(api) -> Iterator[str]:
    mac = "52:54:04:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
    response = api.post(
        "machines/", architecture="amd64/generic", mac_addresses=mac, power_type="manual", commission="false"
    )
    assert response.status_code == 200, response.text
    yield response.json()["system_id"]
    api.delete(f"machines/{response.json()['system_id']}/")


@pytest.fixture
def user(shared_region) -> Iterator[MaasHttp]:
    with user_api(shared_region, "layouts-user") as client:
        yield client


def answer(response) -> tuple[int, str]:
    return response.status_code, response.text


def test_a_machine_has_no_layouts_and_none_is_found(api, machine):
    for listed, one, missing in LAYOUTS:
        assert api.get(f"nodes/{machine}/{listed}/").json() == []
        for method in ("GET", "PUT", "DELETE"):
            response = api.request(method, f"nodes/{machine}/{one}/1/", None, {})
            assert answer(response) == (404, missing), (method, one)
            assert response.headers["content-type"].startswith("text/plain")
    for op, data in (("create_logical_volume", {"name": "lv0", "size": "1G"}), ("delete_logical_volume", {"id": "1"})):
        assert answer(api.post(f"nodes/{machine}/volume-group/vg0/", op, **data)) == (
            404,
            "No VolumeGroup matches the given query.",
        )


def test_reads_of_what_is_not_a_machine(api, user):
    """MAAS lists these of machines only; a RAID, bcache or volume group is looked up
    before its machine (so its 404 whatever the system_id), a cache set after."""
    (region,) = api.get("regioncontrollers/").json()
    for listed, one, missing in LAYOUTS:
        for system_id in (region["system_id"], "no-such-node"):
            assert answer(api.get(f"nodes/{system_id}/{listed}/")) == (404, NO_MACHINE)
            expected = NO_MACHINE if one == "bcache-cache-set" else missing
            assert answer(api.get(f"nodes/{system_id}/{one}/1/")) == (404, expected)


def test_creates_are_refused_naming_the_field_after_maas_checks(api, user, machine):
    for listed, data, field in CREATES:
        response = api.post(f"nodes/{machine}/{listed}/", **data)
        assert response.status_code == 400, (listed, data, response.text)
        (reason,) = response.json()[field]
        assert reason.startswith("metalplane does not build") and "commissioning found" in reason
        # MAAS's order: the machine, then the admin permission on it (an empty 403), then the form.
        assert answer(api.post(f"nodes/no-such-node/{listed}/", **data)) == (404, NO_MACHINE)
        assert answer(user.post(f"nodes/{machine}/{listed}/", **data)) == (403, "")
        assert user.get(f"nodes/{machine}/{listed}/").json() == []


def test_pods(api, user):
    assert api.get("pods/").json() == [] and user.get("pods/").json() == []
    refused = api.post("pods/", type="lxd", power_address="10.0.0.1:8443")
    assert refused.status_code == 400 and list(refused.json()) == ["type"]
    assert "manages no VM hosts" in refused.json()["type"][0]
    assert api.post("pods/").json().keys() == {"type"}
    assert answer(user.post("pods/", type="virsh", power_address="qemu:///system")) == (403, ADMIN_METHOD)
    assert answer(api.get("pods/1/")) == (404, "Not Found")  # piston's stock read, as MAAS answers it
    assert answer(user.get("pods/1/")) == (404, "Not Found")
    for method, op, data in (
        ("PUT", None, {"name": "p"}),
        ("DELETE", None, {}),
        ("POST", "refresh", {}),
        ("GET", "parameters", {}),
        ("POST", "compose", {"cores": "2"}),
        ("POST", "add_tag", {"tag": "t"}),
        ("POST", "remove_tag", {"tag": "t"}),
    ):
        assert answer(api.request(method, "pods/1/", op, data)) == (404, "No Pod matches the given query."), op
        assert answer(user.request(method, "pods/1/", op, data)) == (403, ADMIN_METHOD), op
    assert answer(api.post("pods/1/", "add_tag")) == (400, "No provided tag!")
    assert answer(api.post("pods/1/", "add_tag", tag="a,b")) == (400, 'Tag may not contain a ",".')
    assert answer(api.post("pods/1/", "remove_tag")) == (400, "No provided tag!")


def test_garbage_in_the_uri_is_not_found(api, machine):
    for bad in GARBAGE_IDS:
        for path in (
            f"pods/{bad}/",
            f"nodes/{machine}/raid/{bad}/",
            f"nodes/{machine}/bcache/{bad}/",
            f"nodes/{machine}/bcache-cache-set/{bad}/",
            f"nodes/{machine}/volume-group/{bad}/",
            f"nodes/{bad}/bcache-cache-set/1/",
        ):
            for method in ("GET", "PUT", "DELETE"):
                response = api.request(method, path, None, {})
                assert response.status_code == 404, (method, path, response.text)
        for listed in ("raids", "bcaches", "bcache-cache-sets", "volume-groups"):
            assert api.get(f"nodes/{bad}/{listed}/").status_code == 404
            assert api.post(f"nodes/{bad}/{listed}/", name="x").status_code == 404
