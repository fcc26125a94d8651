"""The lifecycle ops of machines/ and machines/{system_id}/: allocate, deploy, release,
abort, mark_broken/mark_fixed, lock/unlock, set_owner_data (services/lifecycle.py), rescue_mode
and exit_rescue_mode (services/rescue.py)."""

from __future__ import annotations

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.handlers.machines import machine_h, machines_h
from metalplane.region.errors import Invalid
from metalplane.region.services import allocation, lifecycle, rescue

COMMENT_DOC = """:param comment: Optional comment for the event log.
:type comment: unicode
"""


def _comment(ctx: Ctx) -> str:
    return (ctx.params.str("comment") or "")[:2000]


def _one(view) -> dict:
    return render_nodes.machines(view)[0]


@machines_h.action("POST", "allocate")
async def allocate(ctx: Ctx) -> dict:
    """Allocate an available (Ready) machine that matches the constraints.

    :param name: Hostname or FQDN of the desired machine.
    :param system_id: system_id of the desired machine.
    :param arch: Architecture (e.g. amd64, amd64/generic).
    :param cpu_count: The minimum number of CPUs.
    :param mem: The minimum amount of memory (MiB).
    :param tags: Tags the machine must have (repeatable or comma-separated).
    :param not_tags: Tags the machine must not have.
    :param zone: The zone the machine must be in.
    :param not_in_zone: Zones the machine must not be in.
    :param pool: The resource pool the machine must be in.
    :param subnets: Subnets the machine must be linked to (id, cidr, name).
    :param interfaces: A labeled interface constraint map: label:key=value[,key=value][;...].
    :param agent_name: An optional agent name to attach to the acquired machine.
    :param comment: Optional comment for the event log.
    :param dry_run: Do not allocate, only answer which machine would be.
    :type dry_run: boolean

    Answers 409 (MAAS's message naming the constraints) when no machine matches.
    """
    given = {name: ctx.params.get_list(name) for name in ctx.params.names() if name != "op"}
    dry_run = bool(ctx.params.bool("dry_run", False))
    async with ctx.tx() as conn:
        allocated = await allocation.allocate(
            conn, ctx.me, given, ctx.params.str("agent_name") or "", _comment(ctx), dry_run
        )
    return {**_one(allocated.view), "constraints_by_type": allocated.constraints_by_type}


@machines_h.action("GET", "list_allocated")
async def list_allocated(ctx: Ctx) -> list:
    """The caller's Allocated machines.

    :param id: Only these system_ids (repeatable).
    :type id: unicode
    """
    return render_nodes.machines(await ctx.run(allocation.list_allocated, ctx.me, ctx.params.get_list("id")))


async def release_machines(ctx: Ctx) -> list:
    return await lifecycle.release_many(ctx.work, ctx.rpc, ctx.params.get_list("machines"), ctx.me, _comment(ctx))


release_machines.__doc__ = (
    """Release several machines: all of them or none (403/409 name the ones
in the way). Answers the system_ids released (Ready ones are skipped).

:param machines: A system_id to release (repeatable).
:type machines: unicode
"""
    + COMMENT_DOC
)
machines_h.action("POST", "release")(release_machines)


@machine_h.action("POST", "deploy")
async def deploy(ctx: Ctx) -> dict:
    """Deploy an operating system: the machine (Allocated, or Ready: allocated to you first)
    goes Deploying, is powered on, PXE-boots the installer, and is Deployed when the
    installed system reports in; Failed deployment when the installer fails or time runs out.

    :param osystem: The OS (default: the default_osystem setting).
    :type osystem: unicode
    :param distro_series: The release (default: the default_distro_series setting); must be an
        imported image with a root-tgz.
    :type distro_series: unicode
    :param user_data: Base64-encoded (or plain) data for the installed system; a script is run
        at its first boot.
    :type user_data: unicode
    :param hwe_kernel: Accepted and recorded; the image's own kernel is installed.
    :type hwe_kernel: unicode
    :param agent_name: Agent name recorded when a Ready machine is allocated.
    :type agent_name: unicode
    :param timeout: Seconds the deployment may take (default: node_timeout minutes).
    :type timeout: integer
    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    p = ctx.params
    raw_user_data = p.str("user_data")
    options = lifecycle.DeployOptions(
        osystem=(p.str("osystem") or "").strip() or None,
        distro_series=(p.str("distro_series") or "").strip() or None,
        user_data=lifecycle.decode_user_data(raw_user_data) if raw_user_data else None,
        hwe_kernel=(p.str("hwe_kernel") or "").strip() or None,
        comment=_comment(ctx),
        agent_name=p.str("agent_name") or "",
        timeout=p.int("timeout", min_value=10, max_value=7 * 86400),
    )
    for name in ("install_kvm", "register_vmhost", "ephemeral_deploy", "enable_hw_sync"):
        if p.bool(name, False):
            raise Invalid.field(name, "Not supported by metalplane.")
    return _one(await lifecycle.deploy(ctx.work, ctx.rpc, ctx.path["system_id"], ctx.me, options))


@machine_h.action("POST", "release")
async def release(ctx: Ctx) -> dict:
    """Release a machine: powered off through its BMC, the owner dropped, Ready again.

    :param erase: Wipe the disks first: Disk erasing, the machine boots the ephemeral
        environment's wipe, then it is released (default: enable_disk_erasing_on_release).
    :type erase: boolean
    :param secure_erase: Use the disks' ATA secure erase where they have it (else quick when
        quick_erase is given too, else zero the whole disk).
    :type secure_erase: boolean
    :param quick_erase: Zero only the first and last 2 MiB of each disk.
    :type quick_erase: boolean
    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    p = ctx.params
    return _one(
        await lifecycle.release(
            ctx.work,
            ctx.rpc,
            ctx.path["system_id"],
            ctx.me,
            p.bool("erase"),
            p.bool("quick_erase"),
            p.bool("secure_erase"),
            _comment(ctx),
        )
    )


