"""Deploy and release through a real BMC: a region, a rack (loopback services) and an emulated
Redfish BMC. Deploy powers the machine on; release powers it off and leaves it Ready; release with
erase powers it on for the wipe and off when the wipe is done; rescue mode powers it on and its
exit off; a BMC that
cannot be reached ends the deploy in Failed deployment and the release in Releasing failed,
each with the BMC's reason."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator

from metalplane.embedded.init import run_db
from metalplane.region.services import cluster
from tests.integration.test_api_nodes import FACTS, commission_with
from tests.integration.test_cli_ops import loopback_rack_dir, racks, stop_data_dir
from tests.integration.test_machine_lifecycle import boot_answer, events_of, import_test_images, metadata, token_of
from tests.support.bmc_redfish import HttpBmc, HttpBmcEmulator
from tests.support.processes import wait_until

METALPLANE = [sys.executable, "-m", "metalplane"]
MAC = "52:54:02:aa:00:01"


@contextlib.contextmanager
def bmc_lab(region, workdir) -> Iterator[tuple[HttpBmcEmulator, str]]:
    """A rack (loopback services) registered to `region`, an emulated Redfish BMC and a Ready
    machine behind it, powered off; the images a deploy needs imported."""
    import_test_images(region, workdir / "mirror")
    data_dir = loopback_rack_dir(workdir / "rack")
    redfish = HttpBmcEmulator(workdir / "redfish", [HttpBmc("rf", "127.0.0.1", 0, username="root", password="pw")])
    try:
        redfish.start()
        shared = run_db(region.config, cluster.shared_secret)
        joined = subprocess.run(
            [
                *METALPLANE,
                "rack",
                "register",
                "--url",
                region.url,
                "--secret",
                shared,
                "--data-dir",
                str(data_dir),
                "--hostname",
                "life-rack",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert joined.returncode == 0, joined.stderr
        wait_until(lambda: any(r["hostname"] == "life-rack" for r in racks(region)), 30, what="the rack")
        with region.api() as api:
            created = api.post(
                "machines/",
                architecture="amd64/generic",
                power_type="redfish",
                commission="false",
                mac_addresses=MAC,
                hostname=f"bmc-{secrets.token_hex(3)}",
                **{f"power_parameters_{k}": v for k, v in redfish.params("rf").items()},
            )
            assert created.status_code == 200, created.text
            sid = created.json()["system_id"]
            assert commission_with(region, api, sid, FACTS, {"00-cpuinfo": 0})["status_name"] == "Ready"
        redfish.set_power("rf", "1", "Off")
        yield redfish, sid
    finally:
        stop_data_dir(data_dir)
        redfish.stop()


def test_deploy_and_release_power_the_machine_through_its_bmc(region, workdir):
    with bmc_lab(region, workdir) as (redfish, sid), region.api() as api:
        deployed = api.post(f"machines/{sid}/", op="deploy")
        assert deployed.status_code == 200, deployed.text
        assert deployed.json()["status_name"] == "Deploying"
        assert redfish.power_state("rf") == "On"  # powered on to PXE-boot the installer
        released = api.post(f"machines/{sid}/", op="release")
        assert released.status_code == 200, released.text
        assert (released.json()["status_name"], released.json()["owner"]) == ("Ready", None)
        assert redfish.power_state("rf") == "Off"
        # release erase=true: powered on to PXE-boot the wipe; its done report -> off, Ready.
        assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
        erasing = api.post(f"machines/{sid}/", op="release", erase="true", quick_erase="true")
        assert erasing.json()["status_name"] == "Disk erasing", erasing.text
        assert redfish.power_state("rf") == "On"
        with metadata(region, token_of(region, sid)) as meta:
            assert meta.post("erase/done", json={"result": "ok"}).status_code == 200
        assert (api.get(f"machines/{sid}/").json()["status_name"], redfish.power_state("rf")) == ("Ready", "Off")
        # rescue mode: powered on; the environment reports; exit powers a Ready machine off.
        assert api.post(f"machines/{sid}/", op="rescue_mode").json()["status_name"] == "Entering rescue mode"
        assert redfish.power_state("rf") == "On"
        with metadata(region, token_of(region, sid)) as meta:
            assert meta.post("rescue/booted", json={"result": "ok"}).status_code == 200
        exited = api.post(f"machines/{sid}/", op="exit_rescue_mode")
        assert (exited.json()["status_name"], redfish.power_state("rf")) == ("Ready", "Off")
        redfish.stop()  # the BMC goes away
        failed = api.post(f"machines/{sid}/", op="deploy")
        assert failed.status_code == 503
        shown = api.get(f"machines/{sid}/").json()
        assert shown["status_name"] == "Failed deployment"
        assert shown["error_description"].startswith("Powering the machine on failed: ")
        assert api.post(f"machines/{sid}/", op="release").status_code == 503
        shown = api.get(f"machines/{sid}/").json()
        assert shown["status_name"] == "Releasing failed"
        assert shown["error_description"].startswith("Failed to release machine. Powering it off failed: ")


def test_abort_powers_the_machine_off_and_a_bmc_that_refuses_fails_the_run_with_its_reason(region, workdir):
    """As MAAS, the abort's status change waits for the power-off; a BMC that refuses it ends the
    run in its failed status with the reason (MAAS would leave it Deploying, deadline cleared)."""
    with bmc_lab(region, workdir) as (redfish, sid), region.api() as api:
        assert api.post(f"machines/{sid}/", op="deploy").json()["status_name"] == "Deploying"
        assert redfish.power_state("rf") == "On"
        aborted = api.post(f"machines/{sid}/", op="abort", comment="wrong image")
        assert aborted.status_code == 200, aborted.text
        assert (aborted.json()["status_name"], redfish.power_state("rf")) == ("Allocated", "Off")
        kinds = {(e["type"], e["description"]) for e in events_of(api, sid)}
        assert {("User aborting deployment", "wrong image"), ("Aborted deployment", "")} <= kinds
        # Deploying again; the BMC now refuses its users (401): the abort cannot power it off.
        assert api.post(f"machines/{sid}/", op="deploy").json()["status_name"] == "Deploying"
        token = token_of(region, sid)
        redfish.set_password("rf", "changed-under-us")
        refused = api.post(f"machines/{sid}/", op="abort", comment="again")
        assert refused.status_code == 503, refused.text
        shown = api.get(f"machines/{sid}/").json()
        assert (shown["status_name"], shown["owner"], redfish.power_state("rf")) == ("Failed deployment", "admin", "On")
        reason = shown["error_description"]
        assert reason.startswith("Failed to abort deployment. Powering it off failed: "), reason
        bmc_said = reason.removeprefix("Failed to abort deployment. Powering it off failed: ")
        assert "401" in bmc_said and bmc_said in refused.text
        # The newest event shown is the power failure's (MAAS's status_message and status_action).
        assert (shown["status_message"], shown["status_action"]) == (f"Failed to power off node - {bmc_said}", "")
        kinds = {(e["type"], e["description"]) for e in events_of(api, sid)}
        assert ("User aborting deployment", "again") in kinds
        assert [k for k in kinds if k[0] == "Aborted deployment"] == [("Aborted deployment", "")]  # the first only
        with metadata(region, token) as meta:  # the installer can no longer finish the aborted deploy
            assert meta.post("deploy/events", json={"step": "image", "status": "started"}).status_code == 401
        assert boot_answer(region, MAC).purpose == "poweroff"  # it powers itself off at its next PXE boot
        redfish.set_password("rf", "pw")
        released = api.post(f"machines/{sid}/", op="release")
        assert (released.json()["status_name"], redfish.power_state("rf")) == ("Ready", "Off")
        # Disk erasing: the same, into Failed disk erasing with the reason.
        assert api.post("machines/", op="allocate", system_id=sid).status_code == 200
        erasing = api.post(f"machines/{sid}/", op="release", erase="true", quick_erase="true")
        assert (erasing.json()["status_name"], redfish.power_state("rf")) == ("Disk erasing", "On")
        redfish.set_password("rf", "changed-under-us")
        assert api.post(f"machines/{sid}/", op="abort").status_code == 503
        shown = api.get(f"machines/{sid}/").json()
        assert shown["status_name"] == "Failed disk erasing"
        assert shown["error_description"].startswith("Failed to abort disk erasing. Powering it off failed: ")
