"""users/ and users/{username}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.checks import mandatory
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Invalid
from metalplane.region.services import users as svc

users = Handler("UsersHandler", "users/", "Manage the user accounts of this MAAS.")
user = Handler("UserHandler", "users/{username}/", "Manage a user account.")


@users.read
async def list_users(ctx: Ctx) -> list:
    """List users."""
    return [render.user(u) for u in await ctx.run(svc.list_users)]


@users.action("GET", "whoami")
async def whoami(ctx: Ctx) -> dict:
    """Returns the currently logged in user."""
    return render.user(ctx.me)


@users.action("POST", admin=True)
async def create_user(ctx: Ctx) -> dict:
    """Create a MAAS user account.

    The username follows Django's rule (letters, digits and @/./+/-/_, at most
    150 characters) and the e-mail address must be valid.

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
    username, email, password = mandatory(p, "username"), mandatory(p, "email"), mandatory(p, "password")
    mandatory(p, "is_superuser")
    is_superuser = bool(p.bool("is_superuser"))
    if not email:
        raise Invalid.field("email", "This field is required.")
    return render.user(await ctx.run(svc.create_user, username, password, email, is_superuser))


@user.read
async def read_user(ctx: Ctx) -> dict:
    """Return a user."""
    return render.user(await ctx.run(svc.show_user, ctx.path["username"]))


@user.action("DELETE", admin=True)
async def delete_user(ctx: Ctx) -> None:
    """Delete a user.

    A user who still owns IP ranges (or machines) cannot be deleted unless they
    are given to another user first with transfer_resources_to. The user's SSH
    and SSL keys, files and API tokens are deleted with them.

    :param transfer_resources_to: An optional username: what the deleted user owns goes to this user.
    :type transfer_resources_to: unicode
    """
    heir = ctx.params.str("transfer_resources_to") or None
    await ctx.run(svc.remove_user, ctx.path["username"], ctx.me, heir)
