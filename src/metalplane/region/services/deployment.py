"""The region's side of the deploy contract (docs/boot.md, "deploy (needs token=)").

The installer (the ephemeral image in `mp_mode=deploy`) reads its orders from
`deploy/config` and `deploy/user-data`, reports each step (`deploy/events`), its
whole output (`deploy/installation`) and the outcome (`deploy/done`); the installed
system's first-boot agent reports in (`deploy/booted`). Each call carries the
machine's token; each is refused unless the machine is Deploying.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import interfaces, ip_addresses, node_user_data, nodes, subnets
from metalplane.region.errors import Invalid, Refused
from metalplane.region.services import boot_resources, domain_views, events, lifecycle, machines, sshkeys
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services import script_results as results_service
from metalplane.region.services.node_status import INSTALLATION_FAILED, Status
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User
from metalplane.rpc.nodes import RACK_TYPES

RACK_HTTP_PORT = 5248  # where every rack serves its image cache (MAAS's port)
IMAGE_PATH = "images/by-sha256/"
INSTALL_LOG = "/tmp/install.log"  # MAAS's name for the installation result
MAX_OUTPUT = 4 * 1024 * 1024
STEPS = ("config", "disk", "partition", "format", "image", "configure", "bootloader")
STEP_STATUSES = ("started", "ok", "failed")
MAX_MESSAGE = 2000


def require_deploying(machine: Row) -> None:
    if machine["status"] != Status.DEPLOYING:
        raise Refused(f"Machine {machine['hostname']} is not deploying.")


# -- orders ------------------------------------------------------------------------------------------


async def rack_addresses(conn: AsyncConnection, vlan_ids: set[int]) -> list[str]:
    """The racks' addresses, those on the machine's VLANs first (the installer tries them in order)."""
    found = (
        await conn.execute(
            select(ip_addresses.c.ip, subnets.c.vlan_id)
            .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
            .join(nodes, nodes.c.id == interfaces.c.node_id)
            .outerjoin(subnets, subnets.c.id == ip_addresses.c.subnet_id)
            .where(nodes.c.node_type.in_([int(t) for t in RACK_TYPES]), ip_addresses.c.ip.is_not(None))
            .order_by(nodes.c.id, ip_addresses.c.id)
        )
    ).all()
    usable = [
        (str(r.ip), r.vlan_id)
        for r in found
        if ipaddress.ip_address(str(r.ip)).version == 4 and not ipaddress.ip_address(str(r.ip)).is_loopback
    ]
    near = [ip for ip, vlan in usable if vlan in vlan_ids]
    return near or [ip for ip, _ in usable]


def image_urls(addresses: list[str], sha256: str) -> list[str]:
    return [f"http://{ip}:{RACK_HTTP_PORT}/{IMAGE_PATH}{sha256}" for ip in dict.fromkeys(addresses)]


def interface_orders(view: nodes_service.NodesView, machine: Row) -> list[Row]:
    """One entry per interface with a MAC: static where the region assigned an address,
    dhcp where the link says DHCP or AUTO, link_up otherwise; the first interface (the
    boot one) gets dhcp when it has no link at all, so the machine is reachable."""
    orders = []
    for n, i in enumerate(view.interfaces.get(machine["id"], [])):
        if not i["mac"]:
            continue
        vlan = view.vlans.get(i["vlan_id"]) if i["vlan_id"] is not None else None
        entry: Row = {"mac": i["mac"], "name": i["name"], "mtu": i["mtu"] or (vlan["mtu"] if vlan else 1500)}
        static = [
            x
            for x in i["links"]
            if x["ip"] is not None
            and x["alloc_type"] in (nodes_service.STICKY, nodes_service.USER_RESERVED, nodes_service.AUTO)
        ]
        if static and static[0]["subnet_id"] in view.subnets:
            subnet = view.subnets[static[0]["subnet_id"]]
            prefix = ipaddress.ip_network(str(subnet["cidr"])).prefixlen
            entry.update(mode="static", address=f"{static[0]['ip']}/{prefix}")
            if subnet.get("gateway_ip"):
                entry["gateway"] = str(subnet["gateway_ip"])
        elif any(x["alloc_type"] in (nodes_service.DHCP, nodes_service.AUTO) for x in i["links"]) or n == 0:
            entry["mode"] = "dhcp"
        else:
            entry["mode"] = "link_up"
        orders.append(entry)
    return orders


def boot_disk(view: nodes_service.NodesView, machine: Row) -> Row | None:
    disks = view.disks.get(machine["id"], [])
    if not disks:
        return None
    return {k: v for k, v in (("serial", disks[0]["serial"]), ("name", disks[0]["name"])) if v}


async def config_for(conn: AsyncConnection, machine: Row) -> Row:
    """`deploy/config`: the orders for this machine's installer."""
    require_deploying(machine)
    image = lifecycle.choose_image(
        await boot_resources.manifest(conn), machine["architecture"], machine["osystem"], machine["distro_series"]
    )
    view = await nodes_service.show(conn, [machine])
    vlan_ids = {i["vlan_id"] for i in view.interfaces.get(machine["id"], []) if i["vlan_id"] is not None}
    racks = await rack_addresses(conn, vlan_ids)
    tarball = image["files"][lifecycle.DEPLOY_IMAGE_FILETYPE]
    keys: list[str] = []
    if machine["owner_id"] is not None:
        owner = User(machine["owner_id"], machine["owner_name"] or "", "", False)
        keys = [k["key"] for k in await sshkeys.list_ssh_keys(conn, owner)]
    config: Row = {
        "system_id": machine["system_id"],
        "hostname": machine["hostname"],
        "domain": view.domain_name(machine),
        "layout": "flat",
        "image": {
            "urls": image_urls(racks, tarball["sha256"]),
            "sha256": tarball["sha256"],
            "size": tarball["size"],
            "filetype": lifecycle.DEPLOY_IMAGE_FILETYPE,
            "name": image["name"],
        },
        "interfaces": interface_orders(view, machine),
        "dns": {
            "servers": list(dict.fromkeys(racks)),
            "search": await domain_views.search_list(conn, view.domain_name(machine)),
        },
        "ssh_keys": keys,
    }
    disk = boot_disk(view, machine)
    if disk:
        config["disk"] = disk
    return config


