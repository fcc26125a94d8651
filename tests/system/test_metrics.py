"""Issue 17's metrics acceptance: a region and two racks serving DHCP HA with real Kea, an
emulated IPMI BMC, an imported image; after a DHCP, power and boot-file workload, a scrape
of `/MAAS/metrics` and of each rack's `/metrics` (port 5248) shows every family non-zero.

Scrapes run with curl inside the region's namespace: the test never routes into the lab.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metalplane.images.publish import publish_image
from tests.support.bmc_ipmi import IpmiSimBmc
from tests.support.netlab import Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]
CIDR = "10.67.0.0/24"
REGION, RACK1, RACK2, BMC, BAD_BMC = "10.67.0.10", "10.67.0.2", "10.67.0.3", "10.67.0.100", "10.67.0.101"
PASSWORD = "metrics-bmc-pass"
KERNEL = b"metalplane-metrics-kernel " * 4000
RACKS = {"rack1": RACK1, "rack2": RACK2}
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"

Sample = tuple[str, dict[str, str], float]


def mirror(root: Path) -> dict[str, str]:
    """A one-image simplestreams mirror on disk; returns {ftype: sha256}."""
    staging = root / "staging"
    staging.mkdir(parents=True)
    files = {}
    for ftype, data in (("boot-kernel", KERNEL), ("boot-initrd", b"initrd " * 1000)):
        files[ftype] = staging / ftype
        files[ftype].write_bytes(data)
    published = publish_image(
        root / "mirror",
        os_name="ephemeral",
        release="metrics",
        arch="amd64",
        subarch="generic",
        version="20261206.1",
        files=files,
        title="Metrics test",
    )
    return {p.ftype: p.sha256 for p in published}


def scrape(stack: Stack, url: str) -> list[Sample]:
    assert stack.cli_host is not None
    out = stack.cli_host.run(["curl", "-sf", "--max-time", "10", url]).stdout
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(out) for s in f.samples]


def total(samples: list[Sample], name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(v for n, labels, v in samples if n == name and where(labels))


def racks_scraped(stack: Stack) -> dict[str, list[Sample]]:
    return {name: scrape(stack, f"http://{address}:5248/metrics") for name, address in RACKS.items()}


def dhcpd_running(samples: list[Sample]) -> bool:
    return (
        total(samples, "maas_rack_service_state", lambda x: x["service"] == "dhcpd" and x["status"] == "running") == 1
    )


def dhcpd_status(stack: Stack) -> dict[str, tuple[str, str]]:
    """What each rack reported for dhcpd (for a failure's message)."""
    return {
        r["hostname"]: next((s["status"], s["status_info"]) for s in r["service_set"] if s["name"] == "dhcpd")
        for r in stack.api("rack-controllers", "read")
    }


@pytest.fixture(scope="module")
def lab(databases):
    with Lab() as lab:
        lab.add_network("pxe", CIDR)
        region = lab.add_host("region", {"pxe": f"{REGION}/24"})
        stack = Stack(lab, databases)
        stack.start_region(region, "pxe")
        for name, address in RACKS.items():
            stack.add_rack(lab.add_host(name, {"pxe": f"{address}/24"}), name)
            stack.start_rack(name)
        wait_until(lambda: len(stack.api("rack-controllers", "read")) == 2, 30, what="both racks")
        images = lab.new_workdir("images")
        shas = mirror(images)
        stack.import_image(images / "mirror", timeout=120)
        stack.serve_dhcp(CIDR, "10.67.0.150", "10.67.0.199", "rack1")
        subnet = next(x for x in stack.api("subnets", "read") if x["cidr"] == CIDR)
        stack.api(
            "vlan", "update", str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]), "secondary_rack=rack2"
        )
        bmchost = lab.add_host("bmchost", {"pxe": f"{BMC}/24"})
        bmchost.add_address("pxe", f"{BAD_BMC}/24")
        bmc = IpmiSimBmc(lab.new_workdir("bmc"), BMC, 623, user="admin", password=PASSWORD, name="metricsbmc").start(
            host=bmchost
        )
        IpmiSimBmc(lab.new_workdir("bmc2"), BAD_BMC, 623, user="admin", password=PASSWORD, name="metricsbmc2").start(
            host=bmchost
        )  # asked with the wrong password below
        lab.stack, lab.shas, lab.bmc = stack, shas, bmc
        yield lab


