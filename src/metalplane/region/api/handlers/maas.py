"""maas/: cluster-wide settings (get_config / set_config), as MAAS's MaasHandler."""

from __future__ import annotations

import json

from starlette.responses import Response

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Refused
from metalplane.region.services import settings

maas = Handler("MaasHandler", "maas/", "Manage the MAAS server.")


def _required(ctx: Ctx, name: str) -> str:
    """MAAS's get_mandatory_param: a missing parameter is a plain-text 400."""
    value = ctx.params.str(name)
    if value is None or (name == "name" and not value):
        raise Refused(f"No provided {name}!")
    return value


@maas.action("GET", "get_config")
async def get_config(ctx: Ctx) -> Response:
    """Get a config value.

    Answers the value as compact JSON ("ntp.ubuntu.com", true, 30, null).

    :param name: The name of the config item to be retrieved (see set_config for the names).
    :type name: unicode
    """
    name = _required(ctx, "name")
    value = await ctx.run(settings.get_setting, name)
    return Response(json.dumps(value), headers={"Content-Type": "application/json"})


@maas.action("POST", "set_config", admin=True)
async def set_config(ctx: Ctx) -> Response:
    """Set a config value.

    Every name MAAS 3.x accepts, with its type and rules; the `ntp_server`
    alias names `ntp_servers`. Settings metalplane adds: dhcp_ha_mode,
    dhcp_lease_time, power_poll_interval, power_max_concurrency,
    commissioning_timeout. docs/settings.md says which ones take effect.

    :param name: The name of the config item to be set.
    :type name: unicode
    :param value: The value of the config item to be set.
    :type value: unicode
    """
    name = _required(ctx, "name")
    value = _required(ctx, "value")
    await ctx.run(settings.set_setting, name, value)
    return Response(b"OK", headers={"Content-Type": "text/plain"})
