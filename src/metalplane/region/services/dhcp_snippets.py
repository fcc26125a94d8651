"""DHCP snippets (MAAS's dhcp-snippets/): named pieces of DHCP server configuration,
global or for one node, subnet or IP range, every value kept as a version.

They are stored and validated as MAAS 3.7 does (its form checks the targets,
not the snippet's syntax). They do not reach the racks' Kea configuration yet:
Kea's JSON is not ISC dhcpd's syntax, which MAAS's snippets are written in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import dhcp_snippet_versions, dhcp_snippets, ipranges, nodes, subnets
from metalplane.region.errors import FieldErrors, Invalid, NotFound, RegionError, raise_if
from metalplane.region.services import lookups, network
from metalplane.region.services.rows import Row, delete_row, first_row, insert_row, rows, update_row

NAME_MAX = 255
VALUE_MAX = 1 << 20  # a snippet is configuration text, not a file
NO_CHOICE = "Select a valid choice. That choice is not one of the available choices."
versions = dhcp_snippet_versions


@dataclass(frozen=True)
class Snippets:
    """Snippets as shown: each with every version (oldest first) and what it targets."""

    snippets: list[Row]
    versions: dict[int, list[Row]]
    nodes: dict[int, Row]
    subnets: dict[int, Row]
    vlans: dict[int, Row]


def unix_text(value: str) -> str:
    """MAAS stores snippets with Unix line ends."""
    return value.replace("\r\n", "\n")


def check_text(fields: dict[str, Any], creating: bool) -> FieldErrors:
    errors: FieldErrors = {}
    for name, limit in (("name", NAME_MAX), ("value", VALUE_MAX)):
        value = fields.get(name)
        if value is None:
            if creating:
                errors[name] = ["This field is required."]
            continue
        if creating and name == "name" and not value.strip():
            errors[name] = ["This field is required."]
        elif len(value) > limit:
            errors[name] = [f"Ensure this value has at most {limit} characters (it has {len(value)})."]
        elif "\x00" in value:
            errors[name] = ["Null characters are not allowed."]
    return errors


async def _node_id(conn: AsyncConnection, ident: str) -> int:
    if "\x00" in ident:
        raise Invalid.field("node", f"Select a valid choice. {ident} is not one of the available choices.")
    found = (
        (
            await conn.execute(
                select(nodes.c.id).where(or_(nodes.c.system_id == ident, nodes.c.hostname == ident)).limit(2)
            )
        )
        .scalars()
        .all()
    )
    if len(found) != 1:
        raise Invalid.field("node", f"Select a valid choice. {ident} is not one of the available choices.")
    return found[0]


async def _subnet_id(conn: AsyncConnection, spec: str) -> int:
    try:
        return (await lookups.subnet(conn, spec))["id"]
    except RegionError:
        raise Invalid.field("subnet", NO_CHOICE) from None


async def _iprange_id(conn: AsyncConnection, ident: str, subnet_id: int | None) -> int:
    number = lookups.object_id(ident, "iprange")
    query = select(ipranges.c.id, ipranges.c.subnet_id).where(ipranges.c.id == (number if number is not None else -1))
    row = await first_row(conn, query)
    if row is None or (subnet_id is not None and row.subnet_id != subnet_id):
        raise Invalid.field("iprange", NO_CHOICE)
    return row.id


async def _targets(conn: AsyncConnection, fields: dict[str, Any], current: Row | None) -> dict[str, Any]:
    """node_id, subnet_id, iprange_id after MAAS's rules: global_snippet clears both; a
    new node replaces the subnet and a new subnet the node; never both at once."""
    node_id = None if current is None else current["node_id"]
    subnet_id = None if current is None else current["subnet_id"]
    iprange_id = None if current is None else current["iprange_id"]
    new_node = await _node_id(conn, fields["node"]) if fields.get("node") else None
    new_subnet = await _subnet_id(conn, fields["subnet"]) if fields.get("subnet") else None
    if fields.get("global_snippet"):
        node_id = subnet_id = iprange_id = None
    else:
        if (
            new_node is not None
            and new_subnet is not None
            and (current is None or (new_subnet != current["subnet_id"] and new_node != current["node_id"]))
        ):
            raise Invalid({"__all__": ["A DHCP snippet cannot be enabled on a node and subnet at the same time."]})
        if new_node is not None:
            node_id, subnet_id, iprange_id = new_node, None, None
        if new_subnet is not None:
            node_id, subnet_id = None, new_subnet
            if current is None or current["subnet_id"] != new_subnet:
                iprange_id = None
    if fields.get("iprange"):
        if subnet_id is None:
            raise Invalid({"__all__": ["A DHCP snippet cannot be enabled on an iprange without a parent subnet"]})
        iprange_id = await _iprange_id(conn, fields["iprange"], subnet_id)
    return {"node_id": node_id, "subnet_id": subnet_id, "iprange_id": iprange_id}


async def _shown(conn: AsyncConnection, shown: list[Row]) -> Snippets:
    ids = [s["id"] for s in shown]
    by_snippet: dict[int, list[Row]] = {i: [] for i in ids}
    if ids:
        for v in rows(
            await conn.execute(select(versions).where(versions.c.snippet_id.in_(ids)).order_by(versions.c.id))
        ):
            by_snippet[v["snippet_id"]].append(v)
    node_ids = {s["node_id"] for s in shown if s["node_id"] is not None}
    subnet_ids = {s["subnet_id"] for s in shown if s["subnet_id"] is not None}
    node_rows = rows(await conn.execute(select(nodes).where(nodes.c.id.in_(node_ids)))) if node_ids else []
    subnet_rows = rows(await conn.execute(select(subnets).where(subnets.c.id.in_(subnet_ids)))) if subnet_ids else []
    return Snippets(
        shown,
        by_snippet,
        {n["id"]: n for n in node_rows},
        {s["id"]: s for s in subnet_rows},
        {v["id"]: v for v in await network.list_vlans(conn)} if subnet_rows else {},
    )


async def get_snippet(conn: AsyncConnection, ident: str | int, lock: bool = False) -> Row:
    """By id or name (MAAS's specifiers id:, name:); several of one name are a 403."""
    if isinstance(ident, int):
        condition = dhcp_snippets.c.id == ident
    else:
        kind, value = lookups.split(ident.strip(), ("id", "name"))
        if "\x00" in value or not value:
            raise NotFound("DHCPSnippet")
        number = lookups.object_id(value, "dhcpsnippet") if kind != "name" else None
        condition = dhcp_snippets.c.id == number if number is not None else dhcp_snippets.c.name == value
        if kind == "id" and number is None:
            raise NotFound("DHCPSnippet")
    return await lookups.one_row(conn, dhcp_snippets, condition, "DHCPSnippet", lock)


async def show_snippets(conn: AsyncConnection, ident: str | None = None) -> Snippets:
    if ident is not None:
        return await _shown(conn, [await get_snippet(conn, ident)])
    return await _shown(conn, rows(await conn.execute(select(dhcp_snippets).order_by(dhcp_snippets.c.id))))


async def create_snippet(conn: AsyncConnection, fields: dict[str, Any]) -> Snippets:
    raise_if(check_text(fields, creating=True))
    targets = await _targets(conn, fields, None)
    snippet_id = await insert_row(
        conn,
        dhcp_snippets,
        name=fields["name"],
        description=fields.get("description") or "",
        enabled=True if fields.get("enabled") is None else fields["enabled"],
        **targets,
    )
    await conn.execute(insert(versions).values(snippet_id=snippet_id, data=unix_text(fields["value"])))
    return await show_snippets(conn, str(snippet_id))


async def update_snippet(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> Snippets:
    """A partial update; a changed value becomes a new version."""
    current = await get_snippet(conn, ident, lock=True)
    raise_if(check_text(fields, creating=False))
    values: dict[str, Any] = {k: fields[k] for k in ("name", "description", "enabled") if fields.get(k) is not None}
    values.update(await _targets(conn, fields, current))
    await update_row(conn, dhcp_snippets, current["id"], **values)
    if fields.get("value") is not None:
        latest = (
            await conn.execute(
                select(versions.c.data)
                .where(versions.c.snippet_id == current["id"])
                .order_by(versions.c.id.desc())
                .limit(1)
            )
        ).scalar()
        if unix_text(fields["value"]) != latest:
            await conn.execute(insert(versions).values(snippet_id=current["id"], data=unix_text(fields["value"])))
    return await show_snippets(conn, str(current["id"]))


async def revert_snippet(conn: AsyncConnection, ident: str, to: str | None) -> Snippets:
    """MAAS's revert: `to` is a version id of the snippet's history, or -N to go N
    versions back; the versions after it are dropped."""
    if to is None:
        raise Invalid({"__all__": ["You must specify where to revert to"]})
    if not re.fullmatch(r"-?[0-9]{1,10}", to.strip()):
        raise Invalid({"__all__": [f"{to} is an invalid 'to' value"]})
    target = int(to)
    current = await get_snippet(conn, ident, lock=True)
    history = rows(
        await conn.execute(
            select(versions).where(versions.c.snippet_id == current["id"]).order_by(versions.c.id.desc())
        )
    )  # newest first, as MAAS walks it
    if target == 0:
        keep = history[0]
    elif target < 0:
        if -target >= len(history):
            raise Invalid({"__all__": ["Goes too far back."]})
        keep = history[-target]
    else:
        found = [v for v in history if v["id"] == target]
        if not found:
            raise Invalid({"__all__": [f"{target} not found in history"]})
        keep = found[0]
    await conn.execute(delete(versions).where(versions.c.snippet_id == current["id"], versions.c.id > keep["id"]))
    await conn.execute(update(dhcp_snippets).where(dhcp_snippets.c.id == current["id"]).values(updated=func.now()))
    return await show_snippets(conn, str(current["id"]))


async def delete_snippet(conn: AsyncConnection, ident: str) -> None:
    current = await get_snippet(conn, ident)
    await delete_row(conn, dhcp_snippets, current["id"])
