"""events/?op=query: the node event log, newest first, paged by id."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import events as svc
from metalplane.region.services import node_ops

events = Handler("EventsHandler", "events/", "Retrieve filtered node events.")

NODE_FILTERS = ("hostname", "mac_address", "id", "domain", "zone", "pool", "agent_name")


@events.action("GET", "query")
async def query(ctx: Ctx) -> dict:
    """List node events, filtered by node and level, newest first.

    :param hostname: Only events of the node with this hostname (repeatable).
    :type hostname: unicode
    :param mac_address: Only events of the node with this MAC address (repeatable).
    :type mac_address: unicode
    :param id: Only events of the node with this system_id (repeatable).
    :type id: unicode
    :param domain: Only events of nodes in this domain.
    :type domain: unicode
    :param zone: Only events of nodes in this zone.
    :type zone: unicode
    :param agent_name: Only events of nodes with this agent name.
    :type agent_name: unicode
    :param level: The lowest level shown: AUDIT, CRITICAL, DEBUG, ERROR, INFO (default), WARNING.
    :type level: unicode
    :param limit: How many events (default 100, at most 1000).
    :type limit: integer
    :param before: Only events older than this event id.
    :type before: integer
    :param after: Only events newer than this event id.
    :type after: integer
    :param owner: Only events of this user.
    :type owner: unicode
    """
    p = ctx.params
    after = p.int("after", min_value=0, max_value=2**63 - 1)
    before = p.int("before", min_value=0, max_value=2**63 - 1)
    level, limit = svc.check_query(p.str("level"), p.int("limit", min_value=-(2**31), max_value=2**31), after, before)
    given = {name: p.get_list(name) for name in NODE_FILTERS if name in p}
    async with ctx.tx() as conn:
        node_ids = await node_ops.event_node_ids(conn, given, ctx.me)
        found = await svc.query(conn, svc.Query(node_ids, level, limit, after, before, p.str("owner")))
    kept = [(k, v) for k in p.names() for v in p.get_list(k) if k in (*NODE_FILTERS, "level", "limit", "owner", "op")]
    next_uri, prev_uri = svc.page_uris(render.uri("events/"), kept, found, after, before)
    return {
        "count": len(found),
        "events": [
            {
                "username": e["username"] or "unknown",
                "node": e["current_system_id"],
                "hostname": e["node_hostname"],
                "id": e["id"],
                "level": svc.LEVEL_NAMES.get(e["level"], "INFO"),
                "created": e["created"].strftime(svc.CREATED_FORMAT),
                "type": e["type_description"],
                "description": e["description"],
            }
            for e in found
        ],
        "next_uri": next_uri,
        "prev_uri": prev_uri,
    }
