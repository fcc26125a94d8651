"""The power runner and poller with fake drivers (no processes, no network)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest

from metalplane.rack.power import runner as runner_mod
from metalplane.rack.power.drivers import DriverRegistry
from metalplane.rack.power.errors import (
    PowerAuthError,
    PowerBackoffError,
    PowerBMCError,
    PowerConfigError,
    PowerTimeoutError,
)
from metalplane.rack.power.ipmi import IpmiDriver
from metalplane.rack.power.policy import PowerSettings, max_in_window
from metalplane.rack.power.runner import PollResult, PowerPoller, PowerRunner, PowerTarget
from metalplane.rpc.power_schema import REDACTED


class FakeIpmi(IpmiDriver):
    """IPMI's schema and identity, scripted behaviour; records concurrency per BMC."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay
        self.calls: list[tuple[float, str, str]] = []  # (time, action, address)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.total = 0
        self.max_total = 0
        self.script: dict[str, list] = defaultdict(list)  # address -> outcomes (exception or value)
        self.always: dict[str, Exception] = {}

    async def _do(self, action, params, timeout):
        address = params["power_address"]
        self.calls.append((time.monotonic(), action, address))
        self.in_flight[address] += 1
        self.total += 1
        self.max_in_flight[address] = max(self.max_in_flight[address], self.in_flight[address])
        self.max_total = max(self.max_total, self.total)
        try:
            await asyncio.sleep(self.delay)
            if address in self.always:
                raise self.always[address]
            if self.script[address]:
                outcome = self.script[address].pop(0)
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            return "on" if action == "query" else None
        finally:
            self.in_flight[address] -= 1
            self.total -= 1

    async def query(self, params, *, timeout=30.0):
        return await self._do("query", params, timeout)

    async def on(self, params, *, timeout=30.0):
        return await self._do("on", params, timeout)

    async def off(self, params, *, timeout=30.0):
        return await self._do("off", params, timeout)

    async def cycle(self, params, *, timeout=30.0):
        return await self._do("cycle", params, timeout)

    def calls_to(self, address):
        return [c for c in self.calls if c[2] == address]


def make(settings: PowerSettings | None = None, delay: float = 0.0) -> tuple[PowerRunner, FakeIpmi]:
    fake = FakeIpmi(delay)
    settings = settings or PowerSettings(
        retry_delay=0.01, retry_delay_max=0.02, backoff_base=5, backoff_max=60, query_timeout=5, action_timeout=5
    )
    return PowerRunner(settings, DriverRegistry({"ipmi": fake})), fake


def bmc(address: str, **extra) -> dict[str, str]:
    return {"power_address": address, "power_user": "admin", "power_pass": "hunter22", **extra}


async def test_one_call_at_a_time_per_bmc():
    runner, fake = make(delay=0.05)
    same = [runner.query("ipmi", bmc("10.0.0.1")) for _ in range(6)]
    other = [runner.on("ipmi", bmc("10.0.0.2")) for _ in range(3)]
    results = await asyncio.gather(*same, *other)
    assert results[:6] == ["on"] * 6
    assert fake.max_in_flight == {"10.0.0.1": 1, "10.0.0.2": 1}
    assert fake.max_total == 2  # the two BMCs did run in parallel
    assert runner.stats.max_in_flight_per_bmc == 1
    assert runner._slots == {}  # locks are dropped when unused


async def test_same_bmc_different_port_or_user_is_another_bmc():
    runner, fake = make(delay=0.05)
    await asyncio.gather(
        runner.query("ipmi", bmc("10.0.0.1")),
        runner.query("ipmi", bmc("10.0.0.1:624")),
        runner.query("ipmi", {**bmc("10.0.0.1"), "power_user": "root"}),
    )
    assert fake.max_total == 3


async def test_global_concurrency_limit():
    runner, fake = make(PowerSettings(max_concurrency=3), delay=0.05)
    await asyncio.gather(*(runner.query("ipmi", bmc(f"10.0.1.{i}")) for i in range(12)))
    assert fake.max_total == 3
    assert runner.stats.max_in_flight == 3


