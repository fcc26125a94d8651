"""machines/ and machines/{system_id}/: machines, their power, their BMCs."""

from __future__ import annotations

from metalplane.rpc import power_schema as schema
from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Refused
from metalplane.region.services import bmcs, commissioning, machines, power

machines_h = Handler("MachinesHandler", "machines/", "Manage the collection of all the machines in the MAAS.")
machine_h = Handler("MachineHandler", "machines/{system_id}/", "Manage an individual machine.")

POWER_DOC = """
:param power_type: A power management type (ipmi, redfish, webhook, manual).
:type power_type: unicode
:param power_parameters: The power parameters as a JSON object, or give each as power_parameters_NAME.
:type power_parameters: unicode
"""


def power_flat(ctx: Ctx) -> dict[str, str]:
    prefix = "power_parameters_"
    return {name[len(prefix):]: ctx.params.str(name) or "" for name in ctx.params.names() if name.startswith(prefix)}


@machines_h.read
async def list_machines(ctx: Ctx) -> list:
    """List machines.

    :param hostname: Only machines with this hostname (repeatable).
    :type hostname: unicode
    :param id: Only machines with this system_id (repeatable).
    :type id: unicode
    """
    system_ids, hostnames = ctx.params.get_list("id"), ctx.params.get_list("hostname")
    async with ctx.tx() as conn:
        return render.machines(await machines.show_machines(conn, system_ids, hostnames))


async def create_machine(ctx: Ctx) -> dict:
    p = ctx.params
    fields = {
        "hostname": p.str("hostname"), "architecture": p.str("architecture"), "description": p.str("description"),
        "mac_addresses": p.get_list("mac_addresses"), "power_type": p.str("power_type"),
        "power_parameters": p.str("power_parameters"), "power_flat": power_flat(ctx),
    }
    async with ctx.tx() as conn:
        return render.machines(await machines.create_machine(conn, fields))[0]


create_machine.__doc__ = """Create a new machine.

:param architecture: The architecture type of the machine (e.g. amd64/generic).
:type architecture: unicode
:param mac_addresses: One or more MAC addresses for the machine.
:type mac_addresses: unicode
:param hostname: A hostname. If not given, one is generated.
:type hostname: unicode
:param description: A description of the machine.
:type description: unicode
""" + POWER_DOC
machines_h.action("POST", admin=True)(create_machine)


@machines_h.action("GET", "power_parameters", admin=True)
async def all_power_parameters(ctx: Ctx) -> dict:
    """Get power parameters for multiple machines (passwords included).

    :param id: A system_id to include (repeatable; all machines when omitted).
    :type id: unicode
    """
    system_ids = ctx.params.get_list("id")
    async with ctx.tx() as conn:
        return await machines.all_power_parameters(conn, system_ids)


@machines_h.action("GET", "bmcs")
async def list_bmcs(ctx: Ctx) -> dict:
    """Every BMC with the rack that owns it, its candidate racks, and the spread of owners."""
    async with ctx.tx() as conn:
        return await bmcs.ownership(conn)


@machines_h.action("GET", "describe_power_types")
async def describe_power_types(ctx: Ctx) -> list:
    """Describe the power types this MAAS supports and their parameters."""
    return schema.describe_power_types()


@machine_h.read
async def read_machine(ctx: Ctx) -> dict:
    """Read a machine."""
    async with ctx.tx() as conn:
        return render.machines(await machines.show_machine(conn, ctx.path["system_id"]))[0]


async def update_machine(ctx: Ctx) -> dict:
    fields = ctx.params.given({"hostname": "str", "description": "str", "architecture": "str",
                               "power_type": "str", "power_parameters": "str"})
    fields["power_flat"] = power_flat(ctx)
    async with ctx.tx() as conn:
        return render.machines(await machines.update_machine(conn, ctx.path["system_id"], fields))[0]


update_machine.__doc__ = """Update a machine.

:param hostname: The new hostname.
:type hostname: unicode
:param description: The new description.
:type description: unicode
:param architecture: The new architecture.
:type architecture: unicode
""" + POWER_DOC
machine_h.action("PUT", admin=True)(update_machine)


@machine_h.action("DELETE", admin=True)
async def delete_machine(ctx: Ctx) -> None:
    """Delete a machine."""
    async with ctx.tx() as conn:
        await machines.delete_machine(conn, ctx.path["system_id"])


@machine_h.action("GET", "power_parameters", admin=True)
async def power_parameters(ctx: Ctx) -> dict:
    """Get the power parameters of this machine (passwords included; admin only)."""
    async with ctx.tx() as conn:
        return machines.power_parameters(await machines.get_machine(conn, ctx.path["system_id"]))


@machine_h.action("POST", "power_on", admin=True)
async def power_on(ctx: Ctx) -> dict:
    """Turn on a machine.

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return render.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "on"))[0]


@machine_h.action("POST", "power_off", admin=True)
async def power_off(ctx: Ctx) -> dict:
    """Power off a machine.

    :param stop_mode: 'hard' (default) or 'soft'.
    :type stop_mode: unicode
    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    if (ctx.params.str("stop_mode") or "hard") not in ("hard", "soft"):
        raise Refused("stop_mode must be 'hard' or 'soft'.")
    return render.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "off"))[0]


@machine_h.action("POST", "power_cycle", admin=True)
async def power_cycle(ctx: Ctx) -> dict:
    """Power cycle a machine (off, then on).

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return render.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "cycle"))[0]


@machine_h.action("GET", "query_power_state")
async def query_power_state(ctx: Ctx) -> dict:
    """Query the power state of a machine from its BMC."""
    result = await power.run(ctx.work, ctx.rpc, ctx.path["system_id"], "query")
    return {"state": result["state"]}


@machine_h.action("POST", "commission", admin=True)
async def commission(ctx: Ctx) -> dict:
    """Begin commissioning: the machine is powered on through its BMC, boots the
    ephemeral image over the network, reports its hardware and goes Ready (or
    Failed commissioning, with the scripts' output kept).

    :param timeout: Seconds to wait for the machine to report (default: the
        commissioning_timeout setting).
    :type timeout: integer
    """
    timeout = ctx.params.int("timeout", min_value=10, max_value=7 * 86400)
    return render.machines(await commissioning.commission(ctx.work, ctx.rpc, ctx.path["system_id"], timeout))[0]


@machine_h.action("GET", "commissioning_results")
async def commissioning_results(ctx: Ctx) -> list:
    """The output and exit status of each commissioning script of the last run."""
    async with ctx.tx() as conn:
        return await commissioning.results_of(conn, ctx.path["system_id"])
