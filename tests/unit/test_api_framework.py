"""Handler actions' doc: the function's docstring, or the `doc=` shared text in its place."""

from __future__ import annotations

from metalplane.region.api.framework import Handler

SHARED = """
:param name: The name.
:type name: unicode
"""


def test_doc_given_to_action_reads_like_a_docstring() -> None:
    handler = Handler("ThingHandler", "things/{id}/", "Manage a thing.")

    @handler.action("PUT", doc="Update a thing.\n" + SHARED)
    async def update(ctx: object) -> None:
        pass

    @handler.read
    async def read(ctx: object) -> None:
        """Read a thing.

        :param name: The name.
        :type name: unicode
        """

    docs = {a["name"]: a["doc"] for a in handler.describe(None)["actions"]}
    assert docs["update"] == "Update a thing.\n\n:param name: The name.\n:type name: unicode"
    assert docs["read"] == docs["update"].replace("Update", "Read")


def test_only_admin_actions_take_a_large_body() -> None:
    """A handler's large body limit is given to admins only (region/api/app.py): so every
    action of such a handler that takes a body must be an admin's, or a user's would be cut."""
    from metalplane.region.api.framework import DEFAULT_MAX_BODY
    from metalplane.region.api.handlers import all_handlers

    large = [h for h in all_handlers() if h.max_body > DEFAULT_MAX_BODY]
    assert large, "the boot-resources upload takes a large body"
    for handler in large:
        for action in handler.actions:
            assert action.method == "GET" or action.admin, (handler.name, action.method, action.op)
