"""Users for API tests, written straight to the region's database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from metalplane.config.region import RegionConfig
from metalplane.region.bootstrap import run_db
from metalplane.region.services import users

if TYPE_CHECKING:
    from metalplane.client.http import MaasHttp
    from tests.conftest import RunningRegion


def add_user(config: RegionConfig, prefix: str = "user", admin: bool = False) -> tuple[str, str]:
    """A fresh user and an API key for it: (username, key)."""
    username = f"{prefix}-{secrets.token_hex(3)}"

    async def add(conn) -> str:
        user = await users.create_user(conn, username, "pw", f"{username}@example.com", is_superuser=admin)
        return (await users.create_token(conn, user.id, "tests")).api_key

    return username, run_db(config, add)


def drop_user(config: RegionConfig, username: str) -> None:
    async def drop(conn) -> None:
        await users.delete_user(conn, username)

    run_db(config, drop)


@contextmanager
def user_api(region: RunningRegion, prefix: str = "user") -> Iterator[MaasHttp]:
    """An API client for a fresh non-admin user of `region`, removed afterwards."""
    username, key = add_user(region.config, prefix)
    try:
        with region.api(key) as client:
            yield client
    finally:
        drop_user(region.config, username)
