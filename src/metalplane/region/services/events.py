"""The node event log (MAAS's Event): what happened to each node, newest first.

Services record an event in the transaction that makes the change, so an event
exists exactly when its change committed. Types, descriptions and levels are
MAAS's (maascommon/events.py); `events query` filters on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, insert, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import events, nodes
from metalplane.region.errors import Refused

AUDIT = 0
LEVELS = {
    "AUDIT": AUDIT,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CREATED_FORMAT = "%a, %d %b. %Y %H:%M:%S"  # what python-libmaas parses

# name -> (description, level), as MAAS's event catalogue has them.
TYPES: dict[str, tuple[str, int]] = {
    "NODE_POWERED_ON": ("Node powered on", logging.DEBUG),
    "NODE_POWERED_OFF": ("Node powered off", logging.DEBUG),
    "NODE_POWER_ON_FAILED": ("Failed to power on node", logging.ERROR),
    "NODE_POWER_OFF_FAILED": ("Failed to power off node", logging.ERROR),
    "NODE_POWER_CYCLE_FAILED": ("Failed to power cycle node", logging.ERROR),
    "NODE_POWER_QUERY_FAILED": ("Failed to query node's BMC", logging.WARNING),
    "NODE_CHANGED_STATUS": ("Node changed status", logging.DEBUG),
    "NODE_COMMISSIONING_EVENT_FAILED": ("Node commissioning failure", logging.ERROR),
    "REQUEST_NODE_START_COMMISSIONING": ("User starting node commissioning", logging.DEBUG),
    "REQUEST_NODE_START": ("User powering up node", logging.DEBUG),
    "REQUEST_NODE_STOP": ("User powering down node", logging.DEBUG),
    "SCRIPT_RESULT_CHANGED_STATUS": ("Script result", logging.DEBUG),
    "NEW": ("New", logging.INFO),
    "COMMISSIONING": ("Commissioning", logging.INFO),
    "FAILED_COMMISSIONING": ("Failed commissioning", logging.INFO),
    "READY": ("Ready", logging.INFO),
    "GATHERING_INFO": ("Gathering information", logging.INFO),
    # The deployment lifecycle.
    "REQUEST_NODE_ACQUIRE": ("User acquiring node", logging.DEBUG),
    "REQUEST_NODE_START_DEPLOYMENT": ("User starting deployment", logging.DEBUG),
    "REQUEST_NODE_ABORT_DEPLOYMENT": ("User aborting deployment", logging.DEBUG),
    "REQUEST_NODE_ABORT_COMMISSIONING": ("User aborting node commissioning", logging.DEBUG),
    "REQUEST_NODE_ABORT_ERASE_DISK": ("User aborting disk erase", logging.DEBUG),
    "REQUEST_NODE_RELEASE": ("User releasing node", logging.DEBUG),
    "REQUEST_NODE_ERASE_DISK": ("User erasing disk", logging.DEBUG),
    "REQUEST_NODE_MARK_BROKEN": ("User marking node broken", logging.DEBUG),
    "REQUEST_NODE_MARK_FIXED": ("User marking node fixed", logging.DEBUG),
    "REQUEST_NODE_MARK_FAILED_SYSTEM": ("Marking node failed", logging.ERROR),
    "REQUEST_NODE_LOCK": ("User locking node", logging.DEBUG),
    "REQUEST_NODE_UNLOCK": ("User unlocking node", logging.DEBUG),
    "REQUEST_NODE_START_RESCUE_MODE": ("User starting rescue mode", logging.DEBUG),
    "REQUEST_NODE_STOP_RESCUE_MODE": ("User stopping rescue mode", logging.DEBUG),
    "NODE_INSTALL_EVENT": ("Node installation", logging.DEBUG),
    "NODE_INSTALL_EVENT_FAILED": ("Node installation failure", logging.ERROR),
    "NODE_INSTALLATION_FINISHED": ("Installation complete", logging.DEBUG),
    "NODE_DISKS_ERASED": ("Disks erased", logging.INFO),
    "PERFORMING_PXE_BOOT": ("Performing PXE boot", logging.INFO),
    "CONFIGURING_STORAGE": ("Configuring storage", logging.INFO),
    "INSTALLING_OS": ("Installing OS", logging.INFO),
    "CONFIGURING_OS": ("Configuring OS", logging.INFO),
    "REBOOTING": ("Rebooting", logging.INFO),
    "DEPLOYING": ("Deploying", logging.INFO),
    "DEPLOYED": ("Deployed", logging.INFO),
    "IMAGE_DEPLOYED": ("Image Deployed", logging.INFO),
    "RELEASING": ("Releasing", logging.INFO),
    "RELEASED": ("Released", logging.INFO),
    "ABORTED_DEPLOYMENT": ("Aborted deployment", logging.INFO),
    "ABORTED_COMMISSIONING": ("Aborted commissioning", logging.INFO),
    "ABORTED_DISK_ERASING": ("Aborted disk erasing", logging.INFO),
    "ENTERING_RESCUE_MODE": ("Entering rescue mode", logging.INFO),
    "RESCUE_MODE": ("Rescue mode", logging.INFO),
    "EXITED_RESCUE_MODE": ("Exited rescue mode", logging.INFO),
    "FAILED_EXITING_RESCUE_MODE": ("Failed exiting rescue mode", logging.INFO),
    # Not in MAAS's catalogue (MAAS logs service changes without an event): a controller's
    # service changed status, and a rack ran cut off from every region.
    "SERVICE_STATUS_CHANGED": ("Service status changed", logging.INFO),
    "RACK_DEGRADED_MODE": ("Rack ran without any region controller", logging.WARNING),
}
POWER_REQUESTS = {
    "on": ("REQUEST_NODE_START", "start"),
    "off": ("REQUEST_NODE_STOP", "stop"),
    "cycle": ("REQUEST_NODE_START", "start"),
}
POWER_DONE = {"on": "NODE_POWERED_ON", "off": "NODE_POWERED_OFF", "cycle": "NODE_POWERED_ON"}
POWER_FAILED = {action: f"NODE_POWER_{action.upper()}_FAILED" for action in ("on", "off", "cycle", "query")}
# The INFO event a node's new status shows (status_message), by status number.
STATUS_EVENTS = {
    0: "NEW",
    1: "COMMISSIONING",
    2: "FAILED_COMMISSIONING",
    4: "READY",
    6: "DEPLOYED",
    9: "DEPLOYING",
    12: "RELEASING",
    16: "RESCUE_MODE",
    17: "ENTERING_RESCUE_MODE",
}


async def record(
    conn: AsyncConnection,
    node: dict[str, Any],
    type_name: str,
    description: str = "",
    action: str = "",
    username: str = "",
) -> None:
    """One event about `node` (a row with id, system_id, hostname)."""
    type_description, level = TYPES[type_name]
    await conn.execute(
        insert(events).values(
            node_id=node["id"],
            node_system_id=node["system_id"],
            node_hostname=node["hostname"],
            type_name=type_name,
            type_description=type_description,
            level=level,
            action=action,
            description=description[:2000],
            username=username,
        )
    )


async def status_changed(
    conn: AsyncConnection,
    node: dict[str, Any],
    old: int,
    new: int,
    labels: dict[int, str],
    description: str = "",
    status_event: str | None = None,
) -> None:
    """MAAS's NODE_CHANGED_STATUS ("From 'New' to 'Commissioning'") and the new status's own
    event (`status_event` when the change has its own, e.g. RELEASED for a release back to Ready)."""
    if old != new:
        await record(conn, node, "NODE_CHANGED_STATUS", f"From '{labels.get(old, old)}' to '{labels.get(new, new)}'")
    shown = status_event or STATUS_EVENTS.get(new)
    if shown is not None:
        await record(conn, node, shown, description)


async def power_requested(
    conn: AsyncConnection, node: dict[str, Any], action: str, username: str, comment: str = ""
) -> None:
    if action in POWER_REQUESTS:
        type_name, verb = POWER_REQUESTS[action]
        await record(conn, node, type_name, comment, action=verb, username=username)


async def power_result(conn: AsyncConnection, node: dict[str, Any], action: str, error: str | None) -> None:
    if error is not None:
        await record(conn, node, POWER_FAILED[action], error)
    elif action in POWER_DONE:
        await record(conn, node, POWER_DONE[action])


async def latest_shown(conn: AsyncConnection, node_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each node's newest INFO-or-higher event: what status_message and status_action show."""
    if not node_ids:
        return {}
    newest = (
        select(events.c.node_id, events.c.id)
        .ext(distinct_on(events.c.node_id))
        .where(events.c.node_id.in_(node_ids), events.c.level >= logging.INFO)
        .order_by(events.c.node_id, events.c.id.desc())
        .subquery()
    )
    rows = await conn.execute(select(events).join(newest, and_(newest.c.id == events.c.id)))
    return {r.node_id: dict(r._mapping) for r in rows}


