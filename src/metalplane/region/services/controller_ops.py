"""What MAAS lets an admin do to a rack or region controller beyond reading it:
update (description, zone, domain, power), power parameters, details, the boot
images a rack serves, re-syncing racks' image caches, and deleting a region.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import nodes, rpc_connections, zones
from metalplane.region.errors import Invalid, Refused
from metalplane.region.services import boot_resources, consequences, controllers, machines, node_details, node_fields
from metalplane.region.services.rows import Row, delete_row, update_row
from metalplane.rpc.nodes import RACK_TYPES, REGION_TYPES, NodeType

NO_CHOICE = "Select a valid choice. That choice is not one of the available choices."


def power_type_of(node: Row) -> str:
    """A controller's power type: "" until an admin sets one (MAAS's neutral value)."""
    return str((node.get("instance_power_parameters") or {}).get("__type__", ""))


def power_parameters_of(node: Row) -> dict[str, Any]:
    return {k: v for k, v in (node.get("instance_power_parameters") or {}).items() if not k.startswith("__")}


async def update_controller(
    conn: AsyncConnection, types: tuple[int, ...], system_id: str, fields: dict[str, Any]
) -> Row:
    """MAAS's ControllerForm: description, zone (by name), domain, power type and
    parameters (checked against the power driver's schema; stored, not polled)."""
    node = await controllers.get_controller(conn, types, system_id)
    values: dict[str, Any] = {}
    if fields.get("description") is not None:
        values["description"] = fields["description"]
    if fields.get("zone"):
        zone_id = (await conn.execute(select(zones.c.id).where(zones.c.name == fields["zone"]))).scalar()
        if zone_id is None:
            raise Invalid.field("zone", NO_CHOICE)
        values["zone_id"] = zone_id
    if fields.get("domain"):
        # MAAS's ControllerForm picks the domain by name; its id is taken too, as for machines
        values["domain_id"] = await node_fields.domain_id_for(conn, fields["domain"], NO_CHOICE)
    if "power_type" in fields or "power_parameters" in fields or fields.get("power_flat"):
        power_type = fields.get("power_type") or power_type_of(node) or "manual"
        same_type = power_type == power_type_of(node)
        power_type, given = machines.parse_power_input(
            power_type, fields.get("power_parameters"), fields.get("power_flat", {})
        )
        merged = {**(power_parameters_of(node) if same_type else {}), **given}
        params = merged if fields.get("power_parameters_skip_check") else machines.check_power(power_type, merged)
        values["instance_power_parameters"] = {**params, "__type__": power_type}
    if values:
        await update_row(conn, nodes, node["id"], **values)
    if values.get("domain_id", node["domain_id"]) != node["domain_id"]:
        consequences.region_services_changed(conn)  # its name in DNS moves to the domain
    return await controllers.get_controller(conn, types, system_id)


async def power_parameters(conn: AsyncConnection, types: tuple[int, ...], system_id: str) -> dict[str, Any]:
    return power_parameters_of(await controllers.get_controller(conn, types, system_id))


async def all_power_parameters(
    conn: AsyncConnection, types: tuple[int, ...], system_ids: list[str]
) -> dict[str, dict[str, Any]]:
    found = await controllers.list_controllers(conn, types, system_ids or None)
    return {n["system_id"]: power_parameters_of(n) for n in found}


async def details(conn: AsyncConnection, types: tuple[int, ...], system_id: str) -> dict[str, bytes | None]:
    node = await controllers.get_controller(conn, types, system_id)
    return await node_details.probed_details(conn, node["id"])


async def boot_images(conn: AsyncConnection, system_id: str) -> dict[str, Any]:
    """MAAS's list_boot_images: the images the rack is to serve, i.e. the region's complete
    boot resources (a rack syncs its cache to exactly these whenever they change). There
    is no RPC yet for a rack to report its cache, so `status` is "synced" while the rack
    is connected (it re-syncs on every change) and "unknown" while it is not."""
    rack = await controllers.get_controller(conn, RACK_TYPES, system_id)
    connected = (
        await conn.execute(
            select(func.count()).select_from(rpc_connections).where(rpc_connections.c.rack_id == rack["id"])
        )
    ).scalar_one() > 0
    images = [
        {"name": image["name"], "architecture": image["architecture"], "subarches": [image["subarch"]]}
        for image in (await boot_resources.manifest(conn))["images"]
    ]
    return {"images": images, "connected": connected, "status": "synced" if connected else "unknown"}


async def import_boot_images(conn: AsyncConnection, system_id: str | None = None) -> None:
    """Have racks sync their image caches with the region now (every rack: one
    announcement reaches all; a rack with nothing to fetch does nothing)."""
    if system_id is not None:
        await controllers.get_controller(conn, RACK_TYPES, system_id)
    consequences.images_changed(conn)


async def delete_region(conn: AsyncConnection, system_id: str) -> None:
    """MAAS's rule: a region with running processes cannot be deleted; a region that
    is also a rack stays, as a rack."""
    node = await controllers.get_controller(conn, REGION_TYPES, system_id)
    if await controllers.live_processes(conn, node["id"]):
        raise Refused(f"Unable to delete {node['hostname']} as it's currently running.")
    await controllers.remove_region_processes(conn, node["id"])
    if node["node_type"] == NodeType.REGION_AND_RACK_CONTROLLER:
        await conn.execute(
            update(nodes).where(nodes.c.id == node["id"]).values(node_type=NodeType.RACK_CONTROLLER, updated=func.now())
        )
    else:
        await delete_row(conn, nodes, node["id"])
