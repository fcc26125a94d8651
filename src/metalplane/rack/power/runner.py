"""The rack's power executor and its background poller.

    runner = PowerRunner(PowerSettings(poll_interval=300, max_concurrency=16))
    state = await runner.query("ipmi", params)             # "on" | "off" | "unknown"
    note = await runner.on("redfish", params)               # None or a note ("already on")
    await runner.off(...); await runner.cycle(...)
    await runner.set_boot_device("ipmi", params, "pxe")
    runner.health_of("ipmi", params)                        # BmcHealth (failing? last error?)
    runner.failing()                                        # [BmcHealth] of failing BMCs

    poller = PowerPoller(runner, on_result=callback)        # callback(PollResult)
    poller.set_targets({"abc123": PowerTarget("ipmi", params), ...})
    poller.start(); ...; await poller.stop()
    await runner.aclose()

Guarantees (the decisions themselves live in :mod:`.policy`):

* every attempt has a timeout (``query_timeout`` / ``action_timeout``), every
  action a bounded number of attempts;
* at most ONE call in flight per BMC (keyed by type + address + port + user;
  machines sharing a BMC queue behind each other), and at most
  ``max_concurrency`` calls in flight on the rack; a call waiting for its BMC
  holds no global slot;
* a failing BMC backs off exponentially: background calls are refused
  (:class:`PowerBackoffError`, no packet sent) until its backoff ends; it is
  marked failing with the last error after ``failing_after`` failures, or at
  once on a wrong password or unusable parameters;
* errors name the BMC and never contain a secret (scrubbed again here).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from metalplane.rack import metrics
from metalplane.rack.power import policy
from metalplane.rack.power.base import PowerDriver, PowerState, prepare
from metalplane.rack.power.drivers import DriverRegistry
from metalplane.rack.power.errors import (
    PowerBackoffError,
    PowerBMCError,
    PowerConfigError,
    PowerError,
    PowerTimeoutError,
)
from metalplane.rack.power.policy import BmcHealth, PowerSettings
from metalplane.rpc.power_schema import scrub, secret_values

log = logging.getLogger("metalplane.rack.power")

Action = Literal["query", "on", "off", "cycle", "set_boot_device"]
ACTIONS: tuple[str, ...] = ("query", "on", "off", "cycle", "set_boot_device")

#: Added to a driver's own timeout before the runner cuts it off.
TIMEOUT_GRACE = 2.0


def params_fingerprint(power_type: str, params: Mapping[str, str]) -> str:
    """A digest of the parameters (kept in memory only) to notice a changed password."""
    blob = json.dumps([power_type, sorted(params.items())], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class _BmcSlot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    in_flight: int = 0


@dataclass
class RunnerStats:
    calls: int = 0  # driver attempts started
    failures: int = 0  # actions that failed (after retries)
    refused: int = 0  # background calls refused by backoff
    in_flight: int = 0
    max_in_flight: int = 0
    max_in_flight_per_bmc: int = 0


class PowerRunner:
    """Runs power actions with timeouts, bounded retries, one call per BMC and backoff."""

    def __init__(
        self,
        settings: PowerSettings | None = None,
        registry: DriverRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ):
        self.settings = settings or PowerSettings()
        self.registry = registry or DriverRegistry()
        self.clock = clock
        self.rand = rand
        self.stats = RunnerStats()
        self._health: dict[str, BmcHealth] = {}
        self._slots: dict[str, _BmcSlot] = {}
        self._global: asyncio.Semaphore | None = None
        self._global_loop: asyncio.AbstractEventLoop | None = None

    # -- public actions -------------------------------------------------------

    async def query(self, power_type: str, params: Mapping[str, object], *, background: bool = False) -> PowerState:
        return await self.execute("query", power_type, params, background=background)

    async def on(self, power_type: str, params: Mapping[str, object]) -> str | None:
        return await self.execute("on", power_type, params)

    async def off(self, power_type: str, params: Mapping[str, object]) -> str | None:
        return await self.execute("off", power_type, params)

    async def cycle(self, power_type: str, params: Mapping[str, object]) -> str | None:
        return await self.execute("cycle", power_type, params)

    async def set_boot_device(
        self, power_type: str, params: Mapping[str, object], device: str = "pxe", *, persistent: bool = False
    ) -> None:
        await self.execute("set_boot_device", power_type, params, device=device, persistent=persistent)

    async def execute(
        self, action: str, power_type: str, params: Mapping[str, object], *, background: bool = False, **kwargs: Any
    ) -> Any:
        """Run `action` against the BMC of `params`; raises PowerError (scrubbed) on failure.

        background=True (the poller) is refused with PowerBackoffError, without
        any call, while the BMC backs off.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown power action {action!r}")
        metrics.power_action(action, power_type)
        try:
            return await self._execute(action, power_type, params, background, kwargs)
        except PowerError as error:
            metrics.power_failure(action, power_type, error.kind)
            raise

    async def _execute(
        self, action: str, power_type: str, params: Mapping[str, object], background: bool, kwargs: dict[str, Any]
    ) -> Any:
        driver = self._driver(power_type, params)
        p = prepare(driver, params)
        key = driver.bmc_key(p)
        if key is None:  # no BMC (manual): nothing to protect
            return await self._attempt(driver, action, p, kwargs)
        health = self._refresh(key, driver.bmc_name(p), params_fingerprint(power_type, p))
        self._check_backoff(health, background)
        slot = self._slots.setdefault(key, _BmcSlot())
        slot.users += 1
        try:
            async with slot.lock:
                health = self._refresh(key, health.bmc, health.fingerprint)
                self._check_backoff(health, background)
                return await self._run_attempts(driver, action, p, kwargs, key, slot)
        finally:
            slot.users -= 1
            if slot.users == 0 and self._slots.get(key) is slot:
                del self._slots[key]

    # -- health -----------------------------------------------------------------

    def health(self, key: str) -> BmcHealth | None:
        return self._health.get(key)

    def health_of(self, power_type: str, params: Mapping[str, object]) -> BmcHealth | None:
        driver = self.registry.get(power_type)
        key = driver.bmc_key(params)
        return self._health.get(key) if key else None

    def failing(self) -> list[BmcHealth]:
        return [h for h in self._health.values() if h.failing]

    def background_allowed(self, power_type: str, params: Mapping[str, object]) -> bool:
        """Would a background query to this BMC be made now (not backing off)?"""
        health = self.health_of(power_type, params)
        return health is None or policy.background_allowed(health, self.clock())

    def forget(self, key: str) -> None:
        """Drop what is known about a BMC (e.g. it no longer belongs to this rack)."""
        self._health.pop(key, None)

    async def aclose(self) -> None:
        await self.registry.aclose()

    # -- internals --------------------------------------------------------------

    def _driver(self, power_type: str, params: Mapping[str, object]) -> PowerDriver:
        try:
            return self.registry.get(power_type)
        except KeyError as exc:
            raise PowerConfigError(None, exc.args[0]) from None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._global is None or self._global_loop is not loop:
            self._global = asyncio.Semaphore(self.settings.max_concurrency)
            self._global_loop = loop
        return self._global

    def _refresh(self, key: str, bmc: str | None, fingerprint: str) -> BmcHealth:
        health = self._health.get(key) or BmcHealth(key=key, bmc=bmc, fingerprint=fingerprint)
        health = policy.refresh(health, fingerprint)
        self._health[key] = health
        return health

    def _check_backoff(self, health: BmcHealth, background: bool) -> None:
        now = self.clock()
        if background and not policy.background_allowed(health, now):
            self.stats.refused += 1
            raise PowerBackoffError(
                health.bmc,
                f"retry in {health.retry_at - now:.0f} s; last error: {health.last_error}",
                last_error=health.last_error,
                retry_in=health.retry_at - now,
            )

    async def _run_attempts(
        self, driver: PowerDriver, action: str, p: dict[str, str], kwargs: dict[str, Any], key: str, slot: _BmcSlot
    ) -> Any:
        attempts = policy.max_attempts(self._health[key], self.settings)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._semaphore():
                    slot.in_flight += 1
                    self.stats.max_in_flight_per_bmc = max(self.stats.max_in_flight_per_bmc, slot.in_flight)
                    self._health[key] = self._counted(self._health[key])
                    try:
                        result = await self._attempt(driver, action, p, kwargs)
                    finally:
                        slot.in_flight -= 1
            except PowerError as error:
                if policy.should_retry(action, error.kind, error.retryable, attempt, attempts):
                    log.info("power %s: attempt %d/%d failed, retrying: %s", action, attempt, attempts, error)
                    await asyncio.sleep(policy.retry_delay(attempt, self.settings))
                    continue
                self.stats.failures += 1
                was_failing = self._health[key].failing
                self._health[key] = policy.record_failure(
                    self._health[key],
                    self.clock(),
                    message=str(error),
                    kind=error.kind,
                    persistent=error.persistent,
                    settings=self.settings,
                    rand=self.rand(),
                )
                health = self._health[key]
                if health.failing and not was_failing:
                    log.warning(
                        "BMC %s marked failing after %d failure(s); background calls paused for %.0f s: %s",
                        health.bmc,
                        health.failures,
                        health.retry_at - self.clock(),
                        error,
                    )
                else:
                    log.info("power %s failed: %s", action, error)
                raise
            else:
                if self._health[key].failing:
                    log.warning("BMC %s answers again", self._health[key].bmc)
                self._health[key] = policy.record_success(self._health[key], self.clock())
                return result

    def _counted(self, health: BmcHealth) -> BmcHealth:
        return replace(health, calls=health.calls + 1)

    async def _attempt(self, driver: PowerDriver, action: str, p: dict[str, str], kwargs: dict[str, Any]) -> Any:
        timeout = self.settings.timeout_for(action)
        bmc = driver.bmc_name(p)
        self.stats.calls += 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            async with asyncio.timeout(timeout + TIMEOUT_GRACE):
                method = getattr(driver, action)
                return await method(p, timeout=timeout, **kwargs)
        except TimeoutError:
            raise PowerTimeoutError(bmc, f"no answer within {timeout:g} s") from None
        except PowerError as error:
            clean = scrub(str(error), secret_values(driver.name, p))
            raise (error if clean == str(error) else error.with_message(clean)) from None
        except Exception as exc:  # a driver bug: still a failure of this call, still scrubbed
            log.exception("power driver %s crashed during %s", driver.name, action)
            text = scrub(f"{type(exc).__name__}: {exc}", secret_values(driver.name, p))
            raise PowerBMCError(bmc, f"driver error: {text}") from None
        finally:
            self.stats.in_flight -= 1


