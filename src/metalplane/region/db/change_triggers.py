"""The row triggers behind the web UI's live pages, as migrations create them.

A watched table gets three triggers: INSERT/DELETE (per row), UPDATE (per row,
only when one of the columns a page shows changed; None: any column) and
TRUNCATE. Each calls `metalplane_notify_table()` (migration 0010), which sends
`NOTIFY metalplane_changes, '<table>'`. Migrations call these functions, so they
must keep creating exactly what they create today: add new functions rather
than change these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

CHANNEL = "metalplane_changes"
TRIGGERS = ("ui_changes", "ui_changes_truncate", "ui_changes_update")


def distinct(columns: Sequence[str]) -> str:
    """The WHEN condition: any of `columns` changed."""
    old = ", ".join(f"OLD.{c}" for c in columns)
    new = ", ".join(f"NEW.{c}" for c in columns)
    return f"(({old}) IS DISTINCT FROM ({new}))"


def create(execute: Callable[[str], object], table: str, columns: Sequence[str] | None) -> None:
    execute(
        f"CREATE TRIGGER ui_changes AFTER INSERT OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION metalplane_notify_table()"
    )
    execute(
        f"CREATE TRIGGER ui_changes_truncate AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION metalplane_notify_table()"
    )
    when = f" WHEN {distinct(columns)}" if columns else " WHEN (OLD.* IS DISTINCT FROM NEW.*)"
    execute(
        f"CREATE TRIGGER ui_changes_update AFTER UPDATE ON {table} FOR EACH ROW{when} "
        "EXECUTE FUNCTION metalplane_notify_table()"
    )


def drop(execute: Callable[[str], object], table: str) -> None:
    for trigger in TRIGGERS:
        execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
