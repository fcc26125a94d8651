"""Machines: creation with power parameters, shared BMCs, reads, updates, deletion.

Power parameters are split by scope, as MAAS does: BMC-scope ones (address,
user, password...) live on the BMC, which every machine with the same BMC
identity shares; node-scope ones (e.g. the Redfish system id) on the machine.
Every machine write rechecks the BMCs' owners and announces the change to the
racks (their DHCP host reservations list every machine's MACs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.rpc import power_schema as schema
from metalplane.region.db.tables import bmcs, interfaces, nodes, zones
from metalplane.region.db.transaction import settle
from metalplane.region.errors import Invalid, NotFound
from metalplane.region.services import bmcs as bmcs_service
from metalplane.region.services import consequences, domain_views
from metalplane.region.services.controllers import new_system_id
from metalplane.region.services.rows import Row, execute_unique, rows
from metalplane.rpc.nodes import NodeType

NEW, COMMISSIONING, FAILED_COMMISSIONING, READY = 0, 1, 2, 4
STATUS_NAMES = {
    0: "New", 1: "Commissioning", 2: "Failed commissioning", 3: "Missing", 4: "Ready", 5: "Reserved",
    6: "Deployed", 7: "Retired", 8: "Broken", 9: "Deploying", 10: "Allocated", 11: "Failed deployment",
    12: "Releasing", 13: "Failed releasing", 21: "Testing", 22: "Failed testing",
}
MAC = re.compile(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$", re.I)
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.I)


def normalise_mac(value: str) -> str:
    return value.strip().lower().replace("-", ":")


def parse_power_input(power_type: str | None, raw_json: str | None, flat: dict[str, str]) -> tuple[str, dict[str, str]]:
    """MAAS accepts power_parameters as JSON or as power_parameters_NAME fields."""
    params: dict[str, Any] = {}
    if raw_json:
        try:
            loaded = json.loads(raw_json)
        except ValueError:
            raise Invalid.field("power_parameters", "Enter valid JSON.") from None
        if not isinstance(loaded, dict):
            raise Invalid.field("power_parameters", "Expected a JSON object.")
        params.update(loaded)
    params.update(flat)
    return power_type or "manual", {k: "" if v is None else str(v) for k, v in params.items()}


def check_power(power_type: str, params: dict[str, str]) -> dict[str, str]:
    """400 naming the field (power_type, or power_parameters_NAME) on any problem."""
    problems = schema.validate_power_parameters(power_type, params)
    if problems:
        errors: dict[str, list[str]] = {}
        for p in problems:
            key = "power_type" if p.field == "power_type" else f"power_parameters_{p.field}"
            reason = "This field is required." if p.reason == "required" else p.reason
            errors.setdefault(key, []).append(reason)
        raise Invalid(errors)
    return schema.with_defaults(power_type, params)


def split_scopes(power_type: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    ptype = schema.get_power_type(power_type)
    node_names = {f.name for f in ptype.fields if f.scope == "node"}
    bmc = {k: v for k, v in params.items() if k not in node_names}
    node = {k: v for k, v in params.items() if k in node_names}
    return bmc, node


async def upsert_bmc(conn: AsyncConnection, power_type: str, bmc_params: dict[str, str]) -> int | None:
    """The BMC these parameters name; one row per (type, address, user)."""
    identity = schema.bmc_identity(power_type, bmc_params)
    if identity is None:
        return None
    found = (await conn.execute(select(bmcs.c.id).where(bmcs.c.power_type == power_type,
                                                        bmcs.c.identity == identity))).scalar_one_or_none()
    if found is not None:
        # New credentials for a known BMC replace the old ones for every machine behind it.
        await conn.execute(update(bmcs).where(bmcs.c.id == found).values(
            power_parameters=bmc_params, failing=False, last_error="", updated=func.now()))
        return found
    return (await conn.execute(insert(bmcs).values(power_type=power_type, identity=identity,
                                                   power_parameters=bmc_params).returning(bmcs.c.id))).scalar_one()


async def _gc_bmcs(conn: AsyncConnection) -> None:
    await conn.execute(delete(bmcs).where(~select(nodes.c.id).where(nodes.c.bmc_id == bmcs.c.id).exists()))


def _machine_select():
    return (
        select(nodes, zones.c.name.label("zone_name"), zones.c.description.label("zone_description"),
               zones.c.id.label("zone_ref"), bmcs.c.power_type, bmcs.c.power_parameters.label("bmc_parameters"),
               bmcs.c.owner_rack_id, bmcs.c.failing.label("bmc_failing"), bmcs.c.last_error.label("bmc_error"))
        .join(zones, zones.c.id == nodes.c.zone_id)
        .outerjoin(bmcs, bmcs.c.id == nodes.c.bmc_id)
        .where(nodes.c.node_type == NodeType.MACHINE)
    )


async def list_machines(conn: AsyncConnection, system_ids: list[str] | None = None,
                        hostnames: list[str] | None = None) -> list[Row]:
    query = _machine_select().order_by(nodes.c.id)
    if system_ids:
        query = query.where(nodes.c.system_id.in_(system_ids))
    if hostnames:
        query = query.where(nodes.c.hostname.in_(hostnames))
    return rows(await conn.execute(query))


async def get_machine(conn: AsyncConnection, system_id: str, lock: bool = False) -> Row:
    query = _machine_select().where(nodes.c.system_id == system_id)
    if lock:
        query = query.with_for_update(of=nodes)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound("Machine")
    return dict(row._mapping)


def power_type_of(machine: Row) -> str:
    return machine["power_type"] or (machine["instance_power_parameters"] or {}).get("__type__", "manual")


def power_parameters(machine: Row) -> dict[str, str]:
    """Every parameter (with secrets): BMC scope and node scope together."""
    node = {k: v for k, v in (machine["instance_power_parameters"] or {}).items() if not k.startswith("__")}
    return {**(machine["bmc_parameters"] or {}), **node}


async def macs_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {}
    for r in await conn.execute(select(interfaces).where(interfaces.c.node_id.in_(node_ids))
                                .order_by(interfaces.c.node_id, interfaces.c.id)):
        out.setdefault(r.node_id, []).append(dict(r._mapping))
    return out


@dataclass(frozen=True)
class Machines:
    """Machines as shown: each with its interfaces (MACs) and its BMC (owner, candidates)."""

    machines: list[Row]
    macs: dict[int, list[Row]]  # node id -> interfaces
    bmcs: dict[int, Row]  # BMC id -> bmcs.overview entry
    domains: dict[int, Any] = field(default_factory=dict)  # node id -> its DomainView


async def show_machines(conn: AsyncConnection, system_ids: list[str] | None = None,
                        hostnames: list[str] | None = None) -> Machines:
    return await _shown(conn, await list_machines(conn, system_ids, hostnames))


async def show_machine(conn: AsyncConnection, system_id: str) -> Machines:
    return await _shown(conn, [await get_machine(conn, system_id)])


async def _shown(conn: AsyncConnection, shown: list[Row]) -> Machines:
    macs = await macs_of(conn, [r["id"] for r in shown])
    by_bmc = {b["id"]: b for b in await bmcs_service.overview(conn)} if any(r["bmc_id"] for r in shown) else {}
    return Machines(shown, macs, by_bmc, await domain_views.node_domains(conn, shown))


def _changed(conn: AsyncConnection) -> None:
    bmcs_service.owners_changed(conn)
    consequences.dhcp_changed(conn)
    consequences.region_services_changed(conn)   # its name and addresses in DNS


async def all_power_parameters(conn: AsyncConnection, system_ids: list[str]) -> dict[str, dict[str, str]]:
    """system_id -> every power parameter (secrets included: admins only)."""
    return {r["system_id"]: power_parameters(r) for r in await list_machines(conn, system_ids)}


async def insert_machine(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    """A new machine (validated) and its interfaces; its consequences are queued."""
    macs = [normalise_mac(m) for m in fields.get("mac_addresses", []) if m.strip()]
    bad = [m for m in macs if not MAC.match(m)]
    if bad:
        raise Invalid.field("mac_addresses", f"'{bad[0]}' is not a valid MAC address.")
    hostname = (fields.get("hostname") or "").strip()
    if hostname and not HOSTNAME.match(hostname):
        raise Invalid.field("hostname", "Nodes must have a valid hostname (letters, digits and hyphens).")
    if hostname and (await conn.execute(select(nodes.c.id).where(nodes.c.hostname == hostname))).first():
        raise Invalid.field("hostname", f"Node with hostname '{hostname}' already exists.")
    for mac in macs:
        if (await conn.execute(select(interfaces.c.id).where(interfaces.c.mac == mac))).first():
            raise Invalid.field("mac_addresses", f"One or more MAC addresses is invalid. "
                                                          f"('{mac}' is already in use.)")
    power_type, params = parse_power_input(fields.get("power_type"), fields.get("power_parameters"),
                                           fields.get("power_flat", {}))
    params = check_power(power_type, params)
    bmc_params, node_params = split_scopes(power_type, params)
    bmc_id = await upsert_bmc(conn, power_type, bmc_params)
    if bmc_id is None:
        node_params = {**bmc_params, **node_params, "__type__": power_type}
    system_id = new_system_id()
    values = dict(
        system_id=system_id, hostname=hostname or f"machine-{system_id}", node_type=NodeType.MACHINE,
        architecture=fields.get("architecture") or "amd64/generic", description=fields.get("description") or "",
        status=fields.get("status", NEW), boot_method=fields.get("boot_method"), bmc_id=bmc_id,
        instance_power_parameters=node_params,
        zone_id=select(zones.c.id).where(zones.c.name == "default").scalar_subquery(),
    )
    node_id = (await execute_unique(conn, insert(nodes).values(**values).returning(nodes.c.id),
                                    "hostname", "Node with this hostname already exists.")).scalar_one()
    for n, mac in enumerate(macs):
        await conn.execute(insert(interfaces).values(node_id=node_id, name=f"eth{n}", mac=mac))
    _changed(conn)
    return await get_machine(conn, system_id)


async def create_machine(conn: AsyncConnection, fields: dict[str, Any]) -> Machines:
    """`machines create`: the new machine as shown, with its BMC's owner."""
    machine = await insert_machine(conn, fields)
    await settle(conn)
    return await _shown(conn, [machine])


