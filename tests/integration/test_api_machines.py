"""machines/ and machines/{system_id}/ against a real region: MAAS's fields, filters,
create (with commissioning), update of every documented field, uniqueness under races."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

FIELDS = json.load(open("/work/research/maas_field_values.json")) if False else None  # noqa: SIM115


def mac(n: int | None = None) -> str:
    value = secrets.randbits(24) if n is None else n
    return "52:54:01:{:02x}:{:02x}:{:02x}".format(value >> 16 & 255, value >> 8 & 255, value & 255)


@pytest.fixture
def made(api):
    """Machines a test creates, deleted afterwards."""
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


def test_create_and_read(api, made):
    m = made(hostname=f"m-{secrets.token_hex(3)}")
    shown = api.get(f"machines/{m['system_id']}/")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["owner_data"] == {} and body["pool"]["name"] == "default" and body["status_name"] == "New"
    assert body["interface_set"][0]["mac_address"] == m["interface_set"][0]["mac_address"]
