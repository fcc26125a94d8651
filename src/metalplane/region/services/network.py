"""Fabrics, VLANs, subnets and IP ranges: reads and validated writes.

Writes check MAAS's rules (netrules) inside the transaction, after locking the
rows a rule depends on, so two regions cannot both pass a check that only one
of them may pass. A failed check raises before anything is written.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import delete, exists, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import fabrics, interfaces, ip_addresses, ipranges, nodes, spaces, subnets, vlans
from metalplane.region.errors import BadRequest, Forbidden, NotFound, ValidationFailed, raise_if
from metalplane.region.services import netrules
from metalplane.region.services.controllers import RACK_TYPES
from metalplane.region.services.connections import connected_regions
from metalplane.region.services.rows import Row, execute_unique, next_id, one, rows

DEFAULT_FABRIC_ID = 0
NO_VALUE = ("", "none", "null")

_primary = nodes.alias("primary_node")
_secondary = nodes.alias("secondary_node")
_default_vlan_id = (
    select(func.min(vlans.c.id)).where(vlans.c.fabric_id == fabrics.c.id).correlate(fabrics).scalar_subquery()
)


def _vlan_select():
    return (
        select(
            vlans,
            fabrics.c.name.label("fabric_name"),
            _primary.c.system_id.label("primary_rack"),
            _secondary.c.system_id.label("secondary_rack"),
            spaces.c.name.label("space_name"),
            (vlans.c.id == _default_vlan_id).label("is_default"),
        )
        .join(fabrics, fabrics.c.id == vlans.c.fabric_id)
        .outerjoin(_primary, _primary.c.id == vlans.c.primary_rack_id)
        .outerjoin(_secondary, _secondary.c.id == vlans.c.secondary_rack_id)
        .outerjoin(spaces, spaces.c.id == vlans.c.space_id)
    )


def is_blank(value: str | None) -> bool:
    return value is None or value.strip().lower() in NO_VALUE


# -- fabrics ---------------------------------------------------------------------------


async def ensure_default_fabric(conn: AsyncConnection) -> None:
    """Fabric 0 with its untagged VLAN, as MAAS always has."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(7001)"))
    if (await conn.execute(select(fabrics.c.id).where(fabrics.c.id == DEFAULT_FABRIC_ID))).first() is None:
        await conn.execute(insert(fabrics).values(id=DEFAULT_FABRIC_ID, name="fabric-0"))
        await conn.execute(insert(vlans).values(fabric_id=DEFAULT_FABRIC_ID, vid=0))


async def list_fabrics(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(fabrics).order_by(fabrics.c.id)))


async def get_fabric(conn: AsyncConnection, fabric_id: int) -> Row:
    return one(await conn.execute(select(fabrics).where(fabrics.c.id == fabric_id)), "Fabric")


async def find_fabric(conn: AsyncConnection, ident: str, field: str = "fabric") -> Row:
    """A fabric by id or name, for form fields."""
    query = select(fabrics)
    query = query.where(fabrics.c.id == int(ident)) if ident.isdigit() else query.where(fabrics.c.name == ident)
    row = (await conn.execute(query)).first()
    if row is None:
        raise ValidationFailed.field(field, f"Select a valid choice. {ident} is not one of the available choices.")
    return dict(row._mapping)


async def create_fabric(conn: AsyncConnection, name: str | None, description: str, class_type: str | None) -> Row:
    if name:
        raise_if(netrules.check_fabric_name(name, None))
    fabric_id = await next_id(conn, "fabrics")
    await execute_unique(
        conn,
        insert(fabrics).values(id=fabric_id, name=name or f"fabric-{fabric_id}", description=description,
                               class_type=class_type),
        "name", "Fabric with this Name already exists.",
    )
    await conn.execute(insert(vlans).values(fabric_id=fabric_id, vid=0))
    return await get_fabric(conn, fabric_id)


async def update_fabric(conn: AsyncConnection, fabric_id: int, changes: dict[str, Any]) -> Row:
    await get_fabric(conn, fabric_id)
    if "name" in changes:
        raise_if(netrules.check_fabric_name(changes["name"], fabric_id))
    if changes:
        await execute_unique(conn, update(fabrics).where(fabrics.c.id == fabric_id).values(**changes, updated=func.now()),
                             "name", "Fabric with this Name already exists.")
    return await get_fabric(conn, fabric_id)


