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
from metalplane.region.services import consequences, events, machines, power, settings, storage, tags
from metalplane.region.services import script_results as script_results_service
from metalplane.rpc.nodes import NodeType

SCRIPT_PREFIX = "commissioning_script:"
MAX_OUTPUT = 4 * 1024 * 1024
# MAAS's statuses a machine may be commissioned from: New, Failed commissioning, Ready, Broken.
COMMISSION_FROM = (machines.NEW, machines.FAILED_COMMISSIONING, machines.READY, 8)


def memory_mib(facts: dict[str, Any]) -> int:
    """Installed memory: the physical size the image measured when it could, else MemTotal."""
    for key in ("memory_physical_mib", "memory_mib"):
        value = facts.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= validation.PG_INT_MAX:
            return value
    return 0


def finished_status(result: str, failed_scripts: list[str]) -> tuple[int, str]:
    """READY, or FAILED_COMMISSIONING with the reason MAAS would show."""
    if result == "ok" and not failed_scripts:
        return machines.READY, ""
    names = ", ".join(failed_scripts) if failed_scripts else "the commissioning environment"
    return machines.FAILED_COMMISSIONING, f"Commissioning failed: {names} reported an error."


async def machine_by_mac(conn: AsyncConnection, mac: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        select(nodes.c.system_id).join(interfaces, interfaces.c.node_id == nodes.c.id)
        .where(interfaces.c.mac == machines.normalise_mac(mac), nodes.c.node_type == NodeType.MACHINE)
    )).first()
    return await machines.get_machine(conn, row.system_id) if row else None


async def token_for(conn: AsyncConnection, node_id: int) -> str:
    existing = (await conn.execute(select(node_tokens.c.token).where(node_tokens.c.node_id == node_id))).scalar()
    if existing:
        return existing
    token = secrets.token_urlsafe(24)
    await conn.execute(insert(node_tokens).values(node_id=node_id, token=token))
    return token


