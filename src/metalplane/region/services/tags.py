"""Tags: manual ones, and ones defined by an XPath over each node's hardware document.

A defined tag is applied to exactly the nodes whose document matches: when it is
created, when its definition changes (`rebuild` too), and to one node when its
commissioning facts arrive. `update_nodes` adds and removes nodes by hand.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import node_tags, nodes, tags
from metalplane.region.errors import Conflict, NotFound, raise_if
from metalplane.region.services import hardware_xml
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.rows import Row, delete_row, execute_unique, one, only_row, rows, update_unique
from metalplane.region.services.users import User

TAG_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
DUPLICATE = "Tag with this Name already exists."
# What a node's hardware document is built from (hardware_xml.hardware_document).
DOCUMENT_COLUMNS = nodes.c["id", "hostname", "architecture", "cpu_count", "memory", "boot_method", "hardware"]


def check(fields: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if "name" in fields:
        name = fields["name"] or ""
        if not name:
            errors["name"] = ["This field is required."]
        elif len(name) > 256:
            errors["name"] = [f"Ensure this value has at most 256 characters (it has {len(name)})."]
        elif not TAG_NAME.match(name):
            errors["name"] = ["Enter a valid value."]
    definition = (fields.get("definition") or "").strip()
    if definition:
        try:
            hardware_xml.compile_definition(definition)
        except etree.XPathSyntaxError as exc:
            errors["definition"] = [f"Invalid XPath expression: {exc}"]
        except ValueError as exc:  # lxml refuses control characters before parsing
            errors["definition"] = [f"Invalid XPath expression: {exc}"]
    return errors


async def list_tags(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(tags).order_by(tags.c.id)))


async def get_tag(conn: AsyncConnection, name: str, lock: bool = False) -> Row:
    if "\x00" in name:
        raise NotFound("Tag")
    query = select(tags).where(tags.c.name == name)
    if lock:
        query = query.with_for_update()
    return one(await conn.execute(query), "Tag")


async def create_tag(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    fields = {"name": fields.get("name") or "", **{k: v for k, v in fields.items() if k != "name"}}
    raise_if(check(fields))
    values = {k: (fields.get(k) or "") for k in ("name", "definition", "comment", "kernel_opts")}
    await execute_unique(conn, insert(tags).values(**values), "name", DUPLICATE)
    tag = await get_tag(conn, values["name"])
    if tag["definition"].strip():
        await populate(conn, tag)
    return tag


async def update_tag(conn: AsyncConnection, name: str, fields: dict[str, Any]) -> Row:
    tag = await get_tag(conn, name, lock=True)
    raise_if(check(fields))
    values: dict[str, Any] = {
        k: fields[k] or "" for k in ("name", "definition", "comment", "kernel_opts") if k in fields
    }
    if values:
        await update_unique(conn, tags, tag["id"], "name", DUPLICATE, **values)
    changed = await get_tag(conn, values.get("name", name))
    if "definition" in values and values["definition"] != tag["definition"] and changed["definition"].strip():
        await populate(conn, changed)
    return changed


async def delete_tag(conn: AsyncConnection, name: str) -> None:
    tag = await get_tag(conn, name, lock=True)
    await delete_row(conn, tags, tag["id"])


async def populate(conn: AsyncConnection, tag: Row) -> None:
    """Apply a defined tag to exactly the nodes whose hardware document matches (nodes that
    never commissioned have none)."""
    xpath = hardware_xml.compile_definition(tag["definition"])
    matching = []
    for node in rows(await conn.execute(select(*DOCUMENT_COLUMNS))):
        if node["hardware"] and hardware_xml.evaluate(xpath, hardware_xml.hardware_document(node)):
            matching.append(node["id"])
    await conn.execute(delete(node_tags).where(node_tags.c.tag_id == tag["id"]))
    if matching:
        await conn.execute(insert(node_tags), [{"node_id": n, "tag_id": tag["id"]} for n in matching])


async def rebuild(conn: AsyncConnection, name: str) -> dict[str, str]:
    tag = await get_tag(conn, name, lock=True)
    if tag["definition"].strip():
        await populate(conn, tag)
    return {"rebuilding": tag["name"]}


async def evaluate_node(conn: AsyncConnection, node_id: int) -> None:
    """A node's facts changed: every defined tag decides again whether it has the tag."""
    node = dict((await only_row(conn, select(*DOCUMENT_COLUMNS).where(nodes.c.id == node_id)))._mapping)
    if not node["hardware"]:  # not commissioned: no document, no defined tag
        return
    document = hardware_xml.hardware_document(node)
    for tag in await list_tags(conn):
        if not tag["definition"].strip():
            continue
        has = hardware_xml.evaluate(hardware_xml.compile_definition(tag["definition"]), document)
        if has:
            await conn.execute(pg_insert(node_tags).values(node_id=node_id, tag_id=tag["id"]).on_conflict_do_nothing())
        else:
            await conn.execute(delete(node_tags).where(node_tags.c.node_id == node_id, node_tags.c.tag_id == tag["id"]))


async def update_nodes(
    conn: AsyncConnection, name: str, add: list[str], remove: list[str], definition: str | None
) -> dict[str, int]:
    tag = await get_tag(conn, name, lock=True)
    if definition is not None and definition != tag["definition"]:
        raise Conflict(f"Definition supplied '{definition}' doesn't match current definition '{tag['definition']}'")
    to_add = await _node_ids(conn, add)
    to_remove = await _node_ids(conn, remove)
    for node_id in to_add:
        await conn.execute(pg_insert(node_tags).values(node_id=node_id, tag_id=tag["id"]).on_conflict_do_nothing())
    if to_remove:
        await conn.execute(delete(node_tags).where(node_tags.c.tag_id == tag["id"], node_tags.c.node_id.in_(to_remove)))
    return {"added": len(to_add), "removed": len(to_remove)}


async def _node_ids(conn: AsyncConnection, system_ids: list[str]) -> list[int]:
    system_ids = [s for s in system_ids if "\x00" not in s]  # no node has such an id
    if not system_ids:
        return []
    return list((await conn.execute(select(nodes.c.id).where(nodes.c.system_id.in_(system_ids)))).scalars())


async def tagged_nodes(
    conn: AsyncConnection, name: str, types: tuple[int, ...], viewer: User | None
) -> nodes_service.NodesView:
    """The nodes of these types that have the tag, as shown."""
    tag = await get_tag(conn, name)
    query = nodes_service.visible_to(nodes_service.node_select(types), viewer).where(
        nodes.c.id.in_(select(node_tags.c.node_id).where(node_tags.c.tag_id == tag["id"]))
    )
    return await nodes_service.show(conn, rows(await conn.execute(query)))


async def known_names(conn: AsyncConnection) -> set[str]:
    return set((await conn.execute(select(tags.c.name))).scalars())
