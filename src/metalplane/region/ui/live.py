"""Live pages: server-sent events saying which part of the UI changed.

The stream carries topic names only ("controllers", "machines", ...); the page
then fetches the part it shows (`?part=...`) through the usual guarded route,
so what a user sees is always rendered with that user's rights. Events come
from the worker's `ChangeHub` (fed by the database's NOTIFY), so a stream
holds no database connection. A ping every few seconds lets the page notice a
region that vanished without closing the connection; when the region stops,
the stream ends and the browser reconnects (to another region behind HAProxy).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

from starlette.responses import PlainTextResponse, Response, StreamingResponse

from metalplane.region.changes import EVERYTHING, ChangeHub
from metalplane.region.ui.guard import UiRequest

EVENTS_PATH = "/MAAS/r/events/"
# Which tables each live part of the UI is drawn from (payloads of metalplane_changes).
TOPICS: dict[str, frozenset[str]] = {
    "controllers": frozenset(
        {
            "nodes.controller",
            "controller_info",
            "region_processes",
            "rpc_connections",
            "service_status",
            "interfaces",
            "ip_addresses",
            "vlans",
            "fabrics",
            "subnets",
            "bmcs",
        }
    ),
    "settings": frozenset({"config"}),
    # Subnets and a VLAN's page: its racks' dhcpd status (partner-down) comes from service_status.
    "subnets": frozenset(
        {
            "fabrics",
            "vlans",
            "subnets",
            "ipranges",
            "interfaces",
            "ip_addresses",
            "service_status",
            "rpc_connections",
            "nodes.controller",
            "config",
        }
    ),
    "machines": frozenset(
        {"nodes.machine", "interfaces", "script_results", "power_actions", "events", "bmcs", "zones"}
    ),
    "images": frozenset(
        {
            "boot_resources",
            "boot_resource_sets",
            "boot_resource_files",
            "boot_resource_contents",
            "boot_resource_imports",
            "service_status",
            "nodes.controller",
            "rpc_connections",
        }
    ),
}
PING_SECONDS = 5.0
COALESCE_SECONDS = 0.1  # one refresh for a burst of changes (a rack registering writes many tables)
STOP_CHECK_SECONDS = 0.5
RECONNECT_MS = 1000


def topics_for(tables: Iterable[str]) -> set[str]:
    tables = set(tables)
    if EVERYTHING in tables:
        return set(TOPICS)
    return {topic for topic, sources in TOPICS.items() if sources & tables}


def sse(event: str, data: str = "") -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def stream(hub: ChangeHub, wanted: set[str], stopping) -> AsyncIterator[str]:
    subscription = hub.subscribe()
    try:
        yield f"retry: {RECONNECT_MS}\n" + sse("ready")
        last_sent = time.monotonic()
        while not stopping():
            changed = await subscription.wait(STOP_CHECK_SECONDS)
            if changed:
                await asyncio.sleep(COALESCE_SECONDS)
                changed |= await subscription.wait(0)
                for topic in sorted(topics_for(changed) & wanted):
                    yield sse("change", topic)
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent >= PING_SECONDS:
                yield sse("ping")
                last_sent = time.monotonic()
    finally:
        subscription.close()


async def events(ui: UiRequest) -> Response:
    state = ui.ctx.app_state
    hub: ChangeHub | None = getattr(state, "changes", None)
    if hub is None:
        return PlainTextResponse("live updates are not available on this region\n", status_code=503)
    wanted = set(ui.params.get_list("topic")) & set(TOPICS) or set(TOPICS)
    stopping = getattr(state, "stopping", lambda: False)
    return StreamingResponse(
        stream(hub, wanted, stopping),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
