"""The metadata API against a real region, as an anonymous host on the boot network would
use it (issue 12): every bad request is a 4xx naming what is wrong and changes nothing,
enlistment never rewrites a known machine, and a commissioning machine's token is only
handed to the address its boot config was served to, once.

The rack's side is a real RPC connection (TLS, the secret's proof, Register) asking
`GetBootConfig` with the requester's address, as the rack's TFTP and HTTP servers do.
HTTP clients bind 127.0.0.1 (the machine) or 127.0.0.2 (another host on the boot
network); the region listens on 127.0.0.1 and sees each one's own address. 127.0.0.3
plays the HAProxy in front of the region (`trusted_proxies`).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import uuid

import httpx
import pytest
from sqlalchemy import event

from metalplane.region.bootstrap import run_db
from metalplane.region.db.engine import async_engine
from metalplane.region.db.transaction import transaction
from metalplane.region.errors import Invalid
from metalplane.region.services import cluster, commissioning, reports
from metalplane.rpc.client import open_connection
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.messages import BootConfig, GetBootConfig
from tests.conftest import RunningRegion, create_admin, make_region_config
from tests.support.databases import world_traversable_tempdir
from tests.support.light_rack import LightRack
from tests.support.processes import RegionProcess

MACHINE_IP, OTHER_IP, PROXY_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def region(databases):
    """A region of its own (these tests enlist and commission machines), with an
    ephemeral image so that boot configs are netboot configs."""
    root = world_traversable_tempdir("mp-metadata-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data", trusted_proxies=[PROXY_IP])
    key = create_admin(config)
    process = RegionProcess(config, root / "region")
    process.start_and_wait()
    running = RunningRegion(process, key)
    with running.api() as api:
        for filetype, content in (("boot-kernel", b"kernel"), ("boot-initrd", b"initrd")):
            response = api.post(
                "boot-resources/",
                name="ephemeral/bookworm",
                architecture="amd64/generic",
                filetype=filetype,
                version="1",
                content=content,
            )
            assert response.status_code == 201, response.text
    yield running
    process.stop()
    databases.drop_database(dbname)
    shutil.rmtree(root, ignore_errors=True)


def http(source: str = MACHINE_IP) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def metadata(region: RunningRegion, path: str) -> str:
    return f"{region.url}metadata/{path}"


def post(
    region: RunningRegion,
    path: str,
    body: bytes | str | dict | list | int,
    *,
    source: str = MACHINE_IP,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    with http(source) as client:
        return client.post(
            metadata(region, path), content=content, headers={"Content-Type": "application/json", **(headers or {})}
        )


def boot_config(region: RunningRegion, mac: str, client_ip: str | None) -> BootConfig:
    """Ask as a rack does when `client_ip` fetched pxelinux.cfg/01-<mac>."""
    secret = run_db(region.config, cluster.shared_secret)

    async def ask() -> BootConfig:
        async with httpx.AsyncClient() as client:
            endpoint = Endpoint.from_wire((await client.get(region.url + "rpc/")).json()["endpoints"][0])
        rack = LightRack("metadata-test-rack", [region.url], secret)  # its hello and Register, unstarted
        connection = await open_connection(endpoint.host, endpoint.port, secret, rack.hello(), None, {})
        serving = asyncio.ensure_future(connection.peer.serve())
        try:
            await connection.peer.call(await rack.registration())
            return await connection.peer.call(GetBootConfig(mac, "amd64", client_ip), timeout=30)
        finally:
            await connection.ws.close()
            serving.cancel()
            await rack.stop()

    return asyncio.run(ask())


def enrol_credential(config: BootConfig) -> str | None:
    found = re.search(r"\benrol=(\S+)", config.params or "")
    return found.group(1) if found else None


def new_mac() -> str:
    digits = uuid.uuid4().hex[:6]
    return "52:54:01:" + ":".join(digits[i : i + 2] for i in range(0, 6, 2))


def machines(region: RunningRegion) -> list[dict]:
    with region.api() as api:
        return api.get("machines/").json()


def create_machine(region: RunningRegion, mac: str, **fields: str) -> dict:
    fields.setdefault("architecture", "amd64/generic")  # required by MAAS's create form
    with region.api() as api:
        response = api.post("machines/", mac_addresses=mac, power_type="manual", commission="false", **fields)
        assert response.status_code == 200, response.text
        return response.json()


def commissioning_machine(region: RunningRegion) -> tuple[dict, str]:
    mac = new_mac()
    machine = create_machine(region, mac, architecture="amd64/generic")
    with region.api() as api:
        response = api.post(f"machines/{machine['system_id']}/", op="commission", timeout="600")
        assert response.status_code == 200 and response.json()["status_name"] == "Commissioning", response.text
    return machine, mac


def enrolled_token(region: RunningRegion) -> tuple[dict, str]:
    """A commissioning machine and its token, got the way the image gets it."""
    machine, mac = commissioning_machine(region)
    credential = enrol_credential(boot_config(region, mac, MACHINE_IP))
    response = post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"})
    assert response.status_code == 200, response.text
    return machine, response.text


def read_machine(region: RunningRegion, system_id: str) -> dict:
    with region.api() as api:
        return api.get(f"machines/{system_id}/").json()


# -- enlist: anonymous, bounded, never a 5xx --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mac_addresses": [1]}, "mac_addresses"),
        ({"mac_addresses": 5}, "mac_addresses"),
        ({"mac_addresses": "52:54:00:12:34:56"}, "mac_addresses"),
        ({"mac_addresses": [None]}, "mac_addresses"),
        ({"mac_addresses": [{"a": 1}]}, "mac_addresses"),
        ({"mac_addresses": []}, "mac_addresses"),
        ({}, "mac_addresses"),
        ({"mac_addresses": ["52:54:00:12:34:zz"]}, "mac_addresses"),
        ({"mac_addresses": ["52:54:00:12:34:56\u0000"]}, "mac_addresses"),
        ({"mac_addresses": ["52:54:00:12:34:56"], "architecture": 5}, "architecture"),
        ({"mac_addresses": ["52:54:00:12:34:56"], "architecture": "x/" * 40}, "architecture"),
        ({"mac_addresses": ["52:54:00:12:34:56"], "boot_method": "pxe\u0000"}, "boot_method"),
        (5, None),
        ([1], None),
        ("{not json", None),
        ("[" * 60_000, None),  # nested past Python's recursion limit
    ],
)
def test_bad_enlistments_are_400s_naming_the_field_and_create_nothing(region, body, field):
    before = len(machines(region))
    response = post(region, "enlist", body)
    assert response.status_code == 400, response.text
    if field:
        assert field in response.json()
    else:
        assert response.text in ("Expected a JSON object.", "The body is not valid JSON.")
    assert len(machines(region)) == before


def test_a_50000_character_mac_addresses_string_costs_nothing(region):
    started = time.monotonic()
    response = post(region, "enlist", {"mac_addresses": "a" * 50_000})
    assert response.status_code == 400 and "mac_addresses" in response.json()
    many = post(region, "enlist", {"mac_addresses": [new_mac() for _ in range(1_000)]})
    assert many.status_code == 400 and "at most 64" in many.json()["mac_addresses"][0]
    assert time.monotonic() - started < 2.0  # was 16.8 s: one query per character


def test_an_oversized_body_is_refused_before_it_is_read(region):
    response = post(region, "enlist", b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    assert "larger than this endpoint accepts" in response.text


def test_enlisting_an_unknown_machine_with_many_macs(region):
    macs = [new_mac() for _ in range(63)]
    response = post(
        region, "enlist", {"mac_addresses": [*macs, macs[0].upper()], "architecture": "amd64", "boot_method": "pxe"}
    )
    assert response.status_code == 200, response.text
    enlisted = read_machine(region, response.json()["system_id"])
    assert enlisted["status_name"] == "New" and enlisted["architecture"] == "amd64/generic"
    assert [i["mac_address"] for i in enlisted["interface_set"]] == macs  # once each, boot NIC first


def test_enlisting_with_a_known_mac_changes_nothing_and_names_no_machine(region):
    known_mac = new_mac()
    known = create_machine(region, known_mac, architecture="amd64/generic", hostname="known-one")
    before = machines(region)
    response = post(
        region,
        "enlist",
        {"mac_addresses": [new_mac(), known_mac.upper()], "architecture": "arm64/generic", "boot_method": "uefi"},
    )
    assert response.status_code == 400
    assert response.json() == {"mac_addresses": [f"MAC address {known_mac} already in use."]}
    assert known["system_id"] not in response.text and "known-one" not in response.text
    assert machines(region) == before  # not rewritten, nothing added
    assert read_machine(region, known["system_id"])["architecture"] == "amd64/generic"


# -- enrolment: the token goes to the address the boot config was served to, once -------------


def test_a_commissioning_boot_config_carries_a_credential_not_the_token(region):
    _, mac = commissioning_machine(region)
    config = boot_config(region, mac, MACHINE_IP)
    assert config.purpose == "commission" and "mp_mode=commission" in (config.params or "")
    credential = enrol_credential(config)
    assert credential and "token=" not in (config.params or "")
    # The credential itself is no token.
    assert (
        post(region, "commission/facts", {"cpu_count": 1}, headers={"Authorization": f"Token {credential}"}).status_code
        == 401
    )
    # The same address asking again (a retried TFTP request) gets the same credential.
    assert enrol_credential(boot_config(region, mac, MACHINE_IP)) == credential


def test_another_host_gets_no_credential_and_cannot_use_the_machines(region):
    machine, mac = commissioning_machine(region)
    credential = enrol_credential(boot_config(region, mac, MACHINE_IP))
    # Another host on the boot network fetches the machine's config: nothing usable in it.
    stolen = boot_config(region, mac, OTHER_IP)
    assert stolen.purpose == "local" and enrol_credential(stolen) is None
    assert OTHER_IP in (stolen.problem or "")
    # It read the machine's credential off the wire: from its own address it is worth nothing.
    refused = post(region, "enrol", b"", source=OTHER_IP, headers={"Authorization": f"Enrol {credential}"})
    assert refused.status_code == 403
    for path, body in (("commission/facts", {"cpu_count": 64, "memory_mib": 1}), ("commission/done", {"result": "ok"})):
        forged = post(region, path, body, source=OTHER_IP, headers={"Authorization": f"Token {credential}"})
        assert forged.status_code == 401
    assert read_machine(region, machine["system_id"])["status_name"] == "Commissioning"
    # The machine itself exchanges it, once.
    token = post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"})
    assert token.status_code == 200 and token.text and token.text != credential
    again = post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"})
    assert again.status_code == 401
    # Fetching the config after the machine enrolled gives another host nothing either.
    assert enrol_credential(boot_config(region, mac, OTHER_IP)) is None
    facts = post(
        region,
        "commission/facts",
        {"cpu_count": 2, "memory_mib": 512},
        headers={"Authorization": f"Token {token.text}"},
    )
    assert facts.status_code == 200
    done = post(region, "commission/done", {"result": "ok"}, headers={"Authorization": f"Token {token.text}"})
    assert done.status_code == 200
    ready = read_machine(region, machine["system_id"])
    assert (ready["status_name"], ready["cpu_count"], ready["memory"]) == ("Ready", 2, 512)


def test_a_rack_that_does_not_say_who_asked_binds_the_first_exchange(region):
    _, mac = commissioning_machine(region)
    credential = enrol_credential(boot_config(region, mac, None))
    assert credential
    first = post(region, "enrol", b"", source=OTHER_IP, headers={"Authorization": f"Enrol {credential}"})
    assert first.status_code == 200
    assert post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"}).status_code == 401


def test_commissioning_again_voids_the_previous_credential_and_token(region):
    machine, mac = commissioning_machine(region)
    credential = enrol_credential(boot_config(region, mac, MACHINE_IP))
    token = post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"}).text
    assert (
        post(region, "commission/done", {"result": "failed"}, headers={"Authorization": f"Token {token}"}).status_code
        == 200
    )
    with region.api() as api:
        assert api.post(f"machines/{machine['system_id']}/", op="commission").status_code == 200
    assert post(region, "enrol", b"", headers={"Authorization": f"Enrol {credential}"}).status_code == 401
    assert (
        post(region, "commission/facts", {"cpu_count": 1}, headers={"Authorization": f"Token {token}"}).status_code
        == 401
    )
    fresh = enrol_credential(boot_config(region, mac, MACHINE_IP))
    assert fresh and fresh != credential


@pytest.mark.parametrize("header", ["", "Enrol", "Enrol x", "Enrol " + "x" * 5000, "Token abc", "Enrol %00"])
def test_bad_enrolment_credentials_are_401s(region, header):
    response = post(region, "enrol", b"", headers={"Authorization": header} if header else None)
    assert response.status_code == 401, response.text


# -- facts, scripts, done: a token, then bounded input -----------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mac_addresses": [1]}, "cpu_count"),
        ({"cpu_count": "4"}, "cpu_count"),
        ({"cpu_count": True}, "cpu_count"),
        ({"cpu_count": 0}, "cpu_count"),
        ({"cpu_count": 2**40}, "cpu_count"),
        ({"cpu_count": 1, "memory_mib": 2**40}, "memory_mib"),
        ({"cpu_count": 1, "memory_physical_mib": -1}, "memory_physical_mib"),
        ({"cpu_count": 1, "architecture": ["amd64"]}, "architecture"),
        ({"cpu_count": 1, "cpu_model": "x\u0000y"}, "cpu_model"),
        ({"cpu_count": 1, "disks": [{"name": "d"}] * 300}, "disks"),
        ({"cpu_count": 1, "interfaces": [[[[[[["deep"]]]]]]]}, "interfaces"),
        ({"cpu_count": 1, "image": {"k" * 100: 1}}, "image"),
        ({"cpu_count": 1, "kernel": "k" * 5000}, "kernel"),
    ],
)
def test_bad_facts_are_400s_naming_the_field(region, body, field):
    machine, token = enrolled_token(region)
    response = post(region, "commission/facts", body, headers={"Authorization": f"Token {token}"})
    assert response.status_code == 400, response.text
    assert field in response.json()
    assert read_machine(region, machine["system_id"])["cpu_count"] == 0


def test_facts_and_done_need_a_token(region):
    for path in ("commission/facts", "commission/done", "commission/scripts/00-cpuinfo"):
        for headers in (
            None,
            {"Authorization": "Token"},
            {"Authorization": "Token unknown"},
            {"Authorization": "Bearer x"},
        ):
            assert post(region, path, {"mac_addresses": [1]}, headers=headers).status_code == 401
    with http() as client:
        assert client.get(metadata(region, "commission/scripts")).status_code == 401


def test_script_results_are_bounded(region):
    machine, token = enrolled_token(region)
    auth = {"Authorization": f"Token {token}", "Content-Type": "text/plain; charset=utf-8"}
    with http() as client:
        url = metadata(region, "commission/scripts/")
        assert client.post(url + "00-x?exit_status=abc", content=b"out", headers=auth).status_code == 400
        assert client.post(url + "00-x?exit_status=99999999999", content=b"out", headers=auth).status_code == 400
        assert client.post(url + "bad%00name?exit_status=0", content=b"out", headers=auth).status_code == 400
        big = client.post(url + "00-big?exit_status=0", content=b"x" * (5 * 1024 * 1024), headers=auth)
        assert big.status_code == 413
        nul = client.post(url + "01-nul?exit_status=0", content=b"a\x00b\xff", headers=auth)
        assert nul.status_code == 200
        again = client.post(url + "01-nul?exit_status=1", content=b"second", headers=auth)
        assert again.status_code == 200  # a name posted again replaces its result
        for n in range(2, 257):  # 256 results with 01-nul
            assert client.post(url + f"{n:03d}?exit_status=0", content=b"", headers=auth).status_code == 200
        over = client.post(url + "999-over?exit_status=0", content=b"", headers=auth)
        assert over.status_code == 400 and "at most 256" in over.text
    with region.api() as api:
        results = api.get(f"machines/{machine['system_id']}/", op="commissioning_results").json()
    assert len(results) == 256
    kept = next(r for r in results if r["name"] == "01-nul")
    assert (kept["exit_status"], kept["output"]) == (1, "second")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"result": 5}, "result"),
        ({"result": "maybe"}, "result"),
        ({"result": "ok", "failed_scripts": 5}, "failed_scripts"),
        ({"result": "ok", "failed_scripts": ["a\u0000"]}, "failed_scripts"),
        ({"result": "ok", "failed_scripts": ["x"] * 300}, "failed_scripts"),
    ],
)
def test_bad_done_reports_are_400s_and_leave_it_commissioning(region, body, field):
    machine, token = enrolled_token(region)
    response = post(region, "commission/done", body, headers={"Authorization": f"Token {token}"})
    assert response.status_code == 400 and field in response.json()
    assert read_machine(region, machine["system_id"])["status_name"] == "Commissioning"


def test_known_macs_are_looked_up_in_one_statement_however_many(region):
    """Counted at the database driver, in this process, over the region's database."""
    known_mac = new_mac()
    create_machine(region, known_mac)

    async def statements(macs: list[str]) -> tuple[int, int]:
        engine = async_engine(region.config, pool_size=1)
        seen: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        try:
            async with transaction(engine, region.config) as conn:
                with pytest.raises(Invalid):
                    await commissioning.enlist(conn, reports.enlistment({"mac_addresses": [*macs, known_mac]}))
                refused = len(seen)
                assert await commissioning.machines_with_macs(conn, macs) == {}
        finally:
            await engine.dispose()
        return refused, len(seen) - refused

    assert asyncio.run(statements([new_mac()])) == asyncio.run(statements([new_mac() for _ in range(62)])) == (1, 1)


