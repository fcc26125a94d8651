"""MAAS's object specifiers: how a URI or a form field names a fabric, space, subnet or VLAN.

A specifier is an id, a name, MAAS's default name form ("fabric-3",
"space-1"), or "TYPE:VALUE" with a type the object knows ("name:", "cidr:",
"ip:", "vlan:", ...). One match is the object; none is MAAS's 404 ("No Fabric
matches the given query."); several are its 403 ("Too many Subnet objects
match the given query."); an empty specifier is a 400. Nothing here writes.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import fabrics, spaces, subnets, vlans
from metalplane.region.errors import Invalid, NotFound, PermissionDenied, Refused
from metalplane.region.services.rows import Row

PG_INT_MAX = 2**31 - 1
UNDEFINED_SPACE = "undefined"
NOTHING = literal(False)
FABRIC_TYPES = ("name", "class")
SPACE_TYPES = ("name", "subnet")
SUBNET_TYPES = ("cidr", "fabric", "id", "interface", "ip", "name", "space", "vid", "vlan")
VLAN_TYPES = ("fabric", "id", "name", "subnet", "space", "vid")
VID_RANGE = "VLAN tag (VID) out of range (0-4094; 0 for untagged.)"


def split(spec: str, types: tuple[str, ...]) -> tuple[str | None, str]:
    """("cidr", "10.0.0.0/24") for "cidr:10.0.0.0/24"; (None, spec) when the prefix is no type."""
    kind, sep, value = spec.partition(":")
    if sep and kind in types:
        return kind, value.strip()
    return None, spec


def object_id(value: str, prefix: str) -> int | None:
    """MAAS's get_object_id: "12", "-1" or "fabric-12" -> the number; anything else None.
    A number no row can have (beyond PostgreSQL's integer) becomes -1, which names nothing."""
    match = re.fullmatch(rf"(?:{prefix}-)?(-?[0-9]{{1,20}})", value.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if -PG_INT_MAX <= number <= PG_INT_MAX else -1


def _id_or(column_id, column_name, value: str, prefix: str) -> ColumnElement[bool]:
    number = object_id(value, prefix)
    return column_id == number if number is not None else column_name == value


async def one_row(conn: AsyncConnection, table, condition: ColumnElement[bool], kind: str, lock: bool = False) -> Row:
    query = select(table).where(condition).order_by(table.c.id).limit(2)
    if lock:
        query = query.with_for_update()
    found = (await conn.execute(query)).all()
    if not found:
        raise NotFound(kind)
    if len(found) > 1:
        raise PermissionDenied(f"Too many {kind} objects match the given query.")
    return dict(found[0]._mapping)


def _clean(spec: str | None, kind: str) -> str:
    if spec is None or not spec.strip():
        raise Refused(f"{kind} specifier required.")
    if "\x00" in spec:
        raise NotFound(kind)  # names nothing (PostgreSQL text cannot hold it)
    return spec.strip()


# -- conditions -------------------------------------------------------------------------


def _vid(value: str) -> int:
    if value.lower() == "untagged":
        return 0
    if not re.fullmatch(r"-?[0-9]{1,10}", value.strip()):
        raise Invalid.field("vid", "Enter a whole number.")
    vid = int(value)
    if not 0 <= vid <= 4094:
        raise NotFound("VLAN", VID_RANGE)
    return vid


async def fabric_condition(conn: AsyncConnection, spec: str) -> ColumnElement[bool]:
    kind, value = split(spec, FABRIC_TYPES)
    if kind == "name":
        return fabrics.c.name == value
    if kind == "class":
        return fabrics.c.class_type == value
    return _id_or(fabrics.c.id, fabrics.c.name, value, "fabric")


async def space_condition(conn: AsyncConnection, spec: str) -> ColumnElement[bool]:
    kind, value = split(spec, SPACE_TYPES)
    if kind == "name":
        return spaces.c.name == value
    if kind == "subnet":
        subnet = await one_row(conn, subnets, await subnet_condition(conn, value), "Subnet")
        space_id = (await conn.execute(select(vlans.c.space_id).where(vlans.c.id == subnet["vlan_id"]))).scalar()
        return spaces.c.id == space_id if space_id is not None else NOTHING
    return _id_or(spaces.c.id, spaces.c.name, value, "space")


async def vlan_condition(conn: AsyncConnection, spec: str) -> ColumnElement[bool]:
    """MAAS's VLAN specifier: a bare number or "untagged" is a VID, anything else a name."""
    kind, value = split(spec, VLAN_TYPES)
    if kind == "id":
        number = object_id(value, "vlan")
        return vlans.c.id == number if number is not None else NOTHING
    if kind == "name":
        return vlans.c.name == value
    if kind == "vid":
        return vlans.c.vid == _vid(value)
    if kind == "fabric":
        return vlans.c.fabric_id.in_(select(fabrics.c.id).where(await fabric_condition(conn, value)))
    if kind == "subnet":
        return vlans.c.id.in_(select(subnets.c.vlan_id).where(await subnet_condition(conn, value)))
    if kind == "space":
        if value == UNDEFINED_SPACE:
            return vlans.c.space_id.is_(None)
        return vlans.c.space_id.in_(select(spaces.c.id).where(await space_condition(conn, value)))
    if value.lower() == "untagged" or re.fullmatch(r"-?[0-9]{1,10}", value.strip()):
        return vlans.c.vid == _vid(value)
    return vlans.c.name == value


async def subnet_condition(conn: AsyncConnection, spec: str) -> ColumnElement[bool]:
    kind, value = split(spec, SUBNET_TYPES)
    if kind == "id":
        if not re.fullmatch(r"[0-9]{1,10}", value):
            raise Refused("Subnet ID must be numeric.")
        return subnets.c.id == int(value) if int(value) <= PG_INT_MAX else NOTHING
    if kind == "name":
        return subnets.c.name == value
    if kind == "cidr":
        network = validation.parse_network(value, prefix_required=False)
        if network is None:
            raise Invalid.field("cidr", f"'{validation.shown(value)}' is not a valid CIDR.")
        return subnets.c.cidr == str(network)
    if kind == "ip":
        address = validation.parse_ip(value)
        if address is None:
            raise Invalid.field("ip", "Enter a valid IPv4 or IPv6 address.")
        # The most specific subnet holding the address (nested subnets are not ambiguous).
        inner = (
            select(subnets.c.id)
            .where(subnets.c.cidr.op(">>=")(str(address)))
            .order_by(func.masklen(subnets.c.cidr).desc())
            .limit(1)
        )
        return subnets.c.id.in_(inner.scalar_subquery())
    if kind in ("vlan", "vid", "fabric", "space"):  # through the subnet's VLAN
        vlan_spec = value if kind == "vlan" else f"{kind}:{value}"
        return subnets.c.vlan_id.in_(select(vlans.c.id).where(await vlan_condition(conn, vlan_spec)))
    if kind == "interface":
        raise Refused("Subnet specifier interface: is not supported yet.")
    number = object_id(value, "subnet")
    if number is not None and number >= 0:
        return subnets.c.id == number
    network = validation.parse_network(value, prefix_required=False)
    return subnets.c.cidr == str(network) if network is not None else subnets.c.name == value


# -- lookups ------------------------------------------------------------------------------


async def fabric(conn: AsyncConnection, spec: str) -> Row:
    return await one_row(conn, fabrics, await fabric_condition(conn, _clean(spec, "Fabric")), "Fabric")


async def space(conn: AsyncConnection, spec: str) -> Row:
    return await one_row(conn, spaces, await space_condition(conn, _clean(spec, "Space")), "Space")


async def subnet(conn: AsyncConnection, spec: str, lock: bool = False) -> Row:
    return await one_row(conn, subnets, await subnet_condition(conn, _clean(spec, "Subnet")), "Subnet", lock)


async def vlan_in_fabric(conn: AsyncConnection, fabric_id: int, spec: str) -> Row:
    """fabrics/{fabric}/vlans/{vid}/: the VLAN specifier, within one fabric."""
    condition = await vlan_condition(conn, _clean(spec, "VLAN"))
    return await one_row(conn, vlans, and_(vlans.c.fabric_id == fabric_id, condition), "VLAN")