async def delete_fabric(conn: AsyncConnection, fabric_id: int) -> None:
    await get_fabric(conn, fabric_id)
    if fabric_id == DEFAULT_FABRIC_ID:
        raise BadRequest("This fabric is the default fabric, it cannot be deleted.")
    cidrs = (await conn.execute(
        select(subnets.c.cidr).join(vlans, vlans.c.id == subnets.c.vlan_id).where(vlans.c.fabric_id == fabric_id)
    )).scalars().all()
    if cidrs:
        raise BadRequest("Can't delete fabric; the following subnets are still present: "
                         + ", ".join(str(c) for c in cidrs))
    await conn.execute(delete(fabrics).where(fabrics.c.id == fabric_id))


# -- VLANs ---------------------------------------------------------------------------


async def list_vlans(conn: AsyncConnection, fabric_id: int | None = None) -> list[Row]:
    query = _vlan_select().order_by(vlans.c.fabric_id, vlans.c.vid)
    if fabric_id is not None:
        query = query.where(vlans.c.fabric_id == fabric_id)
    return rows(await conn.execute(query))


async def get_vlan(conn: AsyncConnection, vlan_id: int) -> Row:
    return one(await conn.execute(_vlan_select().where(vlans.c.id == vlan_id)), "VLAN")


async def lock_vlan(conn: AsyncConnection, vlan_id: int) -> None:
    """Hold a VLAN row until commit. Writes that can break a VLAN's DHCP rules take this first."""
    await conn.execute(select(vlans.c.id).where(vlans.c.id == vlan_id).with_for_update())


def vlan_label(vlan: Row) -> str:
    return vlan["name"] or ("untagged" if vlan["is_default"] else str(vlan["vid"]))


async def get_vlan_by_vid(conn: AsyncConnection, fabric_id: int, vid: int) -> Row:
    await get_fabric(conn, fabric_id)
    return one(await conn.execute(_vlan_select().where(vlans.c.fabric_id == fabric_id, vlans.c.vid == vid)), "VLAN")


async def find_rack(conn: AsyncConnection, ident: str, field: str, vlan_id: int | None = None) -> int:
    """A rack controller by system_id or hostname, as MAAS's rack fields accept.
    With `vlan_id`, only racks with an interface on that VLAN qualify (they
    are the ones that can serve DHCP there)."""
    query = select(nodes.c.id).where(nodes.c.node_type.in_(RACK_TYPES),
                                     or_(nodes.c.system_id == ident, nodes.c.hostname == ident))
    if vlan_id is not None:
        query = query.where(exists().where(interfaces.c.node_id == nodes.c.id, interfaces.c.vlan_id == vlan_id))
    rows = (await conn.execute(query)).scalars().all()
    if len(rows) != 1:
        raise ValidationFailed.field(field, f"Select a valid choice. {ident} is not one of the available choices.")
    return rows[0]


async def rack_is_connected(conn: AsyncConnection, rack_id: int) -> bool:
    """A rack with at least one live RPC connection to a region is up."""
    return rack_id in await connected_regions(conn)


async def find_space(conn: AsyncConnection, ident: str) -> int | None:
    if is_blank(ident) or ident == "undefined":
        return None
    query = select(spaces.c.id)
    query = query.where(spaces.c.id == int(ident)) if ident.isdigit() else query.where(spaces.c.name == ident)
    found = (await conn.execute(query)).scalar_one_or_none()
    if found is None:
        raise ValidationFailed.field("space", f"Select a valid choice. {ident} is not one of the available choices.")
    return found


async def vlan_has_dynamic_range(conn: AsyncConnection, vlan_id: int) -> bool:
    return bool((await conn.execute(select(exists().where(
        ipranges.c.type == "dynamic", ipranges.c.subnet_id == subnets.c.id, subnets.c.vlan_id == vlan_id,
    )))).scalar())


async def create_vlan(conn: AsyncConnection, fabric_id: int, fields: dict[str, Any]) -> Row:
    await get_fabric(conn, fabric_id)
    raise_if(netrules.check_vid(fields.get("vid")))
    raise_if(netrules.check_mtu(fields.get("mtu")))
    values = {k: fields[k] for k in ("vid", "name", "description", "mtu") if fields.get(k) is not None}
    if "space" in fields:
        values["space_id"] = await find_space(conn, fields["space"])
    result = await execute_unique(
        conn, insert(vlans).values(fabric_id=fabric_id, **values).returning(vlans.c.id),
        "__all__", "A VLAN with the specified VID already exists in the destination fabric.",
    )
    return await get_vlan(conn, result.scalar_one())


