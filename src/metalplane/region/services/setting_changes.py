"""Changing cluster settings, with what each change must set off at the racks.

The API's `maas set-config` and the web UI's Settings page both go through
here, so a setting is validated, stored and announced the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.errors import ValidationFailed, raise_if
from metalplane.region.services import dhcp, rpc, settings


async def change_setting(conn: AsyncConnection, name: str, value: str) -> Any:
    """Validate and store one setting; tell the racks when it changes what they run."""
    stored = await settings.set_setting(conn, name, value)
    if name.startswith("dhcp_") or name == "ntp_servers":
        await dhcp.announce_change(conn)
    if name.startswith("power_"):
        await rpc.announce_rack_event(conn, "bmcs", "", racks=list(await rpc.rack_ids(conn)))
    return stored


async def change_settings(conn: AsyncConnection, values: dict[str, str]) -> dict[str, Any]:
    """Several settings, all or none: ValidationFailed names every bad one by its own name."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        try:
            settings.parse_setting(name, value)
        except ValidationFailed as exc:
            errors[name] = [reason for reasons in exc.errors.values() for reason in reasons]
    raise_if(errors)
    return {name: await change_setting(conn, name, value) for name, value in values.items()}
