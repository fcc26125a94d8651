"""What MAAS's generic nodes/ collection does over every node type: list with the
common filters, delete, bulk zone change, MAC registration checks."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import interfaces, nodes
from metalplane.region.errors import Invalid, Refused
from metalplane.region.services import devices, machines, node_fields, racks
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User
from metalplane.rpc.nodes import RACK_TYPES, NodeType

RETIRED = 7


def _listed(given: dict[str, list[str]], name: str) -> list[str]:
    return [v for v in given.get(name, []) if v.strip()]


def _last(given: dict[str, list[str]], name: str) -> str | None:
    values = _listed(given, name)
    return values[-1] if values else None


def filtered(view: nodes_service.NodesView, given: dict[str, list[str]]) -> nodes_service.NodesView:
    """MAAS's filtered_nodes_list_from_request: id, hostname, mac_address, domain (lists);
    zone, pool, agent_name (one value)."""
    ids, hostnames = set(_listed(given, "id")), set(_listed(given, "hostname"))
    listed = {m: validation.normalise_mac(m) for m in _listed(given, "mac_address")}
    bad = [m for m, mac in listed.items() if mac is None]
    if bad:
        raise Invalid.field(
            "mac_address", f"Invalid MAC address(es): {', '.join(sorted(validation.shown(m) for m in bad))}"
        )
    macs = {mac for mac in listed.values() if mac is not None}
    domains = set(_listed(given, "domain"))
    zone, pool, agent = (_last(given, name) for name in ("zone", "pool", "agent_name"))

    def keep(n: Row) -> bool:
        facts = view.facts(n)
        return (
            (not ids or n["system_id"] in ids)
            and (not hostnames or n["hostname"] in hostnames)
            and (not macs or bool(macs & set(facts["macs"])))
            and (not domains or facts["domain"] in domains)
            and (zone is None or n["zone_name"] == zone)
            and (pool is None or n["pool_name"] == pool)
            and (agent is None or n["agent_name"] == agent)
        )

    return replace(view, nodes=[n for n in view.nodes if keep(n)])


async def read_nodes(
    conn: AsyncConnection,
    given: dict[str, list[str]],
    viewer: User | None,
    types: tuple[int, ...] = nodes_service.ALL_TYPES,
) -> nodes_service.NodesView:
    view = await nodes_service.show(conn, await nodes_service.list_nodes(conn, types, viewer))
    return filtered(view, given)


async def show_node(conn: AsyncConnection, system_id: str, viewer: User | None) -> nodes_service.NodesView:
    return await nodes_service.show(conn, [await nodes_service.get_node(conn, system_id, viewer=viewer)])


async def delete_node(conn: AsyncConnection, system_id: str) -> None:
    """nodes/{system_id}/ delete: each type as its own handler deletes it."""
    node = await nodes_service.get_node(conn, system_id, lock=True)
    if node["node_type"] == NodeType.MACHINE:
        await machines.delete_machine(conn, system_id)
    elif node["node_type"] == NodeType.DEVICE:
        await devices.delete_device(conn, system_id, None)
    elif node["node_type"] in RACK_TYPES:
        await racks.delete_rack(conn, system_id, force=False)
    else:
        raise Refused("A region controller is deleted with region-controller delete.")


async def set_zone(conn: AsyncConnection, zone: str | None, system_ids: list[str]) -> None:
    if not zone:
        raise Invalid.field("zone", "This field is required.")
    zone_id = await node_fields.zone_id_for(conn, zone)
    wanted = {s for s in system_ids if "\x00" not in s}
    if len(wanted) != len(set(system_ids)):
        raise Invalid.field("system_id", "Some of the given system ids are invalid system ids.")
    if not wanted:
        raise Invalid.field("system_id", "No node selected.")
    found = set((await conn.execute(select(nodes.c.system_id).where(nodes.c.system_id.in_(wanted)))).scalars())
    if found != wanted:
        raise Invalid.field("system_id", "Some of the given system ids are invalid system ids.")
    await conn.execute(update(nodes).where(nodes.c.system_id.in_(wanted)).values(zone_id=zone_id, updated=func.now()))


async def is_registered(conn: AsyncConnection, mac: str | None) -> bool:
    """Whether a node (not Retired) has an interface with this MAC."""
    if not mac:
        raise Refused("No provided mac_address!")
    normalised = validation.normalise_mac(mac)
    if normalised is None:
        raise Invalid.field("mac_address", f"Invalid MAC address(es): {validation.shown(mac)}")
    found = await conn.execute(
        select(interfaces.c.id)
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(interfaces.c.mac == normalised, nodes.c.status != RETIRED)
        .limit(1)
    )
    return found.first() is not None


async def power_parameters_of(conn: AsyncConnection, system_id: str) -> dict[str, str]:
    node = await nodes_service.get_node(conn, system_id)
    if node["node_type"] != NodeType.MACHINE:
        return {}
    return machines.power_parameters(node)


async def event_node_ids(conn: AsyncConnection, given: dict[str, list[str]], viewer: User | None) -> list[int]:
    """The nodes whose events `events query` shows: visible ones, devices aside, filtered."""
    types = tuple(t for t in nodes_service.ALL_TYPES if t != NodeType.DEVICE)
    view = await read_nodes(conn, given, viewer, types)
    return [n["id"] for n in view.nodes]