async def update_vlan(conn: AsyncConnection, vlan_id: int, fields: dict[str, Any]) -> Row:
    """Partial update with MAAS's DHCP rules; racks by system_id or hostname."""
    current = one(await conn.execute(select(vlans).where(vlans.c.id == vlan_id).with_for_update()), "VLAN")
    values: dict[str, Any] = {k: fields[k] for k in ("name", "description") if k in fields}
    if "vid" in fields:
        raise_if(netrules.check_vid(fields["vid"]))
        values["vid"] = fields["vid"]
    if "mtu" in fields:
        raise_if(netrules.check_mtu(fields["mtu"]))
        values["mtu"] = fields["mtu"]
    if "space" in fields:
        values["space_id"] = await find_space(conn, fields["space"])
    if "fabric" in fields:
        values["fabric_id"] = (await find_fabric(conn, fields["fabric"]))["id"]
    if "relay_vlan" in fields:
        relay = fields["relay_vlan"]
        values["relay_vlan_id"] = None if is_blank(relay) else (await _relay_vlan(conn, relay, vlan_id))

    racks: dict[str, int | None] = {}
    for field in ("primary_rack", "secondary_rack"):
        if field in fields:
            racks[field] = None if is_blank(fields[field]) else await find_rack(conn, fields[field], field, vlan_id)
    primary, secondary = netrules.resolve_rack_change(
        current["primary_rack_id"], current["secondary_rack_id"],
        racks.get("primary_rack"), racks.get("secondary_rack"),
        "primary_rack" in racks, "secondary_rack" in racks,
    )
    dhcp_on = fields.get("dhcp_on", current["dhcp_on"])
    raise_if(netrules.check_secondary_not_primary(current["primary_rack_id"], "primary_rack" in racks,
                                                  racks.get("secondary_rack"), fields.get("secondary_rack", "")))
    new_secondary = secondary is not None and (secondary != current["secondary_rack_id"]
                                               or primary != current["primary_rack_id"])
    raise_if(netrules.check_dhcp(netrules.DhcpState(
        dhcp_on=dhcp_on, primary=primary, secondary=secondary,
        has_dynamic_range=await vlan_has_dynamic_range(conn, vlan_id) if dhcp_on else True,
        # Only a secondary being set now needs a live primary to sync leases from.
        primary_alive=await rack_is_connected(conn, primary) if new_secondary and primary is not None else True,
    )))
    values.update(dhcp_on=dhcp_on, primary_rack_id=primary, secondary_rack_id=secondary)
    if dhcp_on and not current["dhcp_on"]:
        values["relay_vlan_id"] = None  # MAAS: serving DHCP here replaces relaying it
    await execute_unique(
        conn, update(vlans).where(vlans.c.id == vlan_id).values(**values, updated=func.now()),
        "__all__", "A VLAN with the specified VID already exists in the destination fabric.",
    )
    return await get_vlan(conn, vlan_id)


async def _relay_vlan(conn: AsyncConnection, ident: str, vlan_id: int) -> int:
    try:
        relay_id = int(ident)
    except ValueError:
        raise ValidationFailed.field("relay_vlan", f"Select a valid choice. {ident} is not one of the available choices.") from None
    found = (await conn.execute(select(vlans.c.id).where(vlans.c.id == relay_id))).scalar_one_or_none()
    if found is None or found == vlan_id:
        raise ValidationFailed.field("relay_vlan", f"Select a valid choice. {ident} is not one of the available choices.")
    return found


async def delete_vlan(conn: AsyncConnection, vlan: Row) -> None:
    if vlan["is_default"]:
        raise BadRequest("This VLAN is the default VLAN in the fabric, it cannot be deleted.")
    in_use = (await conn.execute(select(subnets.c.cidr).where(subnets.c.vlan_id == vlan["id"]))).scalars().all()
    if in_use:
        raise BadRequest("Can't delete VLAN; the following subnets are still present: "
                         + ", ".join(str(c) for c in in_use))
    await conn.execute(delete(vlans).where(vlans.c.id == vlan["id"]))


# -- subnets -------------------------------------------------------------------------


async def list_subnets(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(subnets).order_by(subnets.c.id)))


async def get_subnet(conn: AsyncConnection, ident: str, lock: bool = False) -> Row:
    """By id, CIDR or name, as MAAS's subnet specifiers allow."""
    query = select(subnets)
    if ident.isdigit():
        query = query.where(subnets.c.id == int(ident))
    else:
        try:
            query = query.where(subnets.c.cidr == str(ip_network(ident, strict=False)))
        except ValueError:
            query = query.where(subnets.c.name == ident)
    if lock:
        query = query.with_for_update()
    return one(await conn.execute(query), "Subnet")


