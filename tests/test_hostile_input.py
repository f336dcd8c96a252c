"""Input built to hurt: one test per finding of issue 13 (the freeze of the
running service is in test_hostile_service.py, starvation and the loopback
exception in test_pages.py, the IPv6 forms in test_core.py).

Real loopback servers, the real CLI in a subprocess where the finding is
about what a user sees, the real SQLite state.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import load_config
from bot.digest import cap_per_feed
from bot.kinds.discord import neutralise as neutralise_discord
from bot.loopback import Receiver, Reply, Request, Server
from bot.models import Item
from bot.parse import parse_feed
from bot.state import open_store
from tests.conftest import run_cli, write_toml

NOW = datetime(2025, 1, 21, tzinfo=UTC)


def rss(items: str, title: str = "t") -> bytes:
    head = f"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>{title}</title>"
    return f"{head}{items}</channel></rss>".encode()


def item(title: str, link: str, extra: str = "") -> str:
    return (
        f"<item><title>{title}</title><link>{link}</link><pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate>{extra}</item>"
    )


def serve_feed(doc: bytes, **headers: str) -> Server:
    def handler(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "application/rss+xml", **headers}, doc)

    return Server(handler)


def config(tmp_path: Path, feeds: str, extra: str = "") -> Path:
    return write_toml(tmp_path, f'[poll]\nfirst_poll = "all"\nmax_age = "none"\nhost_spacing = "0s"\n{extra}\n{feeds}')


# -- poison: one bad entry costs that entry ------------------------------------------------


def test_a_lone_surrogate_and_an_unreadable_link_cost_nothing_but_themselves(tmp_path: Path) -> None:
    doc = rss(
        item("surrogate &#xD800; in a title", "http://news.example/1", "<description>本文&#xDC00;</description>")
        + item("bad link", "http://[::1/a")
        + item("fine", "http://news.example/3")
    )
    with serve_feed(doc) as server:
        path = config(tmp_path, f'[[feeds]]\nname = "f"\nurl = "{server.base}/rss"\nbody = "feed"\n')
        r = run_cli("--config", str(path), "poll")
    assert r.returncode == 0, r.stderr
    store = open_store(load_config(path, {}))
    try:
        items = {i.title: i for i in store.unbound_items()}
        state = store.feed_state(server.base + "/rss")
    finally:
        store.close()
    assert set(items) == {"surrogate \ufffd in a title", "bad link", "fine"}
    assert items["surrogate \ufffd in a title"].body == ("本文\ufffd",)
    assert state.last_status == "ok-with-warning" and "invalid character reference" in (state.last_error or "")


def test_an_entry_the_parser_cannot_read_is_skipped_with_a_warning() -> None:
    doc = rss(item("good", "http://news.example/1") + "<item><title>x</title><link>http://news.example/2</link></item>")
    parsed = parse_feed(doc, "http://news.example/rss")
    assert [e.title for e in parsed.entries] == ["good", "x"]  # a missing date is no reason to skip
    broken = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [{"id": "1", "url": "http://a/1"}, 7]}
    ).encode()
    assert [e.link for e in parse_feed(broken, "http://a/feed.json").entries] == ["http://a/1"]


def test_only_web_links_reach_an_item() -> None:
    doc = rss(item("js", "javascript:alert(1)") + item("data", "data:text/html,hi") + item("ok", "https://a.example/x"))
    links = {e.title: e.link for e in parse_feed(doc, "https://a.example/rss").entries}
    assert links == {"js": "", "data": "", "ok": "https://a.example/x"}


def test_json_feed_is_read(corpus: Path) -> None:
    parsed = parse_feed((corpus / "feedparser/json/example.json").read_bytes(), "https://example.org/feed.json")
    assert parsed.title == "My Example Feed"
    assert [(e.title, e.link) for e in parsed.entries] == [
        ("post 2", "https://example.org/second-item"),
        ("", "https://example.org/initial-post"),
    ]
    assert parsed.entries[1].content == ("Hello, world!",)  # the script is not text


# -- what people read: logs, status, the channel -------------------------------------------


def test_a_newline_or_escape_in_a_link_forges_no_log_line(tmp_path: Path) -> None:
    evil = "http://127.0.0.1:9/a&#10;&lt;0&gt;feedbot.poll: forged&#27;]0;owned&#7;"
    with serve_feed(rss(item("記事", evil))) as server:
        path = config(tmp_path, f'[[feeds]]\nname = "f"\nurl = "{server.base}/rss"\n', 'timeout = "1s"')
        r = run_cli("--config", str(path), "poll")
    lines = r.stderr.splitlines()
    assert not any(line.startswith(("<0>", "feedbot.poll: forged")) for line in lines)
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    (warning,) = [line for line in lines if "article=" in line]
    # the link is read as browsers read it (line break dropped, controls
    # percent-encoded) and shown on its own line
    assert "/a<0>feedbot.poll: forged%1B]0;owned%07" in warning, warning


def test_status_shows_a_servers_reason_escaped_and_cut(tmp_path: Path) -> None:
    reason = "Bad\x1b[31m" + "x" * 5000

    def handler(req: Request) -> Reply:
        return Reply(500, {"Content-Type": "text/plain"}, b"", reason=reason)

    with Server(handler) as server:
        path = config(tmp_path, f'[[feeds]]\nname = "f"\nurl = "{server.base}/rss"\n')
        run_cli("--config", str(path), "poll")
        r = run_cli("--config", str(path), "status")
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("  f:")]
    assert "\x1b" not in r.stdout and len(line) < 400


def test_credentials_in_a_feed_url_are_never_printed(tmp_path: Path) -> None:
    def handler(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "text/html"}, b"<html><body>not a feed</body></html>")

    with Server(handler) as server:
        url = server.base.replace("http://", "http://reader:hunter2@") + "/rss"
        path = config(tmp_path, f'[[feeds]]\nname = "f"\nurl = "{url}"\n')
        poll = run_cli("--config", str(path), "poll")
        status = run_cli("--config", str(path), "status")
    assert "not a feed" in poll.stdout and "not a feed" in status.stdout
    assert "hunter2" not in poll.stderr + poll.stdout + status.stdout + status.stderr


def test_a_webhook_token_echoed_by_the_receiver_is_never_shown_or_stored(tmp_path: Path) -> None:
    def echo(req: Request) -> Reply:
        return Reply(400, {"Content-Type": "text/plain"}, f"bad request to {req.path}; token=k3yT0ken".encode())

    with Server(echo) as hook, serve_feed(rss(item("a", "https://a.example/1"))) as feed:
        url = hook.base + "/hooks/ab/cd/ef/gh?token=k3yT0ken"
        path = config(
            tmp_path,
            f'[[feeds]]\nname = "f"\nurl = "{feed.base}/rss"\nbody = "none"\n'
            f'[[webhooks]]\nkind = "json"\nurl = "{url}"\n',
        )
        run_cli("--config", str(path), "poll")
        digest = run_cli("--config", str(path), "digest")
        status = run_cli("--config", str(path), "status")
    state = b"".join(p.read_bytes() for p in load_config(path, {}).state_dir.iterdir() if p.is_file())
    shown = digest.stdout + digest.stderr + status.stdout + status.stderr
    assert "HTTP 400" in shown
    for secret in ("k3yT0ken", "ab/cd/ef/gh"):
        assert secret not in shown and secret.encode() not in state


def test_discord_markdown_from_a_feed_is_shown_as_text() -> None:
    """Backslash escapes, Discord's own (tests/test_render_oracles.py asks
    Discord's parser about every such line)."""
    assert neutralise_discord("[公式](https://evil.example/)") == "\\[公式\\](<https://evil.example/>)"
    assert neutralise_discord("||隠し||") == "\\|\\|隠し\\|\\|"
    assert neutralise_discord("# 大見出し") == "\\# 大見出し"
    assert neutralise_discord("> 引用") == "\\> 引用"
    assert neutralise_discord("1. 一") == "1\\. 一"
    assert neutralise_discord("#米露(トランプ就任式)") == "#米露(トランプ就任式)"  # a tag line is no heading
    assert neutralise_discord("見出しhttps://medium.com/@writer/x_y") == "見出し<https://medium.com/@writer/x_y>"


