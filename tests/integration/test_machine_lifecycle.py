"""The machine lifecycle past Ready against a real region: allocate, deploy (driven through the
installer's metadata endpoints to Deployed and to Failed deployment), release, release with
disk erasing and rescue mode (driven through the ephemeral environment's endpoints), abort,
mark_broken/mark_fixed, lock/unlock, set_owner_data, the bulk ops, timeouts and each 409;
AUTO links' addresses from deploy to release (the DHCP reservation and DNS record they make).

Machines have manual power (no BMC: nothing to call); test_machine_lifecycle_power.py has a BMC.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from metalplane.images.publish import publish_image
from metalplane.rack.dhcp import config as dhcp_config
from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import node_tokens, nodes
from metalplane.region.services import controllers, dhcp, lifecycle, users
from metalplane.region.services import racks as rack_services
from tests.conftest import RunningRegion, create_admin, create_user, make_region_config, start_region
from tests.integration import test_api_nodes
from tests.integration.test_api_nodes import FACTS, commission_with
from tests.integration.test_metadata_api import boot_config, enrol_credential
from tests.support.databases import world_traversable_tempdir
from tests.support.image_mirror import publish_stand_in_debian
from tests.support.processes import RegionProcess, wait_until

RACK_IP = "10.77.0.2"
USER_DATA = b"#!/bin/sh\necho hello > /var/tmp/user-data-ran\n"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEn5yPHtj0TGVRk6hn3A0ZIq9vBUCPQ8eiIl9Xn8R3nT lifecycle@test"


def import_test_images(region: RunningRegion, mirror: Path) -> None:
    """A deployable image (debian/bookworm root-tgz, made the default) and the ephemeral image
    the installer boots (a fake kernel and initrd: nothing boots them here), imported into `region`."""
    mirror.mkdir(parents=True, exist_ok=True)
    publish_stand_in_debian(mirror, version="20261206.1")
    kernel, initrd = mirror.parent / f"{mirror.name}-kernel", mirror.parent / f"{mirror.name}-initrd"
    kernel.write_bytes(b"k" * 5000)
    initrd.write_bytes(b"i" * 7000)
    publish_image(
        mirror,
        os_name="ephemeral",
        release="lifecycle",
        arch="amd64",
        subarch="generic",
        version="20261206.1",
        files={"boot-kernel": kernel, "boot-initrd": initrd},
    )
    assert region.import_mirror(mirror)["state"] == "done"
    with region.api() as api:  # what `deploy` installs when not told (MAAS's defaults are Ubuntu's)
        for name, value in (("default_osystem", "debian"), ("default_distro_series", "bookworm")):
            answer = api.post("maas/", op="set_config", name=name, value=value)
            assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def life_region(databases) -> Iterator[RunningRegion]:
    """A region of its own with a deployable image (debian/bookworm root-tgz), the ephemeral
    image the installer boots (fake kernel and initrd: nothing boots them here) and a rack."""
    root = world_traversable_tempdir("mp-lifecycle-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data")
    key = create_admin(config)
    process = RegionProcess(config, root / "region")
    process.start_and_wait()
    region = RunningRegion(process, key)
    import_test_images(region, root / "mirror")

    async def add_rack(conn):
        await rack_services.register_rack(
            conn,
            controllers.new_system_id(),
            "lifecycle-rack",
            "0.1",
            [{"name": "eth0", "mac": "52:54:02:00:00:01", "addresses": [f"{RACK_IP}/24"]}],
        )

    run_db(config, add_rack)
    yield region
    process.stop()
    databases.drop_database(dbname)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def api(life_region):
    with life_region.api() as client:
        yield client


machine = test_api_nodes.machine  # the same fixture, on this module's region (its `api`)


@pytest.fixture
def ready(life_region, api, machine):
    """A Ready machine (commissioned through the metadata API)."""

    def make(**fields) -> dict:
        m = machine(**fields)
        done = commission_with(life_region, api, m["system_id"], FACTS, {"00-cpuinfo": 0})
        assert done["status_name"] == "Ready", done
        return done

    return make


def token_of(region: RunningRegion, system_id: str) -> str:
    async def work(conn) -> str:
        node_id = (await conn.execute(select(nodes.c.id).where(nodes.c.system_id == system_id))).scalar_one()
        return (await conn.execute(select(node_tokens.c.token).where(node_tokens.c.node_id == node_id))).scalar_one()

    return run_db(region.config, work)


def boot_answer(region: RunningRegion, mac_address: str):
    """What the region answers a rack (over RPC) when the machine asks from 127.0.0.1."""
    return boot_config(region, mac_address, "127.0.0.1")


def assert_powers_off(region: RunningRegion, mac_address: str) -> None:
    """A machine nobody is using (Ready, Allocated...) boots the ephemeral image, which powers it
    off at once (MAAS's "poweroff" purpose): no credential, nothing to report."""
    answer = boot_answer(region, mac_address)
    assert answer.purpose == "poweroff" and answer.kernel and answer.initrd, answer
    assert "mp_mode=poweroff" in answer.params and "mp_after=poweroff" in answer.params
    assert enrol_credential(answer) is None and "token=" not in answer.params


def metadata(region: RunningRegion, token: str | None) -> httpx.Client:
    base = region.url.rstrip("/").removesuffix("/MAAS") + "/MAAS/metadata/"
    return httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"} if token else {})


def events_of(api, system_id: str) -> list[dict]:
    return api.get("events/", op="query", id=system_id, level="DEBUG", limit=100).json()["events"]


# -- allocate --------------------------------------------------------------------------------------


def test_allocate_takes_a_matching_ready_machine_and_409s_when_none_matches(api, ready):
    m = ready()
    wrong = api.post("machines/", op="allocate", name="no-such-machine")
    assert wrong.status_code == 409
    assert wrong.text == (
        "No available machine matches constraints: [('name', ['no-such-machine'])] "
        '(resolved to "name=no-such-machine")'
    )
    assert api.post("machines/", op="allocate", foo="1").json() == {"foo": ["No such constraint."]}
    assert api.post("machines/", op="allocate", system_id=m["system_id"], cpu_count="64").status_code == 409
    got = api.post(
        "machines/",
        op="allocate",
        system_id=m["system_id"],
        cpu_count="2",
        mem="4096",
        zone="default",
        pool="default",
        not_tags="nope",
        arch="amd64",
        agent_name="juju",
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["system_id"], body["status_name"], body["owner"]) == (m["system_id"], "Allocated", "admin")
    assert body["constraints_by_type"] == {}
    assert m["system_id"] in [x["system_id"] for x in api.get("machines/", op="list_allocated").json()]
    again = api.post("machines/", op="allocate", system_id=m["system_id"])
    assert (again.status_code, again.text) == (409, f"No machine with system ID {m['system_id']} available.")
    assert any(e["type"] == "User acquiring node" for e in events_of(api, m["system_id"]))


def test_allocate_by_tags_zones_subnets_and_labeled_interfaces(api, ready):
    """The constraints the issue names beyond name/system_id/cpu/mem: `tags`, `zone` and
    `not_in_zone` (the zone set with `machines set_zone`), `subnets`, and the labeled
    `interfaces` map, whose matches come back in `constraints_by_type`."""
    tag, zone = test_api_nodes.name("t"), test_api_nodes.name("z")
    fabric = api.post("fabrics/", name=test_api_nodes.name("f")).json()
    made = api.post("subnets/", cidr="10.79.0.0/24", vlan=str(fabric["vlans"][0]["id"]))
    assert made.status_code == 200, made.text
    subnet = made.json()
    assert api.post("zones/", name=zone).status_code == 200
    a, b = ready(), ready()
    try:
        zoned = api.post("machines/", op="set_zone", zone=zone, nodes=a["system_id"])
        assert zoned.status_code in (200, 204), zoned.text
        assert api.get(f"machines/{a['system_id']}/").json()["zone"]["name"] == zone
        assert api.post("tags/", name=tag).status_code == 200
        for m in (a, b):
            assert api.post(f"tags/{tag}/", op="update_nodes", add=m["system_id"]).json()["added"] == 1
        iface = b["interface_set"][0]
        linked = api.post(
            f"nodes/{b['system_id']}/interfaces/{iface['id']}/", op="link_subnet", mode="DHCP", subnet=str(subnet["id"])
        )
        assert linked.status_code == 200, linked.text

        def allocate(**constraints):
            return api.post("machines/", op="allocate", dry_run="true", **constraints)

        assert allocate(tags=tag, zone=zone).json()["system_id"] == a["system_id"]
        assert allocate(tags=tag, not_in_zone=zone).json()["system_id"] == b["system_id"]
        assert allocate(tags=tag, zone=zone, subnets=subnet["name"]).status_code == 409
        assert allocate(tags=tag, subnets=subnet["name"]).json()["system_id"] == b["system_id"]
        label = allocate(tags=tag, interfaces="boot:subnet=cidr:10.79.0.0/24")
        assert label.status_code == 200, label.text
        assert label.json()["system_id"] == b["system_id"]
        assert label.json()["constraints_by_type"] == {"interfaces": {"boot": [iface["id"]]}}
        none = allocate(tags=tag, zone=zone, interfaces="boot:subnet=cidr:10.79.0.0/24")
        assert none.status_code == 409 and none.text.startswith("No available machine matches constraints: ")
        unknown = test_api_nodes.name("no-such-tag")
        assert allocate(tags=unknown).json() == {"tags": [f"No such tag(s): '{unknown}'."]}  # MAAS's 400
        # dry_run took nothing: both are still Ready and nobody's
        assert {api.get(f"machines/{m['system_id']}/").json()["status_name"] for m in (a, b)} == {"Ready"}
    finally:
        api.post("machines/", op="set_zone", zone="default", nodes=a["system_id"])
        api.delete(f"tags/{tag}/")
        api.delete(f"zones/{zone}/")


# -- deploy: the installer's endpoints -------------------------------------------------------------


def test_deploy_drives_deploying_to_deployed_through_the_installers_endpoints(life_region, api, ready):
    m = ready()
    sid = m["system_id"]
    assert api.post("account/prefs/sshkeys/", key=SSH_KEY).status_code in (200, 201)
    assert_powers_off(life_region, m["boot_interface"]["mac_address"])  # Ready
    deploying = api.post(
        f"machines/{sid}/",
        op="deploy",
        distro_series="bookworm",
        hwe_kernel="ga-22.04",
        user_data=base64.encodebytes(USER_DATA).decode(),
    )
    assert deploying.status_code == 200, deploying.text
    body = deploying.json()
    assert (body["status_name"], body["owner"], body["osystem"], body["distro_series"]) == (
        "Deploying",
        "admin",
        "debian",
        "bookworm",
    )
    assert body["hwe_kernel"] == "ga-22.04" and body["netboot"] is True
    token = token_of(life_region, sid)
    answer = boot_answer(life_region, m["boot_interface"]["mac_address"])
    assert answer.purpose == "deploy" and token not in (answer.params or "")  # never the token itself
    assert "mp_mode=deploy" in answer.params and "mp_after=reboot" in answer.params
    with metadata(life_region, None) as meta:  # the installer enrols as commissioning does
        enrolled = meta.post("enrol", headers={"Authorization": f"Enrol {enrol_credential(answer)}"})
        assert (enrolled.status_code, enrolled.text) == (200, token)
    with metadata(life_region, token) as meta:
        config = meta.get("deploy/config")
        assert config.status_code == 200, config.text
        orders = config.json()
        assert orders["system_id"] == sid and orders["layout"] == "flat"
        assert orders["disk"] == {"serial": "MPDISK1", "name": "vda"}
        image = orders["image"]
        assert image["filetype"] == "root-tgz" and image["name"] == "debian/bookworm"
        assert image["urls"] == [f"http://{RACK_IP}:5248/images/by-sha256/{image['sha256']}"]
        assert SSH_KEY in orders["ssh_keys"]
        assert orders["interfaces"][0]["mac"] == m["boot_interface"]["mac_address"]
        assert orders["interfaces"][0]["mode"] == "dhcp"
        assert meta.get("deploy/user-data").content == USER_DATA
        assert meta.post("deploy/events", json={"step": "image", "status": "started"}).status_code == 200
        # MAAS's status message of the step's start, its action the installer's step.
        shown = api.get(f"machines/{sid}/").json()
        assert (shown["status_message"], shown["status_action"]) == ("Installing OS", "image")
        assert (
            meta.post(
                "deploy/events", json={"step": "image", "status": "ok", "runtime": 97.5, "message": "written"}
            ).status_code
            == 200
        )
        log = b"step image ok\nimage written: 1 bytes\n"
        assert meta.post("deploy/installation?exit_status=0&runtime=146", content=log).status_code == 200
        assert meta.post("deploy/done", json={"result": "ok", "step": "", "message": ""}).status_code == 200
        assert boot_answer(life_region, m["boot_interface"]["mac_address"]).purpose == "local"
        assert api.get(f"machines/{sid}/").json()["netboot"] is False
        booted = meta.post(
            "deploy/booted",
            json={
                "result": "ok",
                "system_id": sid,
                "kernel": "6.1.0-50-amd64",
                "user_data": {"ran": True, "exit_status": 0},
            },
        )
        assert booted.status_code == 200, booted.text
        # The installed system reported: the installer's calls are over.
        assert meta.post("deploy/done", json={"result": "ok"}).status_code == 400
    deployed = api.get(f"machines/{sid}/").json()
    assert deployed["status_name"] == "Deployed" and deployed["status_message"].startswith("Image Deployed")
    types = [e["type"] for e in events_of(api, sid)]
    assert {
        "User starting deployment",
        "Deploying",
        "Node installation",
        "Installation complete",
        "Deployed",
        "Image Deployed",
    } <= set(types)
    described = [e["description"] for e in events_of(api, sid) if e["type"] == "Node installation"]
    assert "image ok (97.5 s): written" in described
    results = api.get(f"nodes/{sid}/results/current-installation/", include_output="1").json()
    assert results["results"][0]["name"] == "/tmp/install.log"
    assert base64.b64decode(results["results"][0]["output"]) == log
    # Deployed: lock, then nothing changes until unlock; release -> Ready, owner dropped.
    assert api.post(f"machines/{sid}/", op="lock").json()["locked"] is True
    assert api.post(f"machines/{sid}/", op="lock").text == "Machine is already locked"
    assert api.post(f"machines/{sid}/", op="release").status_code == 403
    assert api.post(f"machines/{sid}/", op="unlock").json()["locked"] is False
    assert api.post(f"machines/{sid}/", op="unlock").text == "Machine is not locked"
    released = api.post(f"machines/{sid}/", op="release")
    assert released.status_code == 200, released.text
    body = released.json()
    assert (body["status_name"], body["owner"], body["osystem"], body["netboot"]) == ("Ready", None, "", True)
    assert_powers_off(life_region, m["boot_interface"]["mac_address"])  # its next boot: the ephemeral image
    with metadata(life_region, token) as meta:
        assert meta.get("deploy/config").status_code == 401  # the token went with the deployment
    assert {"User releasing node", "Releasing", "Released"} <= {e["type"] for e in events_of(api, sid)}


def test_an_installer_failure_ends_in_failed_deployment_with_its_output(life_region, api, ready):
    m = ready()
    sid = m["system_id"]
    assert api.post(f"machines/{sid}/", op="deploy").json()["status_name"] == "Deploying"
    token = token_of(life_region, sid)
    output = b"step disk failed: no disk to install to: /sys/block has no disk\n"
    with metadata(life_region, token) as meta:
        assert meta.get("deploy/user-data").status_code == 404  # none given
        assert (
            meta.post(
                "deploy/events", json={"step": "disk", "status": "failed", "message": "no disk to install to"}
            ).status_code
            == 200
        )
        assert meta.post("deploy/installation?exit_status=1&runtime=4", content=output).status_code == 200
        assert (
            meta.post(
                "deploy/done", json={"result": "failed", "step": "disk", "message": "no disk to install to"}
            ).status_code
            == 200
        )
    failed = api.get(f"machines/{sid}/").json()
    assert failed["status_name"] == "Failed deployment"
    reason = "Installation failed (refer to the installation log for more information). disk: no disk to install to"
    assert failed["error_description"] == reason
    results = api.get(f"nodes/{sid}/results/current-installation/", include_output="1").json()
    assert base64.b64decode(results["results"][0]["output"]) == output
    assert results["results"][0]["exit_status"] == 1
    assert "Node installation failure" in {e["type"] for e in events_of(api, sid)}
    assert (failed["status_action"], failed["status_message"]) == ("disk", f"Node installation failure - {reason}")
    assert api.post(f"machines/{sid}/", op="release").json()["status_name"] == "Ready"


def test_the_deploy_endpoints_refuse_bad_bodies_and_strangers(life_region, api, ready, machine):
    m = ready()
    sid = m["system_id"]
    with metadata(life_region, None) as meta:
        assert meta.get("deploy/config").status_code == 401
    with metadata(life_region, "not-a-token") as meta:
        assert meta.post("deploy/booted", json={"result": "ok"}).status_code == 401
    assert api.post(f"machines/{sid}/", op="deploy").status_code == 200
    with metadata(life_region, token_of(life_region, sid)) as meta:
        assert meta.post("deploy/events", json={"step": "dance", "status": "ok"}).status_code == 400
        assert meta.post("deploy/events", json={"step": "image", "status": "ok", "runtime": "x"}).status_code == 400
        assert meta.post("deploy/events", content=b"[1]").status_code == 400
        assert meta.post("deploy/done", json={"result": "maybe"}).status_code == 400
        huge = meta.post("deploy/events", content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
        assert huge.status_code == 413 and "larger than" in huge.text
        assert meta.post("deploy/installation?exit_status=x", content=b"").status_code == 400
    assert api.get(f"machines/{sid}/").json()["status_name"] == "Deploying"  # nothing half-written
    assert api.post(f"machines/{sid}/", op="abort").json()["status_name"] == "Allocated"


# -- deploy, abort, release: the 409s and 400s -------------------------------------------------------


def test_deploy_of_a_new_machine_and_of_an_unknown_series_are_refused(api, machine, ready):
    new = machine()
    refused = api.post(f"machines/{new['system_id']}/", op="deploy")
    assert (refused.status_code, refused.text) == (409, "Can't deploy a machine that is in the 'New' state")
    m = ready()
    unknown = api.post(f"machines/{m['system_id']}/", op="deploy", distro_series="trixie")
    assert unknown.status_code == 400 and list(unknown.json()) == ["distro_series"]
    assert "debian/bookworm" in unknown.json()["distro_series"][0]
    assert api.get(f"machines/{m['system_id']}/").json()["status_name"] == "Ready"  # nothing half-written
    bad = api.post(f"machines/{m['system_id']}/", op="deploy", timeout="2")
    assert bad.status_code == 400 and list(bad.json()) == ["timeout"]


def test_abort_during_deploying_goes_back_to_allocated_with_the_event(life_region, api, ready):
    m = ready()
    sid = m["system_id"]
    refused = api.post(f"machines/{sid}/", op="abort")
    assert (refused.status_code, refused.text) == (409, f"Cannot abort in current state: node {sid} is in state Ready.")
    assert api.post(f"machines/{sid}/", op="deploy").json()["status_name"] == "Deploying"
    aborted = api.post(f"machines/{sid}/", op="abort", comment="wrong image")
    assert aborted.status_code == 200, aborted.text
    assert (aborted.json()["status_name"], aborted.json()["owner"]) == ("Allocated", "admin")
    kinds = {(e["type"], e["description"]) for e in events_of(api, sid)}
    assert ("User aborting deployment", "wrong image") in kinds and ("Aborted deployment", "") in kinds
    assert_powers_off(life_region, m["boot_interface"]["mac_address"])  # Allocated: kept off
    assert api.post(f"machines/{sid}/", op="release").json()["status_name"] == "Ready"


def test_release_refuses_a_new_machine_and_is_a_no_op_on_a_ready_one(api, machine, ready):
    new = machine()
    refused = api.post(f"machines/{new['system_id']}/", op="release")
    assert (refused.status_code, refused.text) == (409, "Machine cannot be released in its current state ('New').")
    m = ready()
    assert api.post(f"machines/{m['system_id']}/", op="release").json()["status_name"] == "Ready"


def wait_for_deploy_timeout(api, sid: str, allowed: str, within: float) -> None:
    """The heartbeat ends the deploy in Failed deployment with MAAS's reason."""
    wait_until(
        lambda: api.get(f"machines/{sid}/").json()["status_name"] == "Failed deployment", within, 0.5, "the timeout"
    )
    failed = api.get(f"machines/{sid}/").json()
    assert failed["error_description"] == f"Node operation 'Deploying' timed out after {allowed}."


def test_deploying_times_out_into_failed_deployment_with_the_reason(life_region, api, ready):
    m = ready()
    sid = m["system_id"]
    assert api.post(f"machines/{sid}/", op="deploy", timeout="10").json()["status_name"] == "Deploying"
    # Reports renew the deadline (as MAAS's do): 14 s of them, past the 10 s given.
    with metadata(life_region, token_of(life_region, sid)) as meta:
        for _ in range(4):
            assert meta.post("deploy/events", json={"step": "image", "status": "started"}).status_code == 200
            time.sleep(3.5)
    assert api.get(f"machines/{sid}/").json()["status_name"] == "Deploying"
    wait_for_deploy_timeout(api, sid, "10 seconds", 30)
    assert api.post(f"machines/{sid}/", op="release").json()["status_name"] == "Ready"


def test_a_region_dying_mid_deploy_the_other_finishes_it_or_times_it_out(region, databases, workdir):
    """Two regions on one database; region A starts two deploys and is killed (kill -9, its
    workers with it). The installer that goes on reporting, now to region B (the address an
    HA maas_url, e.g. HAProxy's, moves to), ends Deployed; the one that never reports again
    ends in Failed deployment with the reason, by B's heartbeat: neither stays Deploying."""
    import_test_images(region, workdir / "mirror")
    other = start_region(databases, workdir, name="region-b", num_workers=1, dbname=region.config.database_name)
    b = RunningRegion(other, region.api_key)
    try:
        with region.api() as api:
            sids = []
            for _ in range(2):
                made = api.post(
                    "machines/",
                    architecture="amd64/generic",
                    mac_addresses=test_api_nodes.mac(),
                    commission="false",
                    hostname=test_api_nodes.name("ha"),
                )
                assert made.status_code == 200, made.text
                sid = made.json()["system_id"]
                assert commission_with(region, api, sid, FACTS, {"00-cpuinfo": 0})["status_name"] == "Ready"
                sids.append(sid)
            live, silent = sids
            assert api.post(f"machines/{live}/", op="deploy").json()["status_name"] == "Deploying"
            assert api.post(f"machines/{silent}/", op="deploy", timeout="10").json()["status_name"] == "Deploying"
        token = token_of(region, live)
        with metadata(region, token) as meta:
            assert meta.get("deploy/config").status_code == 200
            assert meta.post("deploy/events", json={"step": "image", "status": "started"}).status_code == 200
        workers = region.process.worker_pids()
        os.killpg(region.process.pid, signal.SIGKILL)  # its own session (start_new_session)
        region.process.proc.wait()
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in workers), 10, 0.2, "region A's workers to go")
        with metadata(b, token) as meta:
            assert meta.post("deploy/events", json={"step": "image", "status": "ok", "runtime": 9}).status_code == 200
            assert meta.post("deploy/installation?exit_status=0&runtime=20", content=b"ok\n").status_code == 200
            assert meta.post("deploy/done", json={"result": "ok"}).status_code == 200
            assert meta.post("deploy/booted", json={"result": "ok"}).status_code == 200
        with b.api() as api:
            assert api.get(f"machines/{live}/").json()["status_name"] == "Deployed"
            described = [e["description"] for e in events_of(api, live) if e["type"] == "Node installation"]
            assert "image started" in described and "image ok (9.0 s)" in described  # from both regions
            wait_for_deploy_timeout(api, silent, "10 seconds", 40)  # by region B's heartbeat
    finally:
        other.stop()