async def _vlan_for_subnet(conn: AsyncConnection, fields: dict[str, Any]) -> int:
    if not is_blank(fields.get("vlan")):
        ident = fields["vlan"]
        if not ident.isdigit() or (await conn.execute(select(vlans.c.id).where(vlans.c.id == int(ident)))).first() is None:
            raise ValidationFailed.field("vlan", f"Select a valid choice. {ident} is not one of the available choices.")
        vlan_id = int(ident)
        if not is_blank(fields.get("fabric")):
            fabric = await find_fabric(conn, fields["fabric"])
            vlan = await get_vlan(conn, vlan_id)
            if vlan["fabric_id"] != fabric["id"]:
                raise ValidationFailed.field("vlan", f"VLAN {vlan_id} is not in fabric {fabric['name']}.")
        return vlan_id
    fabric = await find_fabric(conn, fields["fabric"]) if not is_blank(fields.get("fabric")) \
        else await get_fabric(conn, DEFAULT_FABRIC_ID)
    if fields.get("vid") is not None:
        found = (await conn.execute(select(vlans.c.id).where(
            vlans.c.fabric_id == fabric["id"], vlans.c.vid == fields["vid"]))).scalar_one_or_none()
        if found is None:
            where = "default fabric" if fabric["id"] == DEFAULT_FABRIC_ID else f"fabric {fabric['name']}"
            raise ValidationFailed.field("vid", f"No VLAN with vid {fields['vid']} in {where}.")
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
            raise ValidationFailed.field("rdns_mode", f"Select a valid choice. {fields['rdns_mode']} is not one of the available choices.")
        values["rdns_mode"] = fields["rdns_mode"]
    for key in ("name", "description", "allow_dns", "allow_proxy", "active_discovery", "managed"):
        if key in fields and fields[key] is not None:
            values[key] = fields[key]
    return values