async def node_for_token(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    row = (await conn.execute(
        select(nodes.c.system_id).join(node_tokens, node_tokens.c.node_id == nodes.c.id)
        .where(node_tokens.c.token == token)
    )).first()
    return await machines.get_machine(conn, row.system_id) if row else None


async def enlist(conn: AsyncConnection, report: dict[str, Any]) -> dict[str, Any]:
    """An unknown machine booted: record it as New (or refresh a known one)."""
    reported = report.get("mac_addresses") or []
    if not isinstance(reported, list):
        raise Invalid.field("mac_addresses", "Expected a list of MAC addresses.")
    macs = validation.check_macs(reported, "mac_addresses")
    for key in ("architecture", "boot_method"):
        if report.get(key) is not None and not isinstance(report[key], str):
            raise Invalid.field(key, "Expected text.")
        validation.check_word(report.get(key) or "", key, 64)
    if not macs:
        raise Invalid.field("mac_addresses", "An enlisting machine must report at least one MAC address.")
    for mac in macs:
        known = await machine_by_mac(conn, mac)
        if known is not None:
            await conn.execute(update(nodes).where(nodes.c.id == known["id"]).values(
                architecture=report.get("architecture") or known["architecture"],
                boot_method=report.get("boot_method") or known["boot_method"], updated=func.now()))
            consequences.node_addresses_changed(conn)  # its MAC's host reservation, its name in DNS
            return await machines.get_machine(conn, known["system_id"])
    return await machines.insert_machine(conn, {
        "mac_addresses": macs, "architecture": report.get("architecture") or "amd64/generic",
        "boot_method": report.get("boot_method"), "power_type": "manual", "status": machines.NEW,
    })


async def start(conn: AsyncConnection, system_id: str, timeout: timedelta, username: str = "") -> dict[str, Any]:
    """Into Commissioning: a fresh token and results, and a deadline."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] not in COMMISSION_FROM:
        raise Invalid({"__all__": ["Commission is not available because of the current state of the node."]})
    await conn.execute(delete(script_results).where(script_results.c.node_id == machine["id"]))
    await script_results_service.start_set(conn, machine["id"])
    await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == machine["id"]))
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(
        status=machines.COMMISSIONING, status_expires=datetime.now(UTC) + timeout,
        error_description="", updated=func.now()))
    await token_for(conn, machine["id"])
    await events.record(conn, machine, "REQUEST_NODE_START_COMMISSIONING", action="commission", username=username)
    await events.status_changed(conn, machine, machine["status"], machines.COMMISSIONING, machines.STATUS_NAMES)
    return await machines.get_machine(conn, system_id)


async def commission(work: Work, rpc_server: Any, system_id: str, timeout: int | None,
                     username: str = "") -> machines.Machines:
    """Into Commissioning, then power the machine on through its BMC (cycled if it is
    on) so that it boots the ephemeral image; Failed commissioning if that fails.
    `timeout`: seconds it has to report (default: the commissioning_timeout setting)."""
    async with work.tx() as conn:
        seconds = timeout if timeout is not None else await settings.get_setting(conn, "commissioning_timeout")
        machine = await start(conn, system_id, timedelta(seconds=seconds), username)
    if machine["bmc_id"] is not None:
        try:
            state = (await power.run(work, rpc_server, system_id, "query"))["state"]
            await power.run(work, rpc_server, system_id, "cycle" if state == "on" else "on")
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                await fail(conn, machine["id"], f"Powering the machine on failed: {exc.detail}")
            raise
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def fail(conn: AsyncConnection, node_id: int, message: str) -> None:
    machine = dict((await conn.execute(select(nodes).where(nodes.c.id == node_id).with_for_update())).one()._mapping)
    await conn.execute(update(nodes).where(nodes.c.id == node_id).values(
        status=machines.FAILED_COMMISSIONING, status_expires=None, error_description=message, updated=func.now()))
    await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, node_id))
    await events.status_changed(conn, machine, machine["status"], machines.FAILED_COMMISSIONING,
                                machines.STATUS_NAMES, message)


async def store_facts(conn: AsyncConnection, machine: dict[str, Any], facts: dict[str, Any]) -> None:
    _require_commissioning(machine)
    cpu_count = facts.get("cpu_count")
    if not isinstance(cpu_count, int) or isinstance(cpu_count, bool) or not 1 <= cpu_count <= 1_000_000:
        raise Invalid.field("cpu_count", "Expected a positive integer.")
    for key in ("architecture", "boot_method"):
        if facts.get(key) is not None and not isinstance(facts[key], str):
            raise Invalid.field(key, "Expected text.")
        validation.check_word(facts.get(key) or "", key, 64)
    validation.check_document(facts, "facts")
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(
        cpu_count=cpu_count, memory=memory_mib(facts),
        architecture=facts.get("architecture") or machine["architecture"],
        boot_method=facts.get("boot_method") or machine["boot_method"],
        hardware={k: facts.get(k) for k in ("cpu_model", "disks", "interfaces", "firmware", "kernel", "image",
                                            "memory_mib", "memory_physical_mib")},
        updated=func.now()))
    await storage.replace_disks(conn, machine["id"], [d for d in facts.get("disks") or [] if isinstance(d, dict)])
    await tags.evaluate_node(conn, machine["id"])
    await events.record(conn, machine, "GATHERING_INFO", "Hardware facts received")


async def store_script(conn: AsyncConnection, machine: dict[str, Any], name: str, exit_status: int | None,
                       output: bytes, runtime: int | None = None) -> None:
    _require_commissioning(machine)
    validation.check_word(name, "name")
    if exit_status is not None:
        validation.check_int(exit_status, "exit_status")
    set_id = await script_results_service.current_set_id(conn, machine["id"])
    # Output is shown as text: undecodable bytes and NULs (which PostgreSQL's text refuses) become U+FFFD.
    text = output[:MAX_OUTPUT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    await conn.execute(insert(script_results).values(
        node_id=machine["id"], name=name, exit_status=exit_status, script_set_id=set_id,
        runtime=runtime if runtime is not None and 0 <= runtime < 2**31 else None,
        output=text))
    await script_results_service.ping(conn, set_id)
    status = script_results_service.STATUS_NAMES[script_results_service.result_status(exit_status)]
    await events.record(conn, machine, "SCRIPT_RESULT_CHANGED_STATUS",
                        f"{name} changed status from 'Running' to '{status}'")
    if exit_status != 0:
        await events.record(conn, machine, "NODE_COMMISSIONING_EVENT_FAILED",
                            f"'{name}' failed with exit status {exit_status}")


async def finish(conn: AsyncConnection, machine: dict[str, Any], result: str, failed: list[str]) -> None:
    _require_commissioning(machine)
    validation.check_list(failed, "failed_scripts")
    failed = [validation.check_word(name, "failed_scripts") for name in failed]
    status, message = finished_status(result, failed)
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(
        status=status, status_expires=None, error_description=message, updated=func.now()))
    await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, machine["id"]))
    await events.status_changed(conn, machine, machine["status"], status, machines.STATUS_NAMES, message)


def _require_commissioning(machine: dict[str, Any]) -> None:
    if machine["status"] != machines.COMMISSIONING:
        raise Refused(f"Machine {machine['hostname']} is not commissioning.")


async def expire(conn: AsyncConnection) -> list[str]:
    """Machines past their commissioning deadline: Failed commissioning (timed out)."""
    message = "Commissioning timed out: the machine did not report back in time."
    expired = [dict(r._mapping) for r in await conn.execute(
        update(nodes).where(nodes.c.status == machines.COMMISSIONING, nodes.c.status_expires < func.now())
        .values(status=machines.FAILED_COMMISSIONING, status_expires=None, error_description=message)
        .returning(nodes.c.id, nodes.c.system_id, nodes.c.hostname))]
    for machine in expired:
        await script_results_service.end_set(conn, await script_results_service.current_set_id(conn, machine["id"]))
        await events.status_changed(conn, machine, machines.COMMISSIONING, machines.FAILED_COMMISSIONING,
                                    machines.STATUS_NAMES, message)
    return [m["system_id"] for m in expired]


async def results_of(conn: AsyncConnection, system_id: str) -> list[dict[str, Any]]:
    """The output and exit status of each commissioning script of the machine's last run."""
    machine = await machines.get_machine(conn, system_id)
    rows = await conn.execute(select(script_results).where(script_results.c.node_id == machine["id"])
                              .order_by(script_results.c.id))
    return [{"name": r.name, "exit_status": r.exit_status, "output": r.output,
             "created": r.created.isoformat()} for r in rows]


# -- commissioning scripts the operator adds (MAAS 2.0's commissioning-scripts) ------------


async def list_scripts(conn: AsyncConnection) -> dict[str, str]:
    rows = await conn.execute(select(config).where(config.c.name.startswith(SCRIPT_PREFIX)).order_by(config.c.name))
    return {r.name[len(SCRIPT_PREFIX):]: r.value for r in rows}


async def get_script(conn: AsyncConnection, name: str) -> str:
    found = (await list_scripts(conn)).get(name)
    if found is None:
        raise NotFound("Script")
    return found


async def put_script(conn: AsyncConnection, name: str, content: str) -> None:
    if not name or len(name) > 255 or not all(c.isalnum() or c in "._+-" for c in name):
        raise Invalid.field("name", "Use letters, digits and . _ + - only (at most 255).")
    validation.check_text(content, "content", validation.MAX_LARGE_TEXT)
    await conn.execute(pg_insert(config).values(name=SCRIPT_PREFIX + name, value=content)
                       .on_conflict_do_update(index_elements=["name"], set_={"value": content}))


async def delete_script(conn: AsyncConnection, name: str) -> None:
    result = await conn.execute(delete(config).where(config.c.name == SCRIPT_PREFIX + name))
    if result.rowcount == 0:
        raise NotFound("Script")
