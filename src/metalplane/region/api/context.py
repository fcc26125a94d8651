"""What an API action sees: its arguments, the caller and the database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request

from metalplane.region.api.params import Params
from metalplane.region.errors import NotFound, PermissionDenied
from metalplane.region.services.users import User


@dataclass
class TxLog:
    """What one attempt at an action did, for the retry decision.

    `commit_sent` turns true just before a transaction's COMMIT goes out, or
    when the action starts work outside the database (`outside_effect`): from
    then on a lost connection leaves the outcome unknown, so a write must not
    be replayed (app.py answers 503 instead).
    """

    commit_sent: bool = False
    committed: int = 0

    def outside_effect(self) -> None:
        """The action is about to act outside the database (e.g. power a machine): never replay it."""
        self.commit_sent = True


@dataclass
class Ctx:
    request: Request
    params: Params
    path: dict[str, str]
    user: User | None
    db: AsyncEngine
    site: str  # scheme://host:port as the client reached us
    txlog: TxLog = field(default_factory=TxLog)

    @property
    def app_state(self) -> Any:
        return self.request.app.state

    @contextlib.asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: everything inside commits together or not at all.

        A database failure before the COMMIT is sent rolls everything back, so
        the API may run the whole action again (see app.py); one after it may
        not.
        """
        async with self.db.begin() as conn:
            yield conn
            self.txlog.commit_sent = True  # the body finished: begin() commits on the way out
        self.txlog.committed += 1

    def path_int(self, name: str) -> int:
        """An integer URI part; anything else is simply not found."""
        try:
            return int(self.path[name])
        except (KeyError, ValueError):
            raise NotFound("object", f"No object matches {name}={self.path.get(name)!r}.") from None

    @property
    def me(self) -> User:
        assert self.user is not None, "authenticated handlers always have a user"
        return self.user

    def require_admin(self) -> None:
        if self.user is None or not self.user.is_superuser:
            raise PermissionDenied("This method is reserved for admin users.")
