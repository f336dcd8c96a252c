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


def state_exists(config: Config) -> bool:
    """Whether the state the config names holds anything yet (PostgreSQL:
    assumed; its server says otherwise soon enough).  The commands that only
    read it do not create it: ``status`` pointed at the wrong folder (under
    systemd, without ``STATE_DIRECTORY``) would report every feed as never
    polled."""
    if config.state.url is not None or (config.state_dir / DB_NAME).exists():
        return True
    folder = config.state_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return not folder.is_dir()  # a file in the way: opening it says so, in one sentence


def open_store(config: Config) -> Store:
    """The state the config names: PostgreSQL if ``[state] url`` is set,
    else SQLite in ``state_dir``."""
    url = config.state.url
    if url is not None:
        from bot.state.postgres import PostgresStore

        return PostgresStore.open(url.reveal())
    return SQLiteStore.open(config.state_dir)
