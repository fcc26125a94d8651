"""Deploy and release through a real BMC: a region, a rack (loopback services) and an emulated
Redfish BMC. Deploy powers the machine on; release powers it off and leaves it Ready; release with
erase powers it on for the wipe and off when the wipe is done; rescue mode powers it on and its
exit off; a BMC that
cannot be reached ends the deploy in Failed deployment and the release in Releasing failed,
each with the BMC's reason."""

from __future__ import annotations

import secrets
import subprocess
import sys

from metalplane.embedded.init import run_db
from metalplane.region.services import cluster
from tests.integration.test_api_nodes import FACTS, commission_with
from tests.integration.test_cli_ops import loopback_rack_dir, racks, stop_data_dir
from tests.integration.test_machine_lifecycle import import_test_images, metadata, token_of
from tests.support.bmc_redfish import HttpBmc, HttpBmcEmulator
from tests.support.processes import wait_until

METALPLANE = [sys.executable, "-m", "metalplane"]


def test_deploy_and_release_power_the_machine_through_its_bmc(region, workdir):
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
                mac_addresses="52:54:02:aa:00:01",
                hostname=f"bmc-{secrets.token_hex(3)}",
                **{f"power_parameters_{k}": v for k, v in redfish.params("rf").items()},
            )
            assert created.status_code == 200, created.text
            sid = created.json()["system_id"]
            assert commission_with(region, api, sid, FACTS, {"00-cpuinfo": 0})["status_name"] == "Ready"
            redfish.set_power("rf", "1", "Off")
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
    finally:
        stop_data_dir(data_dir)
        redfish.stop()