async def test_bounded_retries_then_success_and_failure():
    runner, fake = make()
    p = bmc("10.0.0.3")
    fake.script["10.0.0.3"] = [PowerTimeoutError("10.0.0.3"), PowerTimeoutError("10.0.0.3"), "off"]
    assert await runner.query("ipmi", p) == "off"
    assert len(fake.calls_to("10.0.0.3")) == 3
    assert runner.health_of("ipmi", p).failures == 0

    fake.always["10.0.0.3"] = PowerTimeoutError("10.0.0.3", "gone")
    with pytest.raises(PowerTimeoutError):
        await runner.query("ipmi", p)
    assert len(fake.calls_to("10.0.0.3")) == 6  # 3 more: retries are bounded
    health = runner.health_of("ipmi", p)
    assert health.failures == 1 and not health.failing and "gone" in health.last_error


async def test_wrong_password_is_not_retried_and_marks_failing():
    runner, fake = make()
    p = bmc("10.0.0.4")
    fake.always["10.0.0.4"] = PowerAuthError(
        "10.0.0.4", "wrong user name, password or BMC key", answer="RAKP 2 HMAC is invalid"
    )
    with pytest.raises(PowerAuthError) as err:
        await runner.query("ipmi", p)
    assert "10.0.0.4" in str(err.value) and "RAKP 2 HMAC is invalid" in str(err.value)
    assert len(fake.calls_to("10.0.0.4")) == 1
    health = runner.health_of("ipmi", p)
    assert health.failing and health.last_error_kind == "auth" and runner.failing() == [health]

    # The poller's background calls are refused without touching the BMC...
    for _ in range(20):
        with pytest.raises(PowerBackoffError) as backoff:
            await runner.query("ipmi", p, background=True)
    assert "RAKP 2 HMAC is invalid" in str(backoff.value) and backoff.value.retry_in > 0
    assert len(fake.calls_to("10.0.0.4")) == 1
    assert runner.stats.refused == 20
    assert not runner.background_allowed("ipmi", p)
    # ...an explicit action gets exactly one attempt...
    with pytest.raises(PowerAuthError):
        await runner.on("ipmi", p)
    assert len(fake.calls_to("10.0.0.4")) == 2
    # ...and a fixed password is tried at once, by the poller too.
    del fake.always["10.0.0.4"]
    assert await runner.query("ipmi", {**p, "power_pass": "fixed-password"}, background=True) == "on"
    assert not runner.health_of("ipmi", p).failing


async def test_backoff_grows_and_success_clears(monkeypatch):
    now = [1000.0]
    settings = PowerSettings(retries=0, backoff_base=10, backoff_max=100, backoff_jitter=0, failing_after=2)
    fake = FakeIpmi()
    runner = PowerRunner(settings, DriverRegistry({"ipmi": fake}), clock=lambda: now[0])
    p = bmc("10.0.0.5")
    fake.always["10.0.0.5"] = PowerTimeoutError("10.0.0.5")
    waits = []
    for _ in range(5):
        with pytest.raises(PowerTimeoutError):
            await runner.query("ipmi", p, background=True)
        health = runner.health_of("ipmi", p)
        waits.append(health.retry_at - now[0])
        with pytest.raises(PowerBackoffError):
            await runner.query("ipmi", p, background=True)
        now[0] = health.retry_at
    assert waits == [10, 20, 40, 80, 100]
    assert len(fake.calls) == 5
    del fake.always["10.0.0.5"]
    assert await runner.query("ipmi", p, background=True) == "on"
    assert runner.health_of("ipmi", p).failures == 0


async def test_runner_cuts_a_hung_driver(monkeypatch):
    monkeypatch.setattr(runner_mod, "TIMEOUT_GRACE", 0.05)
    runner, _fake = make(PowerSettings(query_timeout=0.1, retries=0), delay=30)
    t0 = time.monotonic()
    with pytest.raises(PowerTimeoutError, match=r"no answer from BMC 10\.0\.0\.6"):
        await runner.query("ipmi", bmc("10.0.0.6"))
    assert time.monotonic() - t0 < 1.0


