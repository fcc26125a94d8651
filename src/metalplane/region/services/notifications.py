"""Notifications (MAAS's Notification): messages for one user, all users and/or admins,
which each of them may dismiss for themselves."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import notification_dismissals, notifications, users
from metalplane.region.errors import Invalid, NotFound, PermissionDenied, raise_if
from metalplane.region.services.rows import Row, delete_row, first_row, insert_unique, rows, update_unique
from metalplane.region.services.users import User

DUPLICATE_IDENT = "Notification with this Ident already exists."

CATEGORIES = ("error", "warning", "success", "info")


def _select():
    return select(notifications, users.c.username.label("user_name")).outerjoin(
        users, users.c.id == notifications.c.user_id
    )


def _relevant(user: User):
    """For this user: addressed to them, to all users, or (admins) to admins."""
    clause = or_(notifications.c.user_id == user.id, notifications.c.users.is_(True))
    if user.is_superuser:
        clause = or_(clause, notifications.c.admins.is_(True))
    return clause


def _not_dismissed(user: User):
    return ~exists().where(
        and_(
            notification_dismissals.c.notification_id == notifications.c.id,
            notification_dismissals.c.user_id == user.id,
        )
    )


async def list_for(conn: AsyncConnection, user: User) -> list[Row]:
    """What the user sees: relevant to them and not dismissed by them."""
    return rows(await conn.execute(_select().where(_relevant(user), _not_dismissed(user)).order_by(notifications.c.id)))


async def get(conn: AsyncConnection, ident: str, user: User, lock: bool = False) -> Row:
    if not ident.isdigit() or int(ident) >= 2**31:
        raise NotFound("Notification")
    query = _select().where(notifications.c.id == int(ident))
    if lock:
        query = query.with_for_update(of=notifications)
    row = await first_row(conn, query)
    if row is None:
        raise NotFound("Notification")
    found = dict(row._mapping)
    relevant = found["user_id"] == user.id or found["users"] or (found["admins"] and user.is_superuser)
    if not (user.is_superuser or relevant):
        raise PermissionDenied("")
    return found


async def _values(conn: AsyncConnection, fields: dict[str, Any], creating: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if creating or "message" in fields:
        if not (fields.get("message") or "").strip():
            errors["message"] = ["This field is required."]
        values["message"] = fields.get("message") or ""
    if fields.get("context") is not None:
        try:
            context = json.loads(fields["context"] or "{}")
        except ValueError:
            context = None
        if not isinstance(context, dict):
            errors["context"] = ["Enter a valid JSON object."]
        values["context"] = context
    if fields.get("category") is not None:
        if fields["category"] not in CATEGORIES:
            errors["category"] = [f"Select a valid choice. {fields['category']} is not one of the available choices."]
        values["category"] = fields["category"]
    if "ident" in fields:
        ident = fields["ident"] or None
        if ident is not None and len(ident) > 40:
            errors["ident"] = [f"Ensure this value has at most 40 characters (it has {len(ident)})."]
        values["ident"] = ident
    if "user" in fields:
        name = fields["user"]
        found = (
            await first_row(conn, select(users.c.id).where(users.c.username == name))
            if name and "\x00" not in name
            else None
        )
        if name and found is None:
            errors["user"] = ["Select a valid choice. That choice is not one of the available choices."]
        values["user_id"] = found.id if found else None
    for flag in ("users", "admins", "dismissable"):
        if fields.get(flag) is not None:
            values[flag] = fields[flag]
    raise_if(errors)
    return values


async def create(conn: AsyncConnection, fields: dict[str, Any], by: User) -> Row:
    values = await _values(conn, fields, creating=True)
    new_id = await insert_unique(conn, notifications, "ident", DUPLICATE_IDENT, **values)
    return await get(conn, str(new_id), by)


async def update_one(conn: AsyncConnection, ident: str, fields: dict[str, Any], by: User) -> Row:
    found = await get(conn, ident, by, lock=True)
    values = await _values(conn, fields, creating=False)
    if values:
        await update_unique(conn, notifications, found["id"], "ident", DUPLICATE_IDENT, **values)
    return await get(conn, ident, by)


async def delete_one(conn: AsyncConnection, ident: str, by: User) -> None:
    found = await get(conn, ident, by, lock=True)
    await delete_row(conn, notifications, found["id"])


async def dismiss(conn: AsyncConnection, ident: str, user: User) -> None:
    found = await get(conn, ident, user)
    relevant = found["user_id"] == user.id or found["users"] or (found["admins"] and user.is_superuser)
    if not relevant:
        raise PermissionDenied("")
    if not found["dismissable"]:
        raise Invalid({"__all__": ["This notification cannot be dismissed."]})
    await conn.execute(
        pg_insert(notification_dismissals).values(notification_id=found["id"], user_id=user.id).on_conflict_do_nothing()
    )
