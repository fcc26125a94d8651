"""Power drivers against real emulated BMCs: ipmi_sim + ipmitool/ipmipower, a Redfish emulator over
HTTP(S), a webhook server. Every address is on 127.0.0.0/8 (random, high ports) or inside a netlab
namespace; every process is ours and stopped by PID."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
import time
from pathlib import Path

import pytest

from metalplane.rack.power.drivers import DriverRegistry
from metalplane.rack.power.errors import (
    PowerAuthError,
    PowerBackoffError,
    PowerBMCError,
    PowerConfigError,
    PowerConnectionError,
    PowerTimeoutError,
)
from metalplane.rack.power.policy import PowerSettings, max_in_window
from metalplane.rack.power.runner import PowerPoller, PowerRunner, PowerTarget
from tests.support.bmc_ipmi import IpmiSimBmc, command_hook
from tests.support.bmc_redfish import HttpBmc, HttpBmcEmulator, farm
from tests.support.processes import wait_until

PASSWORD = "Sup3rSecretPw"  # must never show up in an error message


def loopback_address() -> str:
    """A random 127.x.y.z, so parallel runs do not meet."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def assert_clean(error: BaseException, bmc_name: str) -> None:
    text = str(error)
    assert bmc_name in text, text
    assert PASSWORD not in text, text


@pytest.fixture(scope="module")
def ipmi_bmc(tmp_path_factory):
    address = loopback_address()
    bmc = IpmiSimBmc(
        tmp_path_factory.mktemp("ipmi"), address, free_udp_port(address), user="admin", password=PASSWORD, debug=True
    )
    bmc.start()
    yield bmc
    bmc.stop()


@pytest.fixture(scope="module")
def http_bmcs(tmp_path_factory):
    address = loopback_address()
    emu = HttpBmcEmulator(
        tmp_path_factory.mktemp("redfish"),
        [
            HttpBmc("rf1", address, 0, username="root", password=PASSWORD, systems=["1", "2"]),
            HttpBmc("rf2", address, 0, username="root", password=PASSWORD, systems=["1"]),
            HttpBmc("hook", address, 0, kind="webhook", token=PASSWORD),
            HttpBmc("hookb", address, 0, kind="webhook", username="ops", password=PASSWORD),
        ],
    )
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
async def registry():
    reg = DriverRegistry()
    yield reg
    await reg.aclose()


# --------------------------------------------------------------------------- IPMI


@pytest.mark.parametrize("client", ["ipmitool", "freeipmi"])
async def test_ipmi_on_off_query_cycle_change_the_bmc(ipmi_bmc, registry, client):
    driver = registry.get("ipmi")
    params = ipmi_bmc.params(ipmi_client=client)
    ipmi_bmc.set_power(False)
    assert await driver.query(params) == "off"
    await driver.on(params)
    assert ipmi_bmc.power is True
    assert await driver.query(params) == "on"
    await driver.off(params)
    assert ipmi_bmc.power is False and await driver.query(params) == "off"
    # cycle of an off machine powers it on (IPMI itself refuses to cycle it)
    assert await driver.cycle(params) == "machine was off: powered on"
    assert ipmi_bmc.power is True
    # cycle of an on machine: ipmi_sim powers off, then on again about 1 s later
    before = len(ipmi_bmc.chassis_calls())
    assert await driver.cycle(params) is None
    wait_until(
        lambda: ipmi_bmc.power and "set power 1" in ipmi_bmc.chassis_calls()[before:],
        5,
        what="power back on after cycle",
    )
    assert ipmi_bmc.chassis_calls()[before:].index("set power 0") < ipmi_bmc.chassis_calls()[before:].index(
        "set power 1"
    )


async def test_ipmi_boot_device_and_soft_off(ipmi_bmc, registry):
    driver = registry.get("ipmi")
    await driver.set_boot_device(ipmi_bmc.params(), "pxe")
    assert ipmi_bmc.boot_device == "pxe"
    # ipmi_sim has no ACPI soft-off: the error quotes what the BMC answered.
    ipmi_bmc.set_power(True)
    with pytest.raises(PowerBMCError, match="Set Chassis Power Control to Soft failed: Unspecified error") as err:
        await driver.off(ipmi_bmc.params(power_off_mode="soft"))
    assert_clean(err.value, ipmi_bmc.address)
    assert ipmi_bmc.power is True


@pytest.mark.parametrize("client", ["ipmitool", "freeipmi"])
async def test_ipmi_wrong_password_names_the_bmc_and_hides_the_password(ipmi_bmc, registry, client):
    driver = registry.get("ipmi")
    bad = ipmi_bmc.params(ipmi_client=client, power_pass=PASSWORD + "x")
    with pytest.raises(PowerAuthError) as err:
        await driver.query(bad)
    assert_clean(err.value, f"{ipmi_bmc.address}:{ipmi_bmc.port}")
    assert str(err.value).startswith(f"authentication failed at BMC {ipmi_bmc.address}:{ipmi_bmc.port}")
    expected = "RAKP 2 HMAC is invalid" if client == "ipmitool" else "password invalid"
    assert expected in str(err.value)


