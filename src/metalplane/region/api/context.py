"""What an API action sees: its arguments, the caller and the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request

from metalplane.config.region import RegionConfig
from metalplane.region import validation
from metalplane.region.api.framework import Handler
from metalplane.region.api.params import Params
from metalplane.region.db.transaction import TxLog, Work
from metalplane.region.errors import NotFound, PermissionDenied
from metalplane.region.services.users import User

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Ctx:
    request: Request
    params: Params
    path: dict[str, str]
    user: User | None
    db: AsyncEngine
    site: str  # scheme://host:port as the client reached us
    txlog: TxLog = field(default_factory=TxLog)
    handler: Handler | None = None  # the handler serving this request (its model names 404s)

    @property
    def app_state(self) -> Any:
        return self.request.app.state

    @property
    def config(self) -> RegionConfig | None:
        return getattr(self.app_state, "config", None)

    @property
    def work(self) -> Work:
        """This request as services see it: database, settings, and its TxLog."""
        return Work(self.db, self.config, self.txlog)

    def tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One transaction with its consequences (region.db.transaction): everything
        commits together or not at all. A database failure before the COMMIT is sent
        rolls everything back, so the API may run the whole action again (app.py)."""
        return self.work.tx()

    async def run(
        self, service: Callable[Concatenate[AsyncConnection, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`service(conn, *args, **kwargs)` as one transaction (tx): what most actions do
        between reading their parameters and rendering the answer."""
        async with self.tx() as conn:
            return await service(conn, *args, **kwargs)

    @property
    def rpc(self) -> Any:
        """This worker's RPC server: how services reach the racks."""
        return self.app_state.rpc

    def path_int(self, name: str, model: str | None = None) -> int:
        """An integer id from the URI, within PostgreSQL's range; anything else names no
        object: MAAS's 404 ("No Fabric matches the given query."), before any query."""
        number = validation.as_id(self.path.get(name))
        if number is None:
            raise NotFound(model or (self.handler.model_for(name) if self.handler else "object"))
        return number

    @property
    def me(self) -> User:
        assert self.user is not None, "authenticated handlers always have a user"
        return self.user

    def require_admin(self) -> None:
        if self.user is None or not self.user.is_superuser:
            raise PermissionDenied("This method is reserved for admin users.")