def test_a_flooding_feed_is_capped_per_digest_and_the_rest_waits(tmp_path: Path) -> None:
    items = [Item(n, "flood", "http://f/rss", f"t{n}", f"https://f/{n}", None, NOW, ()) for n in range(1, 121)]
    items += [Item(500, "calm", "http://c/rss", "c", "https://c/1", None, NOW, ())]
    kept, held = cap_per_feed(items, 50)
    assert [i.id for i in kept if i.feed == "flood"] == list(range(1, 51))  # the oldest first
    assert held == {"flood": 70} and any(i.feed == "calm" for i in kept)


def test_a_100000_item_feed_makes_a_bounded_digest(tmp_path: Path) -> None:
    doc = rss("".join(f"<item><title>{n}</title><link>https://a.example/{n}</link></item>" for n in range(100_000)))
    rec = Receiver()
    with serve_feed(doc) as feed, Server(rec) as hook:
        path = config(
            tmp_path,
            f'[[feeds]]\nname = "flood"\nurl = "{feed.base}/rss"\nbody = "none"\n'
            f'[[webhooks]]\nkind = "discord"\nurl = "{hook.base}/api/webhooks/1/x"\n',
        )
        run_cli("--config", str(path), "poll")
        first = run_cli("--config", str(path), "digest")
        sent = len(rec.accepted)
    assert first.returncode == 0, first.stderr
    assert "has more items than digest.max_items_per_feed (50): 99950 wait for the next digest" in first.stderr
    assert 0 < sent <= 10  # 50 items, not 100,000: a handful of Discord messages


