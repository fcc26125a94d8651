"""nodes/{system_id}/raids/, bcaches/, bcache-cache-sets/ and volume-groups/, and one of each.

metalplane builds no RAID, bcache or LVM layout (services/storage_layouts.py): a
machine's lists are empty, one object is not found in MAAS's words, and a create is
a 400 naming the device field, after MAAS's machine and permission checks.
"""

from __future__ import annotations

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler, params_doc
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


# -- RAID ---------------------------------------------------------------------------------------

raids.action("GET", doc="List a machine's RAID devices: none, metalplane builds no RAID.")(list_layouts)
raids.action(
    "POST",
    doc=params_doc(
        "Create a RAID device: refused (400), metalplane builds no RAID.",
        ("level", "RAID level (raid-0, raid-1, raid-5, raid-6, raid-10)."),
        ("name", "Name of the RAID."),
        ("uuid", "UUID of the RAID."),
        ("block_devices", "Block devices to make the RAID of."),
        ("partitions", "Partitions to make the RAID of."),
        ("spare_devices", "Spare block devices."),
        ("spare_partitions", "Spare partitions."),
    ),
)(create_for(RAID))
raid.action("GET", doc="Read a RAID device by id or name: there is none.")(not_found(RAID))
raid.action(
    "PUT",
    doc=params_doc(
        "Update a RAID device: there is none.",
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
    ),
)(not_found(RAID))
raid.action("DELETE", doc="Delete a RAID device: there is none.")(not_found(RAID))

# -- bcache -------------------------------------------------------------------------------------

BCACHE_FIELDS = (
    ("name", "Name of the bcache device."),
    ("uuid", "UUID of the bcache device."),
    ("cache_set", "The cache set in front of the backing device."),
    ("backing_device", "The backing block device."),
    ("backing_partition", "The backing partition."),
    ("cache_mode", "writeback, writethrough or writearound."),
)
bcaches.action("GET", doc="List a machine's bcache devices: none, metalplane builds no bcache.")(list_layouts)
bcaches.action(
    "POST", doc=params_doc("Create a bcache device: refused (400), metalplane builds no bcache.", *BCACHE_FIELDS)
)(create_for(BCACHE))
bcache.action("GET", doc="Read a bcache device by id or name: there is none.")(not_found(BCACHE))
bcache.action("PUT", doc=params_doc("Update a bcache device: there is none.", *BCACHE_FIELDS))(not_found(BCACHE))
bcache.action("DELETE", doc="Delete a bcache device: there is none.")(not_found(BCACHE))

# -- bcache cache sets --------------------------------------------------------------------------

CACHE_SET_FIELDS = (("cache_device", "The cache block device."), ("cache_partition", "The cache partition."))
cache_sets.action("GET", doc="List a machine's bcache cache sets: none, metalplane builds no bcache.")(list_layouts)
cache_sets.action(
    "POST", doc=params_doc("Create a bcache cache set: refused (400), metalplane builds no bcache.", *CACHE_SET_FIELDS)
)(create_for(CACHE_SET))
cache_set.action("GET", doc="Read a bcache cache set by id or name: there is none.")(missing_cache_set)
cache_set.action("PUT", doc=params_doc("Update a bcache cache set: there is none.", *CACHE_SET_FIELDS))(
    missing_cache_set
)
cache_set.action("DELETE", doc="Delete a bcache cache set: there is none.")(missing_cache_set)

# -- LVM volume groups --------------------------------------------------------------------------

volume_groups.action("GET", doc="List a machine's LVM volume groups: none, metalplane builds no LVM.")(list_layouts)
volume_groups.action(
    "POST",
    doc=params_doc(
        "Create an LVM volume group: refused (400), metalplane builds no LVM.",
        ("name", "Name of the volume group."),
        ("uuid", "UUID of the volume group."),
        ("block_devices", "Block devices to make the volume group of."),
        ("partitions", "Partitions to make the volume group of."),
    ),
)(create_for(VOLUME_GROUP))

VOLUME_GROUP_DOCS = {
    ("GET", None): "Read an LVM volume group by id or name: there is none.",
    ("PUT", None): params_doc(
        "Update an LVM volume group: there is none.",
        ("name", "Name of the volume group."),
        ("uuid", "UUID of the volume group."),
        ("add_block_devices", "Block devices to add."),
        ("remove_block_devices", "Block devices to remove."),
        ("add_partitions", "Partitions to add."),
        ("remove_partitions", "Partitions to remove."),
    ),
    ("DELETE", None): "Delete an LVM volume group: there is none.",
    ("POST", "create_logical_volume"): params_doc(
        "Create a logical volume in an LVM volume group: there is none.",
        ("name", "Name of the logical volume."),
        ("uuid", "UUID of the logical volume."),
        ("size", "Size of the logical volume."),
    ),
}


for handler in (volume_group, volume_group_plural):
    for (method, op), text in VOLUME_GROUP_DOCS.items():
        handler.action(method, op, doc=text)(not_found(VOLUME_GROUP))
    handler.action(
        "POST",
        "delete_logical_volume",
        doc=params_doc(
            "Delete a logical volume of an LVM volume group: there is none.", ("id", "The logical volume's id.", "int")
        ),
    )(not_found(VOLUME_GROUP))  # MAAS looks the volume group up before it reads `id`
