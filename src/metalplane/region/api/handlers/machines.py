"""machines/ and machines/{system_id}/: machines, their power, their BMCs."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.handlers import nodes as nodes_handlers
from metalplane.region.api.handlers.node_docs import READ_FILTERS_DOC, RENAMING_DOC, bson_details, naming_doc
from metalplane.region.api.handlers.nodes import filter_values
from metalplane.region.errors import Refused
from metalplane.region.services import bmcs, commissioning, machine_create, machines, power
from metalplane.rpc import power_schema as schema

machines_h = Handler("MachinesHandler", "machines/", "Manage the collection of all the machines in the MAAS.")
machine_h = Handler("MachineHandler", "machines/{system_id}/", "Manage an individual machine.")

POWER_DOC = """
:param power_type: A power management type (ipmi, redfish, webhook, manual).
:type power_type: unicode
:param power_parameters: The power parameters as a JSON object, or give each as power_parameters_NAME.
:type power_parameters: unicode
"""


def power_flat(ctx: Ctx) -> dict[str, str]:
    """The power_parameters_NAME fields, by NAME; power_parameters_skip_check is a flag, not a parameter."""
    prefix = "power_parameters_"
    return {
        name[len(prefix) :]: ctx.params.str(name) or ""
        for name in ctx.params.names()
        if name.startswith(prefix) and name != "power_parameters_skip_check"
    }


async def list_machines(ctx: Ctx) -> list:
    return render_nodes.machines(await ctx.run(machines.read_machines, filter_values(ctx), ctx.me))


list_machines.__doc__ = (
    """List Nodes visible to the user, optionally filtered by criteria.

Values of one parameter are alternatives (give it several times); different
parameters must all match. `not_*` parameters exclude.
"""
    + READ_FILTERS_DOC
)
machines_h.read(list_machines)


def create_fields(ctx: Ctx) -> dict:
    p = ctx.params
    return {
        **p.given(
            {
                "hostname": "str",
                "architecture": "str",
                "subarchitecture": "str",
                "min_hwe_kernel": "str",
                "description": "str",
                "domain": "str",
                "zone": "str",
                "pool": "str",
                "power_type": "str",
                "power_parameters": "str",
                "commission": "bool",
                "deployed": "bool",
                "enable_ssh": "bool",
                "skip_bmc_config": "bool",
                "skip_networking": "bool",
                "skip_storage": "bool",
                "commissioning_scripts": "str",
                "testing_scripts": "str",
                "is_dpu": "bool",
            }
        ),
        "mac_addresses": p.get_list("mac_addresses"),
        "power_flat": power_flat(ctx),
    }


async def create_machine(ctx: Ctx) -> dict:
    view = await machine_create.create(ctx.work, ctx.rpc, create_fields(ctx), ctx.me)
    return render_nodes.machines(view)[0]


create_machine.__doc__ = (
    """Create a new machine. An admin's new machine starts commissioning
(powered on through its BMC) unless commission=false.

:param architecture: The architecture type of the machine, e.g. amd64/generic (or amd64, with
    subarchitecture). Required unless power_type is ipmi.
:type architecture: unicode
:param subarchitecture: The subarchitecture, when architecture has none (default: generic).
:type subarchitecture: unicode
:param min_hwe_kernel: The minimum kernel version allowed to run on this machine.
:type min_hwe_kernel: unicode
:param mac_addresses: One or more MAC addresses for the machine (repeatable). Required unless
    power_type is ipmi.
:type mac_addresses: unicode"""
    + naming_doc("machine")
    + """:param zone: The physical zone of the machine (default: the default zone).
:type zone: unicode
:param pool: The resource pool of the machine (default: the default pool).
:type pool: unicode
:param commission: Whether to commission the machine (admins only; default true).
:type commission: boolean
:param deployed: Register a machine that is already deployed (no commissioning).
:type deployed: boolean
:param enable_ssh: Not supported by metalplane's commissioning environment: 0 only.
:type enable_ssh: integer
:param skip_bmc_config: Not supported: 0 only.
:type skip_bmc_config: integer
:param skip_networking: Not supported: 0 only.
:type skip_networking: integer
:param skip_storage: Not supported: 0 only.
:type skip_storage: integer
:param commissioning_scripts: Not supported: empty or none only.
:type commissioning_scripts: unicode
:param testing_scripts: Not supported: empty or none only.
:type testing_scripts: unicode
:param is_dpu: Not supported: false only.
:type is_dpu: boolean
"""
    + POWER_DOC
)
machines_h.action("POST")(create_machine)


# MAAS's machines/ collection has the nodes/ collection's operations.
machines_h.action("GET", "is_registered")(nodes_handlers.is_registered)
machines_h.action("POST", "set_zone", admin=True)(nodes_handlers.set_zone)


@machines_h.action("GET", "power_parameters", admin=True)
async def all_power_parameters(ctx: Ctx) -> dict:
    """Get power parameters for multiple machines (passwords included).

    :param id: A system_id to include (repeatable; all machines when omitted).
    :type id: unicode
    """
    system_ids = ctx.params.get_list("id")
    return await ctx.run(machines.all_power_parameters, system_ids)


@machines_h.action("GET", "bmcs")
async def list_bmcs(ctx: Ctx) -> dict:
    """Every BMC with the rack that owns it, its candidate racks, and the spread of owners."""
    return await ctx.run(bmcs.ownership)


@machines_h.action("GET", "describe_power_types")
async def describe_power_types(ctx: Ctx) -> list:
    """Describe the power types this MAAS supports and their parameters."""
    return schema.describe_power_types()


@machine_h.read
async def read_machine(ctx: Ctx) -> dict:
    """Read a machine."""
    return render_nodes.machines(await ctx.run(machines.show_machine, ctx.path["system_id"], ctx.me))[0]


async def update_machine(ctx: Ctx) -> dict:
    fields = ctx.params.given(
        {
            "hostname": "str",
            "description": "str",
            "domain": "str",
            "architecture": "str",
            "min_hwe_kernel": "str",
            "power_type": "str",
            "power_parameters": "str",
            "power_parameters_skip_check": "bool",
            "pool": "str",
            "zone": "str",
            "swap_size": "str",
            "disable_ipv4": "bool",
            "cpu_count": "int",
            "memory": "int",
        }
    )
    fields["power_flat"] = power_flat(ctx)
    return render_nodes.machines(await ctx.run(machines.update_machine, ctx.path["system_id"], fields))[0]


update_machine.__doc__ = (
    "Update a machine. Every field given is applied, or none is (400).\n"
    + RENAMING_DOC
    + """:param architecture: The new architecture, e.g. amd64/generic.
