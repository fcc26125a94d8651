"""maas/: cluster-wide settings (get_config / set_config), as MAAS's MaasHandler."""

from __future__ import annotations

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import settings

maas = Handler("MaasHandler", "maas/", "Manage the MAAS server.")


@maas.action("GET", "get_config")
async def get_config(ctx: Ctx) -> object:
    """Get a config value.

    :param name: The name of the config item to be retrieved.
    :type name: unicode
    """
    name = ctx.params.str("name", required=True)
    async with ctx.tx() as conn:
        return await settings.get_setting(conn, name)


@maas.action("POST", "set_config", admin=True)
async def set_config(ctx: Ctx) -> object:
    """Set a config value.

    :param name: The name of the config item to be set.
    :type name: unicode
    :param value: The value of the config item to be set.
    :type value: unicode
    """
    name = ctx.params.str("name", required=True)
    value = ctx.params.str("value", required=True)
    async with ctx.tx() as conn:
        return await settings.set_setting(conn, name, value)