# -- broken, fixed, owner data, bulk ops, other users ----------------------------------------------


def test_mark_broken_and_fixed_return_to_where_the_machine_was(api, ready):
    m = ready()
    sid = m["system_id"]
    fixed = api.post(f"machines/{sid}/", op="mark_fixed")
    assert (fixed.status_code, fixed.text) == (409, "Can't mark a non-broken node as 'Ready'.")
    broken = api.post(f"machines/{sid}/", op="mark_broken", comment="fan died").json()
    assert (broken["status_name"], broken["error_description"]) == ("Broken", "fan died")
    assert api.post(f"machines/{sid}/", op="deploy").status_code == 409
    assert api.post(f"machines/{sid}/", op="mark_fixed").json()["status_name"] == "Ready"
    allocated = api.post("machines/", op="allocate", system_id=sid).json()
    assert allocated["status_name"] == "Allocated"
    locked = api.post(f"machines/{sid}/", op="lock")
    assert (locked.status_code, locked.text) == (409, "Can't lock, node is not deployed or deploying")
    assert api.post(f"machines/{sid}/", op="mark_broken").json()["status_name"] == "Broken"
    assert api.post(f"machines/{sid}/", op="mark_fixed").json()["status_name"] == "Ready"


def test_set_owner_data_sets_and_deletes_keys(api, ready):
    sid = ready()["system_id"]
    api.post("machines/", op="allocate", system_id=sid)
    body = api.post(f"machines/{sid}/", op="set_owner_data", team="infra", env="prod").json()
    assert body["owner_data"] == {"team": "infra", "env": "prod"} == body["workload_annotations"]
    assert api.post(f"machines/{sid}/", op="set_owner_data", env="").json()["owner_data"] == {"team": "infra"}
    assert api.post(f"machines/{sid}/", op="release").json()["owner_data"] == {}