async def test_ipmi_parameter_problems_are_config_errors(ipmi_bmc, registry):
    driver = registry.get("ipmi")
    with pytest.raises(PowerConfigError, match="cipher suite") as err:
        await driver.query(ipmi_bmc.params(cipher_suite_id="17"))
    assert_clean(err.value, ipmi_bmc.address)
    ipmi_bmc.set_power(True)
    # A BMC user with only the USER role may query but not power off.
    with pytest.raises(PowerConfigError, match="Insufficient privilege level"):
        await driver.off(ipmi_bmc.params(privilege_level="USER"))
    assert ipmi_bmc.power is True


async def test_ipmi_unreachable_bmc_times_out(registry):
    address = loopback_address()
    params = {"power_address": f"{address}:{free_udp_port(address)}", "power_user": "admin", "power_pass": PASSWORD}
    runner = PowerRunner(PowerSettings(query_timeout=3, retries=0), registry)
    t0 = time.monotonic()
    with pytest.raises(PowerTimeoutError) as err:
        await runner.query("ipmi", params)
    assert time.monotonic() - t0 < 6
    assert_clean(err.value, address)


async def test_runner_wrong_ipmi_password_is_not_hammered(ipmi_bmc, registry):
    """A poller every 0.1 s against a BMC with a wrong password: it opens a session only at start and
    when its backoff ends, not ten times a second."""
    settings = PowerSettings(
        poll_interval=0.1, retries=2, backoff_base=1.0, backoff_max=1.0, backoff_jitter=0, query_timeout=3
    )
    runner = PowerRunner(settings, registry)
    bad = ipmi_bmc.params(power_pass="wrong-password")
    before = ipmi_bmc.session_attempts()
    results = []
    poller = PowerPoller(runner, on_result=results.append)
    poller.set_targets({"m1": PowerTarget("ipmi", bad)})
    poller.start()
    await asyncio.sleep(2.5)
    await poller.stop()
    sessions = ipmi_bmc.session_attempts() - before
    assert 2 <= sessions <= 3, sessions  # t=0, t~1, t~2 -- not ~25 (and no retries of a wrong password)
    health = runner.health_of("ipmi", bad)
    assert health.failing and health.last_error_kind == "auth"
    assert "RAKP 2 HMAC is invalid" in health.last_error and PASSWORD not in health.last_error
    assert sum(1 for r in results if r.error and r.error.kind == "backoff") >= 15


