"""node-results (MAAS 2.0's commissioning results) and nodes/{system_id}/results/ (script sets)."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Invalid
from metalplane.region.services import script_results as svc

node_results = Handler(
    "NodeResultsHandler", "installation-results/", "Read the collection of commissioning script results."
)
commissioning_results = Handler(
    "NodeResultsHandler",
    "commissioning-results/",
    "Read the collection of commissioning script results.",
    described=False,
)
script_sets = Handler("NodeScriptResultsHandler", "nodes/{system_id}/results/", "Manage node script results.")
script_set = Handler("NodeScriptResultHandler", "nodes/{system_id}/results/{id}/", "Manage node script results.")
# The parameters that choose what a script set shows.
VIEW_DOC = """
:param hardware_type: Only results for this hardware type (node).
:type hardware_type: unicode
:param include_output: Include each result's output, base64 encoded.
:type include_output: boolean
:param filters: Only results of these scripts (comma separated names or ids).
:type filters: unicode
"""


async def read_node_results(ctx: Ctx) -> list:
    """Read the finished script results of the nodes' current runs.

    :param system_id: Only results of this node (repeatable).
    :type system_id: unicode
    :param name: Only results of this script (repeatable).
    :type name: unicode
    :param result_type: Only results of this type (0 commissioning, 1 installation, 2 testing).
    :type result_type: integer
    """
    result_type = ctx.params.int("result_type", min_value=0, max_value=3)
    async with ctx.tx() as conn:
        found = await svc.node_results(
            conn, ctx.me, ctx.params.get_list("system_id"), ctx.params.get_list("name"), result_type
        )
    return [render_nodes.node_result(r) for r in found]


for handler in (node_results, commissioning_results):
    handler.read(read_node_results)


def _filters(ctx: Ctx) -> list[str] | None:
    raw = ctx.params.str("filters")
    return [f for f in raw.split(",") if f] if raw else None


def _no_hardware_type(ctx: Ctx) -> None:
    value = ctx.params.str("hardware_type")
    if value and value.strip().lower() not in ("node", "0"):
        raise Invalid.field("hardware_type", "metalplane's commissioning scripts are all of hardware type node.")


@script_sets.action(
    "GET",
    doc="""The node's script sets (commissioning runs), each with its results.

:param type: Only sets of this type: commissioning, testing, installation or release.
:type type: unicode"""
    + VIEW_DOC,
)
async def list_script_sets(ctx: Ctx) -> list:
    _no_hardware_type(ctx)
    include = "include_output" in ctx.params
    node, sets = await ctx.run(svc.node_sets, ctx.path["system_id"], ctx.me, ctx.params.str("type"))
    return [render_nodes.script_set(node, s, include, _filters(ctx)) for s in sets]


@script_set.action(
    "GET", doc="One script set: by id, or current-commissioning, current-testing, current-installation.\n" + VIEW_DOC
)
async def read_script_set(ctx: Ctx) -> dict:
    _no_hardware_type(ctx)
    node, found = await ctx.run(svc.node_set, ctx.path["system_id"], ctx.path["id"], ctx.me)
    return render_nodes.script_set(node, found, "include_output" in ctx.params, _filters(ctx))


@script_set.action("GET", "download")
async def download(ctx: Ctx) -> Response:
    """Download the output of a set's scripts: one as is, several as text or a tar.xz.

    :param hardware_type: Only results for this hardware type (node).
    :type hardware_type: unicode
    :param filters: Only these scripts (comma separated names or ids).
    :type filters: unicode
    :param output: combined (default), stdout, stderr or all.
    :type output: unicode
    :param filetype: txt (default) or tar.xz.
    :type filetype: unicode
    """
    _no_hardware_type(ctx)
    output = ctx.params.str("output") or "combined"
    if output not in ("combined", "stdout", "stderr", "result", "all"):
        raise Invalid.field("output", f"'{output}' is not one of combined, stdout, stderr, all.")
    filetype = ctx.params.str("filetype") or "txt"
    node, found = await ctx.run(svc.node_set, ctx.path["system_id"], ctx.path["id"], ctx.me)
    body = svc.download(node, found, _filters(ctx), output, filetype)
    return Response(body, media_type="application/x-tar" if filetype == "tar.xz" else "application/binary")


@script_set.action("DELETE", admin=True)
async def delete_script_set(ctx: Ctx) -> None:
    """Delete a script set and its results."""
    await ctx.run(svc.delete_set, ctx.path["system_id"], ctx.path["id"])


@script_set.action("PUT", admin=True)
async def update_script_set(ctx: Ctx) -> dict:
    """Update a script set's results: metalplane keeps no suppression, so only suppressed=false.

    :param hardware_type: Only results for this hardware type (node).
    :type hardware_type: unicode
    :param filters: Only these scripts (comma separated names or ids).
    :type filters: unicode
    :param include_output: Include each result's output, base64 encoded.
    :type include_output: boolean
    :param suppressed: Whether failed results are suppressed (false only).
    :type suppressed: boolean
    """
    _no_hardware_type(ctx)
    if ctx.params.bool("suppressed", False):
        raise Invalid.field("suppressed", "Suppressing results is not supported.")
    node, found = await ctx.run(svc.node_set, ctx.path["system_id"], ctx.path["id"], ctx.me)
    return render_nodes.script_set(node, found, "include_output" in ctx.params, _filters(ctx))
