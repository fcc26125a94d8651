"""Power actions: run on the BMC's owner; if that rack dies mid-call, once more on the next.

An action is recorded before it is sent (power_actions), so it is never
silently dropped. After a failover the new owner queries first and only acts
if the machine is not already in the wanted state, so an action the dead rack
did complete is not repeated (a cycle is completed by powering on if the
machine is off; if it is on, it is not cycled again).
"""

from __future__ import annotations

from typing import Any

from metalplane.region import metrics
from metalplane.region.db.tables import power_actions
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Unavailable
from metalplane.region.services import bmcs, events, machines, permissions
from metalplane.region.services.rows import insert_row, update_row
from metalplane.rpc import power_schema as schema
from metalplane.rpc.messages import PowerAction
from metalplane.rpc.protocol import ConnectionLost, RemoteError

ACTIONS = ("on", "off", "cycle", "query")
CALL_TIMEOUT = 90.0


class PowerFailed(Unavailable):
    """MAAS answers power problems with 503; the message names the BMC."""

    retry_after = None


async def _owner(work: Work, bmc_id: int, lost: frozenset[int] = frozenset()) -> tuple[int, str]:
    threshold = work.region_config.balance_threshold
    async with work.tx() as conn:
        owner = await bmcs.owner_of(conn, bmc_id)
        if owner is None or owner[0] in lost:
            await bmcs.reassign(conn, threshold, exclude=lost)
            owner = await bmcs.owner_of(conn, bmc_id)
    if owner is None:
        raise PowerFailed("No rack controller is connected that can reach this machine's BMC.")
    return owner


async def _record(work: Work, action_id: int, **values: Any) -> None:
    async with work.tx() as conn:
        await update_row(conn, power_actions, action_id, **values)


async def run(work: Work, rpc_server: Any, system_id: str, action: str, username: str = "") -> dict[str, Any]:
    """Run `action` for machine `system_id`; returns {"state": ..., "note": ...}.
    The work acts outside the database from the start, so it is never replayed.
    `username`: who asked (the event log records a user's power requests)."""
    try:
        result = await _run(work, rpc_server, system_id, action, username)
    except PowerFailed:
        metrics.power_action(action, "failed")
        raise
    metrics.power_action(action, "done")
    return result


async def _run(work: Work, rpc_server: Any, system_id: str, action: str, username: str) -> dict[str, Any]:
    work.acting_outside()
    async with work.tx() as conn:
        machine = await machines.get_machine(conn, system_id)
        action_id = await insert_row(conn, power_actions, node_id=machine["id"], action=action, state="running")
        if username:
            await events.power_requested(conn, machine, action, username)
    power_type = machines.power_type_of(machine)
    params = machines.power_parameters(machine)
    if machine["bmc_id"] is None:  # manual: nothing to call
        note = {"query": "unknown"}.get(action, "power this machine manually")
        await _record(work, action_id, state="done", result=note)
        return {"state": "unknown", "note": note}
    secrets = schema.secret_values(power_type, params)
    after_failover = False
    lost: frozenset[int] = frozenset()
    for attempt in (1, 2):
        rack_id, rack = await _owner(work, machine["bmc_id"], lost)
        if rack_id in lost:
            break
        await _record(work, action_id, rack_id=rack_id, attempts=attempt)
        try:
            result = await rpc_server.call_rack(
                rack, PowerAction(action, power_type, params, after_failover), timeout=CALL_TIMEOUT
            )
        except ConnectionLost:
            if after_failover:
                break
            after_failover = True  # the owner died with the action in flight: once more, elsewhere
            lost = frozenset({rack_id})
            continue
        except RemoteError as exc:
            message = schema.scrub(exc.message, secrets)
            async with work.tx() as conn:
                await bmcs.record_result(conn, rack_id, machine["bmc_id"], message)
                await events.power_result(conn, machine, action, message)
            await _record(work, action_id, state="failed", error=message)
            raise PowerFailed(message) from None
        async with work.tx() as conn:
            await bmcs.record_result(conn, rack_id, machine["bmc_id"], None)
            await machines.set_power_state(conn, [machine["id"]], result.state)
            await events.power_result(conn, machine, action, None)
        await _record(work, action_id, state="done", result=result.note or result.state)
        return {"state": result.state, "note": result.note}
    await _record(work, action_id, state="failed", error="the racks owning this BMC died twice during the action")
    raise PowerFailed("The rack controllers owning this machine's BMC were lost during the power action.")


async def boot_it(work: Work, rpc_server: Any, system_id: str) -> None:
    """Power a machine on so that it PXE-boots now: cycled when it is on (commissioning and
    deploying both need a fresh boot, whatever it was doing)."""
    state = (await run(work, rpc_server, system_id, "query"))["state"]
    await run(work, rpc_server, system_id, "cycle" if state == "on" else "on")


async def power_machine(
    work: Work, rpc_server: Any, system_id: str, action: str, actor: permissions.Actor | None
) -> machines.Machines:
    """power_on/power_off/power_cycle by `actor` (the owner or an admin): run the
    action, then the machine as shown."""
    await _permitted(work, system_id, f"power_{action}", actor)
    await run(work, rpc_server, system_id, action, actor.username if actor else "")
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def query_power_state(work: Work, rpc_server: Any, system_id: str, actor: permissions.Actor | None) -> str:
    """The machine's power state, asked of its BMC now."""
    await _permitted(work, system_id, "query_power_state", actor)
    return str((await run(work, rpc_server, system_id, "query"))["state"])


async def _permitted(work: Work, system_id: str, action: str, actor: permissions.Actor | None) -> None:
    async with work.tx() as conn:
        permissions.require(actor, action, await machines.get_machine(conn, system_id))
