"""The state: one interface (``Store``), two databases.

SQLite under ``state_dir`` is the default, for one machine
(``bot/state/sqlite.py``); ``[state] url = "postgresql://…"`` puts it in
PostgreSQL, which several instances on several machines share
(``bot/state/postgres.py``).  The SQL both run is ``bot/state/sql.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.state.records import Elsewhere, FeedState, Instance, NewItem, OutMessage, WebhookBacklog
from bot.state.sql import Store
from bot.state.sqlite import DB_NAME, SQLiteStore

if TYPE_CHECKING:
    from bot.config import Config

__all__ = [
    "DB_NAME",
    "Elsewhere",
    "FeedState",
    "Instance",
    "NewItem",
    "OutMessage",
    "SQLiteStore",
    "Store",
    "WebhookBacklog",
    "open_store",
]


def open_store(config: Config) -> Store:
    """The state the config names: PostgreSQL if ``[state] url`` is set,
    else SQLite in ``state_dir``."""
    url = config.state.url
    if url is not None:
        from bot.state.postgres import PostgresStore

        return PostgresStore.open(url.reveal())
    return SQLiteStore.open(config.state_dir)