async def update_machine(conn: AsyncConnection, system_id: str, fields: dict[str, Any]) -> Machines:
    machine = await get_machine(conn, system_id, lock=True)
    values: dict[str, Any] = {}
    if "hostname" in fields:
        hostname = fields["hostname"].strip()
        if not HOSTNAME.match(hostname):
            raise Invalid.field("hostname", "Nodes must have a valid hostname (letters, digits and hyphens).")
        values["hostname"] = hostname
    for key in ("description", "architecture"):
        if key in fields:
            values[key] = fields[key]
    if "power_type" in fields or "power_parameters" in fields or fields.get("power_flat"):
        power_type = fields.get("power_type") or power_type_of(machine)
        merged = {} if "power_type" in fields and power_type != power_type_of(machine) else power_parameters(machine)
        power_type, new = parse_power_input(power_type, fields.get("power_parameters"), fields.get("power_flat", {}))
        params = check_power(power_type, {**merged, **new})
        bmc_params, node_params = split_scopes(power_type, params)
        bmc_id = await upsert_bmc(conn, power_type, bmc_params)
        if bmc_id is None:
            node_params = {**bmc_params, **node_params, "__type__": power_type}
        values.update(bmc_id=bmc_id, instance_power_parameters=node_params)
    if values:
        await execute_unique(conn, update(nodes).where(nodes.c.id == machine["id"]).values(**values, updated=func.now()),
                             "hostname", "Node with this hostname already exists.")
        await _gc_bmcs(conn)
    _changed(conn)
    await settle(conn)  # shown with its BMC's owner
    return await show_machine(conn, system_id)


async def delete_machine(conn: AsyncConnection, system_id: str) -> None:
    machine = await get_machine(conn, system_id, lock=True)
    await conn.execute(delete(nodes).where(nodes.c.id == machine["id"]))
    await _gc_bmcs(conn)
    _changed(conn)


async def set_power_state(conn: AsyncConnection, node_ids: list[int], state: str) -> None:
    if node_ids:
        await conn.execute(update(nodes).where(nodes.c.id.in_(node_ids)).values(
            power_state=state, power_state_updated=func.now()))


async def ids_of(conn: AsyncConnection, system_ids: list[str]) -> list[int]:
    return list((await conn.execute(select(nodes.c.id).where(nodes.c.system_id.in_(system_ids)))).scalars())
