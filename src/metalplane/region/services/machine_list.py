"""Machines as the web UI lists them: one page at a time, filtered in the database.

Every query is bounded by the page (50 rows): the count and the page's ids come
from indexed queries over `nodes` (migration 0011: node type + hostname, status,
zone) and `interfaces.mac`; the page's zones, BMCs and MACs are then read for
those ids only. A MAC search matches a whole MAC exactly or a MAC prefix (one
whole octet and a colon at least: hostnames have no colon); anything else
searches hostnames (substring, any case).

Who sees what is MAAS's rule, the API's (`nodes.visible_to`): admins every
machine, others the machines nobody owns and their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import bmcs, interfaces, nodes, users, zones
from metalplane.region.errors import Invalid
from metalplane.region.services import commissioning, events, machines, permissions
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User
from metalplane.rpc.nodes import NodeType

PAGE_SIZE = 50
MAX_SEARCH = 200
MAC_PREFIX = re.compile(r"^([0-9a-f]{2}:){1,5}[0-9a-f]{0,2}$")  # hostnames have no ":"


@dataclass(frozen=True)
class Search:
    kind: Literal["none", "mac", "mac_prefix", "hostname"]
    value: str


def parse_search(text: str | None) -> Search:
    """What a search box entry means: a MAC (':' or '-' separated, any case), the start
    of one ("52:54:00:1"), or part of a hostname."""
    raw = (text or "").strip()
    if not raw:
        return Search("none", "")
    if len(raw) > MAX_SEARCH:
        raise Invalid.field("q", f"Ensure this value has at most {MAX_SEARCH} characters (it has {len(raw)}).")
    # Typed octet by octet, "52:54:00:00:00:0" is the start of a MAC, though MAAS's
    # forms would read it as a whole one (one-digit groups): only six full octets are whole.
    prefix = raw.lower().replace("-", ":")
    if MAC_PREFIX.match(prefix) and len(prefix) < len("00:00:00:00:00:00"):
        return Search("mac_prefix", prefix)
    mac = validation.normalise_mac(raw)
    if mac is not None:
        return Search("mac", mac)
    return Search("hostname", raw)


def like_pattern(value: str) -> str:
    """`value` as a literal inside a LIKE pattern (backslash is PostgreSQL's escape)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class MachineFilter:
    status: int | None = None
    zone: str | None = None
    search: Search = Search("none", "")

    def conditions(self) -> list[Any]:
        where: list[Any] = [nodes.c.node_type == NodeType.MACHINE]
        if self.status is not None:
            where.append(nodes.c.status == self.status)
        if self.zone:
            where.append(nodes.c.zone_id == select(zones.c.id).where(zones.c.name == self.zone).scalar_subquery())
        kind, value = self.search.kind, self.search.value
        if kind == "mac":
            where.append(exists().where(interfaces.c.node_id == nodes.c.id, interfaces.c.mac == value))
        elif kind == "mac_prefix":
            where.append(
                exists().where(interfaces.c.node_id == nodes.c.id, interfaces.c.mac.like(like_pattern(value) + "%"))
            )
        elif kind == "hostname":
            where.append(nodes.c.hostname.ilike("%" + like_pattern(value) + "%"))
        return where


@dataclass(frozen=True)
class MachineRow:
    system_id: str
    hostname: str
    status: int
    power_state: str
    power_type: str
    zone: str
    cpu_count: int
    memory: int  # MiB
    macs: list[str]
    error: str
    owner: str | None

    @property
    def status_name(self) -> str:
        return machines.STATUS_NAMES.get(self.status, str(self.status))


async def machine_page(
    conn: AsyncConnection, flt: MachineFilter, viewer: User, offset: int = 0, limit: int = PAGE_SIZE
) -> tuple[list[MachineRow], int]:
    """One page of the machines `viewer` may see, by hostname, and how many match in all."""
    where = and_(*flt.conditions())

    def visible(query: Select) -> Select:
        return nodes_service.visible_to(query.where(where), viewer)

    total = (await conn.execute(visible(select(func.count()).select_from(nodes)))).scalar_one()
    page = (
        await conn.execute(
            visible(
                select(
                    nodes.c.id,
                    nodes.c.system_id,
                    nodes.c.hostname,
                    nodes.c.status,
                    nodes.c.power_state,
                    nodes.c.cpu_count,
                    nodes.c.memory,
                    nodes.c.error_description,
                    nodes.c.instance_power_parameters,
                    zones.c.name.label("zone"),
                    bmcs.c.power_type,
                    users.c.username.label("owner"),
                )
                .outerjoin(zones, zones.c.id == nodes.c.zone_id)
                .outerjoin(bmcs, bmcs.c.id == nodes.c.bmc_id)
                .outerjoin(users, users.c.id == nodes.c.owner_id)
            )
            .order_by(nodes.c.hostname, nodes.c.id)
            .offset(max(offset, 0))
            .limit(limit)
        )
    ).all()
    macs: dict[int, list[str]] = {}
    if page:
        for i in await conn.execute(
            select(interfaces.c.node_id, interfaces.c.mac)
            .where(interfaces.c.node_id.in_([r.id for r in page]), interfaces.c.mac.isnot(None))
            .order_by(interfaces.c.node_id, interfaces.c.id)
        ):
            macs.setdefault(i.node_id, []).append(i.mac)
    rows = [
        MachineRow(
            r.system_id,
            r.hostname,
            r.status,
            r.power_state,
            machines.power_type_of(dict(r._mapping)),
            r.zone or "",
            r.cpu_count,
            r.memory,
            macs.get(r.id, []),
            r.error_description,
            r.owner,
        )
        for r in page
    ]
    return rows, total


async def zone_names(conn: AsyncConnection) -> list[str]:
    return list((await conn.execute(select(zones.c.name).order_by(zones.c.name))).scalars())


EVENTS_SHOWN = 20


@dataclass(frozen=True)
class MachineDetail:
    machine: Row
    interfaces: list[Row]
    results: list[dict[str, Any]]  # the last commissioning run: each script's output
    events: list[Row]  # the latest, newest first (DEBUG and up: power requests and results too)
    bmc_owner: str | None  # hostname of the rack that talks to its BMC
    may_power: bool  # power it (services/permissions.py: its owner or an admin)

    @property
    def status_name(self) -> str:
        return machines.STATUS_NAMES.get(self.machine["status"], str(self.machine["status"]))

    @property
    def power_type(self) -> str:
        return machines.power_type_of(self.machine)


async def machine_detail(conn: AsyncConnection, system_id: str, viewer: User) -> MachineDetail:
    """Everything the machine page shows; NotFound when `viewer` may not see such a machine."""
    machine = await machines.get_machine(conn, system_id, viewer=viewer)
    found = (await nodes_service.interfaces_of(conn, [machine["id"]])).get(machine["id"], [])
    results = await commissioning.results_of(conn, system_id, viewer)
    log = await events.query(conn, events.Query([machine["id"]], level="DEBUG", limit=EVENTS_SHOWN))
    owner = None
    if machine["owner_rack_id"] is not None:
        owner = (await conn.execute(select(nodes.c.hostname).where(nodes.c.id == machine["owner_rack_id"]))).scalar()
    return MachineDetail(machine, found, results, log, owner, permissions.permitted(viewer, "power_on", machine))
