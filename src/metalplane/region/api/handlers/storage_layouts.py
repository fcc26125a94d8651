"""nodes/{system_id}/raids/, bcaches/, bcache-cache-sets/ and volume-groups/, and one of each.

metalplane builds no RAID, bcache or LVM layout (services/storage_layouts.py): a
machine's lists are empty, one object is not found in MAAS's words, and a create is
a 400 naming the device field, after MAAS's machine and permission checks.
"""

from __future__ import annotations

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import ActionFunc, Handler, params_doc
from metalplane.region.services import storage_layouts as svc
from metalplane.region.services.storage_layouts import BCACHE, CACHE_SET, RAID, VOLUME_GROUP, Layout

raids = Handler("RaidsHandler", "nodes/{system_id}/raids/", "Manage the RAID devices of a machine.", model="Machine")
raid = Handler("RaidHandler", "nodes/{system_id}/raid/{id}/", "Manage one RAID device of a machine.", model="RAID")
bcaches = Handler(
    "BcachesHandler", "nodes/{system_id}/bcaches/", "Manage the bcache devices of a machine.", model="Machine"
)
bcache = Handler(
    "BcacheHandler", "nodes/{system_id}/bcache/{id}/", "Manage one bcache device of a machine.", model="Bcache"
)
cache_sets = Handler(
    "BcacheCacheSetsHandler",
    "nodes/{system_id}/bcache-cache-sets/",
    "Manage the bcache cache sets of a machine.",
    model="Machine",
)
cache_set = Handler(
    "BcacheCacheSetHandler",
    "nodes/{system_id}/bcache-cache-set/{id}/",
    "Manage one bcache cache set of a machine.",
    model="CacheSet",
)
volume_groups = Handler(
    "VolumeGroupsHandler",
    "nodes/{system_id}/volume-groups/",
    "Manage the LVM volume groups of a machine.",
    model="Machine",
)
volume_group = Handler(
    "VolumeGroupHandler",
    "nodes/{system_id}/volume-group/{id}/",
    "Manage one LVM volume group of a machine.",
    model="VolumeGroup",
)
# MAAS's route also takes the plural form.
volume_group_plural = Handler(
    "VolumeGroupHandler",
    "nodes/{system_id}/volume-groups/{id}/",
    "Manage one LVM volume group of a machine.",
    model="VolumeGroup",
    described=False,
)


async def list_layouts(ctx: Ctx) -> list:
    return await ctx.run(svc.layouts_of, ctx.path["system_id"], ctx.me)


def create_for(layout: Layout):
    async def create(ctx: Ctx) -> dict:
        await ctx.run(svc.create_layout, ctx.path["system_id"], ctx.me, layout, ctx.params.names())
        raise AssertionError("create_layout always raises")

    return create


def not_found(layout: Layout):
    async def missing(ctx: Ctx) -> dict:
        svc.no_layout(layout)

    return missing


async def missing_cache_set(ctx: Ctx) -> dict:
    await ctx.run(svc.no_cache_set, ctx.path["system_id"], ctx.me)
    raise AssertionError("no_cache_set always raises")


def collection_actions(
    handler: Handler, layout: Layout, listed: str, one: str, builds: str, *fields: tuple[str, str]
) -> None:
    """A machine's list of a layout (always empty) and its create (always refused, after MAAS's checks)."""
    handler.action("GET", doc=f"List a machine's {listed}: none, metalplane builds no {builds}.")(list_layouts)
    handler.action("POST", doc=params_doc(f"Create {one}: refused (400), metalplane builds no {builds}.", *fields))(
        create_for(layout)
    )


def object_actions(handler: Handler, missing: ActionFunc, one: str, *fields: tuple[str, str]) -> None:
    """Read, update and delete of one layout object: there is none."""
    handler.action("GET", doc=f"Read {one} by id or name: there is none.")(missing)
    handler.action("PUT", doc=params_doc(f"Update {one}: there is none.", *fields))(missing)
    handler.action("DELETE", doc=f"Delete {one}: there is none.")(missing)


