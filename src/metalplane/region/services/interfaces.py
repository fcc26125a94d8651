"""A node's interfaces (nodes/{system_id}/interfaces/): read, physical ones created,
updated, deleted, linked to subnets (auto, dhcp, static, link_up), disconnected,
and the node's default gateway chosen — with MAAS's rules and words.

Links are rows of ip_addresses (MAAS's StaticIPAddress): AUTO and DHCP links have
no address until deployment; a STICKY link without one is `link_up`.
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import interfaces, ip_addresses, nodes, subnets, vlans
from metalplane.region.errors import Conflict, Invalid, NotFound, PermissionDenied, raise_if
from metalplane.region.services import consequences, ipaddresses, node_fields
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services import subnets as subnets_service
from metalplane.region.services.nodes import AUTO, DHCP, STICKY, NodesView
from metalplane.region.services.rows import Row, delete_row, first_row, insert_row, one, update_row
from metalplane.region.services.users import User
from metalplane.rpc.nodes import CONTROLLER_TYPES, NodeType

INTERFACE_NAME = re.compile(r"^[\w\-_.:]{1,15}$")
NAME_RULE = (
    "The interface name must be 1 to 15 characters long and can only contain alphanumeric characters, "
    "hyphens ('-'), underscores ('_'), periods ('.'), and colons (':')."
)
# Machines' interfaces change only in these statuses (New, Ready, Allocated, Broken).
ALLOWED_STATES = (0, 4, 10, 8)
DEPLOYED = 6
MACHINE_MODES = ("auto", "dhcp", "static", "link_up")
DEVICE_MODES = ("static",)
MODE_ALLOC = {"auto": AUTO, "dhcp": DHCP, "static": STICKY, "link_up": STICKY}


def _choices_text(field: str, value: str, choices: list[str] | tuple[str, ...]) -> str:
    listed = ", ".join(f"'{c}'" for c in choices)
    return f"'{value}' is not a valid {field}.  It should be one of: {listed}."


async def _node(conn: AsyncConnection, system_id: str, user: User | None, lock: bool = False) -> Row:
    return await nodes_service.get_node(conn, system_id, viewer=user, lock=lock)


def _may_change(node: Row, user: User | None, operation: str, extra_states: tuple[int, ...] = ()) -> None:
    """Admins change machines' and controllers' interfaces; a device's owner changes its own."""
    if user is not None and not user.is_superuser:
        if node["node_type"] != NodeType.DEVICE or node["owner_id"] != user.id:
            raise PermissionDenied("")
    if node["node_type"] == NodeType.MACHINE and node["status"] not in ALLOWED_STATES + extra_states:
        raise Conflict(f"Cannot {operation} interface because the machine is not New, Ready, Allocated, or Broken.")


def _not_controller(node: Row, operation: str) -> None:
    if node["node_type"] in CONTROLLER_TYPES:
        raise PermissionDenied(f"Cannot {operation} interface on a controller.")


async def _interface(conn: AsyncConnection, node: Row, ident: str) -> Row:
    """By id, or the specifiers `name:`, `mac:` (or a bare name)."""
    if "\x00" in ident:
        raise NotFound("Interface")
    query = select(interfaces).where(interfaces.c.node_id == node["id"])
    kind, _, value = ident.partition(":") if ident.startswith(("id:", "name:", "mac:")) else ("", "", ident)
    if kind == "id" or (not kind and value.isdigit()):
        if not value.isdigit() or int(value) >= 2**31:
            raise NotFound("Interface")
        query = query.where(interfaces.c.id == int(value))
    elif kind == "mac":
        # A value that is no MAC matches no interface.
        query = query.where(interfaces.c.mac == (validation.normalise_mac(value) or value))
    else:
        query = query.where(interfaces.c.name == value)
    return one(await conn.execute(query.with_for_update()), "Interface")


