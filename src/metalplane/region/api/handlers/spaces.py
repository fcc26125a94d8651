"""spaces/ and spaces/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first, given
from metalplane.region.api.framework import Handler, name_and_description_doc
from metalplane.region.services import spaces as svc

FIELDS_DOC = "\n" + name_and_description_doc("space")

spaces = Handler("SpacesHandler", "spaces/", "Manage spaces.")
space = Handler("SpaceHandler", "spaces/{id}/", "Manage space.")
crud = Crud(spaces, (space,), first(render.spaces), render.spaces)
crud.list_all(svc.show_spaces, "List all spaces.")
crud.read(svc.show_spaces, 'Read a space, by id or name (or "undefined": the VLANs without a space).')
crud.update(svc.update_space, given({"name": "str", "description": "str"}), "Update a space.\n" + FIELDS_DOC)
crud.delete(svc.delete_space, "Delete a space.")


@spaces.action("POST", admin=True, doc="Create a space.\n" + FIELDS_DOC)
async def create_space(ctx: Ctx) -> dict:
    name, description = ctx.params.str("name") or None, ctx.params.str("description", "") or ""
    return crud.shape(await ctx.run(svc.create_space, name, description))
