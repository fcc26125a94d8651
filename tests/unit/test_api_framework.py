"""Handler actions' doc (the function's docstring, or the `doc=` shared text in its place), and the
actions api.crud registers."""

from __future__ import annotations

from typing import Any

from metalplane.region.api.crud import Crud, given
from metalplane.region.api.framework import Handler, param_doc

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


def test_param_doc_writes_the_lines_a_docstring_would() -> None:
    assert param_doc("name", "The name.") == SHARED.lstrip("\n")
    assert param_doc("ttl", "The TTL.", "int") == ":param ttl: The TTL.\n:type ttl: int\n"


class FakeCtx:
    """What Crud's actions use of a Ctx: the URI's parts, the parameters and run()."""

    def __init__(self, path: dict[str, str], given: dict[str, str] | None = None) -> None:
        self.path = path
        self.params = self
        self._given = given or {}
        self.order: list[str] = []

    def given(self, spec: dict[str, str]) -> dict[str, str]:
        self.order.append("params")
        return {k: v for k, v in self._given.items() if k in spec}

    async def run(self, service: Any, *args: Any) -> Any:
        return await service(None, *args)


async def test_crud_actions_make_one_call_each_and_shape_its_answer() -> None:
    many = Handler("ThingsHandler", "things/", "Manage things.")
    one = Handler("ThingHandler", "things/{id}/", "Manage a thing.")
    calls: list[tuple] = []

    def service(name: str, answer: Any) -> Any:
        async def call(conn: None, *args: Any) -> Any:
            calls.append((name, *args))
            return answer

        return call

    def key(ctx: Any) -> str:
        ctx.order.append("key")
        return ctx.path["id"]

    crud = Crud(many, (one,), shape=lambda row: {"thing": row}, key=key)
    crud.list_all(service("list", ["a", "b"]), "List things.")
    crud.create(service("create", "new"), given({"name": "str"}), "Create a thing.")
    crud.read(service("read", "it"), "Read a thing.")
    crud.update(service("update", "changed"), given({"name": "str"}), "Update a thing.")
    crud.delete(service("delete", None), "Delete a thing.")

    ctx = FakeCtx({"id": "7"}, {"name": "x", "other": "y"})
    assert await many.resolve("GET", None).func(ctx) == [{"thing": "a"}, {"thing": "b"}]
    assert await many.resolve("POST", None).func(ctx) == {"thing": "new"}
    assert await one.resolve("GET", None).func(ctx) == {"thing": "it"}
    ctx.order.clear()
    assert await one.resolve("PUT", None).func(ctx) == {"thing": "changed"}
    assert ctx.order == ["key", "params"]  # a URI naming nothing is refused before the parameters are read
    assert await one.resolve("DELETE", None).func(ctx) is None
    assert calls == [
        ("list",),
        ("create", {"name": "x"}),
        ("read", "7"),
        ("update", "7", {"name": "x"}),
        ("delete", "7"),
    ]

    admin = {(a.method, a.admin) for h in (many, one) for a in h.actions}
    assert admin == {("GET", False), ("POST", True), ("PUT", True), ("DELETE", True)}
    docs = {a["name"]: a["doc"] for h in (many, one) for a in h.describe(None)["actions"]}
    assert docs["create"] == "Create a thing." and docs["delete"] == "Delete a thing."


def test_crud_registers_on_every_route_of_the_object() -> None:
    many = Handler("ThingsHandler", "things/", "Manage things.")
    by_name = Handler("ThingHandler", "things/{id}/", "Manage a thing.")
    by_id = Handler("ThingHandler", "thing-ids/{id}/", "Manage a thing.", described=False)

    async def nothing(conn: None, *args: Any) -> None:
        return None

    crud = Crud(many, (by_name, by_id), shape=lambda row: row, admin=False)
    crud.read(nothing, "Read a thing.")
    crud.delete(nothing, "Delete a thing.")
    for handler in (by_name, by_id):
        assert [(a.method, a.admin) for a in handler.actions] == [("GET", False), ("DELETE", False)]