async def _changeable(
    conn: AsyncConnection, system_id: str, ident: str, user: User | None, operation: str
) -> tuple[Row, Row]:
    """The node (locked) and its interface, for an operation a controller's interfaces refuse."""
    node = await _node(conn, system_id, user, lock=True)
    iface = await _interface(conn, node, ident)
    _not_controller(node, operation)
    _may_change(node, user, operation)
    return node, iface


async def _shown(conn: AsyncConnection, node: Row) -> NodesView:
    return await nodes_service.show(conn, [await nodes_service.get_node(conn, node["system_id"])])


async def _answer(conn: AsyncConnection, node: Row, iface_id: int) -> tuple[Row, int, NodesView]:
    """What an operation on one interface answers: its node, its id, and the node as shown."""
    return node, iface_id, await _shown(conn, node)


async def _addresses_changed(conn: AsyncConnection, node: Row, iface_id: int) -> tuple[Row, int, NodesView]:
    """`_answer`, after a change to the node's interfaces or links (DNS and DHCP follow)."""
    consequences.node_addresses_changed(conn)
    return await _answer(conn, node, iface_id)


async def list_interfaces(conn: AsyncConnection, system_id: str, user: User | None) -> tuple[Row, NodesView]:
    node = await _node(conn, system_id, user)
    return node, await _shown(conn, node)


async def show_interface(
    conn: AsyncConnection, system_id: str, ident: str, user: User | None
) -> tuple[Row, int, NodesView]:
    node = await _node(conn, system_id, user)
    iface = await _interface(conn, node, ident)
    return await _answer(conn, node, iface["id"])