# --------------------------------------------------------------------------- poller


@dataclass(frozen=True)
class PowerTarget:
    """A machine to poll: its power type and parameters."""

    power_type: str
    params: Mapping[str, object]


@dataclass(frozen=True)
class PollResult:
    target: str
    state: str  # "on" | "off" | "unknown" | "error"
    error: PowerError | None
    at: float

    @property
    def message(self) -> str | None:
        return str(self.error) if self.error else None


OnResult = Callable[[PollResult], Awaitable[None] | None]


class PowerPoller:
    """Queries a set of machines' power state once per poll_interval each, spread over the interval."""

    def __init__(
        self, runner: PowerRunner, *, on_result: OnResult | None = None, clock: Callable[[], float] | None = None
    ):
        self.runner = runner
        self.on_result = on_result
        self.clock = clock or runner.clock
        self.interval = runner.settings.poll_interval
        self.targets: dict[str, PowerTarget] = {}
        self.phases: dict[str, float] = {}
        self.results: dict[str, PollResult] = {}
        self.origin = self.clock()
        self._due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task] = {}
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def set_targets(self, targets: Mapping[str, PowerTarget]) -> None:
        """Replace the set of machines to poll (new ones fit into the gaps of the schedule)."""
        now = self.clock()
        if not self._due:  # (re)starting from nothing: the schedule starts now
            self.origin = now
        self.targets = dict(targets)
        self.phases = policy.assign_phases(self.phases, self.targets, self.interval)
        for key in list(self._due):
            if key not in self.targets:
                del self._due[key]
                self.results.pop(key, None)
        for key, phase in self.phases.items():
            if key not in self._due:
                self._due[key] = policy.next_occurrence(phase, self.interval, self.origin, now)
        if self._changed is not None:
            self._changed.set()

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="power-poller")
        return self._task

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self._running.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._running.clear()

    async def run(self) -> None:
        self._changed = asyncio.Event()
        while True:
            now = self.clock()
            for key, due in list(self._due.items()):
                if due > now:
                    continue
                self._due[key] = policy.next_occurrence(
                    self.phases[key], self.interval, self.origin, max(now, due + self.interval * 0.5)
                )
                if key in self._running:  # previous poll still going: skip this round
                    continue
                self._running[key] = asyncio.get_running_loop().create_task(self._poll(key))
            wait = min(self._due.values(), default=now + self.interval) - self.clock()
            self._changed.clear()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass

    async def _poll(self, key: str) -> None:
        target = self.targets.get(key)
        try:
            if target is None:
                return
            try:
                state: str = await self.runner.query(target.power_type, target.params, background=True)
                error = None
            except PowerError as exc:
                state, error = "error", exc
            result = PollResult(key, state, error, self.clock())
            if key in self.targets:
                self.results[key] = result
                if self.on_result is not None:
                    try:
                        maybe = self.on_result(result)
                        if asyncio.iscoroutine(maybe):
                            await maybe
                    except Exception:
                        log.exception("power poll callback failed for %s", key)
        finally:
            self._running.pop(key, None)
