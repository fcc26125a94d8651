"""Restful actions that are one service call each, for MAAS's plain object handlers
(fabrics, zones, tags, DHCP snippets...).

A `Crud` ties a collection handler (fabrics/) and its object handler(s) (fabrics/{id}/)
to how the URI names an object (`key`) and how what the services return is shaped
(`shape`). Each of its methods registers one action: read the key and the parameters,
make the one service call in a transaction (Ctx.run), shape the answer. Actions that do
more than that are written out in the handler module as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler

Reader = Callable[[Ctx], Any]
Shape = Callable[[Any], Any]
Service = Callable[..., Awaitable[Any]]


def path_key(name: str = "id") -> Reader:
    """The object as the URI names it, passed to the service as it is (an id, a name, a specifier)."""
    return lambda ctx: ctx.path[name]


BY_ID = path_key()


def given(spec: dict[str, str]) -> Reader:
    """The fields the parameters give, read as `spec` says (Params.given)."""
    return lambda ctx: ctx.params.given(spec)


def first(shape_all: Shape) -> Shape:
    """One object's JSON, from a renderer that shapes a view as a list."""
    return lambda view: shape_all(view)[0]


def each(shape: Shape) -> Shape:
    return lambda found: [shape(item) for item in found]


@dataclass(frozen=True)
class Crud:
    many: Handler
    ones: tuple[Handler, ...]  # the object's handlers (MAAS routes some at two paths)
    shape: Shape
    shape_all: Shape | None = None  # the listing's; by default `shape` of each object
    key: Reader = BY_ID
    admin: bool = True  # only admins may create, update and delete

    def list_all(self, service: Service, doc: str) -> None:
        shape_all = self.shape_all or each(self.shape)

        async def list_all(ctx: Ctx) -> Any:
            return shape_all(await ctx.run(service))

        self.many.action("GET", doc=doc)(list_all)

    def create(self, service: Service, fields: Reader, doc: str) -> None:
        async def create(ctx: Ctx) -> Any:
            return self.shape(await ctx.run(service, fields(ctx)))

        self.many.action("POST", admin=self.admin, doc=doc)(create)

    def read(self, service: Service, doc: str) -> None:
        async def read(ctx: Ctx) -> Any:
            return self.shape(await ctx.run(service, self.key(ctx)))

        for handler in self.ones:
            handler.action("GET", doc=doc)(read)

    def update(self, service: Service, fields: Reader, doc: str) -> None:
        async def update(ctx: Ctx) -> Any:
            key = self.key(ctx)  # a URI naming nothing answers 404 before the parameters are read
            return self.shape(await ctx.run(service, key, fields(ctx)))

        for handler in self.ones:
            handler.action("PUT", admin=self.admin, doc=doc)(update)

    def delete(self, service: Service, doc: str) -> None:
        async def delete(ctx: Ctx) -> None:
            await ctx.run(service, self.key(ctx))

        for handler in self.ones:
            handler.action("DELETE", admin=self.admin, doc=doc)(delete)