async def _vlan_id(conn: AsyncConnection, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    if (
        not value.strip().isdigit()
        or int(value) >= 2**31
        or await first_row(conn, select(vlans.c.id).where(vlans.c.id == int(value))) is None
    ):
        raise Invalid.field("vlan", node_fields.NO_CHOICE)
    return int(value)


def _check_name(name: str) -> None:
    if not INTERFACE_NAME.match(name):
        raise Invalid.field("name", NAME_RULE)


async def _name_free(conn: AsyncConnection, node: Row, name: str, iface_id: int | None) -> None:
    query = select(interfaces.c.id).where(interfaces.c.node_id == node["id"], interfaces.c.name == name)
    if iface_id is not None:
        query = query.where(interfaces.c.id != iface_id)
    if await first_row(conn, query):
        raise Invalid.field("name", f"Node {node['hostname']} already has an interface named '{name}'.")


def _tags(value: str) -> list[str]:
    return [t for t in re.split(r"[,\s]+", value) if t]


def _speeds(fields: dict[str, Any], values: dict[str, Any]) -> None:
    for name in ("interface_speed", "link_speed"):
        if fields.get(name) is not None:
            if not 0 <= fields[name] < 2**31:
                raise Invalid.field(name, "Ensure this value is greater than or equal to 0.")
            values[name] = fields[name]
    if fields.get("link_connected") is not None:
        values["link_connected"] = fields["link_connected"]


def _mtu(fields: dict[str, Any], values: dict[str, Any]) -> None:
    if fields.get("mtu") is not None:
        if fields["mtu"] < 552:
            raise Invalid.field("mtu", "Ensure this value is greater than or equal to 552.")
        if fields["mtu"] > 65535:
            raise Invalid.field("mtu", "Ensure this value is less than or equal to 65535.")
        values["mtu"] = fields["mtu"]


async def create_physical(
    conn: AsyncConnection, system_id: str, fields: dict[str, Any], user: User
) -> tuple[Row, int, NodesView]:
    node = await _node(conn, system_id, user, lock=True)
    _not_controller(node, "create")
    _may_change(node, user, "create")
    if node["node_type"] == NodeType.MACHINE and not user.is_superuser:
        raise PermissionDenied("")
    macs = node_fields.parse_macs([fields.get("mac_address") or ""], "mac_address")
    if not macs:
        raise Invalid.field("mac_address", "This field is required.")
    await node_fields.check_macs_free(conn, macs, field="mac_address")
    existing = (await conn.execute(select(func.count()).where(interfaces.c.node_id == node["id"]))).scalar_one()
    name = fields.get("name") or f"eth{existing}"
    _check_name(name)
    await _name_free(conn, node, name, None)
    values: dict[str, Any] = {"vlan_id": await _vlan_id(conn, fields.get("vlan"))}
    _mtu(fields, values)
    if fields.get("tags") is not None:
        values["tags"] = _tags(fields["tags"])
    new_id = await insert_row(
        conn, interfaces, node_id=node["id"], name=name, mac=macs[0], claims_mac=True, type="physical", **values
    )
    if values["vlan_id"] is not None:
        await conn.execute(insert(ip_addresses).values(interface_id=new_id, alloc_type=STICKY, ip=None))
    return await _addresses_changed(conn, node, new_id)


async def update_interface(
    conn: AsyncConnection, system_id: str, ident: str, fields: dict[str, Any], user: User
) -> tuple[Row, int, NodesView]:
    """MAAS's interface forms: a controller's VLAN and link facts; a deployed machine's name and
    MAC; otherwise also the VLAN, tags and MTU."""
    node = await _node(conn, system_id, user, lock=True)
    iface = await _interface(conn, node, ident)
    _may_change(node, user, "update interface", extra_states=(DEPLOYED,))
    if node["node_type"] in CONTROLLER_TYPES:
        allowed = {"vlan", "link_connected", "interface_speed", "link_speed"}
    elif node["node_type"] == NodeType.MACHINE and node["status"] == DEPLOYED:
        allowed = {"name", "mac_address", "link_connected", "interface_speed", "link_speed"}
    else:
        allowed = {
            "name",
            "mac_address",
            "tags",
            "vlan",
            "mtu",
            "enabled",
            "link_connected",
            "interface_speed",
            "link_speed",
        }
    refused = sorted(k for k in fields if k not in allowed and fields[k] is not None)
    if refused:
        raise_if({k: ["This field cannot be changed on this interface now."] for k in refused})
    values: dict[str, Any] = {}
    if fields.get("name") is not None:
        _check_name(fields["name"])
        await _name_free(conn, node, fields["name"], iface["id"])
        values["name"] = fields["name"]
    if fields.get("mac_address") is not None:
        macs = node_fields.parse_macs([fields["mac_address"]], "mac_address")
        if not macs:
            raise Invalid.field("mac_address", "This field cannot be blank.")
        await node_fields.check_macs_free(conn, macs, node_id=node["id"], field="mac_address")
        values["mac"] = macs[0]
    if fields.get("tags") is not None:
        values["tags"] = _tags(fields["tags"])
    if fields.get("enabled") is not None:
        values["enabled"] = fields["enabled"]
    _mtu(fields, values)
    _speeds(fields, values)
    if fields.get("link_connected") is False and fields.get("link_speed") and not iface["link_connected"]:
        raise Invalid({"__all__": ["link_speed cannot be set when link_connected is false."]})
    if "vlan" in fields and fields["vlan"] is not None:
        values["vlan_id"] = await _vlan_id(conn, fields["vlan"])
        if values["vlan_id"] != iface["vlan_id"]:
            # Links to subnets of another VLAN no longer hold.
            await conn.execute(
                delete(ip_addresses).where(
                    ip_addresses.c.interface_id == iface["id"],
                    ip_addresses.c.subnet_id.isnot(None),
                    ~ip_addresses.c.subnet_id.in_(select(subnets.c.id).where(subnets.c.vlan_id == values["vlan_id"])),
                )
            )
    if values:
        await update_row(conn, interfaces, iface["id"], **values)
        return await _addresses_changed(conn, node, iface["id"])
    return await _answer(conn, node, iface["id"])


async def delete_interface(conn: AsyncConnection, system_id: str, ident: str, user: User) -> None:
    _, iface = await _changeable(conn, system_id, ident, user, "delete interface")
    await delete_row(conn, interfaces, iface["id"])
    consequences.node_addresses_changed(conn)


async def _links(conn: AsyncConnection, iface_id: int) -> list[Row]:
    return [
        dict(r._mapping)
        for r in await conn.execute(
            select(ip_addresses).where(ip_addresses.c.interface_id == iface_id).order_by(ip_addresses.c.id)
        )
    ]


async def link_subnet(
    conn: AsyncConnection, system_id: str, ident: str, fields: dict[str, Any], user: User
) -> tuple[Row, int, NodesView]:
    node, iface = await _changeable(conn, system_id, ident, user, "link subnet")
    modes = MACHINE_MODES if node["node_type"] == NodeType.MACHINE else DEVICE_MODES
    force = bool(fields.get("force"))
    raw_mode = (fields.get("mode") or "").strip()
    if not raw_mode:
        raise Invalid.field("mode", "This field is required.")
    mode = raw_mode.lower()
    if mode not in modes:
        raise Invalid.field("mode", _choices_text("mode", raw_mode, modes))
    subnet = None
    if fields.get("subnet"):
        try:
            subnet = await ipaddresses.subnet_named(conn, str(fields["subnet"]))
        except NotFound:
            raise Invalid.field("subnet", node_fields.NO_CHOICE) from None
        if iface["vlan_id"] is not None and not force and subnet["vlan_id"] != iface["vlan_id"]:
            raise Invalid.field("subnet", node_fields.NO_CHOICE)
    links = await _links(conn, iface["id"])
    errors: dict[str, list[str]] = {}
    if mode in ("auto", "static") and subnet is None:
        errors["subnet"] = ["This field is required."]
    if mode == "dhcp" and any(x["alloc_type"] == DHCP for x in links):
        errors["mode"] = ["Interface is already set to DHCP."]
    if mode == "link_up" and not force and any(x["ip"] is not None or x["alloc_type"] != STICKY for x in links):
        errors["mode"] = [
            "Cannot configure interface to link up (with no IP address) while other links are already "
            "configured. Specify force=True to override this behavior and delete all links."
        ]
    ip = fields.get("ip_address")
    if ip:
        address = validation.parse_ip(ip)  # no IPv6 zone ids: inet refuses them
        if address is None:
            errors["ip_address"] = ["Enter a valid IPv4 or IPv6 address."]
        else:
            ip = str(address)
    default_gateway = bool(fields.get("default_gateway"))
    if default_gateway:
        if mode not in ("auto", "static"):
            errors["default_gateway"] = [f"Cannot use in mode '{mode}'."]
        elif subnet is not None and subnet["gateway_ip"] is None:
            errors["default_gateway"] = [
                f"Cannot set as default gateway because subnet {subnet['cidr']} doesn't provide a gateway IP address."
            ]
    raise_if(errors)
    if mode == "static" and subnet is not None:
        ip = (
            await ipaddresses.check_static(conn, subnet, ip)
            if ip
            else (await ipaddresses.pick_free(conn, str(subnet["id"])))[1]
        )
    else:
        ip = None
    if mode == "link_up" or force:
        await conn.execute(delete(ip_addresses).where(ip_addresses.c.interface_id == iface["id"]))
    else:
        # A link with an address or a subnet replaces the bare link-up one.
        await conn.execute(
            delete(ip_addresses).where(
                ip_addresses.c.interface_id == iface["id"],
                ip_addresses.c.alloc_type == STICKY,
                ip_addresses.c.ip.is_(None),
                ip_addresses.c.subnet_id.is_(None),
            )
        )
    if subnet is not None and (iface["vlan_id"] is None or force):
        await conn.execute(update(interfaces).where(interfaces.c.id == iface["id"]).values(vlan_id=subnet["vlan_id"]))
    link_id = await insert_row(
        conn,
        ip_addresses,
        interface_id=iface["id"],
        alloc_type=MODE_ALLOC[mode],
        ip=ip,
        subnet_id=subnet["id"] if subnet is not None else None,
    )
    if default_gateway and subnet is not None:
        key = "gateway_link_ipv4_id" if ip_network(str(subnet["cidr"])).version == 4 else "gateway_link_ipv6_id"
        await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(**{key: link_id}))
    return await _addresses_changed(conn, node, iface["id"])