def status_message(event: dict[str, Any] | None) -> str | None:
    if event is None:
        return None
    if event["description"]:
        return f"{event['type_description']} - {event['description']}"
    return event["type_description"]


@dataclass(frozen=True)
class Query:
    node_ids: list[int] | None  # None: every node's events
    level: str = "INFO"
    limit: int = DEFAULT_LIMIT
    after: int | None = None
    before: int | None = None
    owner: str | None = None


def check_query(level: str | None, limit: int | None, after: int | None, before: int | None) -> tuple[str, int]:
    level = level or "INFO"
    if level not in LEVELS:
        raise Refused(f"Unrecognised log level: {level}")
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit > MAX_LIMIT:
        raise Refused(f"Requested number of events {limit} is greater than limit: {MAX_LIMIT}")
    if after is not None and before is not None:
        raise Refused("There is undetermined behaviour when both `after` and `before` are specified.")
    return level, max(limit, 1)


async def query(conn: AsyncConnection, q: Query) -> list[dict[str, Any]]:
    """Events newest first, paged by id as MAAS pages them."""
    stmt = select(events, nodes.c.system_id.label("current_system_id")).outerjoin(nodes, nodes.c.id == events.c.node_id)
    stmt = stmt.where(events.c.node_id.isnot(None))
    if q.node_ids is not None:
        stmt = stmt.where(events.c.node_id.in_(q.node_ids))
    if q.level == "AUDIT":
        stmt = stmt.where(events.c.level == AUDIT)
    else:
        stmt = stmt.where(events.c.level >= LEVELS[q.level])
    if q.owner is not None:
        stmt = stmt.where(events.c.username == q.owner.replace("\x00", ""))
    if q.after is not None:
        found = [
            dict(r._mapping)
            for r in await conn.execute(stmt.where(events.c.id > q.after).order_by(events.c.id).limit(q.limit))
        ]
        return list(reversed(found))
    if q.before is not None:
        stmt = stmt.where(events.c.id < q.before)
    return [dict(r._mapping) for r in await conn.execute(stmt.order_by(events.c.id.desc()).limit(q.limit))]


def page_uris(
    base: str, params: list[tuple[str, str]], shown: list[dict[str, Any]], after: int | None, before: int | None
) -> tuple[str, str | None]:
    """MAAS's next_uri (newer events) and prev_uri (older ones), keeping the caller's filters."""
    kept = [(k, v) for k, v in params if k not in ("after", "before")]

    def uri(extra: list[tuple[str, str]]) -> str:
        return f"{base}?{urlencode(kept + extra)}"

    if shown:
        next_uri = uri([("after", str(shown[0]["id"]))])
        prev_uri: str | None = uri([("before", str(shown[-1]["id"]))])
    else:
        next_uri = uri([]) if before is None else uri([("after", str(before - 1))])
        prev_uri = None if after is None else uri([("before", str(after + 1))])
    return next_uri, prev_uri