async def user_data_of(conn: AsyncConnection, machine: Row) -> bytes | None:
    require_deploying(machine)
    return (await conn.execute(select(node_user_data.c.data).where(node_user_data.c.node_id == machine["id"]))).scalar()


# -- reports -----------------------------------------------------------------------------------------


def _text(body: Row, name: str, limit: int = MAX_MESSAGE) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid.field(name, "Expected a string.")
    return value[:limit]


def step_event(body: Row) -> tuple[str, str]:
    """The event type and description for one `deploy/events` report."""
    step, status = _text(body, "step", 64), _text(body, "status", 16)
    if step not in STEPS:
        raise Invalid.field("step", f"Expected one of {', '.join(STEPS)}.")
    if status not in STEP_STATUSES:
        raise Invalid.field("status", f"Expected one of {', '.join(STEP_STATUSES)}.")
    runtime = body.get("runtime")
    if runtime is not None and (isinstance(runtime, bool) or not isinstance(runtime, int | float)):
        raise Invalid.field("runtime", "Expected a number of seconds.")
    message = _text(body, "message")
    description = (
        f"{step} {status}"
        + (f" ({runtime:.1f} s)" if runtime is not None else "")
        + (f": {message}" if message else "")
    )
    return ("NODE_INSTALL_EVENT_FAILED" if status == "failed" else "NODE_INSTALL_EVENT"), description


# The status message a step's start shows, as MAAS's EVENT_STATUS_MESSAGES for curtin's
# stage-partitioning, stage-extract and stage-curthooks.
STEP_STATUS_MESSAGES = {"partition": "CONFIGURING_STORAGE", "image": "INSTALLING_OS", "configure": "CONFIGURING_OS"}


async def record_step(conn: AsyncConnection, machine: Row, body: Row) -> None:
    """One installer report: its event, with the step as the event's action (MAAS records the
    installer's activity name there: the machine's status_action), and the status message
    of the step's start; the deadline starts again."""
    require_deploying(machine)
    type_name, description = step_event(body)
    step = body["step"]
    if body["status"] == "started" and step in STEP_STATUS_MESSAGES:
        await events.record(conn, machine, STEP_STATUS_MESSAGES[step], action=step)
    await events.record(conn, machine, type_name, description, action=step)
    await lifecycle.renew_deadline(conn, machine["id"])


async def store_installation(conn: AsyncConnection, machine: Row, run: results_service.RunOutput) -> None:
    """The installer's whole output: the installation result (MAAS's /tmp/install.log)."""
    require_deploying(machine)
    await results_service.store_output(conn, machine["id"], results_service.INSTALLATION, INSTALL_LOG, run, MAX_OUTPUT)


def done_outcome(body: Row) -> tuple[bool, str]:
    """(succeeded, the reason a failure gives) from a `deploy/done` report."""
    result = _text(body, "result", 16)
    if result not in ("ok", "failed"):
        raise Invalid.field("result", "Expected ok or failed.")
    if result == "ok":
        return True, ""
    step, message = _text(body, "step", 64), _text(body, "message")
    detail = ": ".join(p for p in (step, message) if p)
    return False, f"{INSTALLATION_FAILED} {detail}".strip()


async def finish_install(conn: AsyncConnection, machine: Row, body: Row) -> None:
    """`deploy/done`: ok -> the next PXE boot is the local disk; failed -> Failed deployment."""
    require_deploying(machine)
    ok, reason = done_outcome(body)
    set_id = await results_service.current_set_id(conn, machine["id"], results_service.INSTALLATION)
    await results_service.end_set(conn, set_id)
    if not ok:
        await events.record(conn, machine, "NODE_INSTALL_EVENT_FAILED", reason, action=_text(body, "step", 64))
        await lifecycle.fail(conn, machine["system_id"], Status.DEPLOYING, reason)
        return
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(netboot=False, updated=func.now()))
    await events.record(conn, machine, "NODE_INSTALLATION_FINISHED", "Installation complete; booting from disk")


def booted_summary(body: Row) -> str:
    """What the event of the first boot says: the kernel and whether user_data ran."""
    if _text(body, "result", 16) != "ok":
        raise Invalid.field("result", "Expected ok.")
    kernel = _text(body, "kernel", 256)
    reported = body.get("user_data")
    user_data: Row = reported if isinstance(reported, dict) else {}
    ran = user_data.get("ran") is True
    exit_status = user_data.get("exit_status")
    said = f"user_data ran (exit status {exit_status})" if ran else "no user_data ran"
    return f"Booted from disk ({kernel}); {said}" if kernel else f"Booted from disk; {said}"


async def booted(conn: AsyncConnection, machine: Row, body: Row) -> None:
    """`deploy/booted`: the installed system is up -> Deployed."""
    require_deploying(machine)
    summary = booted_summary(body)
    locked = await machines.get_machine(conn, machine["system_id"], lock=True)
    await lifecycle.set_status(
        conn,
        locked,
        Status.DEPLOYED,
        summary,
        netboot=False,
        status_expires=None,
        status_timeout=None,
        error_description="",
    )
    await events.record(conn, locked, "IMAGE_DEPLOYED", f"Deployed {locked['osystem']}/{locked['distro_series']}")
