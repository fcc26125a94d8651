"""Addresses MAAS hands out: free ones picked from a subnet, user reservations (ipaddresses/).

A pick locks the subnet's row, so two concurrent picks on one subnet never get the
same address. Free means: in the subnet, not its gateway, DNS servers or a static
route's gateway, not in any IP range, not held by an interface, a reservation or an
active DHCP lease; which free one is address_space.next_free's rule (MAAS's).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import (
    dhcp_leases,
    interfaces,
    ip_addresses,
    ipranges,
    nodes,
    static_routes,
    subnets,
    users,
)
from metalplane.region.errors import Invalid, NotFound, PermissionDenied, Refused, Unavailable
from metalplane.region.services import address_space, node_fields
from metalplane.region.services import subnets as subnets_service
from metalplane.region.services import users as users_service
from metalplane.region.services.nodes import DISCOVERED, USER_RESERVED, NodesView, node_select
from metalplane.region.services.nodes import show as show_nodes
from metalplane.region.services.rows import Row, delete_row, first_row, insert_row, rows
from metalplane.region.services.users import User


class Exhausted(Unavailable):
    retry_after = None


async def _taken(conn: AsyncConnection, subnet_id: int) -> set[str]:
    cidr = select(subnets.c.cidr).where(subnets.c.id == subnet_id).scalar_subquery()
    held = (
        await conn.execute(
            select(ip_addresses.c.ip).where(
                ip_addresses.c.ip.isnot(None),
                # also an address recorded before its subnet was (a rack's, with no subnet_id)
                (ip_addresses.c.subnet_id == subnet_id) | ip_addresses.c.ip.op("<<=")(cidr),
            )
        )
    ).scalars()
    leased = (
        await conn.execute(
            select(dhcp_leases.c.ip).where(dhcp_leases.c.subnet_id == subnet_id, dhcp_leases.c.state == "active")
        )
    ).scalars()
    return {str(ip) for ip in [*held, *leased]}


async def _ranges(conn: AsyncConnection, subnet_id: int) -> list[Row]:
    return rows(await conn.execute(select(ipranges).where(ipranges.c.subnet_id == subnet_id)))


def dynamic_range_of(ranges: list[Row], ip: str) -> Row | None:
    address = ip_address(ip)
    for r in ranges:
        start, end = ip_address(str(r["start_ip"])), ip_address(str(r["end_ip"]))
        if r["type"] == "dynamic" and start.version == address.version and start <= address <= end:  # type: ignore[operator]
            return r
    return None


async def check_static(conn: AsyncConnection, subnet: Row, ip: str, field: str = "ip_address") -> str:
    """An address asked for by hand: inside the subnet, outside its dynamic ranges, free."""
    address = ip_address(ip)
    if address not in ip_network(str(subnet["cidr"])):
        raise Invalid.field(field, f"IP address is not in the given subnet '{subnet['cidr']}'.")
    inside = dynamic_range_of(await _ranges(conn, subnet["id"]), str(address))
    if inside is not None:
        raise Invalid.field(field, f"IP address is inside a dynamic range {inside['start_ip']} to {inside['end_ip']}.")
    if str(address) in await _taken(conn, subnet["id"]):
        raise Invalid.field(field, f"IP address {address} is already in use.")
    return str(address)


async def subnet_named(conn: AsyncConnection, ident: str) -> Row:
    """A subnet a request names (id, CIDR or name), locked; 404 for what no subnet can be."""
    if "\x00" in ident or (ident.isdigit() and int(ident) >= 2**31):
        raise NotFound("Subnet")
    return await subnets_service.get_subnet(conn, ident, lock=True)


async def free_address(conn: AsyncConnection, subnet: Row, exclude: frozenset[str] = frozenset()) -> str:
    """The next free address of `subnet` (whose row the caller has locked); 503 when full."""
    network = ip_network(str(subnet["cidr"]))
    taken = await _taken(conn, subnet["id"]) | set(exclude)
    routes = await conn.execute(select(static_routes.c.gateway_ip).where(static_routes.c.source_id == subnet["id"]))
    taken |= {str(ip) for ip in routes.scalars()}
    taken |= {s for s in subnet["dns_servers"] or [] if _inside(s, network)}
    if subnet["gateway_ip"] is not None:
        taken.add(str(subnet["gateway_ip"]))
    ranges = [(r["type"], str(r["start_ip"]), str(r["end_ip"])) for r in await _ranges(conn, subnet["id"])]
    found = address_space.next_free(
        str(network), ranges, [a for a in taken if _inside(a, network)], managed=subnet["managed"]
    )
    if found is None:
        raise Exhausted(f"No more IPs available in subnet: {subnet['cidr']}.")
    return found


def _inside(address: str, network: IPv4Network | IPv6Network) -> bool:
    try:
        return ip_address(address) in network
    except ValueError:
        return False  # a name among the DNS servers


async def pick_free(conn: AsyncConnection, subnet_ident: str) -> tuple[Row, str]:
    """A free address of the subnet (locked for this transaction); 503 when there is none."""
    subnet = await subnet_named(conn, subnet_ident)
    return subnet, await free_address(conn, subnet)


# -- ipaddresses/ ------------------------------------------------------------------------


async def best_subnet_for(conn: AsyncConnection, ip: str) -> Row | None:
    found = (
        await conn.execute(
            select(subnets.c.id)
            .where(text("cidr >>= CAST(:ip AS inet)"))
            .params(ip=ip)
            .order_by(func.masklen(subnets.c.cidr).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return await subnets_service.get_subnet(conn, str(found), lock=True) if found is not None else None


async def reserve(
    conn: AsyncConnection, user: User, subnet_ident: str | None, ip: str | None, hostname: str | None, mac: str | None
) -> Addresses:
    """A USER_RESERVED address for `user`: the one asked for, or a free one of the subnet."""
    if mac:
        given, mac = mac, validation.normalise_mac(mac)
        if mac is None:
            raise Invalid.field("mac", f"'{validation.shown(given)}' is not a valid MAC address.")
        owner = await first_row(
            conn,
            select(nodes.c.hostname)
            .join(interfaces, interfaces.c.node_id == nodes.c.id)
            .where(interfaces.c.mac == mac),
        )
        if owner is not None:
            raise Refused(
                f"MAC address {mac} already belongs to {owner.hostname}. Use of the interface API is "
                "required, for an interface that belongs to a node."
            )
    if hostname:
        node_fields.clean_hostname(hostname)
    if ip is not None:
        address = validation.parse_ip(ip)  # not ip_address(): it takes zone ids, which inet refuses
        if address is None:
            raise Invalid.field("ip_address", "Enter a valid IPv4 or IPv6 address.")
        ip = str(address)
        subnet = await best_subnet_for(conn, ip)
        if subnet is None:
            raise Refused(f"No known subnet for IP address: {ip}.")
        inside = dynamic_range_of(await _ranges(conn, subnet["id"]), ip)
        if inside is not None and not mac:
            raise PermissionDenied(
                f"IP address {ip} belongs to an existing dynamic range. To reserve this IP "
                "address, a MAC address is required. (Create a device instead.)"
            )
        if ip in await _taken(conn, subnet["id"]):
            raise Invalid.field("ip_address", f"The IP address {ip} is already in use.")
    elif subnet_ident:
        try:
            subnet, ip = await pick_free(conn, subnet_ident)
        except NotFound:
            raise Refused(f"Unable to identify subnet: {subnet_ident}.") from None
    else:
        raise Refused("Must supply either the 'subnet' or the 'ip' parameter.")
    new_id = await insert_row(
        conn,
        ip_addresses,
        ip=ip,
        subnet_id=subnet["id"],
        alloc_type=USER_RESERVED,
        user_id=user.id,
        hostname=hostname or "",
        mac=mac,
    )
    return await show(conn, await list_addresses(conn, user, ip=None, all_=True, owner=None, ids=[new_id]))


async def release(conn: AsyncConnection, user: User, ip: str | None, force: bool, discovered: bool) -> None:
    if not ip:
        raise Refused("No provided ip!")
    if force and not user.is_superuser:
        raise PermissionDenied("Force-releasing an IP address requires admin privileges.")
    address = validation.parse_ip(ip)
    if address is None:
        raise Invalid.field("ip", "Enter a valid IPv4 or IPv6 address.")
    ip = str(address)
    query = select(ip_addresses.c.id).where(ip_addresses.c.ip == ip)
    if force:
        query = query.where(
            (ip_addresses.c.alloc_type == DISCOVERED) if discovered else (ip_addresses.c.alloc_type != DISCOVERED)
        )
    else:
        query = query.where(ip_addresses.c.alloc_type == USER_RESERVED, ip_addresses.c.user_id == user.id)
    found = await first_row(conn, query.limit(1))
    if found is None:
        if force:
            raise Refused(f"IP address {ip} does not exist.")
        raise Refused(
            f"IP address {ip} does not exist, is not the correct type of address, or does not belong to "
            "the requesting user.\nIf you are sure you want to release this address, use force=true as "
            "a MAAS administrator."
        )
    await delete_row(conn, ip_addresses, found.id)


async def list_addresses(
    conn: AsyncConnection, user: User, ip: str | None, all_: bool, owner: str | None, ids: list[int] | None = None
) -> list[Row]:
    """ipaddresses read: the caller's reservations; admins may ask for all or another user's."""
    if all_ and not user.is_superuser and ids is None:
        raise PermissionDenied("Listing all IP addresses requires admin privileges.")
    if owner is not None and not user.is_superuser:
        raise PermissionDenied("Listing another user's IP addresses requires admin privileges.")
    query = (
        select(
            ip_addresses,
            users.c.username.label("owner_name"),
            nodes.c.system_id,
            nodes.c.id.label("node_id"),
            interfaces.c.id.label("iface_id"),
        )
        .outerjoin(users, users.c.id == ip_addresses.c.user_id)
        .outerjoin(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
        .outerjoin(nodes, nodes.c.id == interfaces.c.node_id)
        .where(ip_addresses.c.ip.isnot(None))
        .order_by(ip_addresses.c.id)
    )
    if ids is not None:
        query = query.where(ip_addresses.c.id.in_(ids))
    elif owner is not None:
        query = query.where(users.c.username == owner.replace("\x00", ""))
    elif not all_:
        query = query.where(ip_addresses.c.user_id == user.id)
    if ip is not None:
        address = validation.parse_ip(ip)
        if address is None:
            raise Refused("Parameter 'ip' must contain an IP address.")
        query = query.where(ip_addresses.c.ip == str(address))
    if not all_ and ids is None:
        query = query.where(ip_addresses.c.alloc_type == USER_RESERVED)
    return rows(await conn.execute(query))


@dataclass(frozen=True)
class Addresses:
    """Addresses as shown: each with its owner and the interface (and node) holding it."""

    addresses: list[Row]
    owners: dict[str, User]
    nodes: NodesView


async def show(conn: AsyncConnection, found: list[Row]) -> Addresses:
    owners = {u.username: u for u in await users_service.list_users(conn)}
    node_ids = sorted({a["node_id"] for a in found if a["node_id"] is not None})
    shown = rows(await conn.execute(node_select().where(nodes.c.id.in_(node_ids)))) if node_ids else []
    return Addresses(found, owners, await show_nodes(conn, shown))
