"""Machines: creation with power parameters, shared BMCs, reads, updates, deletion.

Power parameters are split by scope, as MAAS does: BMC-scope ones (address,
user, password...) live on the BMC, which every machine with the same BMC
identity shares; node-scope ones (e.g. the Redfish system id) on the machine.
Every machine write rechecks the BMCs' owners and announces the change to the
racks (their DHCP host reservations list every machine's MACs).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import bmcs, nodes, users, zones
from metalplane.region.db.transaction import settle
from metalplane.region.errors import Invalid
from metalplane.region.services import (
    architectures,
    consequences,
    events,
    network,
    node_fields,
    node_filters,
    node_status,
    resource_pools,
)
from metalplane.region.services import bmcs as bmcs_service
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services import subnets as subnets_service
from metalplane.region.services import tags as tags_service
from metalplane.region.services.controllers import new_system_id
from metalplane.region.services.rows import Row, delete_row, insert_row, rows
from metalplane.region.services.users import User
from metalplane.rpc import power_schema as schema
from metalplane.rpc.nodes import NodeType

NEW, COMMISSIONING, FAILED_COMMISSIONING, READY, DEPLOYED = 0, 1, 2, 4, 6
STATUS_NAMES = node_status.LABELS  # MAAS's NODE_STATUS labels (13 is "Releasing failed")
MACHINE_TYPES = (int(NodeType.MACHINE),)


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
    found = (
        await conn.execute(select(bmcs.c.id).where(bmcs.c.power_type == power_type, bmcs.c.identity == identity))
    ).scalar_one_or_none()
    if found is not None:
        # New credentials for a known BMC replace the old ones for every machine behind it.
        await conn.execute(
            update(bmcs)
            .where(bmcs.c.id == found)
            .values(power_parameters=bmc_params, failing=False, last_error="", updated=func.now())
        )
        return found
    return await insert_row(conn, bmcs, power_type=power_type, identity=identity, power_parameters=bmc_params)


async def _gc_bmcs(conn: AsyncConnection) -> None:
    await conn.execute(delete(bmcs).where(~select(nodes.c.id).where(nodes.c.bmc_id == bmcs.c.id).exists()))


async def list_machines(
    conn: AsyncConnection, system_ids: list[str] | None = None, hostnames: list[str] | None = None
) -> list[Row]:
    query = nodes_service.node_select(MACHINE_TYPES)
    if system_ids:
        query = query.where(nodes.c.system_id.in_(system_ids))
    if hostnames:
        query = query.where(nodes.c.hostname.in_(hostnames))
    return rows(await conn.execute(query))


async def get_machine(conn: AsyncConnection, system_id: str, lock: bool = False, viewer: User | None = None) -> Row:
    return await nodes_service.get_node(conn, system_id, MACHINE_TYPES, viewer, lock, model="Machine")


def power_type_of(machine: Row) -> str:
    return machine["power_type"] or (machine["instance_power_parameters"] or {}).get("__type__", "manual")


def power_parameters(machine: Row) -> dict[str, str]:
    """Every parameter (with secrets): BMC scope and node scope together."""
    node = {k: v for k, v in (machine["instance_power_parameters"] or {}).items() if not k.startswith("__")}
    return {**(machine["bmc_parameters"] or {}), **node}


# Machines as shown: each with everything its JSON has (services.nodes).
Machines = nodes_service.NodesView


async def filter_known(conn: AsyncConnection) -> node_filters.Known:
    """What `machines read` filters may name."""
    return node_filters.Known(
        zones=frozenset((await conn.execute(select(zones.c.name))).scalars()),
        pools=frozenset(p["name"] for p in await resource_pools.list_pools(conn)),
        tags=frozenset(await tags_service.known_names(conn)),
        owners=frozenset((await conn.execute(select(users.c.username))).scalars()),
        architectures=frozenset(await architectures.known_for_filters(conn)),
        subnets=tuple(
            {"id": s["id"], "cidr": str(s["cidr"]), "name": s["name"]} for s in await subnets_service.list_subnets(conn)
        ),
        vlans=tuple(
            {
                "id": v["id"],
                "vid": v["vid"],
                "name": v["name"],
                "fabric_id": v["fabric_id"],
                "fabric_name": v["fabric_name"],
            }
            for v in await network.list_vlans(conn)
        ),
    )


async def read_machines(conn: AsyncConnection, given: dict[str, list[str]], viewer: User | None) -> Machines:
    """`machines read`: the machines `viewer` may see that pass MAAS's filters, by id."""
    constraints = node_filters.parse(given, await filter_known(conn))
    view = await nodes_service.show(conn, await nodes_service.list_nodes(conn, MACHINE_TYPES, viewer))
    return replace(view, nodes=[n for n in view.nodes if node_filters.matches(constraints, view.facts(n))])