async def create_subnet(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    network, errors = netrules.parse_cidr(fields.get("cidr"))
    raise_if(errors)
    cidr = str(network)
    values = _subnet_values(fields, cidr)
    values["vlan_id"] = await _vlan_for_subnet(conn, fields)
    values.setdefault("name", cidr)
    if not values["name"]:
        values["name"] = cidr
    result = await execute_unique(conn, insert(subnets).values(cidr=cidr, **values).returning(subnets.c.id),
                                  "cidr", "Subnet with this Cidr already exists.")
    return await get_subnet(conn, str(result.scalar_one()))


async def update_subnet(conn: AsyncConnection, subnet: Row, fields: dict[str, Any]) -> Row:
    cidr = str(subnet["cidr"])
    values: dict[str, Any] = {}
    if "cidr" in fields:
        network, errors = netrules.parse_cidr(fields["cidr"])
        raise_if(errors)
        cidr = values["cidr"] = str(network)
        spans = [netrules.Span(str(r["start_ip"]), str(r["end_ip"]), r["type"])
                 for r in await list_ranges(conn, subnet["id"])]
        raise_if(netrules.check_ranges_fit(cidr, spans))
        if "gateway_ip" not in fields and subnet["gateway_ip"] is not None:
            raise_if(netrules.check_gateway(network, str(subnet["gateway_ip"])))
    values.update(_subnet_values(fields, cidr))
    if any(k in fields for k in ("vlan", "fabric", "vid")):
        values["vlan_id"] = await _vlan_for_subnet(conn, fields)
    if values:
        await execute_unique(conn, update(subnets).where(subnets.c.id == subnet["id"]).values(**values, updated=func.now()),
                             "cidr", "Subnet with this Cidr already exists.")
    return await get_subnet(conn, str(subnet["id"]))


async def delete_subnet(conn: AsyncConnection, ident: str) -> None:
    # The VLAN first, then the subnet: the order every DHCP-related write takes.
    await lock_vlan(conn, (await get_subnet(conn, ident))["vlan_id"])
    subnet = await get_subnet(conn, ident, lock=True)
    vlan = await get_vlan(conn, subnet["vlan_id"])
    dynamic = any(r["type"] == "dynamic" for r in await list_ranges(conn, subnet["id"]))
    if vlan["dhcp_on"] and dynamic:
        raise BadRequest("Cannot delete a subnet that is actively servicing a dynamic IP range. "
                         "(Delete the dynamic range or disable DHCP first.)")
    await conn.execute(delete(subnets).where(subnets.c.id == subnet["id"]))


# -- IP ranges -----------------------------------------------------------------------


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
            return await get_subnet(conn, subnet_ident, lock=True)
        except NotFound:
            raise ValidationFailed.field(
                "subnet", f"Select a valid choice. {subnet_ident} is not one of the available choices.") from None
    try:
        address = ip_address(start or "")
    except ValueError:
        raise ValidationFailed.field("subnet", "This field is required.") from None
    row = (await conn.execute(
        select(subnets.c.id).where(text("cidr >>= CAST(:ip AS inet)")).params(ip=str(address))
        .order_by(func.masklen(subnets.c.cidr).desc()).limit(1)
    )).scalar_one_or_none()
    if row is None:
        raise ValidationFailed.field("subnet", "This field is required.")
    return await get_subnet(conn, str(row), lock=True)


def _check_against(subnet: Row, kind: str, start: str | None, end: str | None, others: list[Row]) -> None:
    spans = [netrules.Span(str(r["start_ip"]), str(r["end_ip"]), r["type"]) for r in others]
    used = [str(subnet["gateway_ip"])] if subnet["gateway_ip"] is not None else []
    raise_if(netrules.check_range(kind, start, end, str(subnet["cidr"]), spans, used))


async def create_range(conn: AsyncConnection, fields: dict[str, Any], user_id: int, is_admin: bool) -> Row:
    kind = fields.get("type")
    if kind == "dynamic" and not is_admin:
        raise Forbidden("Unable to create dynamic IP range. You don't have sufficient privileges.")
    subnet = await _subnet_for_range(conn, fields.get("subnet"), fields.get("start_ip"))
    _check_against(subnet, kind, fields.get("start_ip"), fields.get("end_ip"), await list_ranges(conn, subnet["id"]))
    range_id = (await conn.execute(insert(ipranges).values(
        subnet_id=subnet["id"], type=kind, start_ip=fields["start_ip"], end_ip=fields["end_ip"],
        comment=fields.get("comment") or "", user_id=user_id,
    ).returning(ipranges.c.id))).scalar_one()
    return await get_range(conn, range_id)


def _may_change(iprange: Row, user_id: int, is_admin: bool, verb: str) -> None:
    if not is_admin and iprange["user_id"] != user_id:
        raise Forbidden(f"Unable to {verb} IP range. You don't own the IP range.")


async def update_range(conn: AsyncConnection, range_id: int, fields: dict[str, Any], user_id: int,
                       is_admin: bool) -> Row:
    current = await get_range(conn, range_id)
    _may_change(current, user_id, is_admin, "modify")
    subnet = await get_subnet(conn, str(current["subnet_id"]), lock=True)
    start = fields.get("start_ip", str(current["start_ip"]))
    end = fields.get("end_ip", str(current["end_ip"]))
    others = [r for r in await list_ranges(conn, subnet["id"]) if r["id"] != range_id]
    _check_against(subnet, current["type"], start, end, others)
    values = {"start_ip": start, "end_ip": end}
    if "comment" in fields:
        values["comment"] = fields["comment"] or ""
    await conn.execute(update(ipranges).where(ipranges.c.id == range_id).values(**values, updated=func.now()))
    return await get_range(conn, range_id)


async def delete_range(conn: AsyncConnection, range_id: int, user_id: int, is_admin: bool) -> None:
    current = await get_range(conn, range_id)
    _may_change(current, user_id, is_admin, "delete")
    if current["type"] == "dynamic":
        subnet = await get_subnet(conn, str(current["subnet_id"]))
        # DHCP on the VLAN needs a dynamic range somewhere on it: hold the VLAN, as
        # update_vlan does, so two deletions cannot each see the other's range left.
        await lock_vlan(conn, subnet["vlan_id"])
        vlan = await get_vlan(conn, subnet["vlan_id"])
        if vlan["dhcp_on"]:
            await conn.execute(delete(ipranges).where(ipranges.c.id == range_id))
            if not await vlan_has_dynamic_range(conn, vlan["id"]):
                raise BadRequest(f"Cannot delete the last dynamic range of VLAN {vlan['fabric_name']}."
                                 f"{vlan_label(vlan)} while DHCP is on; disable DHCP first.")
            return
    await conn.execute(delete(ipranges).where(ipranges.c.id == range_id))


async def subnet_addresses(conn: AsyncConnection, subnet_id: int) -> list[Row]:
    """Addresses on a subnet held by nodes' interfaces, with the node they belong to."""
    return rows(await conn.execute(
        select(ip_addresses.c.ip, ip_addresses.c.alloc_type, ip_addresses.c.created, ip_addresses.c.updated,
               interfaces.c.mac, nodes.c.system_id, nodes.c.hostname, nodes.c.node_type)
        .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(ip_addresses.c.subnet_id == subnet_id)
        .order_by(ip_addresses.c.ip)
    ))
