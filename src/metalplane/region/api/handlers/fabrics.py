"""fabrics/ and fabrics/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first, given
from metalplane.region.api.framework import Handler, name_and_description_doc, param_doc
from metalplane.region.services import network

FIELDS = {"name": "str", "description": "str", "class_type": "str"}
FIELDS_DOC = "\n" + name_and_description_doc("fabric") + param_doc("class_type", "Class type of the fabric.")

fabrics = Handler("FabricsHandler", "fabrics/", "Manage fabrics.")
fabric = Handler("FabricHandler", "fabrics/{id}/", "Manage fabric.")
crud = Crud(fabrics, (fabric,), first(render.fabrics), render.fabrics)
crud.list_all(network.show_fabrics, "List all fabrics.")
crud.read(
    network.show_fabrics,
    'Read a fabric, by id or by MAAS\'s specifier (a name, "fabric-3", "name:NAME", "class:CLASS").',
)
crud.update(network.update_fabric, given(FIELDS), "Update fabric.\n" + FIELDS_DOC)
crud.delete(network.delete_fabric, "Delete a fabric.")


@fabrics.action("POST", admin=True, doc="Create a fabric.\n" + FIELDS_DOC)
async def create_fabric(ctx: Ctx) -> dict:
    p = ctx.params
    name, description, class_type = p.str("name") or None, p.str("description", "") or "", p.str("class_type") or None
    return crud.shape(await ctx.run(network.create_fabric, name, description, class_type))
