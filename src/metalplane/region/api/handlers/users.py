"""users/ and users/{username}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import users as svc

users = Handler("UsersHandler", "users/", "Manage the user accounts of this MAAS.")
user = Handler("UserHandler", "users/{username}/", "Manage a user account.")


@users.read
async def list_users(ctx: Ctx) -> list:
    """List users."""
    async with ctx.tx() as conn:
        return [render.user(u) for u in await svc.list_users(conn)]


@users.action("GET", "whoami")
async def whoami(ctx: Ctx) -> dict:
    """Returns the currently logged in user."""
    return render.user(ctx.me)


@users.action("POST", admin=True)
async def create_user(ctx: Ctx) -> dict:
    """Create a MAAS user account.

    :param username: Identifier-style username for the new user.
    :type username: unicode
    :param email: Email address for the new user.
    :type email: unicode
    :param password: Password for the new user.
    :type password: unicode
    :param is_superuser: Whether the new user is to be an administrator ('0' or '1').
    :type is_superuser: bool
    """
    p = ctx.params
    username = p.str("username", required=True) or ""
    password = p.str("password", required=True) or ""
    email, is_superuser = p.str("email", "") or "", bool(p.bool("is_superuser", False))
    async with ctx.tx() as conn:
        return render.user(await svc.create_user(conn, username, password, email, is_superuser))


@user.read
async def read_user(ctx: Ctx) -> dict:
    """Return a user."""
    async with ctx.tx() as conn:
        return render.user(await svc.show_user(conn, ctx.path["username"]))


@user.action("DELETE", admin=True)
async def delete_user(ctx: Ctx) -> None:
    """Delete a user."""
    async with ctx.tx() as conn:
        await svc.remove_user(conn, ctx.path["username"], ctx.me)
