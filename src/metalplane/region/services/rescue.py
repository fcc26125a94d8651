"""Rescue mode: `machine rescue_mode` and `exit_rescue_mode` (admins, as MAAS), and the
ephemeral environment's report that it is up (docs/boot.md, "Rescue mode").

rescue_mode: Entering rescue mode (the status before is kept as previous_status), a
fresh token, powered on (cycled when on) so that it PXE-boots the ephemeral image in
`mp_mode=rescue`; its `rescue/booted` report -> Rescue mode. exit_rescue_mode:
Exiting rescue mode, then the machine is powered off (cycled when it was Deployed, so
that it boots its disk) and goes back to the status before. A BMC that refuses ends in
Failed to enter / Failed to exit rescue mode with its reason; the region's timer fails
a machine that stays in Entering or Exiting rescue mode past its deadline.

Where metalplane answers otherwise than MAAS: the owner is left as it is (MAAS makes the
admin the owner, and drops the owner on exit unless the machine was Deployed); a BMC
failure entering rescue mode ends in Failed to enter rescue mode (MAAS puts the old
status back).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import node_tokens
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Refused
from metalplane.region.services import commissioning, enrolment, erasing, events, lifecycle, machines, power, settings
from metalplane.region.services.node_status import (
    EXIT_RESCUE_FAILED,
    HARD_TIMEOUTS,
    RESCUE_FAILED,
    Status,
    exit_rescue_power,
    rescue_previous,
)
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User


async def start(conn: AsyncConnection, system_id: str, actor: User) -> Row:
    """Into Entering rescue mode (MAAS's transition table says from where)."""
    machine = await lifecycle.acting_on(conn, system_id, actor, "rescue_mode")
    previous = rescue_previous(machine["status"], machine["previous_status"])
    seconds = 60 * await settings.get_setting(conn, "node_timeout")
    await events.record(
        conn, machine, "REQUEST_NODE_START_RESCUE_MODE", action="start rescue mode", username=actor.username
    )
    await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == machine["id"]))
    await commissioning.token_for(conn, machine["id"])
    await enrolment.forget(conn, machine["id"])
    await lifecycle.set_timed_status(
        conn,
        machine,
        Status.ENTERING_RESCUE_MODE,
        previous_status=previous,
        error_description="",
        timeout=timedelta(seconds=seconds),
    )
    return machine


async def enter(work: Work, rpc_server: Any, system_id: str, actor: User) -> machines.Machines:
    """`machine rescue_mode`."""
    async with work.tx() as conn:
        machine = await start(conn, system_id, actor)
    if machine["bmc_id"] is not None:
        try:
            await power.boot_it(work, rpc_server, system_id)
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                await lifecycle.fail(
                    conn,
                    system_id,
                    Status.ENTERING_RESCUE_MODE,
                    f"{RESCUE_FAILED} Powering it on failed: {exc.detail}",
                )
            raise
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


def booted_outcome(body: Row) -> tuple[bool, str]:
    """(up, the reason a failure gives) from a `rescue/booted` report."""
    return erasing.outcome(body, RESCUE_FAILED)


async def booted(conn: AsyncConnection, machine: Row, body: Row) -> None:
    """`rescue/booted`: the ephemeral environment is up -> Rescue mode (again: nothing)."""
    if machine["status"] == Status.RESCUE_MODE:
        return
    if machine["status"] != Status.ENTERING_RESCUE_MODE:
        raise Refused(f"Machine {machine['hostname']} is not entering rescue mode.")
    up, reason = booted_outcome(body)
    if not up:
        await lifecycle.fail(conn, machine["system_id"], Status.ENTERING_RESCUE_MODE, reason)
        return
    locked = await machines.get_machine(conn, machine["system_id"], lock=True)
    await lifecycle.set_status(conn, locked, Status.RESCUE_MODE, status_expires=None, status_timeout=None)


async def leave(work: Work, rpc_server: Any, system_id: str, actor: User) -> machines.Machines:
    """`machine exit_rescue_mode`: Exiting rescue mode, the power action, the status before."""
    timeout = HARD_TIMEOUTS[Status.EXITING_RESCUE_MODE]
    async with work.tx() as conn:
        machine = await lifecycle.acting_on(conn, system_id, actor, "exit_rescue_mode")
        previous = rescue_previous(machine["status"], machine["previous_status"])
        await events.record(
            conn, machine, "REQUEST_NODE_STOP_RESCUE_MODE", action="stop rescue mode", username=actor.username
        )
        await lifecycle.set_timed_status(
            conn,
            machine,
            Status.EXITING_RESCUE_MODE,
            previous_status=previous,
            timeout=timeout,
        )
    if machine["bmc_id"] is not None:
        try:
            await power.run(work, rpc_server, system_id, exit_rescue_power(previous))
        except power.PowerFailed as exc:
            reason = f"{EXIT_RESCUE_FAILED} Powering it failed: {exc.detail}"
            async with work.tx() as conn:
                failed = await machines.get_machine(conn, system_id)
                await events.record(conn, failed, "FAILED_EXITING_RESCUE_MODE", reason)
                await lifecycle.fail(conn, system_id, Status.EXITING_RESCUE_MODE, reason)
            raise
    async with work.tx() as conn:
        await exited(conn, system_id)
        return await machines.show_machine(conn, system_id)


async def exited(conn: AsyncConnection, system_id: str) -> None:
    """Exiting rescue mode -> the status before, with MAAS's Exited rescue mode event."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] != Status.EXITING_RESCUE_MODE:
        return
    await lifecycle.set_status(
        conn,
        machine,
        machine["previous_status"],
        status_event="EXITED_RESCUE_MODE",
        previous_status=None,
        status_expires=None,
        status_timeout=None,
    )
