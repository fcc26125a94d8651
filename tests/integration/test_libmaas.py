"""python-libmaas 0.6.8, unchanged, as a real client of the region.

libmaas drives its coroutines itself with `asyncio.get_event_loop().run_until_complete`
when no loop is running, so these are plain sync tests that hand it a loop of its
own (asyncio.run elsewhere in the session leaves the thread with none).
They use 10.202.180-199.0/24 and remove what they create.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from maas.client import connect
from maas.client.enum import IPRangeType, RDNSMode

CIDR = "10.202.180.0/24"


@pytest.fixture
def client(shared_region):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield connect(shared_region.url, apikey=shared_region.api_key)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def fabric(client, api):
    made = client.fabrics.create(name=f"libmaas-{secrets.token_hex(3)}", description="libmaas test")
    yield made
    for s in api.get("subnets/").json():
        if s["vlan"]["fabric_id"] == made.id:
            for r in api.get("ipranges/").json():
                if r["subnet"]["id"] == s["id"]:
                    api.delete(f"ipranges/{r['id']}/")
            api.delete(f"subnets/{s['id']}/")
    api.delete(f"fabrics/{made.id}/")


def test_whoami_and_users(client):
    me = client.users.whoami()
    assert (me.username, me.email, me.is_admin) == ("admin", "admin@example.com", True)
    assert "admin" in [u.username for u in client.users.list()]


def test_version(client):
    version = client.version.get()
    assert version.version and "networks-management" in version.capabilities


def test_list_fabrics_and_their_vlans(client, api, fabric):
    fabrics = {f.id: f for f in client.fabrics.list()}
    assert set(fabrics) == {f["id"] for f in api.get("fabrics/").json()}
    assert fabrics[0].name == "fabric-0"
    assert client.fabrics.get_default().id == 0
    mine = client.fabrics.get(fabric.id)
    assert (mine.name, mine.id) == (fabric.name, fabric.id)
    (untagged,) = mine.vlans
    assert (untagged.vid, untagged.name, untagged.mtu, untagged.dhcp_on) == (0, "untagged", 1500, False)
    assert untagged.fabric.id == fabric.id


def test_create_subnet_and_dynamic_range(client, api, fabric):
    vlan = fabric.vlans.get_default()
    subnet = client.subnets.create(
        CIDR,
        vlan,
        name="libmaas-net",
        gateway_ip="10.202.180.1",
        dns_servers=["10.202.180.2", "10.202.180.3"],
        rdns_mode=RDNSMode.ENABLED,
    )
    assert (subnet.cidr, subnet.name, subnet.gateway_ip) == (CIDR, "libmaas-net", "10.202.180.1")
    assert subnet.dns_servers == ["10.202.180.2", "10.202.180.3"]
    assert subnet.rdns_mode == RDNSMode.ENABLED
    assert subnet.vlan.id == vlan.id and subnet.space == "undefined"
    assert CIDR in [s.cidr for s in client.subnets.list()]
    assert client.subnets.get(subnet.id).cidr == CIDR

    dynamic = client.ip_ranges.create(
        "10.202.180.100", "10.202.180.200", type=IPRangeType.DYNAMIC, subnet=subnet, comment="pxe"
    )
    assert (dynamic.start_ip, dynamic.end_ip, dynamic.type, dynamic.comment) == (
        "10.202.180.100",
        "10.202.180.200",
        IPRangeType.DYNAMIC,
        "pxe",
    )
    assert dynamic.subnet.id == subnet.id
    reserved = client.ip_ranges.create("10.202.180.10", "10.202.180.20")  # subnet found from the address
    assert reserved.subnet.id == subnet.id and reserved.type == IPRangeType.RESERVED
    assert {r.id for r in client.ip_ranges.list()} >= {dynamic.id, reserved.id}

    reserved.delete()
    dynamic.delete()
    subnet.delete()
    assert CIDR not in [s["cidr"] for s in api.get("subnets/").json()]


def test_rename_a_vlan(client, api, fabric):
    vlan = client.fabrics.get(fabric.id).vlans.create(203, name="before", mtu=9000)
    vlan.name = "after"
    vlan.save()
    assert vlan.name == "after"
    shown = api.get(f"fabrics/{fabric.id}/vlans/203/").json()
    assert (shown["name"], shown["mtu"], shown["vid"]) == ("after", 9000, 203)
    vlan.vid = 204  # libmaas sends the new vid as `_vid`, unchanged vid in the URL
    vlan.save()
    assert api.get(f"fabrics/{fabric.id}/vlans/204/").json()["name"] == "after"
    vlan.delete()
    assert api.get(f"fabrics/{fabric.id}/vlans/204/").status_code == 404


def test_read_zones(client, api):
    zones = client.zones.list()
    assert [z.name for z in zones] == [z["name"] for z in api.get("zones/").json()]
    default = client.zones.get("default")
    assert (default.name, default.description) == ("default", "")
    made = client.zones.create(name=f"libmaas-{secrets.token_hex(3)}", description="row 3")
    try:
        assert client.zones.get(made.name).description == "row 3"
    finally:
        made.delete()


def test_read_region_controllers(client, api):
    regions = client.region_controllers.list()
    expected = api.get("regioncontrollers/").json()
    assert [r.system_id for r in regions] == [r["system_id"] for r in expected]
    one = client.region_controllers.get(regions[0].system_id)
    assert (one.hostname, one.fqdn) == (expected[0]["hostname"], expected[0]["fqdn"])
    assert client.rack_controllers.list() is not None


def test_account_credentials(client, shared_region):
    credentials = client.account.create_credentials()
    other = connect(shared_region.url, apikey=str(credentials))
    assert other.users.whoami().username == "admin"
    client.account.delete_credentials(credentials)


def test_spaces(client):
    made = client.spaces.create(name=f"libmaas-{secrets.token_hex(3)}", description="dmz")
    try:
        assert made.name in [s.name for s in client.spaces.list()]
        assert client.spaces.get(made.id).name == made.name
    finally:
        made.delete()


def test_maas_config_getters_and_setters(client):
    """Every MAAS config getter libmaas has, and its setters, round-trip with MAAS's types
    (upstream_dns is a space-separated string on the wire; libmaas splits it)."""
    maas = client.maas
    assert maas.get_upstream_dns() == []
    assert maas.get_ntp_server() == "ntp.ubuntu.com"  # the legacy alias
    assert maas.get_default_dns_ttl() == 30
    assert maas.get_dnssec_validation() == maas.DNSSEC.AUTO
    assert maas.get_default_storage_layout() == maas.StorageLayout.FLAT
    assert maas.get_main_archive() == "http://archive.ubuntu.com/ubuntu"
    assert maas.get_ports_archive() == "http://ports.ubuntu.com/ubuntu-ports"
    assert (maas.get_default_os(), maas.get_default_distro_series(), maas.get_commissioning_distro_series()) == (
        "ubuntu",
        "noble",
        "noble",
    )
    assert maas.get_http_proxy() is None and maas.get_enable_http_proxy() is True
    assert maas.get_curtin_verbose() is True and maas.get_kernel_options() is None
    assert maas.get_windows_kms_host() is None and maas.get_boot_images_auto_import() is True
    assert maas.get_default_min_hwe_kernel() is None and maas.get_enable_third_party_drivers() is True
    assert maas.get_enable_disk_erasing_on_release() is False
    name = maas.get_name()
    try:
        maas.set_upstream_dns(["8.8.8.8", "2001:4860:4860::8888"])
        assert maas.get_upstream_dns() == ["8.8.8.8", "2001:4860:4860::8888"]
        maas.set_ntp_server("ntp.example.com 10.0.0.1")
        assert maas.get_ntp_server() == "ntp.example.com 10.0.0.1"
        maas.set_default_dns_ttl(300)
        maas.set_dnssec_validation(maas.DNSSEC.NO)
        maas.set_default_storage_layout(maas.StorageLayout.LVM)
        maas.set_http_proxy("http://proxy.example.com:3128/")
        maas.set_curtin_verbose(False)
        maas.set_kernel_options("console=ttyS0")
        maas.set_name("libmaas-region")
        assert (maas.get_default_dns_ttl(), maas.get_dnssec_validation(), maas.get_default_storage_layout()) == (
            300,
            maas.DNSSEC.NO,
            maas.StorageLayout.LVM,
        )
        assert maas.get_http_proxy() == "http://proxy.example.com:3128/"
        assert (maas.get_curtin_verbose(), maas.get_kernel_options(), maas.get_name()) == (
            False,
            "console=ttyS0",
            "libmaas-region",
        )
    finally:
        maas.set_upstream_dns(None)
        maas.set_ntp_server("ntp.ubuntu.com")
        maas.set_default_dns_ttl(30)
        maas.set_dnssec_validation(maas.DNSSEC.AUTO)
        maas.set_default_storage_layout(maas.StorageLayout.FLAT)
        maas.set_http_proxy(None)
        maas.set_curtin_verbose(True)
        maas.set_kernel_options(None)
        maas.set_name(name)