def test_bulk_release_is_all_or_nothing(api, machine, ready):
    a, b, new = ready()["system_id"], ready()["system_id"], machine()["system_id"]
    for sid in (a, b):
        api.post("machines/", op="allocate", system_id=sid)
    refused = api.post("machines/", op="release", machines=[a, new])
    assert (refused.status_code, refused.text) == (
        409,
        f"Machine(s) cannot be released in their current state: {new} ('New').",
    )
    assert api.get(f"machines/{a}/").json()["status_name"] == "Allocated"
    assert sorted(api.post("machines/", op="release", machines=[a, b]).json()) == sorted([a, b])
    assert {api.get(f"machines/{s}/").json()["status_name"] for s in (a, b)} == {"Ready"}


def test_other_users_cannot_touch_an_owned_machine(life_region, api, ready):
    sid = ready()["system_id"]
    api.post("machines/", op="allocate", system_id=sid)
    key = create_user(life_region.config, f"life-{secrets.token_hex(3)}")
    with life_region.api(key) as other:
        assert other.post(f"machines/{sid}/", op="deploy").status_code == 403
        assert other.post("machines/", op="release", machines=[sid]).status_code == 403
        assert other.post("machines/", op="allocate", system_id=sid).status_code == 409
        assert other.get("machines/", op="list_allocated").json() == []
    api.post(f"machines/{sid}/", op="release")


