"""commissioning-scripts/: extra scripts the ephemeral image runs while commissioning (MAAS 2.0)."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import API_PREFIX, Handler
from metalplane.region.services import commissioning

scripts = Handler("CommissioningScriptsHandler", "commissioning-scripts/", "Manage custom commissioning scripts.")
script = Handler("CommissioningScriptHandler", "commissioning-scripts/{name}/", "Manage a custom commissioning script.")


def _render(name: str) -> dict:
    return {"name": name, "resource_uri": f"{API_PREFIX}commissioning-scripts/{name}/"}


@scripts.read
async def list_scripts(ctx: Ctx) -> list:
    """List commissioning scripts."""
    return [_render(n) for n in await ctx.run(commissioning.list_scripts)]


@scripts.action("POST", admin=True)
async def create_script(ctx: Ctx) -> dict:
    """Create a new commissioning script (run with sh in the ephemeral image).

    :param name: Unique identifying name for the script (letters, digits, . _ + -).
    :type name: unicode
    :param content: The script itself (a file upload with `content@=FILE`).
    :type content: unicode
    """
    name = ctx.params.str("name", required=True) or ""  # required: never None
    content = ctx.params.raw("content")
    text = content.decode() if isinstance(content, bytes) else ctx.params.str("content", required=True) or ""
    await ctx.run(commissioning.put_script, name, text)
    return _render(name)


@script.read
async def read_script(ctx: Ctx) -> Response:
    """Read a commissioning script."""
    content = await ctx.run(commissioning.get_script, ctx.path["name"])
    return Response(content, media_type="text/plain")


@script.action("DELETE", admin=True)
async def delete_script(ctx: Ctx) -> None:
    """Delete a commissioning script."""
    await ctx.run(commissioning.delete_script, ctx.path["name"])