async def test_secrets_are_scrubbed_and_crashes_contained():
    runner, fake = make(PowerSettings(retries=0))
    fake.always["10.0.0.7"] = PowerBMCError("10.0.0.7", "BMC said: bad password hunter22")
    with pytest.raises(PowerBMCError) as err:
        await runner.off("ipmi", bmc("10.0.0.7"))
    assert "hunter22" not in str(err.value) and REDACTED in str(err.value)
    fake.always["10.0.0.8"] = RuntimeError("oops hunter22")
    with pytest.raises(PowerBMCError, match="driver error: RuntimeError") as err:
        await runner.off("ipmi", bmc("10.0.0.8"))
    assert "hunter22" not in str(err.value)
    assert "hunter22" not in repr(runner.health_of("ipmi", bmc("10.0.0.8")).as_dict())


async def test_invalid_parameters_and_unknown_type():
    runner, fake = make()
    with pytest.raises(PowerConfigError, match="power_address: required"):
        await runner.query("ipmi", {"power_user": "x"})
    with pytest.raises(PowerConfigError, match="unknown power type"):
        await runner.query("virsh", {})
    assert fake.calls == []


async def test_manual_needs_no_bmc():
    runner = PowerRunner()
    assert await runner.query("manual", {}) == "unknown"
    assert "manually" in await runner.on("manual", {})


async def test_poller_spreads_queries_over_the_interval():
    runner, fake = make(PowerSettings(poll_interval=1.0, max_concurrency=16))
    results: list[PollResult] = []
    poller = PowerPoller(runner, on_result=results.append)
    poller.set_targets({f"m{i}": PowerTarget("ipmi", bmc(f"10.0.2.{i}")) for i in range(10)})
    poller.start()
    await asyncio.sleep(2.05)
    await poller.stop()
    times = sorted(t for t, action, _ in fake.calls)
    per_target = {a: len(fake.calls_to(a)) for a in {c[2] for c in fake.calls}}
    assert len(per_target) == 10 and all(2 <= n <= 3 for n in per_target.values()), per_target
    # Spread: never more than 2 queries within 0.1 s (all at once would be 10).
    assert max_in_window(times, 0.1) <= 2
    assert {r.state for r in results} == {"on"} and set(poller.results) == {f"m{i}" for i in range(10)}


async def test_poller_leaves_failing_bmc_alone_and_skips_busy_targets():
    settings = PowerSettings(poll_interval=0.1, retries=0, backoff_base=1.0, backoff_max=1.0, backoff_jitter=0)
    runner, fake = make(settings)
    fake.always["10.0.3.1"] = PowerAuthError("10.0.3.1", "wrong password")
    results: list[PollResult] = []
    poller = PowerPoller(runner, on_result=results.append)
    poller.set_targets({"bad": PowerTarget("ipmi", bmc("10.0.3.1"))})
    poller.start()
    await asyncio.sleep(1.55)
    await poller.stop()
    # 15 poll rounds, but the BMC was only called at t=0 and after its 1 s backoff.
    assert len(fake.calls_to("10.0.3.1")) == 2
    kinds = [r.error.kind for r in results]
    assert kinds.count("auth") == 2 and kinds.count("backoff") >= 10
    assert all("wrong password" in (r.message or "") for r in results)

    slow, fake2 = make(PowerSettings(poll_interval=0.1), delay=0.35)
    poller = PowerPoller(slow)
    poller.set_targets({"slow": PowerTarget("ipmi", bmc("10.0.3.2"))})
    poller.start()
    await asyncio.sleep(1.0)
    await poller.stop()
    assert 2 <= len(fake2.calls) <= 4  # not 10 queued-up queries
    assert fake2.max_total == 1


async def test_poller_target_changes():
    runner, fake = make(PowerSettings(poll_interval=0.5))
    poller = PowerPoller(runner)
    poller.set_targets({"a": PowerTarget("ipmi", bmc("10.0.4.1")), "b": PowerTarget("ipmi", bmc("10.0.4.2"))})
    phases = dict(poller.phases)
    poller.start()
    await asyncio.sleep(0.3)
    poller.set_targets({"a": PowerTarget("ipmi", bmc("10.0.4.1")), "c": PowerTarget("ipmi", bmc("10.0.4.3"))})
    assert poller.phases["a"] == phases["a"] and "b" not in poller.phases
    await asyncio.sleep(0.6)
    await poller.stop()
    assert fake.calls_to("10.0.4.3") and "b" not in poller.results
