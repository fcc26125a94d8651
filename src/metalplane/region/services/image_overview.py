"""Images as the web UI shows them: boot resources with their newest set's progress,
the latest imports, and what each rack's image cache says it holds.

A rack's cache state is what the region knows of it: the rack's `http` service
(its image cache and HTTP boot server) reports a status and a line such as
"serving 2 of 2 image(s), 6 file(s), 310 MB", every few seconds while connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import nodes, service_status
from metalplane.region.services import boot_import, boot_resources
from metalplane.region.services.racks import service_sets
from metalplane.region.services.rows import Row
from metalplane.rpc.nodes import RACK_TYPES

RACKS_SHOWN = 100


@dataclass(frozen=True)
class ImageRow:
    id: int
    name: str
    architecture: str
    rtype: str
    title: str
    version: str | None  # the newest set
    files: int
    size: int
    stored: int
    complete: bool
    errors: list[str]

    @property
    def progress(self) -> float:
        return boot_resources.progress(self.stored, self.size, self.complete)


def image_row(resource: Row, sets: list[Row]) -> ImageRow:
    newest = max(sets, key=lambda s: s["id"]) if sets else None
    files = newest["files"] if newest else []
    return ImageRow(
        resource["id"],
        resource["name"],
        resource["architecture"],
        resource["rtype"],
        (resource["extra"] or {}).get("title", ""),
        newest["version"] if newest else None,
        len(files),
        newest["size"] if newest else 0,
        newest["stored"] if newest else 0,
        bool(newest and newest["complete"]),
        [f"{f['filename']}: {f['error']}" for f in files if f["error"] and not f["complete"]],
    )


@dataclass(frozen=True)
class RackCache:
    system_id: str
    hostname: str
    rackd: str  # running, degraded, dead: whether what it reports is current
    status: str
    info: str
    updated: datetime | None


@dataclass(frozen=True)
class ImagesPage:
    images: list[ImageRow]
    importing: bool
    imports: list[dict[str, Any]]  # the latest first
    racks: list[RackCache]
    rack_count: int


async def images_page(conn: AsyncConnection) -> ImagesPage:
    resources = await boot_resources.list_resources(conn)
    sets = await boot_resources.sets_of(conn, [r["id"] for r in resources])
    status = await boot_import.status(conn)
    rack_filter = nodes.c.node_type.in_(RACK_TYPES)
    count = (await conn.execute(select(func.count()).select_from(nodes).where(rack_filter))).scalar_one()
    shown = (
        await conn.execute(
            select(
                *nodes.c["id", "system_id", "hostname"],
                *service_status.c["status", "status_info", "updated"],
            )
            .outerjoin(service_status, and_(service_status.c.node_id == nodes.c.id, service_status.c.name == "http"))
            .where(rack_filter)
            .order_by(nodes.c.hostname)
            .limit(RACKS_SHOWN)
        )
    ).all()
    judged = await service_sets(conn, [r.id for r in shown])
    racks = [
        RackCache(
            r.system_id, r.hostname, judged[r.id][0].status, r.status or "unknown", r.status_info or "", r.updated
        )
        for r in shown
    ]
    return ImagesPage(
        [image_row(r, sets.get(r["id"], [])) for r in resources], status.importing, status.jobs, racks, count
    )