# -- python-libmaas --------------------------------------------------------------------------------


def test_python_libmaas_allocates_deploys_and_releases(life_region, ready):
    from maas.client import connect
    from maas.client.enum import NodeStatus

    m = ready()
    loop = asyncio.new_event_loop()  # libmaas runs its coroutines on the thread's loop
    asyncio.set_event_loop(loop)
    try:
        client = connect(life_region.url, apikey=life_region.api_key)
        got = client.machines.allocate(hostname=m["hostname"], cpus=2)
        assert (got.system_id, got.status, got.owner.username) == (m["system_id"], NodeStatus.ALLOCATED, "admin")
        got.deploy(user_data=USER_DATA, distro_series="bookworm", hwe_kernel="ga-22.04", comment="libmaas")
        assert (got.status, got.osystem, got.distro_series) == (NodeStatus.DEPLOYING, "debian", "bookworm")
        token = token_of(life_region, m["system_id"])
        asyncio.set_event_loop(loop)  # run_db's asyncio.run unset it
        with metadata(life_region, token) as meta:
            assert meta.get("deploy/user-data").content == USER_DATA  # libmaas's base64, decoded
            assert meta.post("deploy/done", json={"result": "ok"}).status_code == 200
            assert meta.post("deploy/booted", json={"result": "ok"}).status_code == 200
        got.refresh()
        assert got.status == NodeStatus.DEPLOYED
        got.release(comment="libmaas done")
        assert (got.status, got.owner) == (NodeStatus.READY, None)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


