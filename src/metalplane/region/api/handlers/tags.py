"""tags/ and tags/{name}/: manual tags and tags defined by an XPath over the hardware document."""

from __future__ import annotations

from metalplane.region.api import render, render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, given, path_key
from metalplane.region.api.framework import Handler, param_doc
from metalplane.region.services import tags as svc
from metalplane.region.services.rows import Row
from metalplane.rpc.nodes import RACK_TYPES, REGION_TYPES, NodeType

tags = Handler("TagsHandler", "tags/", "Manage all tags known to MAAS.")
tag = Handler(
    "TagHandler",
    "tags/{name}/",
    "Tags are properties that can be associated with a Node and serve as criteria for selecting and allocating nodes.",
)

FIELDS_DOC = """
:param comment: A description of what the tag means.
:type comment: unicode
:param definition: An XPath over each node's hardware document (docs/tags.md): the tag is on
    exactly the nodes it matches. Empty for a manual tag.
:type definition: unicode
:param kernel_opts: Kernel options for nodes with this tag.
:type kernel_opts: unicode
"""


def tag_json(t: Row) -> Row:
    return {
        **render.columns(t, "name", "definition", "comment", "kernel_opts"),
        "resource_uri": render.uri(f"tags/{t['name']}/"),
    }


FIELDS = {"name": "str", "comment": "str", "definition": "str", "kernel_opts": "str"}
crud = Crud(tags, (tag,), tag_json, key=path_key("name"))
crud.list_all(svc.list_tags, "List tags.")
crud.create(
    svc.create_tag,
    given(FIELDS),
    "Create a new tag (a defined one is applied to the matching nodes at once).\n\n"
    + param_doc("name", "The new tag's name: letters, digits, - and _.")
    + FIELDS_DOC,
)
crud.read(svc.get_tag, "Read a specific tag.")
crud.update(
    svc.update_tag,
    given(FIELDS),
    "Update a tag; a new definition rebuilds which nodes have it.\n\n"
    + param_doc("name", "The new name.")
    + FIELDS_DOC,
)
crud.delete(svc.delete_tag, "Delete a tag.")


@tag.action("POST", "rebuild", admin=True)
async def rebuild(ctx: Ctx) -> dict:
    """Evaluate the tag's definition over every node again."""
    return await ctx.run(svc.rebuild, ctx.path["name"])


@tag.action("POST", "update_nodes", admin=True)
async def update_nodes(ctx: Ctx) -> dict:
    """Add nodes to and remove nodes from this tag.

    :param add: The system_id of a node to tag (repeatable).
    :type add: unicode
    :param remove: The system_id of a node to untag (repeatable).
    :type remove: unicode
    :param definition: When given, it must equal the tag's definition (409 otherwise).
    :type definition: unicode
    :param rack_controller: Accepted for compatibility (a rack's own tag update).
    :type rack_controller: unicode
    """
    p = ctx.params
    async with ctx.tx() as conn:
        return await svc.update_nodes(
            conn, ctx.path["name"], p.get_list("add"), p.get_list("remove"), p.str("definition")
        )


def _tagged(types: tuple[int, ...], doc: str):
    async def listed(ctx: Ctx) -> list:
        return render_nodes.nodes(await ctx.run(svc.tagged_nodes, ctx.path["name"], types, ctx.me))

    listed.__doc__ = doc
    return listed


tag.action("GET", "nodes")(_tagged(tuple(int(t) for t in NodeType), "List the nodes with this tag."))
tag.action("GET", "machines")(_tagged((int(NodeType.MACHINE),), "List the machines with this tag."))
tag.action("GET", "devices")(_tagged((int(NodeType.DEVICE),), "List the devices with this tag."))
tag.action("GET", "rack_controllers")(_tagged(tuple(RACK_TYPES), "List the rack controllers with this tag."))
tag.action("GET", "region_controllers")(_tagged(tuple(REGION_TYPES), "List the region controllers with this tag."))