async def show_machine(conn: AsyncConnection, system_id: str, viewer: User | None = None) -> Machines:
    return await nodes_service.show(conn, [await get_machine(conn, system_id, viewer=viewer)])


async def show_machines(
    conn: AsyncConnection, system_ids: list[str] | None = None, hostnames: list[str] | None = None
) -> Machines:
    return await nodes_service.show(conn, await list_machines(conn, system_ids, hostnames))


def _changed(conn: AsyncConnection) -> None:
    bmcs_service.owners_changed(conn)
    consequences.dhcp_changed(conn)
    consequences.region_services_changed(conn)  # its name and addresses in DNS


async def all_power_parameters(conn: AsyncConnection, system_ids: list[str]) -> dict[str, dict[str, str]]:
    """system_id -> every power parameter (secrets included: admins only)."""
    return {r["system_id"]: power_parameters(r) for r in await list_machines(conn, system_ids)}


def _unsupported_commissioning_options(fields: dict[str, Any]) -> None:
    """Options of MAAS's commissioning environment that metalplane's image has not: refused, not ignored."""
    for name in ("enable_ssh", "skip_bmc_config", "skip_networking", "skip_storage", "is_dpu"):
        if fields.get(name):
            raise Invalid.field(name, "metalplane's commissioning environment does not support this option.")
    for name in ("commissioning_scripts", "testing_scripts"):
        if (fields.get(name) or "none").strip().lower() not in ("", "none"):
            raise Invalid.field(
                name,
                "metalplane runs the image's and the region's commissioning scripts; "
                "choosing scripts is not supported.",
            )


