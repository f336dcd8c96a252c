"""Shared fixtures: loopback servers, a settable clock, config files, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from bot.demo import SITE, write_config
from bot.loopback import Reply, Request, Server, SiteHandler
from bot.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REFERENCE = ROOT.parent / "shared" / "reference" / "000_d21a33c6ea28c451.txt"


def corpus_dir() -> Path:
    return Path(os.environ.get("FEEDBOT_CORPUS") or ROOT.parent / "shared" / "corpus")


@pytest.fixture
def corpus() -> Path:
    path = corpus_dir()
    if not path.is_dir():
        pytest.skip(f"real-world corpus not found at {path} (set FEEDBOT_CORPUS)")
    return path


@pytest.fixture
def reference_text() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"reference digest not found at {REFERENCE}")
    return REFERENCE.read_text(encoding="utf-8")


def map_links(text: str, base: str) -> str:
    """Replace the demo site's local links with the reference's t.co links."""
    links = json.loads((DATA / "reference_links.json").read_text(encoding="utf-8"))
    for local, tco in links.items():
        text = text.replace(local.replace("{{BASE}}", base), tco)
    return text


class Clock:
    """A clock the test moves by hand: no sleeps, no flakiness."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 1, 21, 0, 0, tzinfo=UTC))


@pytest.fixture
def demo_site() -> Iterator[tuple[Server, SiteHandler]]:
    site = SiteHandler(SITE)
    with Server(site) as server:
        site.base = server.base
        yield server, site


@dataclass
class FeedItem:
    guid: str | None
    title: str | None
    link: str | None
    published: datetime | None
    description: str = ""


@dataclass
class DynamicFeeds:
    """Feeds built from lists the test edits; ETag changes with content."""

    feeds: dict[str, list[FeedItem]] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    base: str = ""

    def rss(self, name: str) -> bytes:
        parts = [f"<rss version='2.0'><channel><title>{escape(name)}</title><link>{self.base}/</link>"]
        for item in self.feeds[name]:
            parts.append("<item>")
            if item.title is not None:
                parts.append(f"<title>{escape(item.title)}</title>")
            if item.link is not None:
                parts.append(f"<link>{escape(item.link)}</link>")
            if item.guid is not None:
                parts.append(f"<guid isPermaLink='false'>{escape(item.guid)}</guid>")
            if item.published is not None:
                parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
            parts.append(f"<description>{escape(item.description)}</description></item>")
        parts.append("</channel></rss>")
        return "".join(parts).encode("utf-8")

    def __call__(self, req: Request) -> Reply:
        self.requests.append(req)
        path = req.path.split("?")[0]
        if path.startswith("/feed/") and path[6:] in self.feeds:
            body = self.rss(path[6:])
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if req.headers.get("if-none-match") == etag:
                return Reply(304, {"ETag": etag})
            return Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag}, body)
        if path in self.pages:
            return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, self.pages[path].encode())
        return Reply(404, {}, b"not found")

    def feed_url(self, name: str) -> str:
        return f"{self.base}/feed/{name}"

    def article(self, path: str, paragraphs: list[str]) -> str:
        """Serve a plain article page at ``path``; returns its URL."""
        body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        self.pages[path] = (
            "<html><body><nav><a href='/'>Home</a><a href='/x'>World</a></nav>"
            f"<article><h1>Title</h1>{body}</article><footer>Copyright</footer></body></html>"
        )
        return self.base + path


@pytest.fixture
def feeds() -> Iterator[DynamicFeeds]:
    handler = DynamicFeeds()
    with Server(handler) as server:
        handler.base = server.base
        yield handler


# The state database of the test being run: "" for SQLite in state_dir, a
# PostgreSQL URL when the test runs on the ``backend`` fixture's postgres leg.
STATE_URL = {"url": ""}


def write_toml(folder: Path, text: str) -> Path:
    """A config file; on the postgres leg of ``backend``, with its [state] url."""
    path = folder / "config.toml"
    if STATE_URL["url"]:
        text += f'\n[state]\nurl = "{STATE_URL["url"]}"\n'
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """One PostgreSQL server for the session (a fresh database per test)."""
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on both state backends (the contract suite): configs
    written with ``write_toml`` name a fresh PostgreSQL database on the
    postgres leg."""
    if request.param == "postgres":
        server: PgServer = request.getfixturevalue("pg")
        STATE_URL["url"] = server.new_database()
    try:
        yield str(request.param)
    finally:
        STATE_URL["url"] = ""


@pytest.fixture
def demo_config(tmp_path: Path, demo_site: tuple[Server, SiteHandler]) -> Callable[[str | None], Path]:
    def make(webhook: str | None) -> Path:
        return write_config(tmp_path, demo_site[0].base, webhook)

    return make


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` as a real subprocess (``stdin``: a file
    descriptor for its standard input, such as a pseudo-terminal's)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "STATE_DIRECTORY"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full_env,
        cwd=cwd,
        stdin=stdin,
        timeout=120,
    )