async def unlink_subnet(
    conn: AsyncConnection, system_id: str, ident: str, link_id: str | None, user: User
) -> tuple[Row, int, NodesView]:
    node, iface = await _changeable(conn, system_id, ident, user, "unlink subnet")
    links = await _links(conn, iface["id"])
    if not link_id:
        raise Invalid.field("id", "This field is required.")
    chosen = [x for x in links if str(x["id"]) == link_id.strip()]
    if not chosen:
        raise Invalid.field("id", _choices_text("id", link_id, [str(x["id"]) for x in links]))
    await delete_row(conn, ip_addresses, chosen[0]["id"])
    if len(links) == 1 and iface["vlan_id"] is not None:
        await conn.execute(insert(ip_addresses).values(interface_id=iface["id"], alloc_type=STICKY, ip=None))
    return await _addresses_changed(conn, node, iface["id"])


async def set_default_gateway(
    conn: AsyncConnection, system_id: str, ident: str, link_id: str | None, user: User
) -> tuple[Row, int, NodesView]:
    node, iface = await _changeable(conn, system_id, ident, user, "set default gateway")
    subnets_by_id = {s["id"]: s for s in await subnets_service.list_subnets(conn)}
    usable = [
        x
        for x in await _links(conn, iface["id"])
        if x["alloc_type"] in (AUTO, STICKY, DHCP)
        and x["subnet_id"] is not None
        and subnets_by_id[x["subnet_id"]]["gateway_ip"] is not None
    ]
    if not usable:
        raise Invalid({"__all__": ["This interface has no usable gateways."]})

    def family(link: Row) -> int:
        return ip_network(str(subnets_by_id[link["subnet_id"]]["cidr"])).version

    if link_id:
        chosen = [x for x in usable if str(x["id"]) == link_id.strip()]
        if not chosen:
            raise Invalid.field("link_id", _choices_text("link_id", link_id, [str(x["id"]) for x in usable]))
    else:
        gateways: dict[int, set[str]] = {}
        for x in usable:
            gateways.setdefault(family(x), set()).add(str(subnets_by_id[x["subnet_id"]]["gateway_ip"]))
        too_many = sorted(v for v, found in gateways.items() if len(found) > 1)
        if too_many:
            names = " and ".join(f"IPv{v}" for v in too_many)
            raise Invalid.field(
                "link_id",
                f"This field is required; Interface has more than one usable {names} "
                f"gateway{'s' if len(too_many) > 1 else ''}.",
            )
        chosen = [next(x for x in usable if family(x) == v) for v in sorted(gateways)]
    for link in chosen:
        key = "gateway_link_ipv4_id" if family(link) == 4 else "gateway_link_ipv6_id"
        await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(**{key: link["id"]}))
    return await _answer(conn, node, iface["id"])


async def disconnect(conn: AsyncConnection, system_id: str, ident: str, user: User) -> tuple[Row, int, NodesView]:
    node, iface = await _changeable(conn, system_id, ident, user, "disconnect")
    await conn.execute(delete(ip_addresses).where(ip_addresses.c.interface_id == iface["id"]))
    await conn.execute(
        update(interfaces).where(interfaces.c.id == iface["id"]).values(vlan_id=None, updated=func.now())
    )
    return await _addresses_changed(conn, node, iface["id"])


async def change_tag(
    conn: AsyncConnection, system_id: str, ident: str, tag: str | None, add: bool, user: User
) -> tuple[Row, int, NodesView]:
    node = await _node(conn, system_id, user, lock=True)
    iface = await _interface(conn, node, ident)
    _may_change(node, user, "update interface", extra_states=(DEPLOYED,))
    if not tag:
        raise Invalid.field("tag", "This field is required.")
    current = list(iface["tags"] or [])
    if add and tag not in current:
        current.append(tag)
    if not add and tag in current:
        current.remove(tag)
    await conn.execute(update(interfaces).where(interfaces.c.id == iface["id"]).values(tags=current))
    return await _answer(conn, node, iface["id"])