# -- check ---------------------------------------------------------------------------------


def test_check_numbers_duplicate_webhooks_by_their_place_in_the_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        '[[webhooks]]\nkind = "icq"\nurl = "https://a.example/x"\n'
        '[[webhooks]]\nkind = "discord"\nurl = "https://d.example/api/webhooks/1/a"\n'
        '[[webhooks]]\nkind = "discord"\nurl = "https://d.example/api/webhooks/1/a"\n',
    )
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2
    assert "webhooks[2]: the same kind and destination as webhooks[1]" in r.stderr


# -- every pattern that sees feed or page text, on a megabyte of the worst -------------------

ADVERSARIAL = {
    "fast-path root": "from bot.parse import _fast_root\n"
    "_fast_root(b'<!---->' * 150_000 + b'<rss xmlns:a=\"x\" version=\"2.0\">')",
    "feed parse": "from bot.parse import parse_feed\n"
    "try: parse_feed(b'<?xml version=\"1.0\"?>' + b'<!---->' * 150_000 + b'<rss>', 'http://a/')\n"
    "except Exception: pass",
    "encoding declaration": "from bot.parse import transcode; transcode(b'<?xml encoding' + b' ' * 1_000_000, {})",
    "character references": "from bot.parse import _repair_references\n"
    "_repair_references(b'&#' * 500_000 + b'&#xD800;' * 1000)",
    "meta charset": "from bot.markup import decode_html; decode_html(b'<meta ' * 200_000 + b'\\xff')",
    "markup test": "from bot.markup import looks_like_markup; looks_like_markup('&lt;a' * 360_000 + '<a' * 100_000)",
    "paragraphs": "from bot.markup import html_paragraphs\n"
    "html_paragraphs('\\n' + ' ' * 1_000_000 + 'x\\n \\n' * 1000)",
    "heavy elements": "from bot.markup import bounded_markup; bounded_markup('<script' * 200_000 + '<style>' * 1000)",
    "heavy elements, bytes": "from bot.markup import bounded_bytes\n"
    "bounded_bytes(b'<script ' * 200_000 + b'</style' * 1000)",
    "text clean": "from bot.text import collapse, shown\ncollapse('\\u200d' * 1_000_000); shown('\\x1b' * 1_000_000)",
    "small print": "from bot.boilerplate import drop_reason\n"
    "[drop_reason(s * 200_000) for s in ('。 ', '（提供', 'By ', '1月1日')]",
    "max-age": "from bot.health import max_age; max_age({'cache-control': 'max-age=' + '9' * 1_000_000})",
    "discord": "from bot.kinds.discord import neutralise; neutralise('](||```@everyone<@1' * 60_000)",
    "link canonical form": "from bot.keys import canonical_url; canonical_url('http://a/?' + 'utm_x=1&' * 120_000)",
}