async def insert_machine(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    """A new machine (validated) and its interfaces; its consequences are queued.

    `fields`: hostname, architecture, subarchitecture, min_hwe_kernel, description, domain,
    zone, pool, mac_addresses, power_type, power_parameters, power_flat, deployed, status,
    boot_method (enlistment)."""
    _unsupported_commissioning_options(fields)
    power_type_given = fields.get("power_type") or ""
    required = not (power_type_given == "ipmi" or (fields.get("deployed") and not power_type_given))
    macs = node_fields.parse_macs(fields.get("mac_addresses") or [])
    if required and not macs:
        raise Invalid.field("mac_addresses", "This field is required.")
    if required and not (fields.get("architecture") or "").strip():
        raise Invalid.field("architecture", "This field is required.")
    architecture = (
        await architectures.check(conn, fields["architecture"], fields.get("subarchitecture"))
        if (fields.get("architecture") or "").strip()
        else None
    )
    hostname, domain_id = await node_fields.naming_for_new(conn, fields)
    zone_id = await node_fields.zone_id_for(conn, fields.get("zone"))
    pool_id = (
        await resource_pools.pool_id_for(conn, fields["pool"]) if fields.get("pool") else resource_pools.DEFAULT_POOL_ID
    )
    if hostname:
        await node_fields.check_hostname_free(conn, hostname)
    await node_fields.check_macs_free(conn, macs)
    power_type, params = parse_power_input(
        fields.get("power_type"), fields.get("power_parameters"), fields.get("power_flat", {})
    )
    params = check_power(power_type, params)
    bmc_params, node_params = split_scopes(power_type, params)
    bmc_id = await upsert_bmc(conn, power_type, bmc_params)
    if bmc_id is None:
        node_params = {**bmc_params, **node_params, "__type__": power_type}
    system_id = new_system_id()
    status = DEPLOYED if fields.get("deployed") else fields.get("status", NEW)
    values = dict(
        system_id=system_id,
        hostname=hostname or f"machine-{system_id}",
        node_type=NodeType.MACHINE,
        architecture=architecture,
        description=fields.get("description") or "",
        min_hwe_kernel=fields.get("min_hwe_kernel") or None,
        status=status,
        boot_method=fields.get("boot_method"),
        bmc_id=bmc_id,
        instance_power_parameters=node_params,
        domain_id=domain_id,
        zone_id=zone_id,
        pool_id=pool_id,
    )
    await node_fields.insert_node(conn, values, macs)
    machine = await get_machine(conn, system_id)
    await events.status_changed(conn, machine, status, status, STATUS_NAMES)
    _changed(conn)
    return machine


async def create_machine(conn: AsyncConnection, fields: dict[str, Any]) -> Machines:
    """A new machine as shown, with its BMC's owner (commissioning is started by the caller)."""
    machine = await insert_machine(conn, fields)
    await settle(conn)
    return await nodes_service.show(conn, [machine])


UPDATE_FIELDS = (
    "hostname",
    "description",
    "domain",
    "architecture",
    "min_hwe_kernel",
    "power_type",
    "power_parameters",
    "power_parameters_skip_check",
    "pool",
    "zone",
    "swap_size",
    "disable_ipv4",
    "cpu_count",
    "memory",
)


async def update_machine(conn: AsyncConnection, system_id: str, fields: dict[str, Any]) -> Machines:
    """MAAS's AdminMachineForm: every field given is applied, or nothing is and the answer is 400."""
    machine = await get_machine(conn, system_id, lock=True)
    values = await node_fields.naming_changes(conn, fields, machine["id"])
    if "architecture" in fields:
        values["architecture"] = await architectures.check(conn, fields["architecture"] or "")
    if "min_hwe_kernel" in fields:
        values["min_hwe_kernel"] = fields["min_hwe_kernel"] or None
    if "zone" in fields:
        values["zone_id"] = await node_fields.zone_id_for(conn, fields["zone"] or "default")
    if "pool" in fields:
        values["pool_id"] = await resource_pools.pool_id_for(conn, fields["pool"] or resource_pools.DEFAULT_POOL_NAME)
    if "swap_size" in fields:
        values["swap_size"] = node_fields.parse_swap_size(fields["swap_size"] or "")
    if fields.get("disable_ipv4"):
        raise Invalid.field("disable_ipv4", "If specified, disable_ipv4 must be False.")
    for name in ("cpu_count", "memory"):
        if fields.get(name) is not None:
            values[name] = node_fields.bounded_int(fields, name)
    if "power_type" in fields or "power_parameters" in fields or fields.get("power_flat"):
        power_type = fields.get("power_type") or power_type_of(machine)
        merged = {} if "power_type" in fields and power_type != power_type_of(machine) else power_parameters(machine)
        power_type, new = parse_power_input(power_type, fields.get("power_parameters"), fields.get("power_flat", {}))
        params = {**merged, **new}
        if not fields.get("power_parameters_skip_check"):
            params = check_power(power_type, params)
        bmc_params, node_params = split_scopes(power_type, params)
        bmc_id = await upsert_bmc(conn, power_type, bmc_params)
        if bmc_id is None:
            node_params = {**bmc_params, **node_params, "__type__": power_type}
        values.update(bmc_id=bmc_id, instance_power_parameters=node_params)
    if values:
        await node_fields.update_node(conn, machine["id"], values)
        await _gc_bmcs(conn)
    _changed(conn)
    await settle(conn)  # shown with its BMC's owner
    return await show_machine(conn, system_id)


async def delete_machine(conn: AsyncConnection, system_id: str) -> None:
    machine = await get_machine(conn, system_id, lock=True)
    await delete_row(conn, nodes, machine["id"])
    await _gc_bmcs(conn)
    _changed(conn)


async def set_power_state(conn: AsyncConnection, node_ids: list[int], state: str) -> None:
    if node_ids:
        await conn.execute(
            update(nodes).where(nodes.c.id.in_(node_ids)).values(power_state=state, power_state_updated=func.now())
        )


async def ids_of(conn: AsyncConnection, system_ids: list[str]) -> list[int]:
    return list((await conn.execute(select(nodes.c.id).where(nodes.c.system_id.in_(system_ids)))).scalars())
