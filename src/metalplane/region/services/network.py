"""Fabrics and VLANs: reads, validated writes, and what the API and UI show of them.

Writes check MAAS's rules (netrules) inside the transaction, after locking the
rows a rule depends on, so two regions cannot both pass a check that only one
of them may pass. A failed check raises before anything is written. A VLAN
change is announced to the racks and triggers a connection balance check
(services.consequences). Subnets and IP ranges: services.subnets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import fabrics, interfaces, ipranges, nodes, spaces, subnets, vlans
from metalplane.region.errors import Invalid, Refused, raise_if
from metalplane.region.services import consequences, dhcp, lookups, netrules
from metalplane.region.services.connections import connected_regions
from metalplane.region.services.rows import (
    Row,
    delete_row,
    execute_unique,
    first_row,
    insert_unique,
    next_id,
    one,
    rows,
    update_unique,
)
from metalplane.rpc.nodes import RACK_TYPES

DUPLICATE_FABRIC = "Fabric with this Name already exists."
DUPLICATE_VID = "A VLAN with the specified VID already exists in the destination fabric."
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
    await xact_lock(conn, Lock.DEFAULT_FABRIC)
    if await first_row(conn, select(fabrics.c.id).where(fabrics.c.id == DEFAULT_FABRIC_ID)) is None:
        await conn.execute(insert(fabrics).values(id=DEFAULT_FABRIC_ID, name="fabric-0"))
        await conn.execute(insert(vlans).values(fabric_id=DEFAULT_FABRIC_ID, vid=0))


async def list_fabrics(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(fabrics).order_by(fabrics.c.id)))


async def get_fabric(conn: AsyncConnection, fabric: int | str) -> Row:
    """By id, or by a MAAS fabric specifier (id, name, "fabric-3", "name:", "class:")."""
    if isinstance(fabric, str):
        return await lookups.fabric(conn, fabric)
    return one(await conn.execute(select(fabrics).where(fabrics.c.id == fabric)), "Fabric")


async def find_fabric(conn: AsyncConnection, ident: str, field: str = "fabric") -> Row:
    """A fabric by id or name, for form fields."""
    query = select(fabrics)
    fabric_id = validation.as_id(ident)
    query = query.where(fabrics.c.id == fabric_id) if fabric_id is not None else query.where(fabrics.c.name == ident)
    row = None if ident.isdigit() and fabric_id is None else await first_row(conn, query)
    if row is None:
        raise Invalid.field(field, validation.not_a_choice(validation.shown(ident)))
    return dict(row._mapping)


@dataclass(frozen=True)
class Fabrics:
    """Fabrics as shown, with every VLAN (a VLAN's relay may be on another fabric)."""

    fabrics: list[Row]
    vlans: list[Row]


async def show_fabrics(conn: AsyncConnection, fabric: int | str | None = None) -> Fabrics:
    """Every fabric, or the one `fabric` names (NotFound otherwise)."""
    vlan_rows = await list_vlans(conn)
    shown = [await get_fabric(conn, fabric)] if fabric is not None else await list_fabrics(conn)
    return Fabrics(shown, vlan_rows)


async def _insert_fabric(conn: AsyncConnection, name: str | None, description: str, class_type: str | None) -> int:
    if name:
        raise_if(netrules.check_fabric_name(name, None))
    if class_type:
        raise_if(netrules.check_name("fabric_class", class_type, "class_type"))
    fabric_id = await next_id(conn, "fabrics")
    await execute_unique(
        conn,
        insert(fabrics).values(
            id=fabric_id, name=name or f"fabric-{fabric_id}", description=description, class_type=class_type
        ),
        "name",
        DUPLICATE_FABRIC,
    )
    await conn.execute(insert(vlans).values(fabric_id=fabric_id, vid=0))
    return fabric_id


async def create_fabric(conn: AsyncConnection, name: str | None, description: str, class_type: str | None) -> Fabrics:
    return await show_fabrics(conn, await _insert_fabric(conn, name, description, class_type))


async def new_fabric_vlan(conn: AsyncConnection) -> int:
    """A new fabric with a default name, for a network no known subnet holds; its untagged VLAN's id."""
    fabric_id = await _insert_fabric(conn, None, "", None)
    return (await conn.execute(select(func.min(vlans.c.id)).where(vlans.c.fabric_id == fabric_id))).scalar_one()


async def update_fabric(conn: AsyncConnection, fabric: int | str, changes: dict[str, Any]) -> Fabrics:
    fabric_id = (await get_fabric(conn, fabric))["id"]
    if "name" in changes:
        raise_if(netrules.check_fabric_name(changes["name"], fabric_id))
    if changes.get("class_type"):
        raise_if(netrules.check_name("fabric_class", changes["class_type"], "class_type"))
    if changes:
        await update_unique(conn, fabrics, fabric_id, "name", DUPLICATE_FABRIC, **changes)
    return await show_fabrics(conn, fabric_id)


async def delete_fabric(conn: AsyncConnection, fabric: int | str) -> None:
    fabric_id = (await get_fabric(conn, fabric))["id"]
    if fabric_id == DEFAULT_FABRIC_ID:
        raise Refused("This fabric is the default fabric, it cannot be deleted.")
    cidrs = (
        (
            await conn.execute(
                select(subnets.c.cidr)
                .join(vlans, vlans.c.id == subnets.c.vlan_id)
                .where(vlans.c.fabric_id == fabric_id)
            )
        )
        .scalars()
        .all()
    )
    if cidrs:
        raise Refused(
            "Can't delete fabric; the following subnets are still present: " + ", ".join(str(c) for c in cidrs)
        )
    await delete_row(conn, fabrics, fabric_id)


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


@dataclass(frozen=True)
class VlanRef:
    """A VLAN as a URI names it: by id, or by its fabric and VID (each an id or a
    MAAS specifier: "fabric-1", "untagged", "name:storage", ...)."""

    vlan_id: int | None = None
    fabric: int | str | None = None
    vid: int | str | None = None


async def find_vlan(conn: AsyncConnection, ref: VlanRef) -> Row:
    if ref.vlan_id is not None:
        return await get_vlan(conn, ref.vlan_id)
    assert ref.fabric is not None and ref.vid is not None
    fabric_id = (await get_fabric(conn, ref.fabric))["id"]
    return await get_vlan(conn, (await lookups.vlan_in_fabric(conn, fabric_id, str(ref.vid)))["id"])


@dataclass(frozen=True)
class Vlans:
    """VLANs as shown: each with the rack the seeds call its candidate secondary."""

    vlans: list[Row]
    by_id: dict[int, Row]  # every VLAN, for relays
    candidates: dict[int, str | None]  # VLAN id -> candidate secondary rack (system_id), DHCP on only


async def show_vlans(conn: AsyncConnection, *, fabric: int | str | None = None, vlan_id: int | None = None) -> Vlans:
    """The VLANs of a fabric (NotFound for no such fabric), or one VLAN."""
    fabric_id = None
    if fabric is not None:
        fabric_id = (await get_fabric(conn, fabric))["id"]
    all_vlans = await list_vlans(conn)
    by_id = {v["id"]: v for v in all_vlans}
    shown = [by_id[vlan_id]] if vlan_id is not None else [v for v in all_vlans if v["fabric_id"] == fabric_id]
    return Vlans(shown, by_id, await dhcp.candidate_secondaries(conn))


async def show_vlan(conn: AsyncConnection, ref: VlanRef) -> Vlans:
    return await show_vlans(conn, vlan_id=(await find_vlan(conn, ref))["id"])


async def find_rack(conn: AsyncConnection, ident: str, field: str, vlan_id: int | None = None) -> int:
    """A rack controller by system_id or hostname, as MAAS's rack fields accept.
    With `vlan_id`, only racks with an interface on that VLAN qualify (they
    are the ones that can serve DHCP there)."""
    query = select(nodes.c.id).where(
        nodes.c.node_type.in_(RACK_TYPES), or_(nodes.c.system_id == ident, nodes.c.hostname == ident)
    )
    if vlan_id is not None:
        query = query.where(exists().where(interfaces.c.node_id == nodes.c.id, interfaces.c.vlan_id == vlan_id))
    rows = (await conn.execute(query)).scalars().all()
    if len(rows) != 1:
        raise Invalid.field(field, f"Select a valid choice. {ident} is not one of the available choices.")
    return rows[0]


async def rack_is_connected(conn: AsyncConnection, rack_id: int) -> bool:
    """A rack with at least one live RPC connection to a region is up."""
    return rack_id in await connected_regions(conn)


async def find_space(conn: AsyncConnection, ident: str) -> int | None:
    if is_blank(ident) or ident == "undefined":
        return None
    query = select(spaces.c.id)
    space_id = validation.as_id(ident)
    query = query.where(spaces.c.id == space_id) if space_id is not None else query.where(spaces.c.name == ident)
    found = None if ident.isdigit() and space_id is None else (await conn.execute(query)).scalar_one_or_none()
    if found is None:
        raise Invalid.field("space", validation.not_a_choice(validation.shown(ident)))
    return found


async def vlan_has_dynamic_range(conn: AsyncConnection, vlan_id: int) -> bool:
    return bool(
        (
            await conn.execute(
                select(
                    exists().where(
                        ipranges.c.type == "dynamic",
                        ipranges.c.subnet_id == subnets.c.id,
                        subnets.c.vlan_id == vlan_id,
                    )
                )
            )
        ).scalar()
    )


async def create_vlan(conn: AsyncConnection, fabric: int | str, fields: dict[str, Any]) -> Vlans:
    fabric_id = (await get_fabric(conn, fabric))["id"]
    raise_if(netrules.check_vid(fields.get("vid")))
    raise_if(netrules.check_mtu(fields.get("mtu")))
    if fields.get("name"):
        raise_if(netrules.check_name("vlan", fields["name"]))
    values = {k: fields[k] for k in ("vid", "name", "description", "mtu") if fields.get(k) is not None}
    if "space" in fields:
        values["space_id"] = await find_space(conn, fields["space"])
    vlan_id = await insert_unique(conn, vlans, "__all__", DUPLICATE_VID, fabric_id=fabric_id, **values)
    return await show_vlans(conn, vlan_id=vlan_id)


async def update_vlan(conn: AsyncConnection, ref: VlanRef, fields: dict[str, Any]) -> Vlans:
    """Partial update with MAAS's DHCP rules; racks by system_id or hostname. The racks
    refetch their DHCP state and a connection balance check runs (the seeds: toggling
    DHCP or changing a VLAN triggers one)."""
    vlan_id = (await find_vlan(conn, ref))["id"]
    current = one(await conn.execute(select(vlans).where(vlans.c.id == vlan_id).with_for_update()), "VLAN")
    values: dict[str, Any] = {k: fields[k] for k in ("name", "description") if k in fields}
    if fields.get("name"):
        raise_if(netrules.check_name("vlan", fields["name"]))
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
        current["primary_rack_id"],
        current["secondary_rack_id"],
        racks.get("primary_rack"),
        racks.get("secondary_rack"),
        "primary_rack" in racks,
        "secondary_rack" in racks,
    )
    dhcp_on = bool(fields.get("dhcp_on", current["dhcp_on"]))
    raise_if(
        netrules.check_secondary_not_primary(
            current["primary_rack_id"],
            "primary_rack" in racks,
            racks.get("secondary_rack"),
            fields.get("secondary_rack", ""),
        )
    )
    new_secondary = secondary is not None and (
        secondary != current["secondary_rack_id"] or primary != current["primary_rack_id"]
    )
    raise_if(
        netrules.check_dhcp(
            netrules.DhcpState(
                dhcp_on=dhcp_on,
                primary=primary,
                secondary=secondary,
                has_dynamic_range=await vlan_has_dynamic_range(conn, vlan_id) if dhcp_on else True,
                # Only a secondary being set now needs a live primary to sync leases from.
                primary_alive=await rack_is_connected(conn, primary) if new_secondary and primary is not None else True,
            )
        )
    )
    values.update(dhcp_on=dhcp_on, primary_rack_id=primary, secondary_rack_id=secondary)
    if dhcp_on and not current["dhcp_on"]:
        values["relay_vlan_id"] = None  # MAAS: serving DHCP here replaces relaying it
    await update_unique(conn, vlans, vlan_id, "__all__", DUPLICATE_VID, **values)
    consequences.dhcp_changed(conn)
    consequences.connections_to_rebalance(conn)
    return await show_vlans(conn, vlan_id=vlan_id)


async def _relay_vlan(conn: AsyncConnection, ident: str, vlan_id: int) -> int:
    relay_id = validation.as_id(ident)
    found = (
        None
        if relay_id is None
        else (await conn.execute(select(vlans.c.id).where(vlans.c.id == relay_id))).scalar_one_or_none()
    )
    if found is None or found == vlan_id:
        raise Invalid.field("relay_vlan", validation.not_a_choice(validation.shown(ident)))
    return found


async def delete_vlan(conn: AsyncConnection, ref: VlanRef) -> None:
    vlan = await find_vlan(conn, ref)
    if vlan["is_default"]:
        raise Refused("This VLAN is the default VLAN in the fabric, it cannot be deleted.")
    in_use = (await conn.execute(select(subnets.c.cidr).where(subnets.c.vlan_id == vlan["id"]))).scalars().all()
    if in_use:
        raise Refused(
            "Can't delete VLAN; the following subnets are still present: " + ", ".join(str(c) for c in in_use)
        )
    await delete_row(conn, vlans, vlan["id"])
