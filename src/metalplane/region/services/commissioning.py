"""Enlistment and commissioning: what the ephemeral image reports, and the machine's states.

The image's side of the conversation is documented in docs/boot.md ("Ephemeral
image ↔ metadata API contract"); this module is the region's side.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import config, interfaces, node_tokens, nodes, script_results
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Invalid, NotFound, Refused
from metalplane.region.services import (
    enrolment,
    events,
    machines,
    permissions,
    power,
    reports,
    settings,
    storage,
    tags,
)
from metalplane.region.services import script_results as script_results_service
from metalplane.region.services.rows import first_row, only_row
from metalplane.rpc.nodes import NodeType

SCRIPT_PREFIX = "commissioning_script:"
# MAAS's statuses a machine may be commissioned from: New, Failed commissioning, Ready, Broken.
COMMISSION_FROM = (machines.NEW, machines.FAILED_COMMISSIONING, machines.READY, 8)


def finished_status(outcome: reports.Outcome) -> tuple[int, str]:
    """READY, or FAILED_COMMISSIONING with the reason MAAS would show."""
    if outcome.ok:
        return machines.READY, ""
    names = ", ".join(outcome.failed_scripts) if outcome.failed_scripts else "the commissioning environment"
    return machines.FAILED_COMMISSIONING, f"Commissioning failed: {names} reported an error."


async def machines_with_macs(conn: AsyncConnection, macs: list[str]) -> dict[str, dict[str, Any]]:
    """The machines having any of these (normalised) MACs, by MAC: one query for the
    MACs, however many there are, then one per machine found."""
    if not macs:
        return {}
    rows = (
        await conn.execute(
            select(interfaces.c.mac, nodes.c.system_id)
            .join(nodes, interfaces.c.node_id == nodes.c.id)
            .where(interfaces.c.mac.in_(macs), nodes.c.node_type == NodeType.MACHINE)
        )
    ).all()
    found: dict[str, dict[str, Any]] = {}
    for system_id in dict.fromkeys(r.system_id for r in rows):
        found[system_id] = await machines.get_machine(conn, system_id)
    return {r.mac: found[r.system_id] for r in rows}


async def token_for(conn: AsyncConnection, node_id: int) -> str:
    existing = (await conn.execute(select(node_tokens.c.token).where(node_tokens.c.node_id == node_id))).scalar()
    if existing:
        return existing
    token = secrets.token_urlsafe(24)
    await conn.execute(insert(node_tokens).values(node_id=node_id, token=token))
    return token


async def node_for_token(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    row = await first_row(
        conn,
        select(nodes.c.system_id)
        .join(node_tokens, node_tokens.c.node_id == nodes.c.id)
        .where(node_tokens.c.token == token),
    )
    return await machines.get_machine(conn, row.system_id) if row else None


async def enlist(conn: AsyncConnection, report: reports.Enlistment) -> dict[str, Any]:
    """An unknown machine booted: record it as New. A MAC the region knows already
    (any node's) changes nothing and is refused in MAAS's words, without naming the
    node: enlistment is anonymous, and must neither rewrite a known machine nor tell
    its system_id to whoever asks."""
    known = await first_row(conn, select(interfaces.c.mac).where(interfaces.c.mac.in_(report.macs)).limit(1))
    if known is not None:
        raise Invalid.field("mac_addresses", f"MAC address {known.mac} already in use.")
    return await machines.insert_machine(
        conn,
        {
            "mac_addresses": report.macs,
            "architecture": report.architecture,
            "boot_method": report.boot_method,
            "power_type": "manual",
            "status": machines.NEW,
        },
    )


async def start(conn: AsyncConnection, system_id: str, timeout: timedelta, username: str = "") -> dict[str, Any]:
    """Into Commissioning: a fresh token and results, and a deadline."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] not in COMMISSION_FROM:
        raise Invalid({"__all__": ["Commission is not available because of the current state of the node."]})
    await conn.execute(delete(script_results).where(script_results.c.node_id == machine["id"]))
    await script_results_service.start_set(conn, machine["id"])
    await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == machine["id"]))
    await enrolment.forget(conn, machine["id"])
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == machine["id"])
        .values(
            status=machines.COMMISSIONING,
            status_expires=datetime.now(UTC) + timeout,
            error_description="",
            updated=func.now(),
        )
    )
    await token_for(conn, machine["id"])
    await events.record(conn, machine, "REQUEST_NODE_START_COMMISSIONING", action="commission", username=username)
    await events.status_changed(conn, machine, machine["status"], machines.COMMISSIONING, machines.STATUS_NAMES)
    return await machines.get_machine(conn, system_id)


async def commission(
    work: Work, rpc_server: Any, system_id: str, timeout: int | None, actor: permissions.Actor | None
) -> machines.Machines:
    """Into Commissioning, then power the machine on through its BMC (cycled if it is
    on) so that it boots the ephemeral image; Failed commissioning if that fails.
    `timeout`: seconds it has to report (default: the commissioning_timeout setting).
    Admins only, as in MAAS."""
    async with work.tx() as conn:
        permissions.require(actor, "commission", await machines.get_machine(conn, system_id))
        seconds = timeout if timeout is not None else await settings.get_setting(conn, "commissioning_timeout")
        machine = await start(conn, system_id, timedelta(seconds=seconds), actor.username if actor else "")
    if machine["bmc_id"] is not None:
        try:
            await power.boot_it(work, rpc_server, system_id)
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                await fail(conn, machine["id"], f"Powering the machine on failed: {exc.detail}")
            raise
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def fail(conn: AsyncConnection, node_id: int, message: str) -> None:
    machine = dict((await only_row(conn, select(nodes).where(nodes.c.id == node_id).with_for_update()))._mapping)
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == node_id)
        .values(
            status=machines.FAILED_COMMISSIONING, status_expires=None, error_description=message, updated=func.now()
        )
    )
    await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, node_id))
    await events.status_changed(
        conn, machine, machine["status"], machines.FAILED_COMMISSIONING, machines.STATUS_NAMES, message
    )


