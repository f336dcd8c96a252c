"""A message a platform refuses for good never blocks the queue; a
destination that refuses everything is held with its reason.

Against the Mastodon stand-in of tests/platforms.py (its 500-character
limit counted as Mastodon counts, by twitter-text where the test oracles
are installed), over real HTTP on loopback, a real SQLite state and the
real CLI for ``status`` and ``outbox``; the state on SQLite and on
PostgreSQL (the ``backend`` tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.keys import entry_keys
from bot.models import Entry
from bot.state import NewItem, open_store
from tests import renderers
from tests.conftest import Clock, run_cli, write_toml
from tests.platforms import Platform, serve, webhook_toml
from tests.test_delivery import Run

T0 = datetime(2025, 1, 21, 0, 0, tzinfo=UTC)
FEED = "https://f/"


@pytest.fixture
def mastodon() -> Iterator[tuple[str, Platform]]:
    server, platform = serve("mastodon")
    with server:
        yield server.base, platform


def make_config(tmp_path: Path, base: str, feed: str = "", extra: str = "") -> Config:
    text = f'timezone = "Asia/Tokyo"\n[poll]\ntimeout = "2s"\n{extra}\n{feed}\n{webhook_toml("mastodon", base)}'
    return load_config(write_toml(tmp_path, text), {})


# About 300 characters: each item a message of its own within 500.
BODY = ("停戦交渉を巡り各国の外相が会談した。" * 16,)


def add(config: Config, items: list[tuple[str, str]], body: tuple[str, ...] = BODY) -> None:
    """Items (title, link) as a poll of ``FEED`` takes them."""
    store = open_store(config)
    entries = [NewItem(Entry(entry_keys(FEED, link, None, t, None).keys, t, link, T0), body) for t, link in items]
    store.record_poll(FEED, "NHKニュース", T0, etag=None, last_modified=None, take=entries, skip=[])
    store.close()


def items(tag: str, count: int) -> list[tuple[str, str]]:
    return [(f"{tag} ニュース その{n}", f"https://news.example.jp/{tag}/{n}.html") for n in range(count)]


def cli(config: Config, *args: str) -> str:
    r = run_cli("--config", str(config.path), *args)
    return r.stdout + r.stderr


def test_a_refused_message_is_set_aside_and_every_later_one_delivered(
    tmp_path: Path, mastodon: tuple[str, Platform], clock: Clock, backend: str
) -> None:
    base, platform = mastodon
    platform.refuse = lambda text: "禁句" in text
    config = make_config(tmp_path, base)
    add(config, [*items("a", 2), ("禁句を含む見出し", "https://news.example.jp/x/1.html"), *items("b", 2)])
    run = Run(config, clock)
    (report,) = run()
    assert report.error is None and report.set_aside == 1 and report.pending == 0
    first = len(platform.texts)
    assert first >= 4 and not any("禁句" in t for t in platform.texts)

    # The next digest goes out whole; the report after it says what waits.
    clock.advance(hours=24)
    add(config, items("c", 3))
    (report,) = run()
    assert report.error is None and report.set_aside == 0 and report.pending == 0
    later = platform.texts[first:]
    assert all(f"https://news.example.jp/c/{n}.html" in "\n".join(later) for n in range(3))
    assert later[-1].startswith("⚠ feedbot: 1 webhook with undelivered messages")
    assert "- mastodon: 1 message(s) refused for good and set aside (feedbot outbox)" in later[-1]
    assert "HTTP 422 (Validation failed: Text contains a word" in later[-1]

    status = cli(config, "status")
    assert "0 message(s) pending; 1 set aside, refused for good (feedbot outbox)" in status, status
    listed = cli(config, "outbox")
    refs = [w for line in listed.splitlines() if "set aside " in line for w in line.split() if "@mastodon" in w]
    assert len(refs) == 1 and "HTTP 422" in listed, listed
    ref = refs[0].rstrip(":")

    # The server's rule changes; the operator puts the message back.
    platform.refuse = None
    assert "back in its queue" in cli(config, "outbox", "retry", ref)
    (report,) = run("tick")
    assert report.sent == 1 and report.error is None
    assert "禁句を含む見出し" in platform.texts[-1]
    assert "outbox: nothing waiting" in cli(config, "outbox")
    r = run_cli("--config", str(config.path), "outbox", "retry", ref)
    assert r.returncode == 1 and "not set aside" in r.stdout


def test_a_dropped_message_is_given_up(tmp_path: Path, mastodon: tuple[str, Platform], clock: Clock) -> None:
    base, platform = mastodon
    platform.refuse = lambda text: "禁句" in text
    config = make_config(tmp_path, base)
    add(config, [("禁句", "https://news.example.jp/x/1.html"), *items("a", 1)])
    Run(config, clock)()
    assert "dropped" in cli(config, "outbox", "drop", "--all")
    assert "outbox: nothing waiting" in cli(config, "outbox")
    assert "set aside" not in cli(config, "status")
    store = open_store(config)
    try:
        assert store.pending_count() == 0  # its items are settled
    finally:
        store.close()
    r = run_cli("--config", str(config.path), "outbox", "drop", "nonsense")
    assert r.returncode == 2 and "DIGEST-SEQ@WEBHOOK" in r.stderr


def test_a_destination_refusing_everything_is_held_not_emptied(
    tmp_path: Path, mastodon: tuple[str, Platform], clock: Clock, backend: str
) -> None:
    base, platform = mastodon
    platform.refuse = lambda text: True
    config = make_config(tmp_path, base)
    add(config, items("a", 6))
    (report,) = Run(config, clock)()
    assert report.set_aside == 2  # then the third refusal in a row holds the queue
    assert report.error is not None and "3rd message refused in a row: the webhook is held" in report.error
    assert report.pending >= 4 and platform.texts == []
    status = cli(config, "status")
    assert "message(s) pending, last attempt" in status and "the webhook is held" in status, status


def test_a_refused_token_holds_the_whole_queue_with_its_reason(
    tmp_path: Path, mastodon: tuple[str, Platform], clock: Clock
) -> None:
    base, _ = mastodon
    config = make_config(tmp_path, base)
    wrong = config.path.read_text().replace('token = "', 'token = "x')
    config.path.write_text(wrong)
    config = load_config(config.path, {})
    add(config, items("a", 3))
    (report,) = Run(config, clock)()
    assert report.set_aside == 0 and report.sent == 0
    assert report.error is not None and "HTTP 401 (The access token is invalid) — held" in report.error
    status = cli(config, "status")
    assert "held: the destination refused it (check the webhook's address, token and rights)" in status
    assert "set aside" not in status


HOSTILE_ENDINGS = [
    "速報 @here",
    "米大統領が声明 @everyone",
    "wiki/__init__ と *bold* と _i_",
    "価格は$100",
    "ロシア外相が会見",
    "(続報)",
    "https://glued.example.jp/a",
]


def test_title_link_template_fits_mastodons_own_count(
    tmp_path: Path, mastodon: tuple[str, Platform], clock: Clock
) -> None:
    """The README's NHK template glues the link to the title: Mastodon then
    counts the URL as text, not as 23 characters; nothing may be refused."""
    if not renderers.available():
        pytest.skip("the platforms' parsers are not installed: run `bash bootstrap.sh test` (node, tests/oracles)")
    base, platform = mastodon
    feed = f'[[feeds]]\nname = "NHKニュース"\nurl = "{FEED}"\nheadline = "{{title}}{{link}} #nhk_news"\n'
    config = make_config(tmp_path, base, feed)
    links = [f"https://news.example.jp/a/{n:04}.html" for n in range(8)]
    links += [
        "https://medium.com/@writer/story-1",
        "https://example.jp/wiki/__init__/?q=ロシア&_ga=2&x=~y",
        "http://intranet.corp-news/a/1",
        "https://news.example.jp/search?q=停戦交渉&page=2",
        "https://www3.nhk.or.jp/news/html/20250120/k10014698771000.html",
        "https://x.example/(paren)",
        "https://news.example.jp/" + "long-" * 40 + "end",
    ]
    titles = [HOSTILE_ENDINGS[n % len(HOSTILE_ENDINGS)] + f" {n}" for n in range(len(links))]
    body = ("露外務省の報道官は記者会見で説明した。" * 30, "Officials said talks would resume. " * 60)
    add(config, list(zip(titles, links, strict=True)), body)
    (report,) = Run(config, clock)()
    assert report.error is None and report.set_aside == 0 and report.pending == 0
    shown = "\n".join(platform.texts)
    for link in links:
        assert link in shown, link
    assert all(renderers.shared().ask("mastodon", t)["length"] <= 500 for t in platform.raw)


@pytest.mark.parametrize(
    ("kind", "status", "body", "whose"),
    [
        ("mastodon", 422, {"error": "Validation failed: Text character limit of 500 exceeded"}, "message"),
        ("matrix", 413, {"errcode": "M_TOO_LARGE", "error": "event too large"}, "message"),
        ("discord", 400, {"message": "Cannot send an empty message", "code": 50006}, "message"),
        ("discord", 404, {"message": "Unknown Webhook", "code": 10015}, "webhook"),
        ("telegram", 400, {"ok": False, "description": "Bad Request: message is too long"}, "message"),
        ("telegram", 400, {"ok": False, "description": "Bad Request: chat not found"}, "webhook"),
        ("telegram", 400, {"ok": False, "description": "Bad Request: group chat was upgraded to a supergroup chat"},
         "webhook"),
        ("telegram", 403, {"ok": False, "description": "Forbidden: bot was blocked by the user"}, "webhook"),
        ("line", 400, {"message": "The request body has 1 error(s)", "details": [{"property": "messages[0].text"}]},
         "message"),
        ("line", 400, {"message": "The property, 'to', is invalid", "details": [{"property": "to"}]},
         "webhook"),
        ("slack", 400, "invalid_payload", "message"),
        ("slack", 400, "user_not_found", "webhook"),
        ("slack", 410, "channel_is_archived", "webhook"),
        ("googlechat", 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, "message"),
        ("misskey", 401, {"error": {"code": "AUTHENTICATION_FAILED"}}, "webhook"),
    ],
)  # fmt: skip
def test_each_kind_says_whose_fault_a_refusal_is(kind: str, status: int, body: object, whose: str) -> None:
    import json

    from bot.kinds import KINDS
    from bot.kinds.base import Reply

    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert KINDS[kind].refusal(Reply(status, {}, raw)) == whose


def test_secrets_are_scrubbed_in_every_encoded_form() -> None:
    from bot.secrets import Scrubber

    token = "123456:TEST-token/SECRET"
    scrub = Scrubber({token: "<token>"})
    for form in (
        token,
        "123456%3ATEST-token%2FSECRET",
        "123456%3aTEST-token%2fSECRET",
        "%31%32%33456%253ATEST-token/SECRET",
    ):
        assert scrub(f"echo: /bot{form}/sendMessage") == "echo: /bot<token>/sendMessage", form
    assert scrub("123456:TEST-token/SECRE") == "123456:TEST-token/SECRE"  # not the secret


def test_a_token_echoed_percent_encoded_is_shown_nowhere(tmp_path: Path) -> None:
    """Telegram's token travels in the path; an error that echoes the path
    encoded (``%3A`` for the colon) is scrubbed from ``digest -v``,
    ``status`` and ``outbox`` alike, and from the state row."""
    import sqlite3
    from urllib.parse import quote

    from tests.platforms import TOKEN

    server, platform = serve("telegram")
    with server:
        platform.refuse = lambda text: "禁句" in text
        text = f'timezone = "Asia/Tokyo"\n{webhook_toml("telegram", server.base, "tg")}'
        config = load_config(write_toml(tmp_path, text), {})
        add(config, [("禁句を含む見出し", "https://news.example.jp/x/1.html"), *items("a", 1)])
        digest = run_cli("--config", str(config.path), "-v", "digest")
        said = [digest.stdout + digest.stderr, cli(config, "status"), cli(config, "outbox")]
    assert "set aside" in said[2] and "Bad Request: text is invalid (/bot" in said[2], said[2]
    db = sqlite3.connect(config.state_dir / "feedbot.sqlite3")
    said += [repr(row) for row in db.execute("SELECT * FROM outbox")]
    db.close()
    forms = {TOKEN, quote(TOKEN, safe=""), quote(TOKEN, safe="").lower(), TOKEN.split(":")[1]}
    for text in said:
        for form in forms:
            assert form not in text, (form, text)
    assert platform.requests and not platform.texts  # it was sent, and refused
