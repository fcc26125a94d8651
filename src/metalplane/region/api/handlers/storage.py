"""nodes/{system_id}/blockdevices/ and their partitions: the disks commissioning found (read)."""

from __future__ import annotations

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import storage

block_devices = Handler("BlockDevicesHandler", "nodes/{system_id}/blockdevices/", "Manage block devices on a machine.")
block_device = Handler(
    "BlockDeviceHandler", "nodes/{system_id}/blockdevices/{id}/", "Manage a block device on a machine."
)
partitions = Handler(
    "PartitionsHandler",
    "nodes/{system_id}/blockdevices/{device_id}/partitions/",
    "Manage partitions on a block device.",
)
partition = Handler(
    "PartitionHandler",
    "nodes/{system_id}/blockdevices/{device_id}/partition/{id}",
    "Manage a partition on a block device.",
)
# MAAS's route also takes the plural form.
partition_plural = Handler(
    "PartitionHandler",
    "nodes/{system_id}/blockdevices/{device_id}/partitions/{id}",
    "Manage a partition on a block device.",
    described=False,
)


@block_devices.read
async def list_block_devices(ctx: Ctx) -> list:
    """List the block devices of a machine (as its commissioning found them)."""
    node, disks = await ctx.run(storage.disks_of, ctx.path["system_id"], ctx.me)
    return [render_nodes.block_device(node, d) for d in disks]


@block_device.read
async def read_block_device(ctx: Ctx) -> dict:
    """Read a block device (by id or name)."""
    node, disk = await ctx.run(storage.disk_of, ctx.path["system_id"], ctx.path["id"], ctx.me)
    return render_nodes.block_device(node, disk)


@partitions.read
async def list_partitions(ctx: Ctx) -> list:
    """List the partitions of a block device."""
    node, disk = await ctx.run(storage.disk_of, ctx.path["system_id"], ctx.path["device_id"], ctx.me)
    return [render_nodes.partition(node, disk, p) for p in disk["partitions"]]


async def read_partition(ctx: Ctx) -> dict:
    """Read a partition."""
    async with ctx.tx() as conn:
        node, disk, part = await storage.partition_of(
            conn, ctx.path["system_id"], ctx.path["device_id"], ctx.path["id"], ctx.me
        )
    return render_nodes.partition(node, disk, part)


for handler in (partition, partition_plural):
    handler.read(read_partition)
