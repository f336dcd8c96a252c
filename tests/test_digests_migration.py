"""A state from the schema before several digests (schema 4, written by
feedbot itself: tests/data/schema4/make.py) is migrated, on SQLite and on
PostgreSQL, and what it had pending is delivered: the message a webhook
refused before the upgrade, and the items not yet in a digest."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg

from bot.loopback import Receiver, Server
from bot.pgserver import PgServer
from bot.state import DB_NAME, SQLiteStore
from bot.state.postgres import PostgresStore
from bot.state.sql import SCHEMA_VERSION
from tests.conftest import run_cli, write_toml

DATA = Path(__file__).parent / "data" / "schema4"


def _titles(body: bytes) -> list[str]:
    digest = json.loads(body)
    return sorted(i["title"] for g in digest["groups"] for i in g["items"]) + sorted(
        i["title"] for i in digest.get("lead", [])
    )


def _deliver_after_upgrade(tmp_path: Path, state: str) -> tuple[list[list[str]], str]:
    rec = Receiver()
    with Server(rec) as hook:
        path = write_toml(
            tmp_path,
            f'timezone = "Asia/Tokyo"\n{state}[[webhooks]]\nkind = "json"\nname = "desk"\nurl = "{hook.base}/hook"\n',
        )
        r = run_cli("--config", str(path), "digest")
        assert r.returncode == 0, r.stderr
        status = run_cli("--config", str(path), "status")
        assert status.returncode == 0, status.stderr
    return [_titles(req.body) for req in rec.accepted], status.stdout


def _expected(delivered: list[list[str]], status: str) -> None:
    # The digest refused before the upgrade goes first, then the new one.
    assert delivered == [["ウクライナ記事0", "ウクライナ記事1"], ["ウクライナ新記事", "ロシア新記事"]]
    assert "pending items: 0" in status and "deliveries: nothing pending" in status


def test_a_sqlite_state_of_schema_4_is_migrated_and_its_pending_items_delivered(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    conn = sqlite3.connect(tmp_path / "state" / DB_NAME)
    conn.executescript((DATA / "state.sql").read_text(encoding="utf-8"))
    conn.close()
    delivered, status = _deliver_after_upgrade(tmp_path, "")
    _expected(delivered, status)
    store = SQLiteStore.open(tmp_path / "state")
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        # The feeds polled before are started for the one digest there was:
        # a later poll does not take their first_poll window again.
        assert store.started_streams("http://127.0.0.1:43795/feed/a") == {""}
        assert store.streams_pending() == {}
    finally:
        store.close()


def test_a_postgresql_state_of_schema_4_is_migrated_and_its_pending_items_delivered(
    tmp_path: Path, pg: PgServer
) -> None:
    url = pg.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((DATA / "postgres.sql").read_text(encoding="utf-8").encode())
    delivered, status = _deliver_after_upgrade(tmp_path, f'[state]\nurl = "{url}"\n')
    _expected(delivered, status)
    store = PostgresStore.open(url)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.started_streams("http://127.0.0.1:43795/feed/a") == {""}
        # New digests keep numbering after the copied ones (the identity moved on).
        assert store.last_digest() is not None and store.last_digest().digest_id == 3  # type: ignore[union-attr]
    finally:
        store.close()
