"""What an API action sees: its arguments, the caller and the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from metalplane.region.errors import Forbidden, NotFound
from metalplane.region.api.params import Params
from metalplane.region.services.users import User


@dataclass
class Ctx:
    request: Request
    params: Params
    path: dict[str, str]
    user: User | None
    db: AsyncEngine
    site: str  # scheme://host:port as the client reached us

    @property
    def app_state(self) -> Any:
        return self.request.app.state

    def tx(self):
        """One transaction: everything inside commits together or not at all."""
        return self.db.begin()

    def path_int(self, name: str) -> int:
        """An integer URI part; anything else is simply not found."""
        try:
            return int(self.path[name])
        except (KeyError, ValueError):
            raise NotFound(f"No object matches {name}={self.path.get(name)!r}.") from None

    @property
    def me(self) -> User:
        assert self.user is not None, "authenticated handlers always have a user"
        return self.user

    def require_admin(self) -> None:
        if self.user is None or not self.user.is_superuser:
            raise Forbidden("This method is reserved for admin users.")
