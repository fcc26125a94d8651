"""`machines create`: the machine, then (asked by an admin) its commissioning, as MAAS does."""

from __future__ import annotations

from typing import Any

from metalplane.region.db.transaction import Work
from metalplane.region.services import commissioning, machines, power
from metalplane.region.services.users import User


async def create(work: Work, rpc_server: Any, fields: dict[str, Any], user: User) -> machines.Machines:
    """MAAS starts commissioning when an admin creates a machine, unless `commission`
    is false or the machine is `deployed`. A BMC that does not answer leaves the
    machine in Failed commissioning (with the reason), not the create undone."""
    async with work.tx() as conn:
        created = await machines.create_machine(conn, fields)
    system_id = created.nodes[0]["system_id"]
    if not user.is_superuser or fields.get("commission") is False or fields.get("deployed"):
        return created
    try:
        return await commissioning.commission(work, rpc_server, system_id, None, user)
    except power.PowerFailed:
        async with work.tx() as conn:
            return await machines.show_machine(conn, system_id)
