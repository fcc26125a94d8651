"""Devices (MAAS's non-deployable nodes): a hostname, MACs, addresses, an optional parent.

A device belongs to the user who created it: that user (or an admin) may change or
delete it, as MAAS's `edit` permission says.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import interfaces, ip_addresses, nodes
from metalplane.region.errors import Conflict, Invalid, PermissionDenied
from metalplane.region.services import consequences, node_fields
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.controllers import new_system_id
from metalplane.region.services.rows import Row, delete_row, first_row
from metalplane.region.services.users import User
from metalplane.rpc.nodes import NodeType

DEVICE_TYPES = (int(NodeType.DEVICE),)


async def get_device(conn: AsyncConnection, system_id: str, viewer: User | None = None, lock: bool = False) -> Row:
    return await nodes_service.get_node(conn, system_id, DEVICE_TYPES, viewer, lock, model="Device")


def _may_edit(device: Row, user: User | None) -> None:
    if user is not None and not user.is_superuser and device["owner_id"] != user.id:
        raise PermissionDenied("")


async def _parent(conn: AsyncConnection, system_id: str | None) -> tuple[int | None, int | None]:
    """The parent's id and its domain id (None: no parent, or the default domain)."""
    if not system_id:
        return None, None
    found = (
        None
        if "\x00" in system_id
        else await first_row(conn, select(nodes.c.id, nodes.c.domain_id).where(nodes.c.system_id == system_id))
    )
    if found is None:
        raise Invalid.field("parent", node_fields.NO_CHOICE)
    return found.id, found.domain_id


async def create_device(conn: AsyncConnection, fields: dict[str, Any], user: User) -> nodes_service.NodesView:
    macs = node_fields.parse_macs(fields.get("mac_addresses") or [])
    if not macs:
        raise Invalid.field("mac_addresses", "This field is required.")
    hostname, domain_id = await node_fields.naming_for_new(conn, fields)
    parent_id, parent_domain_id = await _parent(conn, fields.get("parent"))
    if domain_id is None:
        domain_id = parent_domain_id  # MAAS's DeviceForm: a child with no domain given takes its parent's
    zone_id = await node_fields.zone_id_for(conn, fields.get("zone"))
    if hostname:
        await node_fields.check_hostname_free(conn, hostname)
    await node_fields.check_macs_free(conn, macs)
    system_id = new_system_id()
    values = dict(
        system_id=system_id,
        hostname=hostname or f"device-{system_id}",
        node_type=NodeType.DEVICE,
        description=fields.get("description") or "",
        parent_id=parent_id,
        domain_id=domain_id,
        zone_id=zone_id,
        owner_id=user.id,
    )
    await node_fields.insert_node(conn, values, macs)
    consequences.node_addresses_changed(conn)
    return await nodes_service.show(conn, [await get_device(conn, system_id)])


async def update_device(
    conn: AsyncConnection, system_id: str, fields: dict[str, Any], user: User
) -> nodes_service.NodesView:
    device = await get_device(conn, system_id, user, lock=True)
    _may_edit(device, user)
    values = await node_fields.naming_changes(conn, fields, device["id"])
    if "parent" in fields:
        values["parent_id"], parent_domain_id = await _parent(conn, fields["parent"])
        if values["parent_id"] is not None and "domain_id" not in values:
            values["domain_id"] = parent_domain_id
    if "zone" in fields:
        values["zone_id"] = await node_fields.zone_id_for(conn, fields["zone"] or "default")
    if values:
        await node_fields.update_node(conn, device["id"], values)
    if {"hostname", "domain_id"} & set(values):
        consequences.node_addresses_changed(conn)  # its records move to the new name
    return await nodes_service.show(conn, [await get_device(conn, system_id)])


async def delete_device(conn: AsyncConnection, system_id: str, user: User | None) -> None:
    device = await get_device(conn, system_id, user, lock=True)
    _may_edit(device, user)
    await delete_row(conn, nodes, device["id"])
    consequences.node_addresses_changed(conn)


async def set_annotations(
    conn: AsyncConnection, system_id: str, changes: dict[str, str], user: User, types: tuple[int, ...]
) -> nodes_service.NodesView:
    """MAAS's set_workload_annotations: key=value pairs; an empty value removes the key.
    Only the node's owner may annotate it."""
    node = await nodes_service.get_node(
        conn, system_id, types, user, lock=True, model="Device" if types == DEVICE_TYPES else "Machine"
    )
    if node["owner_id"] != user.id:
        raise Conflict("Cannot set workload annotation: it hasn't been acquired.")
    data = dict(node["owner_data"] or {})
    for key, value in changes.items():
        if value == "":
            data.pop(key, None)
        else:
            data[key] = value
    await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(owner_data=data, updated=func.now()))
    return await nodes_service.show(conn, [await nodes_service.get_node(conn, system_id, types)])


async def restore_networking(conn: AsyncConnection, system_id: str) -> nodes_service.NodesView:
    """Forget the device's links (its addresses), keep its interfaces."""
    device = await get_device(conn, system_id, lock=True)
    await conn.execute(
        delete(ip_addresses).where(
            ip_addresses.c.interface_id.in_(select(interfaces.c.id).where(interfaces.c.node_id == device["id"]))
        )
    )
    return await nodes_service.show(conn, [await get_device(conn, system_id)])


async def show_device(conn: AsyncConnection, system_id: str, viewer: User | None) -> nodes_service.NodesView:
    return await nodes_service.show(conn, [await get_device(conn, system_id, viewer)])
