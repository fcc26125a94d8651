"""Subnets and IP ranges: reads, validated writes, and what the API and UI show of them.

Writes check MAAS's rules (netrules) inside the transaction, after locking the
rows a rule depends on (the VLAN first, then the subnet: the order every
DHCP-related write takes); a failed check raises before anything is written.
Every write is announced to the racks serving DHCP (services.consequences),
except the subnets rack registration records (`insert_subnet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import domains, interfaces, ip_addresses, ipranges, nodes, subnets, vlans
from metalplane.region.errors import Invalid, NotFound, PermissionDenied, Refused, raise_if
from metalplane.region.services import consequences, dns_model, leases, lookups, netrules, users
from metalplane.region.services.domain_views import default_domain_id
from metalplane.region.services.network import (
    DEFAULT_FABRIC_ID,
    find_fabric,
    get_fabric,
    get_vlan,
    is_blank,
    list_vlans,
    lock_vlan,
    vlan_has_dynamic_range,
    vlan_label,
)
from metalplane.region.services.rows import (
    Row,
    delete_row,
    first_row,
    insert_row,
    insert_unique,
    one,
    rows,
    update_row,
    update_unique,
)
from metalplane.region.services.users import User

DUPLICATE_CIDR = "Subnet with this Cidr already exists."


async def list_subnets(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(subnets).order_by(subnets.c.id)))


async def get_subnet(conn: AsyncConnection, ident: str, lock: bool = False) -> Row:
    """By MAAS's subnet specifier: id, CIDR or name, or cidr:, name:, ip: (the most
    specific subnet holding the address), vlan:, vid:, fabric:, space:, id:."""
    return await lookups.subnet(conn, ident, lock)


async def _vlan_for_subnet(conn: AsyncConnection, fields: dict[str, Any]) -> int:
    if not is_blank(fields.get("vlan")):
        ident = fields["vlan"]
        vlan_id = validation.as_id(ident)
        if vlan_id is None or await first_row(conn, select(vlans.c.id).where(vlans.c.id == vlan_id)) is None:
            raise Invalid.field("vlan", validation.not_a_choice(validation.shown(ident)))
        if not is_blank(fields.get("fabric")):
            fabric = await find_fabric(conn, fields["fabric"])
            vlan = await get_vlan(conn, vlan_id)
            if vlan["fabric_id"] != fabric["id"]:
                raise Invalid.field("vlan", f"VLAN {vlan_id} is not in fabric {fabric['name']}.")
        return vlan_id
    fabric = (
        await find_fabric(conn, fields["fabric"])
        if not is_blank(fields.get("fabric"))
        else await get_fabric(conn, DEFAULT_FABRIC_ID)
    )
    if fields.get("vid") is not None:
        found = (
            await conn.execute(
                select(vlans.c.id).where(vlans.c.fabric_id == fabric["id"], vlans.c.vid == fields["vid"])
            )
        ).scalar_one_or_none()
        if found is None:
            where = "default fabric" if fabric["id"] == DEFAULT_FABRIC_ID else f"fabric {fabric['name']}"
            raise Invalid.field("vid", f"No VLAN with vid {fields['vid']} in {where}.")
        return found
    return (await conn.execute(select(func.min(vlans.c.id)).where(vlans.c.fabric_id == fabric["id"]))).scalar_one()


def _subnet_values(fields: dict[str, Any], cidr: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    network = ip_network(cidr)
    if "gateway_ip" in fields:
        gateway = fields["gateway_ip"]
        gateway = None if is_blank(gateway) else gateway.strip()
        raise_if(netrules.check_gateway(network, gateway))
        values["gateway_ip"] = gateway
    if "dns_servers" in fields:
        servers, errors = netrules.parse_dns_servers(fields["dns_servers"])
        raise_if(errors)
        values["dns_servers"] = servers
    if "rdns_mode" in fields:
        if fields["rdns_mode"] not in (0, 1, 2):
            raise Invalid.field(
                "rdns_mode", f"Select a valid choice. {fields['rdns_mode']} is not one of the available choices."
            )
        values["rdns_mode"] = fields["rdns_mode"]
    if fields.get("name"):
        raise_if(netrules.check_name("subnet", fields["name"]))
    for key in ("name", "description", "allow_dns", "allow_proxy", "active_discovery", "managed"):
        if key in fields and fields[key] is not None:
            values[key] = fields[key]
    return values


@dataclass(frozen=True)
class Subnets:
    """Subnets as shown, with every VLAN by id (each subnet shows its VLAN)."""

    subnets: list[Row]
    vlans: dict[int, Row]


async def show_subnets(conn: AsyncConnection, ident: str | None = None) -> Subnets:
    """Every subnet, or the one `ident` names (id, CIDR or name)."""
    shown = [await get_subnet(conn, ident)] if ident is not None else None
    vlans_by_id = {v["id"]: v for v in await list_vlans(conn)}
    return Subnets(shown if shown is not None else await list_subnets(conn), vlans_by_id)


async def _refuse_overlap(conn: AsyncConnection, cidr: str, subnet_id: int | None) -> None:
    """MAAS: a subnet may not contain, or lie in, another one. API writes of a network
    take one lock for this check, so two overlapping creates cannot both pass."""
    await xact_lock(conn, Lock.SUBNET_NETWORKS)
    query = select(subnets.c.cidr).where(text("(cidr >>= CAST(:net AS cidr) OR cidr <<= CAST(:net AS cidr))"))
    if subnet_id is not None:
        query = query.where(subnets.c.id != subnet_id)
    found = await first_row(conn, query.params(net=cidr).limit(1))
    if found is not None and str(found.cidr) != cidr:
        raise Invalid.field("cidr", f"Subnet {cidr} would overlap with existing subnets.")


async def insert_subnet(conn: AsyncConnection, fields: dict[str, Any], check_overlap: bool = False) -> Row:
    """A new subnet. Not announced: rack registration records the networks a rack
    reports this way (a new subnet has no ranges, so no rack's DHCP changes); the
    API's create also refuses a network overlapping another (`check_overlap`)."""
    network, errors = netrules.parse_cidr(fields.get("cidr"))
    raise_if(errors)
    cidr = str(network)
    values = _subnet_values(fields, cidr)
    values["vlan_id"] = await _vlan_for_subnet(conn, fields)
    if check_overlap:
        await _refuse_overlap(conn, cidr, None)
    values.setdefault("name", cidr)
    if not values["name"]:
        values["name"] = cidr
    subnet_id = await insert_unique(conn, subnets, "cidr", DUPLICATE_CIDR, cidr=cidr, **values)
    return await get_subnet(conn, str(subnet_id))


def _dns_changed(conn: AsyncConnection) -> None:
    consequences.region_services_changed(conn)  # the regions' reverse zones
    consequences.rack_services_changed(conn)  # the zones the racks forward, the networks they serve


async def create_subnet(conn: AsyncConnection, fields: dict[str, Any]) -> Subnets:
    row = await insert_subnet(conn, fields, check_overlap=True)
    await dns_model.check(conn, "rdns_mode")
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    _dns_changed(conn)
    return Subnets([row], {v["id"]: v for v in await list_vlans(conn)})


async def update_subnet(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> Subnets:
    subnet = await get_subnet(conn, ident, lock=True)
    cidr = str(subnet["cidr"])
    values: dict[str, Any] = {}
    if "cidr" in fields:
        network, errors = netrules.parse_cidr(fields["cidr"])
        raise_if(errors)
        assert network is not None  # parse_cidr gives a network whenever it gives no errors
        cidr = values["cidr"] = str(network)
        spans = [
            netrules.Span(str(r["start_ip"]), str(r["end_ip"]), r["type"])
            for r in await list_ranges(conn, subnet["id"])
        ]
        raise_if(netrules.check_ranges_fit(cidr, spans))
        await _refuse_overlap(conn, cidr, subnet["id"])
        if "gateway_ip" not in fields and subnet["gateway_ip"] is not None:
            raise_if(netrules.check_gateway(network, str(subnet["gateway_ip"])))
    values.update(_subnet_values(fields, cidr))
    if any(k in fields for k in ("vlan", "fabric", "vid")):
        values["vlan_id"] = await _vlan_for_subnet(conn, fields)
    if values:
        await update_unique(conn, subnets, subnet["id"], "cidr", DUPLICATE_CIDR, **values)
        if "cidr" in values or "rdns_mode" in values:
            await dns_model.check(conn, "rdns_mode" if "cidr" not in values else "cidr")
            _dns_changed(conn)
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    return Subnets([await get_subnet(conn, str(subnet["id"]))], {v["id"]: v for v in await list_vlans(conn)})


async def delete_subnet(conn: AsyncConnection, ident: str) -> None:
    # The VLAN first, then the subnet: the order every DHCP-related write takes.
    await lock_vlan(conn, (await get_subnet(conn, ident))["vlan_id"])
    subnet = await get_subnet(conn, ident, lock=True)
    vlan = await get_vlan(conn, subnet["vlan_id"])
    dynamic = any(r["type"] == "dynamic" for r in await list_ranges(conn, subnet["id"]))
    if vlan["dhcp_on"] and dynamic:
        raise Refused(
            "Cannot delete a subnet that is actively servicing a dynamic IP range. "
            "(Delete the dynamic range or disable DHCP first.)"
        )
    await delete_row(conn, subnets, subnet["id"])
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    _dns_changed(conn)


# -- IP ranges -----------------------------------------------------------------------


@dataclass(frozen=True)
class Ranges:
    """IP ranges as shown: each with its subnet (and that subnet's VLAN) and its owner."""

    ranges: list[Row]
    subnets: dict[int, Row]
    vlans: dict[int, Row]
    owners: dict[int, User]


async def show_ranges(conn: AsyncConnection, range_id: int | None = None) -> Ranges:
    shown = [await get_range(conn, range_id)] if range_id is not None else await list_ranges(conn)
    return await _ranges(conn, shown)


async def _ranges(conn: AsyncConnection, shown: list[Row]) -> Ranges:
    vlans_by_id = {v["id"]: v for v in await list_vlans(conn)}
    subnets_by_id = {s["id"]: s for s in await list_subnets(conn)}
    owners = {u.id: u for u in await users.list_users(conn)}
    return Ranges(shown, subnets_by_id, vlans_by_id, owners)


async def list_ranges(conn: AsyncConnection, subnet_id: int | None = None) -> list[Row]:
    query = select(ipranges).order_by(ipranges.c.id)
    if subnet_id is not None:
        query = query.where(ipranges.c.subnet_id == subnet_id)
    return rows(await conn.execute(query))


async def get_range(conn: AsyncConnection, range_id: int) -> Row:
    return one(await conn.execute(select(ipranges).where(ipranges.c.id == range_id)), "IPRange")


async def _subnet_for_range(conn: AsyncConnection, subnet_ident: str | None, start: str | None) -> Row:
    if not is_blank(subnet_ident):
        try:
            return await get_subnet(conn, str(subnet_ident), lock=True)
        except NotFound:
            raise Invalid.field(
                "subnet", f"Select a valid choice. {subnet_ident} is not one of the available choices."
            ) from None
    address = validation.parse_ip(start)
    if address is None:
        raise Invalid.field("subnet", "This field is required.")
    row = (
        await conn.execute(
            select(subnets.c.id)
            .where(text("cidr >>= CAST(:ip AS inet)"))
            .params(ip=str(address))
            .order_by(func.masklen(subnets.c.cidr).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise Invalid.field("subnet", "This field is required.")
    return await get_subnet(conn, str(row), lock=True)


async def _check_against(
    conn: AsyncConnection, subnet: Row, kind: str | None, start: str | None, end: str | None, others: list[Row]
) -> tuple[str, str]:
    """MAAS's range rules on `subnet`; a dynamic range must also stay clear of the gateway
    and of every address in use there (a rack's own address: DHCP handing it out would
    break the rack). The addresses in their normal form."""
    spans = [netrules.Span(str(r["start_ip"]), str(r["end_ip"]), r["type"]) for r in others]
    used = [str(subnet["gateway_ip"])] if subnet["gateway_ip"] is not None else []
    if kind == "dynamic":
        used += [
            str(ip)
            for ip in (
                await conn.execute(select(ip_addresses.c.ip).where(ip_addresses.c.subnet_id == subnet["id"]))
            ).scalars()
        ]
    raise_if(netrules.check_range(kind, start, end, str(subnet["cidr"]), spans, used))
    return str(validation.parse_ip(start)), str(validation.parse_ip(end))


def _comment(fields: dict[str, Any]) -> str:
    return validation.check_max("iprange.comment", fields.get("comment") or "")


async def create_range(conn: AsyncConnection, fields: dict[str, Any], user: User) -> Ranges:
    kind = fields.get("type")
    if kind == "dynamic" and not user.is_superuser:
        raise PermissionDenied("Unable to create dynamic IP range. You don't have sufficient privileges.")
    comment = _comment(fields)
    subnet = await _subnet_for_range(conn, fields.get("subnet"), fields.get("start_ip"))
    start, end = await _check_against(
        conn, subnet, kind, fields.get("start_ip"), fields.get("end_ip"), await list_ranges(conn, subnet["id"])
    )
    range_id = await insert_row(
        conn, ipranges, subnet_id=subnet["id"], type=kind, start_ip=start, end_ip=end, comment=comment, user_id=user.id
    )
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    return await _ranges(conn, [await get_range(conn, range_id)])


def _may_change(iprange: Row, user: User, verb: str) -> None:
    if not user.is_superuser and iprange["user_id"] != user.id:
        raise PermissionDenied(f"Unable to {verb} IP range. You don't own the IP range.")


async def update_range(conn: AsyncConnection, range_id: int, fields: dict[str, Any], user: User) -> Ranges:
    """Partial update of type, addresses, subnet and comment, under the create's rules.
    A dynamic range that stops being one (or moves away) must not leave a VLAN with
    DHCP on without one."""
    current = await get_range(conn, range_id)
    _may_change(current, user, "modify")
    kind = fields.get("type", current["type"])
    if kind == "dynamic" and current["type"] != "dynamic" and not user.is_superuser:
        raise PermissionDenied("Unable to modify IP range. You don't have sufficient privileges.")
    old_subnet = await get_subnet(conn, str(current["subnet_id"]))
    await lock_vlan(conn, old_subnet["vlan_id"])  # the VLAN first, as every DHCP-related write
    if is_blank(fields.get("subnet")):
        subnet = await get_subnet(conn, str(current["subnet_id"]), lock=True)
    else:
        subnet = await _subnet_for_range(conn, fields["subnet"], None)
    start = fields.get("start_ip", str(current["start_ip"]))
    end = fields.get("end_ip", str(current["end_ip"]))
    others = [r for r in await list_ranges(conn, subnet["id"]) if r["id"] != range_id]
    start, end = await _check_against(conn, subnet, kind, start, end, others)
    values: dict[str, Any] = {"start_ip": start, "end_ip": end, "type": kind, "subnet_id": subnet["id"]}
    if "comment" in fields:
        values["comment"] = _comment(fields)
    await update_row(conn, ipranges, range_id, **values)
    if current["type"] == "dynamic" and (kind != "dynamic" or subnet["vlan_id"] != old_subnet["vlan_id"]):
        vlan = await get_vlan(conn, old_subnet["vlan_id"])
        if vlan["dhcp_on"] and not await vlan_has_dynamic_range(conn, vlan["id"]):
            raise Refused(
                f"Cannot remove the last dynamic range of VLAN {vlan['fabric_name']}."
                f"{vlan_label(vlan)} while DHCP is on; disable DHCP first."
            )
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    return await _ranges(conn, [await get_range(conn, range_id)])


async def delete_range(conn: AsyncConnection, range_id: int, user: User) -> None:
    current = await get_range(conn, range_id)
    _may_change(current, user, "delete")
    consequences.dhcp_changed(conn)  # racks serving DHCP refetch their state
    if current["type"] == "dynamic":
        subnet = await get_subnet(conn, str(current["subnet_id"]))
        # DHCP on the VLAN needs a dynamic range somewhere on it: hold the VLAN, as
        # update_vlan does, so two deletions cannot each see the other's range left.
        await lock_vlan(conn, subnet["vlan_id"])
        vlan = await get_vlan(conn, subnet["vlan_id"])
        if vlan["dhcp_on"]:
            await delete_row(conn, ipranges, range_id)
            if not await vlan_has_dynamic_range(conn, vlan["id"]):
                raise Refused(
                    f"Cannot delete the last dynamic range of VLAN {vlan['fabric_name']}."
                    f"{vlan_label(vlan)} while DHCP is on; disable DHCP first."
                )
            return
    await delete_row(conn, ipranges, range_id)


@dataclass(frozen=True)
class SubnetAddresses:
    """What holds addresses on a subnet: nodes' interfaces, and the DHCP leases racks reported."""

    known: list[Row]
    leases: list[Row]


async def subnet_addresses(conn: AsyncConnection, ident: str) -> SubnetAddresses:
    subnet = await get_subnet(conn, ident)
    return SubnetAddresses(await _node_addresses(conn, subnet["id"]), await leases.active_leases(conn, subnet["id"]))


async def _node_addresses(conn: AsyncConnection, subnet_id: int) -> list[Row]:
    """Addresses on a subnet held by nodes' interfaces, with the node they belong to (and its
    domain's name: its own, or the default one)."""
    default = await default_domain_id(conn)
    return rows(
        await conn.execute(
            select(
                *ip_addresses.c["ip", "alloc_type", "created", "updated"],
                interfaces.c.mac,
                *nodes.c["system_id", "hostname", "node_type"],
                domains.c.name.label("domain_name"),
            )
            .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
            .join(nodes, nodes.c.id == interfaces.c.node_id)
            .join(domains, domains.c.id == func.coalesce(nodes.c.domain_id, default))
            .where(ip_addresses.c.subnet_id == subnet_id)
            .order_by(ip_addresses.c.ip)
        )
    )
