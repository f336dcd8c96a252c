"""``feedbot state copy``: one state database into another, whole.

Moving from SQLite to PostgreSQL (and back) must lose nothing and re-send
nothing: every table is copied with its ids (digests, items, the feed ids
that seen keys refer to), messages keep their delivered and in-flight
marks.  The source is read in one consistent snapshot; the target is
written in one transaction and must be empty.
"""

from __future__ import annotations

from bot.errors import UsageError
from bot.state.sql import TABLES, Store


def copy_state(source: Store, target: Store) -> dict[str, int]:
    """Copy every table; returns the rows copied per table."""
    if not target.is_empty():
        raise UsageError(f"{target.where} already holds a state; copy only into an empty one")
    counts: dict[str, int] = {}
    with source.snapshot(), target.transaction():
        for table in TABLES:
            copied = 0
            for rows in source.dump(table):
                if table == "meta":
                    rows = [r for r in rows if r[0] != "schema_version"]  # the target's own
                target.load(table, rows)
                copied += len(rows)
            counts[table] = copied
        target.after_load()
    return counts