def test_every_family_is_non_zero_after_a_dhcp_power_and_boot_workload(lab):
    stack: Stack = lab.stack
    # DHCP: both racks' Kea in hot-standby (read from the racks' own metrics), then a client's lease.
    try:
        wait_until(
            lambda: all(
                total(samples, "maas_rack_dhcp_ha_state", lambda x: x["state"] == "hot-standby") == 1
                and dhcpd_running(samples)
                for samples in racks_scraped(stack).values()
            ),
            120,
            interval=1,
            what="both racks' Kea in hot-standby",
        )
    except TimeoutError as exc:
        raise AssertionError(dhcpd_status(stack)) from exc
    lease = lab.add_host("client", {"pxe": None}).dhcp_udhcpc("pxe", timeout=30)
    assert lease.server_id == RACK1

    # Power: one machine whose BMC answers, one with the wrong password (a failure on both sides).
    good = stack.api(
        "machines",
        "create",
        "architecture=amd64/generic",
        "commission=false",
        "mac_addresses=52:54:00:67:00:01",
        "hostname=metrics-good",
        "power_type=ipmi",
        f"power_parameters_power_address={BMC}",
        "power_parameters_power_user=admin",
        f"power_parameters_power_pass={PASSWORD}",
        "power_parameters_cipher_suite_id=3",
    )["system_id"]
    bad = stack.api(
        "machines",
        "create",
        "architecture=amd64/generic",
        "commission=false",
        "mac_addresses=52:54:00:67:00:02",
        "hostname=metrics-bad",
        "power_type=ipmi",
        f"power_parameters_power_address={BAD_BMC}",
        "power_parameters_power_user=admin",
        "power_parameters_power_pass=wrong-password",
        "power_parameters_cipher_suite_id=3",
    )["system_id"]
    stack.api("machine", "power-on", good)
    assert lab.bmc.power is True
    assert stack.cli("admin", "machine", "power-on", bad, check=False).returncode == 2

    # Boot files from rack1: a loader over TFTP, the cached kernel over HTTP (a hit) and a file
    # it does not have (a miss).
    kernel = lab.shas["boot-kernel"]
    wait_until(
        lambda: (
            stack.cli_host.run(
                ["curl", "-sf", "-o", "/dev/null", f"http://{RACK1}:5248/images/by-sha256/{kernel}"], check=False
            ).returncode
            == 0
        ),
        60,
        what="rack1 to cache the kernel",
    )
    loader = stack.cli_host.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", f"tftp://{RACK1}/undionly.kpxe"]
    )
    assert int(loader.stdout) > 0
    missing = stack.cli_host.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{RACK1}:5248/images/by-sha256/{'0' * 64}"]
    )
    assert missing.stdout == "404"

    # The region: every worker's samples, whichever worker answers the scrape.
    region = wait_until(
        lambda: (
            (s := scrape(stack, f"http://{REGION}:5240/MAAS/metrics"))
            and total(s, "maas_region_lease_events_total") > 0
            and s
        ),
        30,
        what="the lease reported to the region",
    )
    assert total(region, "maas_http_request_latency_count", lambda x: x["handler"] == "MachinesHandler") > 0
    assert total(region, "maas_http_request_latency_count", lambda x: x["status"] == "200") > 0
    assert total(region, "maas_http_request_latency_count", lambda x: x["status"] == "503") > 0  # the bad BMC
    assert total(region, "maas_region_rpc_connections") >= 2  # both racks, on some worker(s)
    assert total(region, "maas_region_rack_joins_total", lambda x: x["outcome"] == "at_once") >= 2
    assert total(region, "maas_region_rack_join_wait_seconds_count") >= 2  # every join's wait
    assert total(region, "maas_region_power_actions_total", lambda x: x["result"] == "done") > 0
    assert total(region, "maas_region_power_actions_total", lambda x: x["result"] == "failed") > 0

    # The racks: the BMC's owner may be either, so power and leases are summed over both.
    racks = racks_scraped(stack)
    both = racks["rack1"] + racks["rack2"]
    rack1 = racks["rack1"]
    for name, samples in racks.items():
        states = {
            labels["service"]: labels["status"] for n, labels, v in samples if n == "maas_rack_service_state" and v == 1
        }
        assert set(states) >= {"rackd", "dhcpd", "tftp", "http"}, states
        assert all(states[s] == "running" for s in ("rackd", "tftp", "http")), states
        # Serving DHCP; "degraded" while Kea's HA pair resyncs after a reconfiguration (the new
        # machines' reservations), read a few seconds late by the rack's status poll.
        assert states["dhcpd"] in ("running", "degraded"), (name, states, dhcpd_status(stack))
        assert total(samples, "maas_rack_service_state") == len(states)  # one current status per service
        assert total(samples, "maas_rack_region_links") > 0, name
    assert total(both, "maas_rack_dhcp_leases_reported_total", lambda x: x["action"] == "commit") > 0
    assert total(both, "maas_rack_power_actions_total", lambda x: x["action"] == "on") > 0
    assert total(both, "maas_rack_power_failures_total") > 0
    assert total(rack1, "maas_rack_image_cache_requests_total", lambda x: x["result"] == "hit") > 0
    assert total(rack1, "maas_rack_image_cache_requests_total", lambda x: x["result"] == "miss") > 0
    assert total(rack1, "maas_rack_tftp_bytes_sent_total") > 0
    assert total(rack1, "maas_rack_http_bytes_sent_total") >= len(KERNEL)
    assert total(rack1, "maas_rack_http_responses_total", lambda x: x["status"] == "200") > 0
    stack.api("machine", "delete", bad)

    # The dashboard in docs/ asks only for series that exist.
    served = {name for name, _, _ in region + both}
    wanted = set(re.findall(r"maas_[a-z_]+", DASHBOARD.read_text()))
    assert wanted and wanted <= served, wanted - served