async def store_facts(conn: AsyncConnection, machine: dict[str, Any], facts: reports.Facts) -> None:
    _require_commissioning(machine)
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == machine["id"])
        .values(
            cpu_count=facts.cpu_count,
            memory=facts.memory,
            architecture=facts.architecture or machine["architecture"],
            boot_method=facts.boot_method or machine["boot_method"],
            hardware=facts.hardware,
            updated=func.now(),
        )
    )
    disks = facts.hardware.get("disks") or []
    await storage.replace_disks(conn, machine["id"], [d for d in disks if isinstance(d, dict)])
    await tags.evaluate_node(conn, machine["id"])
    await events.record(conn, machine, "GATHERING_INFO", "Hardware facts received")


async def store_script(
    conn: AsyncConnection,
    machine: dict[str, Any],
    name: str,
    exit_status: int | None,
    output: str,
    runtime: int | None = None,
) -> None:
    """One script's result; posting a name again replaces its result. At most
    MAX_SCRIPT_RESULTS results per run."""
    _require_commissioning(machine)
    await conn.execute(
        delete(script_results).where(script_results.c.node_id == machine["id"], script_results.c.name == name)
    )
    count = (
        await conn.execute(
            select(func.count()).select_from(script_results).where(script_results.c.node_id == machine["id"])
        )
    ).scalar_one()
    if count >= reports.MAX_SCRIPT_RESULTS:
        raise Refused(f"A commissioning run keeps at most {reports.MAX_SCRIPT_RESULTS} script results.")
    set_id = await script_results_service.current_set_id(conn, machine["id"])
    await script_results_service.add_result(conn, machine["id"], set_id, name, exit_status, runtime, output)
    status = script_results_service.STATUS_NAMES[script_results_service.result_status(exit_status)]
    await events.record(
        conn, machine, "SCRIPT_RESULT_CHANGED_STATUS", f"{name} changed status from 'Running' to '{status}'"
    )
    if exit_status != 0:
        await events.record(
            conn, machine, "NODE_COMMISSIONING_EVENT_FAILED", f"'{name}' failed with exit status {exit_status}"
        )


async def finish(conn: AsyncConnection, machine: dict[str, Any], outcome: reports.Outcome) -> None:
    _require_commissioning(machine)
    status, message = finished_status(outcome)
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == machine["id"])
        .values(status=status, status_expires=None, error_description=message, updated=func.now())
    )
    await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, machine["id"]))
    await events.status_changed(conn, machine, machine["status"], status, machines.STATUS_NAMES, message)


def _require_commissioning(machine: dict[str, Any]) -> None:
    if machine["status"] != machines.COMMISSIONING:
        raise Refused(f"Machine {machine['hostname']} is not commissioning.")


async def expire(conn: AsyncConnection) -> list[str]:
    """Machines past their commissioning deadline: Failed commissioning (timed out)."""
    message = "Commissioning timed out: the machine did not report back in time."
    expired = [
        dict(r._mapping)
        for r in await conn.execute(
            update(nodes)
            .where(nodes.c.status == machines.COMMISSIONING, nodes.c.status_expires < func.now())
            .values(status=machines.FAILED_COMMISSIONING, status_expires=None, error_description=message)
            .returning(nodes.c.id, nodes.c.system_id, nodes.c.hostname)
        )
    ]
    for machine in expired:
        await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, machine["id"]))
        await events.status_changed(
            conn, machine, machines.COMMISSIONING, machines.FAILED_COMMISSIONING, machines.STATUS_NAMES, message
        )
    return [m["system_id"] for m in expired]


async def results_of(conn: AsyncConnection, system_id: str, actor: permissions.Actor | None) -> list[dict[str, Any]]:
    """The output and exit status of each commissioning script of the machine's last run."""
    machine = await machines.get_machine(conn, system_id)
    permissions.require(actor, "commissioning_results", machine)
    rows = await conn.execute(
        select(script_results).where(script_results.c.node_id == machine["id"]).order_by(script_results.c.id)
    )
    return [
        {"name": r.name, "exit_status": r.exit_status, "output": r.output, "created": r.created.isoformat()}
        for r in rows
    ]


# -- commissioning scripts the operator adds (MAAS 2.0's commissioning-scripts) ------------


async def list_scripts(conn: AsyncConnection) -> dict[str, str]:
    rows = await conn.execute(select(config).where(config.c.name.startswith(SCRIPT_PREFIX)).order_by(config.c.name))
    return {r.name[len(SCRIPT_PREFIX) :]: r.value for r in rows}


async def get_script(conn: AsyncConnection, name: str) -> str:
    found = (await list_scripts(conn)).get(name)
    if found is None:
        raise NotFound("Script")
    return found


async def put_script(conn: AsyncConnection, name: str, content: str) -> None:
    if not name or len(name) > 255 or not all(c.isalnum() or c in "._+-" for c in name):
        raise Invalid.field("name", "Use letters, digits and . _ + - only (at most 255).")
    validation.check_text(content, "content", validation.MAX_LARGE_TEXT)
    await conn.execute(
        pg_insert(config)
        .values(name=SCRIPT_PREFIX + name, value=content)
        .on_conflict_do_update(index_elements=["name"], set_={"value": content})
    )


async def delete_script(conn: AsyncConnection, name: str) -> None:
    result = await conn.execute(delete(config).where(config.c.name == SCRIPT_PREFIX + name))
    if result.rowcount == 0:
        raise NotFound("Script")
