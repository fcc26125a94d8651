"""Small helpers every service uses to read rows and write uniquely."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Executable, FromClause, Label, Table, Update, delete, func, insert, text, update
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.errors import Invalid, NotFound

Row = dict[str, Any]
UNIQUE_VIOLATION = "23505"
K = TypeVar("K")
V = TypeVar("V")


def rows(result) -> list[Row]:
    return [dict(r._mapping) for r in result]


def one(result, what: str) -> Row:
    row = result.first()
    if row is None:
        raise NotFound(what)
    return dict(row._mapping)


async def first_row(conn: AsyncConnection, statement: Executable) -> ResultRow[Any] | None:
    """The first row `statement` returns, or None."""
    return (await conn.execute(statement)).first()


async def only_row(conn: AsyncConnection, statement: Executable) -> ResultRow[Any]:
    """The one row `statement` returns; an error when it returns none or more than one."""
    return (await conn.execute(statement)).one()


def labelled(source: FromClause, **labels: str) -> list[Label[Any]]:
    """`source`'s columns under the names a query shows them by:
    ``labelled(zones, zone_name="name")`` selects ``zones.name AS zone_name``."""
    return [source.c[column].label(label) for label, column in labels.items()]


def grouped(pairs: Iterable[tuple[K, V]]) -> dict[K, list[V]]:
    """key -> its values, in the order given."""
    out: dict[K, list[V]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def stamped_update(table: Table, row_id: int, values: Mapping[str, Any]) -> Update:
    """The UPDATE of one row (by id) to `values`, its `updated` time set to now."""
    return update(table).where(table.c.id == row_id).values(**values, updated=func.now())


async def insert_row(conn: AsyncConnection, table: Table, /, **values: Any) -> int:
    """INSERT one row; its id."""
    return (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()


async def insert_unique(conn: AsyncConnection, table: Table, field: str, message: str, /, **values: Any) -> int:
    """INSERT one row, its id; a unique violation becomes MAAS's 400 for `field`."""
    return (
        await execute_unique(conn, insert(table).values(**values).returning(table.c.id), field, message)
    ).scalar_one()


async def update_row(conn: AsyncConnection, table: Table, row_id: int, /, **values: Any) -> None:
    """The stamped UPDATE of one row (by id)."""
    await conn.execute(stamped_update(table, row_id, values))


async def delete_row(conn: AsyncConnection, table: Table, row_id: int) -> None:
    await conn.execute(delete(table).where(table.c.id == row_id))


async def execute_unique(conn: AsyncConnection, statement, field: str, message: str):
    """Run a write; a unique violation becomes MAAS's 400 for `field`, nothing written."""
    try:
        async with conn.begin_nested():
            return await conn.execute(statement)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            raise Invalid.field(field, message) from None
        raise


async def update_unique(
    conn: AsyncConnection, table: Table, row_id: int, field: str, message: str, /, **values: Any
) -> None:
    """The stamped UPDATE of one row (by id); a unique violation becomes MAAS's 400 for `field`."""
    await execute_unique(conn, stamped_update(table, row_id, values), field, message)


async def next_id(conn: AsyncConnection, table: str) -> int:
    """Reserve an id first so a default name can include it (fabric-N, space-N)."""
    return (await conn.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"))).scalar_one()