async def test_ipmi_power_hook_runs_a_process_while_on(tmp_path, registry):
    """The hook a boot test will use to start/stop a VM: here a sleep stands in for qemu."""
    address = loopback_address()
    hook = command_hook(tmp_path / "hook", ["sleep", "600"], grace=1.0)
    bmc = IpmiSimBmc(tmp_path / "bmc", address, free_udp_port(address), password=PASSWORD, hook=hook)
    bmc.start()
    try:
        driver = registry.get("ipmi")
        assert await driver.query(bmc.params()) == "off"
        await driver.on(bmc.params())
        pid = int((tmp_path / "bmc" / "vm.pid").read_text())
        wait_until(
            lambda: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep",
            5,
            what="setsid to exec the hooked command",
        )
        assert await driver.query(bmc.params()) == "on"
        await driver.off(bmc.params())
        wait_until(
            lambda: not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z",
            5,
            what="hooked process gone",
        )
        assert await driver.query(bmc.params()) == "off"
        await driver.on(bmc.params())
        pid2 = int((tmp_path / "bmc" / "vm.pid").read_text())
    finally:
        bmc.stop()  # powers the hook off first
    wait_until(
        lambda: not Path(f"/proc/{pid2}").exists() or Path(f"/proc/{pid2}/stat").read_text().split()[2] == "Z",
        5,
        what="hooked process gone at stop",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_ipmi_bmc_inside_netlab_namespace(tmp_path):
    from tests.support.netlab import Lab

    with Lab() as lab:
        lab.add_network("bmc", "10.61.0.0/24")
        bmc_host = lab.add_host("bmc1", {"bmc": "10.61.0.10/24"})
        rack = lab.add_host("rack1", {"bmc": "10.61.0.2/24"})
        bmc = IpmiSimBmc(tmp_path / "bmc", "10.61.0.10", 623, password=PASSWORD)
        bmc.start(host=bmc_host)
        script = (
            "import asyncio, json, sys\n"
            "from metalplane.rack.power.runner import PowerRunner\n"
            "from metalplane.rack.power.errors import PowerError\n"
            "p = json.loads(sys.argv[1])\n"
            "async def main():\n"
            "    r = PowerRunner()\n"
            "    out = [await r.query('ipmi', p), await r.on('ipmi', p), await r.query('ipmi', p)]\n"
            "    try:\n"
            "        await r.query('ipmi', dict(p, power_pass='wrong'))\n"
            "    except PowerError as e:\n"
            "        out.append(str(e))\n"
            "    print(json.dumps(out))\n"
            "asyncio.run(main())\n"
        )
        result = rack.run([sys.executable, "-c", script, json.dumps(bmc.params())], timeout=60)
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out[:3] == ["off", None, "on"]
        assert out[3].startswith("authentication failed at BMC 10.61.0.10:") and PASSWORD not in out[3]
        assert bmc.power is True
        # Not reachable from the machine's own namespace: the lab is isolated.
        bmc.stop()


# --------------------------------------------------------------------------- Redfish


async def test_redfish_on_off_query_cycle_change_the_bmc(http_bmcs, registry):
    driver = registry.get("redfish")
    http_bmcs.set_power("rf1", "1", "Off")
    http_bmcs.set_power("rf1", "2", "Off")
    first = http_bmcs.params("rf1")  # no node_id: the first system is discovered
    second = http_bmcs.params("rf1", "2")
    assert await driver.query(first) == "off"
    assert await driver.on(first) is None
    assert http_bmcs.power_state("rf1", "1") == "On" and http_bmcs.power_state("rf1", "2") == "Off"
    assert await driver.on(first) == "already on"  # no redundant reset (BMCs answer 409 to it)
    assert await driver.on(second) is None
    assert await driver.query(second) == "on"
    assert await driver.cycle(second) is None
    assert http_bmcs.state("rf1")["systems"]["2"]["resets"][-1] == "PowerCycle"
    await driver.off(second)
    assert http_bmcs.power_state("rf1", "2") == "Off" and await driver.query(second) == "off"
    assert await driver.cycle(second) == "machine was off: powered on"
    assert http_bmcs.power_state("rf1", "2") == "On"
    await driver.set_boot_device(second, "pxe")
    state = http_bmcs.state("rf1")["systems"]["2"]
    assert (state["BootSourceOverrideTarget"], state["BootSourceOverrideEnabled"]) == ("Pxe", "Once")


async def test_redfish_errors_name_the_bmc(http_bmcs, registry):
    driver = registry.get("redfish")
    rf1 = http_bmcs.bmcs["rf1"]
    http_bmcs.reset_counters("rf1")
    with pytest.raises(PowerAuthError) as err:
        await driver.query(http_bmcs.params("rf1", power_pass="nope-" + PASSWORD))
    assert_clean(err.value, f"http://{rf1.url}")
    assert "HTTP 401" in str(err.value)
    assert http_bmcs.state("rf1")["unauthorized"] == 1
    with pytest.raises(PowerConfigError, match="check node_id"):
        await driver.query(http_bmcs.params("rf1", "9"))
    # Connection refused: a port nobody listens on.
    with socket.socket() as s:
        s.bind((rf1.address, 0))
        dead_port = s.getsockname()[1]
    with pytest.raises(PowerConnectionError, match="Connection refused") as err:
        await driver.query({**http_bmcs.params("rf1"), "power_address": f"http://{rf1.address}:{dead_port}"})
    assert_clean(err.value, f"{rf1.address}:{dead_port}")


async def test_redfish_slow_bmc_times_out(http_bmcs, registry):
    runner = PowerRunner(PowerSettings(query_timeout=0.5, retries=1, retry_delay=0.1), registry)
    http_bmcs.set_delay("rf2", 3.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(PowerTimeoutError) as err:
            await runner.query("redfish", http_bmcs.params("rf2"))
        assert time.monotonic() - t0 < 2.5  # two attempts of 0.5 s, not 6 s
        assert_clean(err.value, http_bmcs.bmcs["rf2"].url)
    finally:
        http_bmcs.set_delay("rf2", 0.0)
        # The BMC still works on the abandoned requests for a while; let it finish.
        wait_until(lambda: http_bmcs.state("rf2")["in_flight"] == 0, 5, what="abandoned requests done")


async def test_redfish_over_https_with_self_signed_certificate(tmp_path, registry):
    emu = HttpBmcEmulator(tmp_path, [HttpBmc("tls", loopback_address(), 0, password=PASSWORD)], tls=True)
    emu.start()
    try:
        driver = registry.get("redfish")
        params = emu.params("tls")
        assert params["power_address"].startswith("https://")
        await driver.on(params)
        assert emu.power_state("tls") == "On"
        with pytest.raises(PowerConnectionError, match="certificate verification failed") as err:
            await driver.query({**params, "power_verify_ssl": "y"})
        assert_clean(err.value, emu.bmcs["tls"].address)
    finally:
        await registry.aclose()  # a kept-alive TLS connection would hold up the server's shutdown
        emu.stop()


# --------------------------------------------------------------------------- webhook


@pytest.mark.parametrize("name", ["hook", "hookb"])
async def test_webhook_power(http_bmcs, registry, name):
    driver = registry.get("webhook")
    http_bmcs.set_power(name, "1", "Off")
    params = http_bmcs.params(name)
    assert await driver.query(params) == "off"
    await driver.on(params)
    assert http_bmcs.power_state(name) == "On" and await driver.query(params) == "on"
    await driver.cycle(params)
    assert http_bmcs.state(name)["systems"]["1"]["resets"][-2:] == ["off", "on"]
    await driver.off(params)
    assert await driver.query(params) == "off"
    secret_field = "power_token" if name == "hook" else "power_pass"
    with pytest.raises(PowerAuthError) as err:
        await driver.on({**params, secret_field: "wrong-" + PASSWORD})
    assert_clean(err.value, f"http://{http_bmcs.bmcs[name].url}")
    assert "/machines/" not in str(err.value)  # named by origin only
    assert http_bmcs.power_state(name) == "Off"


async def test_manual(registry):
    driver = registry.get("manual")
    assert await driver.query({}) == "unknown"
    assert "manually" in await driver.off({})


# --------------------------------------------------------------------------- runner against real BMCs


async def test_runner_one_call_at_a_time_per_real_bmc(http_bmcs, registry):
    http_bmcs.set_delay("rf1", 0.1)
    http_bmcs.set_delay("rf2", 0.1)
    http_bmcs.reset_counters("rf1")
    http_bmcs.reset_counters("rf2")
    try:
        runner = PowerRunner(PowerSettings(max_concurrency=16), registry)
        calls = [runner.query("redfish", http_bmcs.params("rf1", sid)) for sid in ("1", "2") for _ in range(4)]
        calls += [runner.query("redfish", http_bmcs.params("rf2", "1")) for _ in range(4)]
        t0 = time.monotonic()
        await asyncio.gather(*calls)
        elapsed = time.monotonic() - t0
    finally:
        http_bmcs.set_delay("rf1", 0.0)
        http_bmcs.set_delay("rf2", 0.0)
    rf1, rf2 = http_bmcs.state("rf1"), http_bmcs.state("rf2")
    assert rf1["max_in_flight"] == 1 and rf2["max_in_flight"] == 1  # the BMCs saw one request at a time
    assert rf1["requests"] == 8 and rf2["requests"] == 4
    assert 0.75 < elapsed < 1.6  # rf1's 8 calls in series (0.8 s), rf2's alongside them


async def test_runner_backs_off_a_failing_redfish_bmc(http_bmcs, registry):
    settings = PowerSettings(
        poll_interval=0.1, backoff_base=0.5, backoff_max=1.0, backoff_jitter=0, retries=2, retry_delay=0.05
    )
    runner = PowerRunner(settings, registry)
    poller = PowerPoller(runner)
    bad = http_bmcs.params("rf2", "1", power_pass="wrong-password")
    http_bmcs.reset_counters("rf2")
    poller.set_targets({"m": PowerTarget("redfish", bad)})
    poller.start()
    await asyncio.sleep(3.0)
    await poller.stop()
    # 30 poll rounds; calls only at 0, ~0.5, ~1.5, ~2.5 (backoff 0.5 s then capped at 1 s), never retried.
    unauthorized = http_bmcs.state("rf2")["unauthorized"]
    assert 3 <= unauthorized <= 5, unauthorized
    assert runner.stats.refused >= 20
    with pytest.raises(PowerBackoffError, match="HTTP 401"):
        await runner.query("redfish", bad, background=True)


async def test_poller_spreads_queries_over_real_bmcs(tmp_path, registry):
    bmcs = farm(12, first_address=loopback_address().rsplit(".", 1)[0] + ".1", password=PASSWORD)
    emu = HttpBmcEmulator(tmp_path, bmcs)
    emu.start()
    try:
        runner = PowerRunner(PowerSettings(poll_interval=1.2, max_concurrency=16), registry)
        poller = PowerPoller(runner)
        poller.set_targets({b.name: PowerTarget("redfish", emu.params(b.name, "1")) for b in bmcs})
        poller.start()
        await asyncio.sleep(1.25)
        await poller.stop()
        times = [t for s in emu.all_states().values() for t in s["request_times"]]
    finally:
        emu.stop()
    assert len(times) >= 12
    assert {r.state for r in poller.results.values()} == {"off"} and len(poller.results) == 12
    assert max_in_window(times, 0.05) <= 2, sorted(times)  # 12 polls 0.1 s apart, not a burst
    assert max(times) - min(times) > 0.9