@pytest.mark.parametrize("code", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_every_text_pattern_is_linear_on_a_megabyte(code: str) -> None:
    """Each runs in its own process with a CPU-time limit of 20 s, far above
    what linear work on a megabyte costs; a backtracking pattern would take
    hours (and did: 26 empty comments cost 42 s, doubling with each)."""
    limited = f"import resource; resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n{code}"
    r = subprocess.run([sys.executable, "-c", limited], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# -- extraction input bounded -----------------------------------------------------------------


def test_a_deeply_nested_or_huge_page_costs_its_item_only(tmp_path: Path) -> None:
    from bot.extract import extract_body

    deep = b"<html><body>" + b"<div>" * 1_000_000 + "本文です。".encode() * 50 + b"</body></html>"
    spans = b"<html><body><p>" + b"<span>" * 1000 + "入れ子の本文です。".encode() * 20 + b"</p></body></html>"
    for page in (deep, spans):
        body = asyncio.run(_extract_in_worker(extract_body, page))
        assert isinstance(body, list)


async def _extract_in_worker(fn: object, page: bytes) -> object:
    from bot.workers import Workers

    workers = Workers(processes=1, cpu_seconds=20)
    try:
        return await workers.run(fn, page, "https://a.example/", "text/html", "auto")  # type: ignore[arg-type]
    finally:
        workers.close()


def test_a_task_over_its_limits_is_stopped_and_named(tmp_path: Path) -> None:
    from bot.errors import WorkerError
    from bot.workers import Workers

    async def go() -> tuple[str, str, int]:
        workers = Workers(processes=1, cpu_seconds=1, memory_bytes=256 * 2**20)
        try:
            with pytest.raises(WorkerError) as spin:
                await workers.run(_spin)
            with pytest.raises(WorkerError) as hog:
                await workers.run(_hog)
            after = await workers.run(sum, [1, 2, 3])  # the pool goes on with a fresh worker
            return str(spin.value), str(hog.value), after
        finally:
            workers.close()

    spin, hog, after = asyncio.run(go())
    assert "CPU time" in spin and "memory" in hog and after == 6


def _spin() -> None:
    while True:
        pass


def _hog() -> None:
    chunks = []
    while True:
        chunks.append(bytearray(16 * 2**20))


def test_the_state_file_and_the_json_payload_hold_no_script_link(tmp_path: Path) -> None:
    rec = Receiver()
    with serve_feed(rss(item("js", "javascript:alert(document.cookie)"))) as feed, Server(rec) as hook:
        path = config(
            tmp_path,
            f'[[feeds]]\nname = "f"\nurl = "{feed.base}/rss"\nbody = "none"\n'
            f'[[webhooks]]\nkind = "json"\nurl = "{hook.base}/hook"\n',
        )
        run_cli("--config", str(path), "poll")
        run_cli("--config", str(path), "digest")
    assert rec.accepted and "javascript:" not in json.dumps(rec.accepted[0].json())
    assert b"javascript:" not in b"".join(
        p.read_bytes() for p in load_config(path, {}).state_dir.iterdir() if p.is_file()
    )
