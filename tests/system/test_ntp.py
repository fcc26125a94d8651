"""chrony on a region and a rack, with real chronyd processes and real NTP clients
(ntpdate, sntp), each host in its own network namespace."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from metalplane.ntp import ChronyConfig, ChronyConfigError, ChronyService, Source, rack_config, region_config
from metalplane.supervised import prefix_wrap
from tests.support.netlab import Host, Lab, list_netns

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        shutil.which("chronyd") is None or shutil.which("ntpdate") is None,
        reason="chrony and ntpsec-ntpdate not installed",
    ),
    pytest.mark.timeout(180),
    pytest.mark.asyncio(loop_scope="session"),
]

MGMT, PXE = ipaddress.ip_network("10.71.1.0/24"), ipaddress.ip_network("10.71.0.0/24")
UPSTREAM, REGION, RACK_MGMT, RACK_PXE = "10.71.1.99", "10.71.1.11", "10.71.1.2", "10.71.0.2"
TEST_POLL = (0, 1)  # rack -> region every 1-2 s, so losing the region shows in seconds


@dataclass
class NtpLab:
    lab: Lab
    upstream: ChronyService
    region: ChronyService
    rack: ChronyService
    rack_host: Host
    client: Host


def service(lab: Lab, host: Host) -> ChronyService:
    return ChronyService(lab.workdir / f"ntp-{host.name}", wrap=prefix_wrap(host.command([])), poll_interval=0.5)


@pytest.fixture
async def ntp() -> AsyncIterator[NtpLab]:
    lab = Lab()
    lab.start()
    made: list[ChronyService] = []
    try:
        lab.add_network("mgmt", str(MGMT))
        lab.add_network("pxe", str(PXE))
        hosts = {
            "upstream": lab.add_host("upstream", {"mgmt": f"{UPSTREAM}/24"}),
            "region": lab.add_host("region", {"mgmt": f"{REGION}/24"}),
            "rack": lab.add_host("rack", {"mgmt": f"{RACK_MGMT}/24", "pxe": f"{RACK_PXE}/24"}),
        }
        made = [service(lab, h) for h in hosts.values()]
        upstream, region, rack = made
        # the "internet" time source: a chronyd serving its own clock at stratum 1
        await upstream.apply(ChronyConfig(sources=(), stratum=1, allow=(MGMT,)))
        await region.apply(region_config([UPSTREAM], allow=[MGMT]))
        await rack.apply(rack_config([REGION], allow=[PXE], region_poll=TEST_POLL))
        yield NtpLab(lab, upstream, region, rack, hosts["rack"], lab.add_host("client", {"pxe": "10.71.0.50/24"}))
    finally:
        await asyncio.gather(*(s.stop() for s in made), return_exceptions=True)
        lab.close()
        assert [n for n in list_netns() if n.startswith(lab.prefix + "-")] == []


async def until_status(svc: ChronyService, want: str, timeout: float, text: str = "") -> float:
    t0 = time.monotonic()
    while svc.status()[0] != want or text not in svc.status()[1]:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"still {svc.status()} after {timeout}s, want {want}")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


def query(client: Host, tool: str = "ntpdate") -> tuple[str, int]:
    """(server address, stratum) of the answer the client got from the rack."""
    cmd = ["ntpdate", "-q", RACK_PXE] if tool == "ntpdate" else ["sntp", "-t", "2", RACK_PXE]
    out = client.run(cmd, timeout=20).stdout
    m = re.search(r"(\d+\.\d+\.\d+\.\d+) s(\d+)", out)
    assert m, out
    return m.group(1), int(m.group(2))


async def test_rack_follows_region_serves_machines_and_degrades_without_regions(ntp: NtpLab):
    await until_status(ntp.region, "running", 20)
    await until_status(ntp.rack, "running", 20)
    assert f"synchronised to {REGION} (stratum 2)" in ntp.rack.status()[1]
    assert await asyncio.to_thread(query, ntp.client) == (RACK_PXE, 3)
    assert await asyncio.to_thread(query, ntp.client, "sntp") == (RACK_PXE, 3)

    # every region gone: the rack keeps serving and says it is degraded
    await ntp.region.stop()
    took = await until_status(ntp.rack, "degraded", 20, text=f"{REGION} stopped answering")
    print(f"region stopped -> rack degraded in {took:.1f}s")
    server, stratum = await asyncio.to_thread(query, ntp.client)
    assert server == RACK_PXE and stratum >= 3


async def test_a_dead_chronyd_is_dead_at_once_and_comes_back(ntp: NtpLab):
    await until_status(ntp.rack, "running", 20)
    os.kill(ntp.rack.process.pid, signal.SIGKILL)
    took = await until_status(ntp.rack, "dead", 5)
    assert "SIGKILL" in ntp.rack.status()[1]
    print(f"kill -9 -> dead in {took:.2f}s")
    await until_status(ntp.rack, "running", 20)
    assert ntp.rack.process.restarts == 1
    assert (await asyncio.to_thread(query, ntp.client))[0] == RACK_PXE


async def test_a_refused_configuration_keeps_the_last_good_one(ntp: NtpLab):
    await until_status(ntp.rack, "running", 20)
    pid = ntp.rack.process.pid
    bad = ChronyConfig(sources=(Source(REGION, "bogus"),), stratum=9, allow=(PXE,))
    with pytest.raises(ChronyConfigError) as err:
        await ntp.rack.apply(bad)
    assert "Invalid directive at line 2" in err.value.message
    status, text = ntp.rack.status()
    assert status == "degraded" and "Invalid directive" in text
    assert ntp.rack.process.pid == pid  # never restarted
    assert (await asyncio.to_thread(query, ntp.client))[0] == RACK_PXE
    # a good one again: restarted with it, and the refusal is forgotten
    assert await ntp.rack.apply(rack_config([REGION, UPSTREAM], allow=[PXE], region_poll=TEST_POLL)) == "restarted"
    await until_status(ntp.rack, "running", 20)


async def test_without_any_upstream_a_region_serves_its_own_clock_degraded(ntp: NtpLab):
    await ntp.upstream.stop()
    await ntp.region.apply(region_config([], allow=[MGMT]))  # ntp_servers empty
    await until_status(ntp.region, "degraded", 10, text="serving its own clock at stratum 8 (orphan)")
    # the rack follows it, and knows that it has no time source itself
    await until_status(ntp.rack, "degraded", 20, text=f"following {REGION}, which has no time source itself")
    assert await asyncio.to_thread(query, ntp.client) == (RACK_PXE, 9)