# -- RAID ---------------------------------------------------------------------------------------

collection_actions(
    raids,
    RAID,
    "RAID devices",
    "a RAID device",
    "RAID",
    ("level", "RAID level (raid-0, raid-1, raid-5, raid-6, raid-10)."),
    ("name", "Name of the RAID."),
    ("uuid", "UUID of the RAID."),
    ("block_devices", "Block devices to make the RAID of."),
    ("partitions", "Partitions to make the RAID of."),
    ("spare_devices", "Spare block devices."),
    ("spare_partitions", "Spare partitions."),
)
object_actions(
    raid,
    not_found(RAID),
    "a RAID device",
    ("name", "Name of the RAID."),
    ("uuid", "UUID of the RAID."),
    ("add_block_devices", "Block devices to add."),
    ("remove_block_devices", "Block devices to remove."),
    ("add_spare_devices", "Spare block devices to add."),
    ("remove_spare_devices", "Spare block devices to remove."),
    ("add_partitions", "Partitions to add."),
    ("remove_partitions", "Partitions to remove."),
    ("add_spare_partitions", "Spare partitions to add."),
    ("remove_spare_partitions", "Spare partitions to remove."),
)

# -- bcache -------------------------------------------------------------------------------------

BCACHE_FIELDS = (
    ("name", "Name of the bcache device."),
    ("uuid", "UUID of the bcache device."),
    ("cache_set", "The cache set in front of the backing device."),
    ("backing_device", "The backing block device."),
    ("backing_partition", "The backing partition."),
    ("cache_mode", "writeback, writethrough or writearound."),
)
collection_actions(bcaches, BCACHE, "bcache devices", "a bcache device", "bcache", *BCACHE_FIELDS)
object_actions(bcache, not_found(BCACHE), "a bcache device", *BCACHE_FIELDS)

# -- bcache cache sets --------------------------------------------------------------------------

CACHE_SET_FIELDS = (("cache_device", "The cache block device."), ("cache_partition", "The cache partition."))
collection_actions(cache_sets, CACHE_SET, "bcache cache sets", "a bcache cache set", "bcache", *CACHE_SET_FIELDS)
object_actions(cache_set, missing_cache_set, "a bcache cache set", *CACHE_SET_FIELDS)

# -- LVM volume groups --------------------------------------------------------------------------

collection_actions(
    volume_groups,
    VOLUME_GROUP,
    "LVM volume groups",
    "an LVM volume group",
    "LVM",
    ("name", "Name of the volume group."),
    ("uuid", "UUID of the volume group."),
    ("block_devices", "Block devices to make the volume group of."),
    ("partitions", "Partitions to make the volume group of."),
)

for handler in (volume_group, volume_group_plural):
    object_actions(
        handler,
        not_found(VOLUME_GROUP),
        "an LVM volume group",
        ("name", "Name of the volume group."),
        ("uuid", "UUID of the volume group."),
        ("add_block_devices", "Block devices to add."),
        ("remove_block_devices", "Block devices to remove."),
        ("add_partitions", "Partitions to add."),
        ("remove_partitions", "Partitions to remove."),
    )
    handler.action(
        "POST",
        "create_logical_volume",
        doc=params_doc(
            "Create a logical volume in an LVM volume group: there is none.",
            ("name", "Name of the logical volume."),
            ("uuid", "UUID of the logical volume."),
            ("size", "Size of the logical volume."),
        ),
    )(not_found(VOLUME_GROUP))
    handler.action(
        "POST",
        "delete_logical_volume",
        doc=params_doc(
            "Delete a logical volume of an LVM volume group: there is none.", ("id", "The logical volume's id.", "int")
        ),
    )(not_found(VOLUME_GROUP))  # MAAS looks the volume group up before it reads `id`
