"""The rack's power service: actions the region asks for, and polling the BMCs it owns.

The region hands each rack the machines behind the BMCs it owns (targets) and
the polling settings; results go back in batches. Actions arrive as RPC calls;
after a failover (the previous owner died mid-action) the action is completed
without being repeated: query first, act only if still needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from metalplane.background import background
from metalplane.rack.power.errors import PowerError
from metalplane.rack.power.policy import PowerSettings
from metalplane.rack.power.runner import PollResult, PowerPoller, PowerRunner, PowerTarget
from metalplane.rpc.messages import PowerReport, PowerResult, PowerTargets
from metalplane.rpc.protocol import RemoteError

log = logging.getLogger("metalplane.rack.power")
WANTED = {"on": "on", "off": "off", "cycle": "on"}
REPORT_LINGER = 0.5


def failover_plan(action: str, state: str) -> str | None:
    """After the previous owner died mid-action: what is still to do, given the state now.

    on/off: nothing if already there. cycle: power on if off; if on, the dead
    rack's cycle may have run, and cycling again could run it twice, so nothing.
    """
    if action in ("on", "off"):
        return None if state == action else action
    if action == "cycle":
        return "on" if state == "off" else None
    return action


class PowerService:
    def __init__(self, report: Callable[[list[PowerReport]], Awaitable[None]]):
        self.report = report
        self.settings = PowerSettings()
        self.runner = PowerRunner(self.settings)
        self.poller = PowerPoller(self.runner, on_result=self._polled)
        self.bmc_of: dict[str, int] = {}
        self._pending: list[PowerReport] = []
        self._flush: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()

    async def action(
        self, action: str, power_type: str, params: dict[str, Any], after_failover: bool = False
    ) -> PowerResult:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            if action == "query":
                return PowerResult(await self.runner.query(power_type, params))
            todo = action
            if after_failover:
                planned = failover_plan(action, await self.runner.query(power_type, params))
                if planned is None:
                    return PowerResult(WANTED[action], "already done before the failover")
                todo = planned
            note = await getattr(self.runner, todo)(power_type, params)
            return PowerResult(WANTED[todo], note or "")
        except PowerError as exc:
            raise RemoteError(f"power-{exc.kind}", str(exc)) from None
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def drain(self, timeout: float) -> int:
        """Let power actions in flight finish (a rack that stops mid-cycle leaves a machine off);
        returns how many were still running at the deadline."""
        running = {t for t in self._in_flight if not t.done()}
        if not running:
            return 0
        log.info("waiting up to %.0f s for %d power action(s) in flight", timeout, len(running))
        _, pending = await asyncio.wait(running, timeout=timeout)
        return len(pending)

    def apply_targets(self, answer: PowerTargets) -> None:
        wanted = PowerSettings(
            poll_interval=answer.settings.poll_interval, max_concurrency=answer.settings.max_concurrency
        )
        if wanted != self.settings:
            background(self.poller.stop())
            self.settings = wanted
            self.runner = PowerRunner(wanted)
            self.poller = PowerPoller(self.runner, on_result=self._polled)
        self.bmc_of = {t.system_id: t.bmc_id for t in answer.targets}
        self.poller.set_targets({t.system_id: PowerTarget(t.power_type, t.params) for t in answer.targets})
        self.poller.start()

    async def _polled(self, result: PollResult) -> None:
        bmc_id = self.bmc_of.get(result.target)
        if bmc_id is None:
            return
        self._pending.append(PowerReport(result.target, bmc_id, result.state, result.message))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(REPORT_LINGER)  # gather a batch
        batch, self._pending = self._pending, []
        try:
            await self.report(batch)
        except Exception as exc:  # the region is away: polls will report again next round
            log.debug("power report failed: %s", exc)

    async def stop(self) -> None:
        await self.poller.stop()
