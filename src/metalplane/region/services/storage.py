"""Block devices and partitions: what the node's commissioning reported, as MAAS shows them.

Commissioning replaces a node's disks with what its image found (name, size,
model, serial, rotational, removable, partitions); the API reads them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import block_devices, partitions
from metalplane.region.errors import NotFound
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.rows import Row, insert_row
from metalplane.region.services.users import User

MAX_BIGINT = 2**63 - 1


def disk_rows(disks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The facts' disks as block_devices values (MAAS tags disks ssd/rotary and removable)."""
    out = []
    for disk in disks:
        name = str(disk.get("name") or "").strip()
        size = disk.get("size_bytes")
        if not name or not isinstance(size, int) or not 0 < size <= MAX_BIGINT:
            continue
        serial = str(disk.get("serial") or "")
        model = str(disk.get("model") or "")
        tags = ["rotary" if disk.get("rotational") else "ssd"] + (["removable"] if disk.get("removable") else [])
        id_path = f"/dev/disk/by-id/{model.replace(' ', '_')}_{serial}" if model and serial else None
        parts = [
            p
            for p in disk.get("partitions") or []
            if isinstance(p.get("number"), int)
            and isinstance(p.get("size_bytes"), int)
            and 0 < p["size_bytes"] <= MAX_BIGINT
            and 0 < p["number"] < 2**31
        ]
        out.append(
            {
                "name": name,
                "model": model,
                "serial": serial,
                "size": size,
                "block_size": 512,
                "tags": tags,
                "id_path": id_path,
                "partitions": parts,
            }
        )
    return out


async def replace_disks(conn: AsyncConnection, node_id: int, disks: list[dict[str, Any]]) -> None:
    await conn.execute(delete(block_devices).where(block_devices.c.node_id == node_id))
    for disk in disk_rows(disks):
        parts = disk.pop("partitions")
        device_id = await insert_row(conn, block_devices, node_id=node_id, **disk)
        for part in parts:
            await conn.execute(
                insert(partitions).values(
                    block_device_id=device_id,
                    number=part["number"],
                    size=part["size_bytes"],
                    uuid=part.get("uuid") or None,
                    bootable=bool(part.get("bootable")),
                )
            )


async def disks_of(conn: AsyncConnection, system_id: str, viewer: User | None) -> tuple[Row, list[Row]]:
    """The node (any type) and its block devices with their partitions."""
    node = await nodes_service.get_node(conn, system_id, viewer=viewer)
    return node, (await nodes_service.block_devices_of(conn, [node["id"]])).get(node["id"], [])


async def disk_of(conn: AsyncConnection, system_id: str, device_id: str, viewer: User | None) -> tuple[Row, Row]:
    node, disks = await disks_of(conn, system_id, viewer)
    found = [d for d in disks if str(d["id"]) == device_id or d["name"] == device_id]
    if not found:
        raise NotFound("BlockDevice")
    return node, found[0]


async def partition_of(
    conn: AsyncConnection, system_id: str, device_id: str, partition_id: str, viewer: User | None
) -> tuple[Row, Row, Row]:
    node, disk = await disk_of(conn, system_id, device_id, viewer)
    found = [p for p in disk["partitions"] if str(p["id"]) == partition_id]
    if not found:
        raise NotFound("Partition")
    return node, disk, found[0]
