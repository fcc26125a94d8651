"""What MAAS's `details` op shows of a node: the lshw and LLDP outputs of its last
passing commissioning run (null when there is none, as for most controllers)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import script_results

# MAAS's script names -> the keys `details` shows them under.
PROBED_SCRIPTS = {"maas-lshw": "lshw", "maas-capture-lldpd": "lldp"}


async def probed_details(conn: AsyncConnection, node_id: int) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = dict.fromkeys(PROBED_SCRIPTS.values())
    rows = await conn.execute(
        select(script_results.c.name, script_results.c.output)
        .where(
            script_results.c.node_id == node_id,
            script_results.c.name.in_(PROBED_SCRIPTS),
            script_results.c.exit_status == 0,
        )
        .order_by(script_results.c.id)
    )
    for row in rows:
        found[PROBED_SCRIPTS[row.name]] = row.output.encode()
    return found