# -- proxies: X-Forwarded-* only from trusted_proxies ---------------------------------------


FORGED = {"X-Forwarded-Host": "evil.example:8443", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(("source", "believed"), [(MACHINE_IP, False), (OTHER_IP, False), (PROXY_IP, True)])
def test_forwarded_host_and_proto_are_echoed_only_from_trusted_proxies(region, source, believed):
    with http(source) as client:
        described = client.get(region.url + "api/2.0/describe/", headers=FORGED)
    assert described.status_code == 200
    uris = {h["auth"]["uri"] for h in described.json()["resources"] if h.get("auth")}
    assert uris
    if believed:
        assert all(u.startswith("https://evil.example:8443/MAAS/api/2.0/") for u in uris)
    else:
        assert not any("evil.example" in u or u.startswith("https:") for u in uris), uris


def test_enrolment_sees_the_client_behind_a_trusted_proxy_only(region):
    """The machine reaches the region through HAProxy: the address the credential is
    bound to comes from X-Forwarded-For, and only when HAProxy sent it."""
    _, mac = commissioning_machine(region)
    behind = "10.1.2.3"
    credential = enrol_credential(boot_config(region, mac, behind))
    claimed = {"Authorization": f"Enrol {credential}", "X-Forwarded-For": behind}
    assert post(region, "enrol", b"", source=OTHER_IP, headers=claimed).status_code == 403
    assert post(region, "enrol", b"", source=PROXY_IP, headers=claimed).status_code == 200