# -- disk erasing, rescue mode: the ephemeral environment's endpoints -------------------------------


def enrolled_token(region: RunningRegion, mac: str, mode: str) -> str:
    """Boot the machine as a rack would ask for it: the ephemeral image in `mode`; enrol."""
    answer = boot_answer(region, mac)
    assert answer.purpose == mode and f"mp_mode={mode}" in answer.params, answer
    with metadata(region, None) as meta:
        enrolled = meta.post("enrol", headers={"Authorization": f"Enrol {enrol_credential(answer)}"})
        assert enrolled.status_code == 200, enrolled.text
        return enrolled.text


def release_set(api, sid: str) -> dict:
    sets = api.get(f"nodes/{sid}/results/", type="release").json()
    assert len(sets) == 1, sets
    return api.get(f"nodes/{sid}/results/{sets[0]['id']}/", include_output="1").json()


def test_release_with_erase_wipes_through_the_ephemeral_environment_then_ready(life_region, api, ready):
    m = ready()
    sid, mac = m["system_id"], m["boot_interface"]["mac_address"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
    erasing = api.post(f"machines/{sid}/", op="release", erase="true", quick_erase="true", comment="wipe it")
    assert erasing.status_code == 200, erasing.text
    assert (erasing.json()["status_name"], erasing.json()["status"]) == ("Disk erasing", 14)
    assert "mp_after=poweroff" in boot_answer(life_region, mac).params
    token = enrolled_token(life_region, mac, "erase")
    output = b"disks to be wiped (secure-quick): vda\nvda: successfully wiped (quick).\n"
    with metadata(life_region, token) as meta:
        config = meta.get("erase/config")
        assert config.json() == {"system_id": sid, "mode": "secure-quick"}  # secure erase is on by default
        assert meta.get("deploy/config").status_code == 400  # not deploying
        assert meta.post("erase/output?exit_status=0&runtime=3", content=output).status_code == 200
        assert meta.post("erase/done", json={"result": "ok"}).status_code == 200
        assert meta.get("erase/config").status_code == 401  # released: the token went with it
    shown = api.get(f"machines/{sid}/").json()
    assert (shown["status_name"], shown["owner"]) == ("Ready", None)
    assert_powers_off(life_region, mac)  # the "its next boot is the ephemeral environment"
    kinds = {(e["type"], e["description"]) for e in events_of(api, sid)}
    assert {("User erasing disk", "wipe it"), ("Disks erased", ""), ("Released", "")} <= kinds
    result = release_set(api, sid)["results"][0]
    assert (result["name"], result["exit_status"]) == ("wipe-disks", 0)
    assert base64.b64decode(result["output"]) == output


def test_a_failed_wipe_ends_in_failed_disk_erasing_with_its_output(life_region, api, ready):
    m = ready()
    sid, mac = m["system_id"], m["boot_interface"]["mac_address"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
    erasing = api.post(f"machines/{sid}/", op="release", erase="true", secure_erase="false", quick_erase="false")
    assert erasing.json()["status_name"] == "Disk erasing"
    output = b"vda: failed to be wiped (full).\nfailed: vda\n"
    with metadata(life_region, enrolled_token(life_region, mac, "erase")) as meta:
        assert meta.get("erase/config").json()["mode"] == "full"
        assert meta.post("erase/done", json={"result": "maybe"}).status_code == 400
        assert meta.post("erase/output?exit_status=1&runtime=9", content=output).status_code == 200
        assert meta.post("erase/done", json={"result": "failed", "message": "failed: vda"}).status_code == 200
    failed = api.get(f"machines/{sid}/").json()
    assert (failed["status_name"], failed["status"]) == ("Failed disk erasing", 15)
    assert failed["error_description"] == "Failed to erase disks. failed: vda"
    result = release_set(api, sid)["results"][0]
    assert base64.b64decode(result["output"]) == output and result["exit_status"] == 1
    assert api.post(f"machines/{sid}/", op="release").json()["status_name"] == "Ready"


def test_abort_during_disk_erasing_fails_it_with_the_event(api, ready):
    m = ready()
    sid = m["system_id"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
    assert api.post(f"machines/{sid}/", op="release", erase="true").json()["status_name"] == "Disk erasing"
    aborted = api.post(f"machines/{sid}/", op="abort", comment="wrong machine")
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["status_name"] == "Failed disk erasing"
    kinds = {(e["type"], e["description"]) for e in events_of(api, sid)}
    assert ("User aborting disk erase", "wrong machine") in kinds and ("Aborted disk erasing", "") in kinds


def test_disk_erasing_times_out_into_failed_disk_erasing(life_region, api, ready):
    m = ready()
    sid = m["system_id"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
    assert api.post(f"machines/{sid}/", op="release", erase="true").json()["status_name"] == "Disk erasing"

    async def past_deadline(conn) -> None:  # node_timeout is in minutes: move the deadline instead
        await conn.execute(
            nodes.update().where(nodes.c.system_id == sid).values(status_expires=nodes.c.updated - timedelta(seconds=1))
        )

    run_db(life_region.config, past_deadline)
    wait_until(
        lambda: api.get(f"machines/{sid}/").json()["status_name"] == "Failed disk erasing", 30, 0.5, "the timeout"
    )
    assert (
        api.get(f"machines/{sid}/")
        .json()["error_description"]
        .startswith("Node operation 'Disk erasing' timed out after ")
    )


def test_releasing_times_out_into_releasing_failed(life_region, api, ready):
    """A region that dies between release's Releasing transaction and the BMC call leaves the
    machine Releasing: its 5-minute deadline (MAAS's) ends it in Releasing failed."""
    m = ready()
    sid = m["system_id"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200

    async def release_then_die(conn) -> None:  # release's first transaction, the real one
        admin = await users.get_user(conn, "admin")
        assert admin is not None
        machine = await lifecycle.acting_on(conn, sid, admin, "release")
        assert await lifecycle.start_release(conn, machine, admin, None, "region died")

    run_db(life_region.config, release_then_die)
    releasing = api.get(f"machines/{sid}/").json()
    assert (releasing["status_name"], releasing["status"]) == ("Releasing", 12)
    assert api.post(f"machines/{sid}/", op="release").json()["status_name"] == "Releasing"  # on its way: no-op
    assert_powers_off(life_region, m["boot_interface"]["mac_address"])

    async def past_deadline(conn) -> None:  # 5 minutes: move the deadline instead
        await conn.execute(
            nodes.update().where(nodes.c.system_id == sid).values(status_expires=nodes.c.updated - timedelta(seconds=1))
        )

    run_db(life_region.config, past_deadline)
    wait_until(lambda: api.get(f"machines/{sid}/").json()["status_name"] == "Releasing failed", 30, 0.5, "the timeout")
    failed = api.get(f"machines/{sid}/").json()
    assert (failed["status"], failed["owner"]) == (13, "admin")
    assert failed["error_description"] == "Node operation 'Releasing' timed out after 5 minutes."
    released = api.post(f"machines/{sid}/", op="release")  # from Releasing failed: again, to Ready
    assert (released.json()["status_name"], released.json()["owner"]) == ("Ready", None)


def test_rescue_mode_enters_when_the_environment_reports_and_exits_to_the_status_before(life_region, api, ready):
    m = ready()
    sid, mac = m["system_id"], m["boot_interface"]["mac_address"]
    assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
    entering = api.post(f"machines/{sid}/", op="rescue_mode")
    assert entering.status_code == 200, entering.text
    assert (entering.json()["status_name"], entering.json()["status"]) == ("Entering rescue mode", 17)
    with metadata(life_region, enrolled_token(life_region, mac, "rescue")) as meta:
        assert meta.post("rescue/booted", json={"result": "ok"}).status_code == 200
        assert api.get(f"machines/{sid}/").json()["status_name"] == "Rescue mode"
        assert meta.post("rescue/booted", json={"result": "ok"}).status_code == 200  # again: nothing
    assert boot_answer(life_region, mac).purpose == "rescue"
    exited = api.post(f"machines/{sid}/", op="exit_rescue_mode")
    assert exited.status_code == 200, exited.text
    assert (exited.json()["status_name"], exited.json()["owner"]) == ("Allocated", "admin")
    types = [e["type"] for e in events_of(api, sid)]
    assert {"User starting rescue mode", "Entering rescue mode", "Rescue mode", "User stopping rescue mode"} <= set(
        types
    )
    assert "Exited rescue mode" in types
    refused = api.post(f"machines/{sid}/", op="exit_rescue_mode")
    assert (refused.status_code, refused.text) == (409, "Invalid transition: Allocated -> Exiting rescue mode.")


def test_a_rescue_environment_that_fails_ends_in_failed_to_enter_rescue_mode(life_region, api, ready):
    m = ready()
    sid, mac = m["system_id"], m["boot_interface"]["mac_address"]
    assert api.post(f"machines/{sid}/", op="rescue_mode").json()["status_name"] == "Entering rescue mode"
    with metadata(life_region, enrolled_token(life_region, mac, "rescue")) as meta:
        assert meta.post("erase/config").status_code == 405
        assert meta.get("erase/config").status_code == 400  # not erasing
        assert meta.post("rescue/booted", json={"result": "failed", "message": "no disk"}).status_code == 200
    failed = api.get(f"machines/{sid}/").json()
    assert (failed["status_name"], failed["error_description"]) == (
        "Failed to enter rescue mode",
        "Failed to enter rescue mode. no disk",
    )
    assert api.post(f"machines/{sid}/", op="exit_rescue_mode").json()["status_name"] == "Ready"


# -- AUTO links: an address from deploy to release (MAAS's claim_auto_ips) ----------------------------

BOOT = {"http_port": 5248, "loaders": {"bios": "lpxelinux.0"}}


def link_auto(api, m: dict, subnet_id: int) -> dict:
    iface = m["interface_set"][0]
    linked = api.post(
        f"nodes/{m['system_id']}/interfaces/{iface['id']}/", op="link_subnet", mode="AUTO", subnet=str(subnet_id)
    )
    assert linked.status_code == 200, linked.text
    (link,) = linked.json()["links"]
    assert link["mode"] == "auto" and "ip_address" not in link
    return link


def shown(api, sid: str) -> tuple[dict, list[str], dict]:
    """The machine, its ip_addresses and its first interface's link."""
    body = api.get(f"machines/{sid}/").json()
    (link,) = body["interface_set"][0]["links"]
    return body, body["ip_addresses"], link


def rack_dhcp(region: RunningRegion) -> dict:
    async def work(conn):
        rack_id = (await conn.execute(select(nodes.c.id).where(nodes.c.hostname == "lifecycle-rack"))).scalar_one()
        return await dhcp.rack_dhcp_state(conn, rack_id)

    return run_db(region.config, work)


def kea_reservations(state: dict) -> list[dict]:
    """What the rack hands kea-dhcp4 for that state (the rack's own planning and rendering)."""
    planned, instances = dhcp_config.plan(state | {"boot": BOOT})
    out = []
    for inst in instances:
        rendered = dhcp_config.render(inst, planned, dhcp_config.Paths("/tmp/x.csv", "/tmp/x.sock"))
        out += [r for s in rendered["Dhcp4"]["subnet4"] for r in s["reservations"]]
    return out


def a_records(api, hostname: str) -> list[tuple[str, str]]:
    found = [r for r in api.get("dnsresources/", all="true").json() if r["fqdn"] == f"{hostname}.maas"]
    return [(r["rrtype"], r["rrdata"]) for x in found for r in x["resource_records"]]


def test_an_auto_link_gets_an_address_at_deploy_which_dhcp_and_dns_serve_until_release(life_region, api, ready):
    rack_subnet = next(s for s in api.get("subnets/").json() if s["cidr"] == str(ip_network(f"{RACK_IP}/24", False)))
    vlan = rack_subnet["vlan"]
    made = api.post(
        "ipranges/", type="dynamic", start_ip="10.77.0.100", end_ip="10.77.0.199", subnet=str(rack_subnet["id"])
    )
    assert made.status_code == 200, made.text
    rack_sid = api.get("rackcontrollers/").json()[0]["system_id"]
    on = api.put(f"fabrics/{vlan['fabric_id']}/vlans/{vlan['vid']}/", dhcp_on="true", primary_rack=rack_sid)
    assert on.status_code == 200, on.text
    hostname = test_api_nodes.name("auto")
    m = ready(hostname=hostname)
    sid, mac = m["system_id"], m["interface_set"][0]["mac_address"]
    link = link_auto(api, m, rack_subnet["id"])
    assert a_records(api, hostname) == []

    deploying = api.post(f"machines/{sid}/", op="deploy")
    assert deploying.status_code == 200, deploying.text
    assert deploying.json()["status_name"] == "Deploying"
    _, addresses, after = shown(api, sid)
    (ip,) = addresses
    assert after["id"] == link["id"] and after["mode"] == "auto" and after["ip_address"] == ip
    assert ip_address(ip) in ip_network("10.77.0.0/24") and ip not in (RACK_IP, "10.77.0.0", "10.77.0.255")
    assert not ip_address("10.77.0.100") <= ip_address(ip) <= ip_address("10.77.0.199")
    # The rack serving the VLAN reserves it for the machine's MAC; the zone names it.
    state = rack_dhcp(life_region)
    assert {"mac": mac, "hostname": hostname, "ip": ip} in state["hosts"]
    assert {"hw-address": mac, "ip-address": ip, "hostname": hostname} in kea_reservations(state)
    assert a_records(api, hostname) == [("A", ip)]
    # ... and it is what the installer writes into the installed system's network config.
    with metadata(life_region, token_of(life_region, sid)) as meta:
        orders = meta.get("deploy/config").json()
    first = orders["interfaces"][0]
    assert (first["mac"], first["mode"], first["address"]) == (mac, "static", f"{ip}/24")
    # Abort keeps it (MAAS frees AUTO addresses on release only); a redeploy keeps the same one.
    assert api.post(f"machines/{sid}/", op="abort").json()["status_name"] == "Allocated"
    assert api.post(f"machines/{sid}/", op="deploy").status_code == 200
    assert shown(api, sid)[1] == [ip]

    released = api.post(f"machines/{sid}/", op="release")
    assert released.status_code == 200, released.text
    body, addresses, after = shown(api, sid)
    assert body["status_name"] == "Ready" and addresses == []
    assert after["id"] == link["id"] and after["mode"] == "auto" and "ip_address" not in after
    state = rack_dhcp(life_region)
    assert {"mac": mac, "hostname": hostname, "ip": None} in state["hosts"]
    assert ip not in {r.get("ip-address") for r in kea_reservations(state)}
    assert a_records(api, hostname) == []


def test_concurrent_deploys_get_distinct_addresses_and_a_full_subnet_refuses_the_next(life_region, api, ready):
    fabric = api.post("fabrics/", name=test_api_nodes.name("f")).json()
    # a /28 with the gateway and a dynamic range: .7-.14, 8 addresses left
    subnet = api.post("subnets/", cidr="10.78.0.0/28", vlan=str(fabric["vlans"][0]["id"]), gateway_ip="10.78.0.1")
    assert subnet.status_code == 200, subnet.text
    subnet_id = subnet.json()["id"]
    made = api.post("ipranges/", type="dynamic", start_ip="10.78.0.2", end_ip="10.78.0.6", subnet=str(subnet_id))
    assert made.status_code == 200, made.text
    machines = [ready() for _ in range(9)]
    for m in machines:
        link_auto(api, m, subnet_id)

    def deploy(sid: str):
        with life_region.api() as client:
            return client.post(f"machines/{sid}/", op="deploy")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(deploy, [m["system_id"] for m in machines[:8]]))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    got = [shown(api, m["system_id"])[1] for m in machines[:8]]
    assert sorted(ip_address(ip) for (ip,) in got) == [ip_address(f"10.78.0.{n}") for n in range(7, 15)]

    last = machines[8]["system_id"]
    full = api.post(f"machines/{last}/", op="deploy")
    assert (full.status_code, full.text) == (503, f"{last}: Unable to allocate static IP due to address exhaustion.")
    body, addresses, link = shown(api, last)
    assert (body["status_name"], body["owner"], addresses) == ("Ready", None, [])
    assert "ip_address" not in link

    # A release gives its address back: the refused machine deploys with it.
    freed = got[3][0]
    assert api.post(f"machines/{machines[3]['system_id']}/", op="release").status_code == 200
    again = api.post(f"machines/{last}/", op="deploy")
    assert again.status_code == 200, again.text
    assert shown(api, last)[1] == [freed]
