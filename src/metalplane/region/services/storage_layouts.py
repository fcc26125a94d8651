"""RAID, bcache and LVM on a machine (MAAS's raids/, bcaches/, bcache-cache-sets/ and
volume-groups/), and VM hosts (pods/): the API's resources metalplane has none of.

A machine's storage here is what its commissioning found (services/storage.py): disks
and their partitions. metalplane builds no software RAID, bcache or LVM volume group on
them, and manages no VM hosts, so each of these collections is empty, each object is
not found in MAAS's words, and a create is refused with a 400 that names the field and
says why, after the same machine and permission checks MAAS makes first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.errors import Invalid, NotFound, PermissionDenied
from metalplane.region.services import machines, permissions
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User

COMMISSIONED = "a machine's storage is the disks and partitions its commissioning found"


@dataclass(frozen=True)
class Layout:
    """One kind of layout: MAAS's model name (its 404 wording), the create fields that name
    the devices it would be built from (the first the client sent is the one refused), and why."""

    model: str
    device_fields: tuple[str, ...]
    reason: str


RAID = Layout(
    "RAID",
    ("block_devices", "partitions", "spare_devices", "spare_partitions"),
    f"metalplane does not build software RAID devices: {COMMISSIONED}.",
)
BCACHE = Layout(
    "Bcache",
    ("backing_device", "backing_partition", "cache_set"),
    f"metalplane does not build bcache devices: {COMMISSIONED}.",
)
CACHE_SET = Layout(
    "CacheSet",
    ("cache_device", "cache_partition"),
    f"metalplane does not build bcache cache sets: {COMMISSIONED}.",
)
VOLUME_GROUP = Layout(
    "VolumeGroup",
    ("block_devices", "partitions"),
    f"metalplane does not build LVM volume groups: {COMMISSIONED}.",
)
NO_VM_HOSTS = (
    "metalplane manages no VM hosts (pods): it deploys bare-metal machines only, so there is no VM host type to add."
)


async def layouts_of(conn: AsyncConnection, system_id: str, viewer: User | None) -> list[Row]:
    """A machine's RAIDs, bcaches, cache sets or volume groups: none (MAAS reads them of
    machines only: any other node, or one the caller cannot see, is "No Machine ...")."""
    await machines.get_machine(conn, system_id, viewer=viewer)
    return []


def refuse_create(layout: Layout, sent: Collection[str]) -> NoReturn:
    """The 400 for a create: the first device field the client sent (or the first there is)."""
    named = next((f for f in layout.device_fields if f in sent), layout.device_fields[0])
    raise Invalid.field(named, layout.reason)


async def create_layout(
    conn: AsyncConnection, system_id: str, actor: User, layout: Layout, sent: Collection[str]
) -> NoReturn:
    """MAAS's order: the machine (404), the admin permission on it (an empty 403, as for any
    node permission), then the form (here: always the 400)."""
    machine = await machines.get_machine(conn, system_id, viewer=actor)
    if not permissions.allowed(permissions.ADMIN, actor, machine["owner_id"], bool(machine["locked"])):
        raise PermissionDenied("")
    refuse_create(layout, sent)


def no_layout(layout: Layout) -> NoReturn:
    """One RAID, bcache or volume group by id or name: MAAS looks the object up before the
    machine, so whatever the system_id the answer is "No RAID matches the given query."."""
    raise NotFound(layout.model)


async def no_cache_set(conn: AsyncConnection, system_id: str, viewer: User | None) -> NoReturn:
    """One cache set: MAAS looks the machine up first ("No Machine ..."), then answers a
    cache set it does not find with a bare 404 (an empty body)."""
    await machines.get_machine(conn, system_id, viewer=viewer)
    raise NotFound(CACHE_SET.model, "")
