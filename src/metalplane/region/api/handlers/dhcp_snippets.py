"""dhcp-snippets/ and dhcp-snippets/{id}/: stored and versioned (racks do not use them yet)."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render_network_extras as render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first
from metalplane.region.api.framework import Handler
from metalplane.region.services import dhcp_snippets as svc

snippets = Handler("DHCPSnippetsHandler", "dhcp-snippets/", "Manage the collection of all DHCP snippets in MAAS.")
snippet = Handler("DHCPSnippetHandler", "dhcp-snippets/{id}/", "Manage an individual DHCP snippet.")

SNIPPET_DOC = """
DHCP snippets are stored, versioned and validated as MAAS does; metalplane's
racks run Kea, and snippets (ISC dhcpd syntax) are not passed to it yet.

:param name: The name of the DHCP snippet.
:type name: unicode
:param value: The snippet of config inserted into dhcpd.conf.
:type value: unicode
:param description: A description of what the snippet does.
:type description: unicode
:param enabled: Whether or not the snippet is currently enabled.
:type enabled: boolean
:param node: The node (system_id or hostname) this snippet applies to; it cannot also apply to a subnet.
:type node: unicode
:param subnet: The subnet (id or specifier) this snippet applies to; it cannot also apply to a node.
:type subnet: unicode
:param iprange: The IP range (id) of the subnet this snippet applies to.
:type iprange: unicode
:param global_snippet: Make the snippet global: removes its node and subnet.
:type global_snippet: boolean
"""


def _fields(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    fields: dict[str, Any] = {
        k: p.str(k) for k in ("name", "value", "description", "node", "subnet", "iprange") if k in p
    }
    fields.update({k: p.bool(k) for k in ("enabled", "global_snippet") if k in p})
    return fields


crud = Crud(snippets, (snippet,), first(render.dhcp_snippets), render.dhcp_snippets)
crud.list_all(svc.show_snippets, "List all available DHCP snippets.")
crud.create(svc.create_snippet, _fields, "Create a DHCP snippet.\n" + SNIPPET_DOC)
crud.read(svc.show_snippets, "Read a DHCP snippet (by id or name).")
crud.update(svc.update_snippet, _fields, "Update a DHCP snippet (a new value becomes a new version).\n" + SNIPPET_DOC)
crud.delete(svc.delete_snippet, "Delete a DHCP snippet.")


@snippet.action("POST", "revert", admin=True)
async def revert_snippet(ctx: Ctx) -> dict:
    """Revert the value of a DHCP snippet to an earlier version.

    :param to: What to revert to: the id of a version in history, or -N to go N versions back.
    :type to: int
    """
    return crud.shape(await ctx.run(svc.revert_snippet, ctx.path["id"], ctx.params.str("to")))