:type architecture: unicode
:param min_hwe_kernel: The minimum kernel version allowed to run on this machine.
:type min_hwe_kernel: unicode
:param power_parameters_skip_check: Store the power parameters without checking them.
:type power_parameters_skip_check: boolean
:param pool: The name of the resource pool the machine moves to.
:type pool: unicode
:param zone: The name of the zone the machine moves to.
:type zone: unicode
:param swap_size: The swap size in bytes, or with K, M, G or T (powers of 1000).
:type swap_size: unicode
:param disable_ipv4: Deprecated: false only.
:type disable_ipv4: boolean
:param cpu_count: The number of CPUs.
:type cpu_count: integer
:param memory: The memory in MiB.
:type memory: integer
"""
    + POWER_DOC
)
machine_h.action("PUT", admin=True)(update_machine)


@machine_h.action("GET", "details")
async def machine_details(ctx: Ctx) -> Response:
    """Get system details: a BSON document with the hardware document (lshw vocabulary,
    docs/tags.md) under "lshw"."""
    found = await ctx.run(machines.get_machine, ctx.path["system_id"], viewer=ctx.me)
    return bson_details(found)


@machine_h.action("DELETE", admin=True)
async def delete_machine(ctx: Ctx) -> None:
    """Delete a machine."""
    await ctx.run(machines.delete_machine, ctx.path["system_id"])


@machine_h.action("GET", "power_parameters", admin=True)
async def power_parameters(ctx: Ctx) -> dict:
    """Get the power parameters of this machine (passwords included; admin only)."""
    return machines.power_parameters(await ctx.run(machines.get_machine, ctx.path["system_id"]))


@machine_h.action("POST", "power_on")
async def power_on(ctx: Ctx) -> dict:
    """Turn on a machine.

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return render_nodes.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "on", ctx.me))[0]


@machine_h.action("POST", "power_off")
async def power_off(ctx: Ctx) -> dict:
    """Power off a machine.

    :param stop_mode: 'hard' (default) or 'soft'.
    :type stop_mode: unicode
    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    if (ctx.params.str("stop_mode") or "hard") not in ("hard", "soft"):
        raise Refused("stop_mode must be 'hard' or 'soft'.")
    return render_nodes.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "off", ctx.me))[0]


@machine_h.action("POST", "power_cycle")
async def power_cycle(ctx: Ctx) -> dict:
    """Power cycle a machine (off, then on).

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return render_nodes.machines(await power.power_machine(ctx.work, ctx.rpc, ctx.path["system_id"], "cycle", ctx.me))[
        0
    ]


@machine_h.action("GET", "query_power_state")
async def query_power_state(ctx: Ctx) -> dict:
    """Query the power state of a machine from its BMC."""
    return {"state": await power.query_power_state(ctx.work, ctx.rpc, ctx.path["system_id"], ctx.user)}


@machine_h.action("POST", "commission")
async def commission(ctx: Ctx) -> dict:
    """Begin commissioning: the machine is powered on through its BMC, boots the
    ephemeral image over the network, reports its hardware and goes Ready (or
    Failed commissioning, with the scripts' output kept).

    :param timeout: Seconds to wait for the machine to report (default: the
        commissioning_timeout setting).
    :type timeout: integer
    """
    timeout = ctx.params.int("timeout", min_value=10, max_value=7 * 86400)
    return render_nodes.machines(
        await commissioning.commission(ctx.work, ctx.rpc, ctx.path["system_id"], timeout, ctx.me)
    )[0]


@machine_h.action("GET", "commissioning_results")
async def commissioning_results(ctx: Ctx) -> list:
    """The output and exit status of each commissioning script of the last run."""
    return await ctx.run(commissioning.results_of, ctx.path["system_id"], ctx.user)
