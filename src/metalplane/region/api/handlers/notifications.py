"""notifications/ and notifications/{id}/: messages to users and admins, dismissable by each."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import notifications as svc
from metalplane.region.services import users
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User

notifications = Handler(
    "NotificationsHandler", "notifications/", "Manage the collection of all the notifications in MAAS."
)
notification = Handler("NotificationHandler", "notifications/{id}/", "Manage an individual notification.")

FIELDS_DOC = """
:param context: A JSON object the message may refer to.
:type context: unicode
:param category: error, warning, success or info (default).
:type category: unicode
:param ident: A unique identifier for this notification.
:type ident: unicode
:param user: The username of the user this notification is for.
:type user: unicode
:param users: Whether it is for all users.
:type users: boolean
:param admins: Whether it is for all admins.
:type admins: boolean
"""
SPEC = {
    "message": "str",
    "context": "str",
    "category": "str",
    "ident": "str",
    "user": "str",
    "users": "bool",
    "admins": "bool",
    "dismissable": "bool",
}


def notification_json(n: Row, owner: User | None) -> Row:
    return {
        "id": n["id"],
        "ident": n["ident"],
        "user": render.user(owner) if owner else None,
        "users": n["users"],
        "admins": n["admins"],
        "message": n["message"],
        "context": n["context"],
        "category": n["category"],
        "dismissable": n["dismissable"],
        "resource_uri": render.uri(f"notifications/{n['id']}/"),
    }


async def _shown(conn: AsyncConnection, found: list[Row]) -> list[Row]:
    by_name = {u.username: u for u in await users.list_users(conn)}
    return [notification_json(n, by_name.get(n["user_name"])) for n in found]


@notifications.read
async def list_notifications(ctx: Ctx) -> list:
    """List the notifications the caller has not dismissed (for them, all users, or admins)."""
    async with ctx.tx() as conn:
        return await _shown(conn, await svc.list_for(conn, ctx.me))


async def create_notification(ctx: Ctx) -> dict:
    async with ctx.tx() as conn:
        return (await _shown(conn, [await svc.create(conn, ctx.params.given(SPEC), ctx.me)]))[0]


create_notification.__doc__ = (
    """Create a notification.

:param message: The message (HTML allowed, as in MAAS).
:type message: unicode
"""
    + FIELDS_DOC
)
notifications.action("POST", admin=True)(create_notification)


@notification.read
async def read_notification(ctx: Ctx) -> dict:
    """Read a notification (admins, or a user it is for)."""
    async with ctx.tx() as conn:
        return (await _shown(conn, [await svc.get(conn, ctx.path["id"], ctx.me)]))[0]


async def update_notification(ctx: Ctx) -> dict:
    async with ctx.tx() as conn:
        return (await _shown(conn, [await svc.update_one(conn, ctx.path["id"], ctx.params.given(SPEC), ctx.me)]))[0]


update_notification.__doc__ = (
    """Update a notification.

:param message: The message.
:type message: unicode
:param dismissable: Whether users may dismiss it.
:type dismissable: boolean
"""
    + FIELDS_DOC
)
notification.action("PUT", admin=True)(update_notification)


@notification.action("DELETE", admin=True)
async def delete_notification(ctx: Ctx) -> None:
    """Delete a notification."""
    await ctx.run(svc.delete_one, ctx.path["id"], ctx.me)


@notification.action("POST", "dismiss")
async def dismiss(ctx: Ctx) -> None:
    """Dismiss a notification for the caller (a user it is for)."""
    await ctx.run(svc.dismiss, ctx.path["id"], ctx.me)