@machine_h.action("POST", "abort")
async def abort(ctx: Ctx) -> dict:
    """Abort the current operation: Deploying -> Allocated, Commissioning -> New,
    Disk erasing -> Failed disk erasing, once the machine is powered off. A BMC that
    refuses the power-off: 503, and Failed deployment / Failed commissioning / Failed
    disk erasing with the reason.

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return _one(await lifecycle.abort(ctx.work, ctx.rpc, ctx.path["system_id"], ctx.me, _comment(ctx)))


@machine_h.action("POST", "mark_broken")
async def mark_broken(ctx: Ctx) -> dict:
    """Mark a machine Broken (its status before is kept for mark_fixed).

    :param error_description: Legacy name of comment.
    :type error_description: unicode
    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    comment = _comment(ctx) or (ctx.params.str("error_description") or "")[:2000]
    return _one(await ctx.run(lifecycle.mark_broken, ctx.path["system_id"], ctx.me, comment))


@machine_h.action("POST", "mark_fixed")
async def mark_fixed(ctx: Ctx) -> dict:
    """Mark a Broken machine fixed: Deployed if it was, else Ready (admins)."""
    return _one(await ctx.run(lifecycle.mark_fixed, ctx.path["system_id"], ctx.me, _comment(ctx)))


mark_fixed.__doc__ = (mark_fixed.__doc__ or "") + "\n\n" + COMMENT_DOC


@machine_h.action("POST", "lock")
async def lock(ctx: Ctx) -> dict:
    """Lock a Deployed or Deploying machine: no changes until it is unlocked.

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return _one(await ctx.run(lifecycle.lock, ctx.path["system_id"], ctx.me, _comment(ctx)))


@machine_h.action("POST", "unlock")
async def unlock(ctx: Ctx) -> dict:
    """Unlock a machine.

    :param comment: Optional comment for the event log.
    :type comment: unicode
    """
    return _one(await ctx.run(lifecycle.unlock, ctx.path["system_id"], ctx.me, _comment(ctx)))


async def set_owner_data(ctx: Ctx) -> dict:
    given = {name: ctx.params.str(name) or "" for name in ctx.params.names() if name != "op"}
    return _one(await ctx.run(lifecycle.set_owner_data, ctx.path["system_id"], ctx.me, given))


set_owner_data.__doc__ = """Set key=value pairs of the machine's owner data (workload
annotations); an empty value deletes the key.

:param key: Any key, with its value (give as many as needed); an empty value deletes the key.
:type key: unicode
"""
machine_h.action("POST", "set_owner_data")(set_owner_data)
machine_h.action("POST", "set_workload_annotations")(set_owner_data)


@machine_h.action("POST", "rescue_mode")
async def rescue_mode(ctx: Ctx) -> dict:
    """Begin rescue mode (admins): the machine boots the ephemeral environment, which stays up;
    Entering rescue mode, then Rescue mode when it reports in."""
    return _one(await rescue.enter(ctx.work, ctx.rpc, ctx.path["system_id"], ctx.me))


@machine_h.action("POST", "exit_rescue_mode")
async def exit_rescue_mode(ctx: Ctx) -> dict:
    """Exit rescue mode (admins): powered off (cycled when it was Deployed), back to the status before."""
    return _one(await rescue.leave(ctx.work, ctx.rpc, ctx.path["system_id"], ctx.me))
