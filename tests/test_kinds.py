"""Every kind of destination against a loopback stand-in that speaks its
platform's API (tests/platforms.py): a 30-item Japanese digest arrives in
messages within the platform's limit that join back to the digest; feed
text cannot mention or format; a 429 is waited out as the platform's hint
says; a second run sends nothing; where the platform offers idempotency,
a message sent again after a crash is not posted twice.  E-mail through a
real SMTP server (aiosmtpd) with STARTTLS and AUTH, parsed back.
"""

from __future__ import annotations

import re
import socketserver
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.keys import entry_keys
from bot.kinds import KINDS
from bot.models import Entry
from bot.state import DB_NAME, NewItem, open_store
from tests import renderers
from tests.conftest import Clock, run_cli, write_toml
from tests.platforms import HTTP_KINDS, TOKEN, Mailbox, Platform, serve, webhook_toml
from tests.test_delivery import Run

T0 = datetime(2025, 1, 21, 0, 0, tzinfo=UTC)
INJECTION = "【速報】@everyone @nhk_news <users/all> **重大** $[x2 大] [公式](https://evil.example/x) @room"
PARAGRAPHS = (
    "ロシア外務省の報道官は二十日、ウクライナ情勢を巡る米国との協議について記者会見で説明し、双方の立場には依然として大きな隔たりがあると述べた。",
    "報道官はまた、欧州各国がウクライナへの軍事支援を続けていることを批判し、停戦に向けた交渉の前提条件が整っていないとの認識を改めて示した。",
    "一方、ウクライナ政府の関係者は、東部の前線で激しい戦闘が続いているとして、各国に防空システムの追加供与を求めている。",
)


def titles() -> list[str]:
    subjects = ["ロシア外相", "ゼレンスキー大統領", "中国外務省", "国連安保理", "NATO事務総長", "日本政府"]
    return [INJECTION] + [f"{subjects[n % 6]}が会見 停戦交渉の行方 その{n}" for n in range(1, 30)]


def add_items(config: Config, count: int = 30) -> None:
    store = open_store(config)
    entries = [
        NewItem(
            Entry(entry_keys("https://f/", f"g{n}", None, t, None).keys, t, f"https://news.example.jp/a/{n}", T0),
            PARAGRAPHS,
        )
        for n, t in enumerate(titles()[:count])
    ]
    store.record_poll("https://f/", "NHKニュース", T0, etag=None, last_modified=None, take=entries, skip=[])
    store.close()


def digest_texts(config: Config) -> list[str]:
    conn = sqlite3.connect(config.state_dir / DB_NAME)
    try:
        return [r[0] for r in conn.execute("SELECT text FROM digests ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[str, Platform]]:
    server, platform = serve(request.param)
    with server:
        yield server.base, platform


def make_config(tmp_path: Path, tables: str) -> Config:
    return load_config(write_toml(tmp_path, f'timezone = "Asia/Tokyo"\n[poll]\ntimeout = "2s"\n{tables}'), {})


# What feed text must not become on each platform (before the zero-width
# spaces are taken out): a mention that notifies, or markup.
# Plain-text platforms: what must not be left to mention anyone (as sent).
FORBIDDEN = {
    "telegram": ["@nhk_news", "@everyone"],
    "line": [],  # plain text: LINE makes neither mentions nor markup of it
    "mastodon": ["@nhk_news", "@everyone"],
    "matrix": ["@room", "@nhk_news"],
}
# Markup platforms: asked of their own parsers (tests/oracles), which must
# find no markup, mention or emoji in what feed text became.
PARSER = {"misskey": "misskey", "teams": "commonmark"}
# The wait each platform's 429 asks for, as the test server gives it.
HINTS = {"telegram": 3.0, "misskey": 2.5, "mastodon": 2.0, "matrix": 2.0, "teams": 2.0, "googlechat": 2.0}
LIMITS = {"misskey": 4000, "mastodon": 1000}  # announced by the servers, not the kinds' defaults


@pytest.mark.parametrize("platform", HTTP_KINDS, indirect=True)
def test_a_30_item_japanese_digest_on_each_platform(
    tmp_path: Path, platform: tuple[str, Platform], clock: Clock
) -> None:
    base, server = platform
    kind = server.kind
    server.limit_announced = LIMITS.get(kind)
    config = make_config(tmp_path, webhook_toml(kind, base))
    add_items(config)
    server.rate_limit(1)  # the first post is told to wait
    run = Run(config, clock)
    (report,) = run()
    assert report.error is None and report.pending == 0, report
    (digest,) = digest_texts(config)
    # Messages within the limit, cut only between items: they join back to the digest.
    limit = LIMITS.get(kind, KINDS[kind].limit)
    assert all(KINDS[kind].measure(t) <= limit for t in server.texts), [KINDS[kind].measure(t) for t in server.texts]
    assert server.joined() == digest
    if kind in LIMITS:  # the server's own limit was read and used
        assert max(KINDS[kind].measure(t) for t in server.texts) > KINDS[kind].limit
    assert len(server.texts) > 1 or kind in ("matrix", "teams")  # 60 KB and 24 KB hold the whole digest
    # Feed text neither mentions nor formats.
    first = server.texts[0]
    assert "公式" in first and "重大" in first
    for bad in FORBIDDEN.get(kind, []):
        assert bad not in server.raw[0], (bad, server.raw[0][:200])
    if kind in PARSER and renderers.available():
        assert renderers.shared().ask(PARSER[kind], server.raw[0])["marks"] == [], server.raw[0][:200]
    if kind == "googlechat":  # a card's HTML: no tag but links
        assert set(re.findall(r"<(\w+)", server.raw[0])) <= {"a", "br"}, server.raw[0][:200]
    # The 429 was waited out as the platform asked (LINE gives no hint: backoff).
    if kind in HINTS:
        assert run.sleeps and abs(run.sleeps[0] - HINTS[kind]) <= (1.0 if kind == "mastodon" else 0.01), run.sleeps
    else:
        assert run.sleeps and 0 < run.sleeps[0] <= 1.0
    # Nothing is sent twice: a second run builds no digest and posts nothing.
    posted = len(server.requests)
    (again,) = run()
    assert again.sent == 0 and len(server.requests) == posted


@pytest.mark.parametrize("platform", HTTP_KINDS, indirect=True)
def test_each_platform_gets_its_own_request_shape(tmp_path: Path, platform: tuple[str, Platform], clock: Clock) -> None:
    base, server = platform
    kind = server.kind
    server.limit_announced = LIMITS.get(kind)
    config = make_config(tmp_path, webhook_toml(kind, base))
    add_items(config, 12)
    Run(config, clock)()
    bodies = server.bodies
    assert bodies
    if kind == "telegram":
        assert all(
            b["chat_id"] == "-1001234567890" and b["link_preview_options"] == {"is_disabled": True} for b in bodies
        )
    elif kind == "line":
        assert all(b["to"].startswith("U0123") and 1 <= len(b["messages"]) <= 5 for b in bodies)
        assert all(len(r.headers["x-line-retry-key"]) == 36 for r in server.requests)
    elif kind == "misskey":
        assert all(b["visibility"] == "home" and b["noExtractMentions"] for b in bodies)
    elif kind == "mastodon":
        # a thread: each status replies to the one before
        ids = [str(100 + n) for n in range(len(bodies))]
        assert [b.get("in_reply_to_id") for b in bodies] == [None, *ids[:-1]]
        assert all(b["visibility"] == "unlisted" for b in bodies)
    elif kind == "matrix":
        assert all(
            b["msgtype"] == "m.notice" and b["m.mentions"] == {} and b["room"] == "!news:example.org" for b in bodies
        )
        assert "format" not in bodies[0]
    elif kind == "teams":
        assert bodies[0]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    elif kind == "googlechat":
        assert len({b["threadKey"] for b in bodies}) == 1 and bodies[0]["threadKey"].startswith("feedbot-1-")
        assert all(b["option"] == ["REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"] for b in bodies)
    # The token never travels in a body, and is nowhere in the state.
    assert all(TOKEN not in str(b) for b in bodies)
    conn = sqlite3.connect(config.state_dir / DB_NAME)
    try:
        stored = b"".join(r[0] for r in conn.execute("SELECT body FROM outbox_bodies"))
    finally:
        conn.close()
    assert TOKEN.encode() not in stored and b"SECRET" not in stored


def test_slow_platforms_get_each_message_once(tmp_path: Path) -> None:
    """Platforms that post at once but answer after 6 s, with feeds timed
    out at 2 s: the delivery waits for the answer (digest.delivery_timeout,
    60 s by default) and sends nothing twice.  Through `feedbot digest`."""
    served = {kind: serve(kind) for kind in ("telegram", "misskey", "teams")}
    for _, platform in served.values():
        platform.delay = 6.0
    with served["telegram"][0] as t, served["misskey"][0] as m, served["teams"][0] as s:
        tables = "".join(webhook_toml(kind, server.base) for kind, server in zip(served, (t, m, s), strict=True))
        config = make_config(tmp_path, tables)  # poll.timeout = "2s"
        add_items(config, 2)
        r = run_cli("--config", str(config.path), "digest")
        assert r.returncode == 0, r.stderr
        for kind, (_, platform) in served.items():
            posts = [q for q in platform.requests if q.method in ("POST", "PUT") and "/api/meta" not in q.path]
            assert len(platform.texts) >= 1 and len(posts) == len(platform.texts), (kind, len(posts))
    assert "sent again" not in run_cli("--config", str(config.path), "status").stdout


@pytest.mark.parametrize("platform", ["line", "mastodon", "matrix", "googlechat"], indirect=True)
def test_a_message_sent_again_after_a_crash_is_recognised_by_the_platform(
    tmp_path: Path, platform: tuple[str, Platform], clock: Clock
) -> None:
    """The process died after the POST and before recording it: the next
    run sends it again, with the same retry key / Idempotency-Key /
    transaction id / requestId, and the platform does not post it twice."""
    base, server = platform
    config = make_config(tmp_path, webhook_toml(server.kind, base))
    add_items(config, 3)
    Run(config, clock)()
    texts = list(server.texts)
    conn = sqlite3.connect(config.state_dir / DB_NAME)
    conn.execute("UPDATE outbox SET delivered_at = NULL, in_flight_at = 1")  # as if the answer was never recorded
    conn.commit()
    conn.close()
    (report,) = Run(config, clock)()
    assert report.pending == 0 and report.error is None
    assert server.texts == texts  # recognised: not posted twice


def test_rate_limit_hints_of_each_kind_are_read() -> None:
    from bot.kinds.base import Reply

    def hint(kind: str, status: int, headers: dict[str, str], body: bytes) -> float | None:
        return KINDS[kind].retry_hint(Reply(status, headers, body))

    assert hint("telegram", 429, {}, b'{"ok":false,"parameters":{"retry_after":7}}') == 7
    assert hint("matrix", 429, {}, b'{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1500}') == 1.5
    assert hint("misskey", 429, {}, b'{"error":{"info":{"resetMs":2500}}}') == 2.5
    assert hint("discord", 429, {}, b'{"retry_after": 1.5}') == 1.5
    assert hint("teams", 429, {"retry-after": "4"}, b"") == 4
    assert hint("matrix", 429, {}, b'{"retry_after_ms": 1e300}') == 86400  # capped at a day
    assert hint("telegram", 429, {}, b"not json") is None


def test_check_validates_each_kinds_keys(tmp_path: Path) -> None:
    path_of_junk = tmp_path / "junk.pem"
    path_of_junk.write_text("not a certificate\n")
    path = write_toml(
        tmp_path,
        '[[webhooks]]\nkind = "telegram"\ntoken = "t"\n'
        '[[webhooks]]\nkind = "matrix"\nurl = "https://m.example"\ntoken = "t"\nroom = "#news:m.example"\n'
        '[[webhooks]]\nkind = "mastodon"\nurl = "https://m.example"\ntoken = "t"\nvisibility = "everyone"\n'
        '[[webhooks]]\nkind = "email"\nhost = "smtp.example"\nfrom = "not an address"\nto = []\n'
        '[[webhooks]]\nkind = "email"\nhost = "smtp.example"\nfrom = "a@example.jp"\nto = "b@example.jp"\n'
        'username = "u"\n'
        '[[webhooks]]\nkind = "line"\ntoken = "t"\nto = "U1"\nchat_id = 3\n'
        '[[webhooks]]\nkind = "misskey"\nurl = "https://m.example"\n'
        '[[webhooks]]\nkind = "mastodon"\nurl = "http://m.example"\ntoken = "t"\n'
        '[[webhooks]]\nkind = "email"\nhost = "smtp.example"\nsecurity = "none"\nfrom = "a@example.jp"\n'
        'to = "b@example.jp"\nusername = "u"\npassword = "p w"\n'
        '[[webhooks]]\nkind = "telegram"\ntoken = "not-a-bot-token"\nchat_id = "mychannel"\n'
        '[[webhooks]]\nkind = "telegram"\ntoken = "123:abc"\nchat_id = "@news_jp"\nname = "ok"\n'
        '[[webhooks]]\nkind = "line"\ntoken = "two words"\nto = "U0123456789abcdef0123456789abcdef"\n'
        '[[webhooks]]\nkind = "email"\nhost = "smtp.example"\nfrom = "a@example.jp"\nto = "b@example.jp"\n'
        f'ca_file = "{path_of_junk}"\n'
        '[[webhooks]]\nkind = "mastodon"\nurl = "HTTP://m.example"\ntoken = "t"\n'
        '[[webhooks]]\nkind = "discord"\nurl = "Http://discord.example/api/webhooks/1/x"\n'
        '[[webhooks]]\nkind = "teams"\nurl = "http://teams.example/webhookb2/x"\n'
        '[[webhooks]]\nkind = "googlechat"\nurl = "http://chat.example/v1/spaces/x/messages?key=k"\n'
        '[[webhooks]]\nkind = "line"\ntoken = "t"\nto = "U4af4980629 a0b"\n'
        '[[webhooks]]\nkind = "slack"\nurl = "http://127.0.0.1:9/services/x"\nname = "loopback"\n'
        '[[webhooks]]\nkind = "json"\nurl = "http://hooks.lan.example/feedbot"\nname = "lan"\n',
    )
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2
    for problem in (
        "webhooks[0].chat_id: missing (required)",
        "webhooks[1].room: '#news:m.example' is an alias: give the room id",
        "webhooks[2].visibility: 'everyone' is not one of public, unlisted, private, direct",
        "webhooks[3].from: 'not an address' is not an e-mail address",
        "webhooks[3].to: must be an address or a non-empty list",
        "webhooks[4].username: give username and password",
        "webhooks[5].chat_id: unknown key",
        "webhooks[6].token: missing (required): give token or token_file",
        "webhooks[7].url: is http://: the token would travel unencrypted",
        'webhooks[8].security: "none" would send the password unencrypted',
        "webhooks[9].chat_id: 'mychannel' is neither a chat's number nor a public @channelname",
        "webhooks[11].token: must be printable ASCII without spaces",
        "webhooks[12].ca_file:",
        "webhooks[13].url: is http://: the token would travel unencrypted",  # the scheme in any case
        "webhooks[14].url: is http://: a discord webhook URL is itself the credential",
        "webhooks[15].url: is http://: a teams webhook URL",
        "webhooks[16].url: is http://: a googlechat webhook URL",
        "webhooks[17].to: 'U4af4980629 a0b' is not a LINE user, group or room id",
    ):
        assert problem in r.stderr, (problem, r.stderr)
    for valid in ("webhooks[10]", "webhooks[18]", "webhooks[19]"):  # a loopback Slack, a LAN json endpoint
        assert valid not in r.stderr, r.stderr
    assert "webhooks[9].token: is not a bot token" in r.stderr or "webhooks[9].chat_id" in r.stderr


def test_status_shows_each_kinds_backlog_without_its_secrets(tmp_path: Path, clock: Clock) -> None:
    server, platform = serve("telegram")
    with server:
        config = make_config(tmp_path, webhook_toml("telegram", server.base, "tg"))
        add_items(config, 2)
        platform.rate_limit(100)  # down for the whole run
        Run(config, clock)()
    r = run_cli("--config", str(config.path), "status")
    assert "tg (telegram http://127.0.0.1:" in r.stdout and "1 message(s) pending" in r.stdout, r.stdout
    assert "HTTP 429 (Too Many Requests: retry after 3)" in r.stdout
    assert TOKEN not in r.stdout + r.stderr


# -- e-mail -------------------------------------------------------------------------------


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    folder = tmp_path / "smtp"
    folder.mkdir()
    with Mailbox(folder) as box:
        yield box


def test_email_over_starttls_with_auth_parsed_back(tmp_path: Path, mailbox: Mailbox, clock: Clock) -> None:
    config = make_config(tmp_path, mailbox.toml())
    add_items(config)
    mailbox.fail_next.append("451 4.3.0 Try again later")  # a temporary refusal: retried
    run = Run(config, clock)
    (report,) = run()
    assert report.error is None and report.pending == 0, report
    (mail,) = mailbox.messages
    assert isinstance(mail, EmailMessage)
    (digest,) = digest_texts(config)
    # headers: the Japanese subject (RFC 2047 on the wire), from, to, a stable Message-ID
    assert mail["Subject"] == "ニュースダイジェスト 2025-01-21"
    assert mail["From"] == "feedbot <digest@example.jp>"
    assert "reader@example.jp" in mail["To"] and "デスク <desk@example.jp>" in mail["To"]
    assert mail["Message-ID"].startswith("<feedbot.1.") and mail["Message-ID"].endswith("@example.jp>")
    assert mail["Date"]
    assert mailbox.envelopes == [("digest@example.jp", ["reader@example.jp", "desk@example.jp"])]
    # both parts, UTF-8: the plain one is the digest itself, the HTML one reads the same
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == digest  # CRLF on the wire
    page = html.get_content()
    assert '<a href="https://news.example.jp/a/1">' in page and "ロシア外務省の報道官は二十日" in page
    assert "<users/all>" not in page and "&lt;users/all&gt;" in page  # feed text escaped
    assert run.sleeps  # the 451 was retried
    # on the wire: the subject as RFC 2047 words, the parts in UTF-8
    raw = mailbox.raw[0]
    assert b"Subject: =?utf-8?" in raw and "ニュース".encode() not in raw.split(b"\r\n\r\n", 1)[0]
    assert raw.count(b'charset="utf-8"') == 2
    # a second run sends nothing
    (again,) = run()
    assert again.sent == 0 and len(mailbox.messages) == 1


def test_email_over_implicit_tls(tmp_path: Path, clock: Clock) -> None:
    folder = tmp_path / "smtps"
    folder.mkdir()
    with Mailbox(folder, implicit_tls=True) as smtps:
        config = make_config(tmp_path, smtps.toml())
        add_items(config, 3)
        (report,) = Run(config, clock)()
        assert report.error is None and report.sent == 1
        assert smtps.messages[0]["Subject"] == "ニュースダイジェスト 2025-01-21"


def test_email_with_a_wrong_password_is_held_and_says_why(tmp_path: Path, mailbox: Mailbox, clock: Clock) -> None:
    config = make_config(tmp_path, mailbox.toml().replace(Mailbox.PASSWORD, "wrong-password"))
    add_items(config, 2)
    (report,) = Run(config, clock)()
    assert report.pending == 1 and report.error is not None and "SMTP 535" in report.error
    assert "wrong-password" not in report.error
    assert mailbox.messages == []


def test_email_says_8bitmime_where_offered_and_sends_7bit_where_not(tmp_path: Path, clock: Clock) -> None:
    for eight_bit in (True, False):
        folder = tmp_path / f"smtp-{eight_bit}"
        folder.mkdir()
        with Mailbox(folder, eight_bit=eight_bit) as mailbox:
            config = make_config(folder, mailbox.toml())
            # Short lines: the text part is stored as 8bit (long ones are base64 already).
            store = open_store(config)
            keys = entry_keys("https://f/", "s", None, "短い見出し", None).keys
            item = NewItem(Entry(keys, "短い見出し", "https://n.example/1", T0), ("ロシア外務省の報道官は二十日、",))
            store.record_poll("https://f/", "NHK", T0, etag=None, last_modified=None, take=[item], skip=[])
            store.close()
            (report,) = Run(config, clock)()
            assert report.error is None and report.sent == 1
            (raw,) = mailbox.raw
            (mail,) = mailbox.messages
            plain = mail.get_body(("plain",))
            assert plain is not None and "ロシア外務省の報道官は二十日" in plain.get_content()
            if eight_bit:  # RFC 6152: 8-bit data only with BODY=8BITMIME
                assert "BODY=8BITMIME" in mailbox.mail_options[0]
                assert "ロシア外務省".encode() in raw and b"Content-Transfer-Encoding: 8bit" in raw
            else:  # nothing but 7-bit on the wire, the text parts re-encoded
                assert not any(o.startswith("BODY=") for o in mailbox.mail_options[0])
                assert all(b < 0x80 for b in raw)
                assert plain["Content-Transfer-Encoding"] in ("base64", "quoted-printable")


class _SilentAtAuth(socketserver.StreamRequestHandler):
    """An SMTP server that greets, offers AUTH, and never answers it."""

    def handle(self) -> None:
        self.wfile.write(b"220 mail.example ESMTP\r\n")
        while line := self.rfile.readline():
            if line.upper().startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250-mail.example\r\n250 AUTH PLAIN LOGIN\r\n")
            elif line.upper().startswith(b"AUTH"):
                self.rfile.read()  # silence until the client gives up
                return


def test_an_smtp_server_that_never_answers_costs_one_deadline_and_one_line(tmp_path: Path) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SilentAtAuth)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        toml = (
            f'[digest]\ndelivery_timeout = "5s"\n[[webhooks]]\nkind = "email"\nname = "mail"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\nusername = "u"\npassword = "SECRET-pw"\n'
            'from = "digest@example.jp"\nto = "reader@example.jp"\n'
        )
        config = make_config(tmp_path, toml)
        add_items(config, 2)
        r = run_cli("--config", str(config.path), "digest")
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 1
    assert "no complete SMTP exchange within 5s" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "never retrieved" not in r.stderr, r.stderr
    assert "SECRET-pw" not in r.stderr
    # one warning (the failure) and the summary line, nothing else
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 2, r.stderr


def test_a_servers_words_reach_no_terminal_raw(tmp_path: Path, mailbox: Mailbox, clock: Clock) -> None:
    config = make_config(tmp_path, mailbox.toml())
    add_items(config, 2)
    mailbox.refuse = lambda: "554 \x1b]0;owned\x07 \u009b31m rejected"
    r = run_cli("--config", str(config.path), "digest")
    status = run_cli("--config", str(config.path), "status").stdout
    for text in (r.stderr, status):
        assert "\x1b" not in text and "\x07" not in text and "\u009b" not in text, text
    assert "\\x1b]0;owned\\x07" in r.stderr and "set aside" in r.stderr  # a 5xx at DATA: the message's fault
    assert "1 set aside" in status


def test_handles_are_broken_wherever_a_platform_would_mention_them() -> None:
    from bot.kinds.base import ZWSP, break_handles

    assert break_handles("(@nhk_news) .@Gargron @room") == f"(@{ZWSP}nhk_news) .@{ZWSP}Gargron @{ZWSP}room"
    assert break_handles("desk@example.jp") == "desk@example.jp"  # an address is not a mention


@pytest.mark.parametrize("kind", ["teams", "matrix", "telegram", "mastodon"])
def test_a_long_feed_health_report_fits_the_kinds_limit_as_the_kind_counts(kind: str) -> None:
    """600 failing feeds with Japanese names: the report is cut to the
    limit as the platform counts it (bytes of JSON for Teams and Matrix)."""
    from zoneinfo import ZoneInfo

    from bot.models import Block, Digest, FailingFeed, Group, Item, Rendered

    item = Item(1, "F", "u", "t", "l", T0, T0, ())
    feeds = tuple(FailingFeed(f"日本語のフィード名 {n} 番", T0, 9, "接続できません" * 5) for n in range(600))
    rendered = Rendered(
        Digest("2025-01-21", (), (Group("T", "L", (item,)),)), (Block(("見出し", "— F"), 1, "#T(L)"),), feeds
    )
    spec = KINDS[kind]
    messages = spec.build(rendered, 1, ZoneInfo("Asia/Tokyo"))
    report = messages[-1].text
    assert "600 feeds failing" in report and "more" in report
    assert spec.measure(report) <= spec.limit, spec.measure(report)


def test_the_example_of_every_kind_in_the_docs_passes_check(tmp_path: Path) -> None:
    """docs/webhooks.md's configuration example, as a user would paste it,
    with its credentials in files as systemd would hand them over."""
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    example = doc[doc.index("## Configuration, kind by kind") :].split("```toml\n", 1)[1].split("```", 1)[0]
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, value in {
        "discord-url": "https://discord.com/api/webhooks/1/abc",
        "telegram-token": "123456:ABC-def_ghi",
        "line-token": "abcdefABCDEF0123456789",
        "misskey-token": "token",
        "mastodon-token": "token",
        "matrix-token": "syt_token",
        "teams-url": "https://prod.example/workflows/x/triggers/manual/paths/invoke?sig=s",
        "googlechat-url": "https://chat.googleapis.com/v1/spaces/X/messages?key=k&token=t",
        "smtp-password": "app password with spaces",
    }.items():
        (creds / name).write_text(value + "\n", encoding="utf-8")
    path = write_toml(tmp_path, '[[feeds]]\nname = "x"\nurl = "https://example.org/f.xml"\n\n' + example)
    r = run_cli("--config", str(path), "check", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert r.returncode == 0, r.stderr
    kinds = {line.split(": ")[1].split(" ")[0] for line in r.stdout.splitlines() if line.startswith("  webhook ")}
    assert kinds == set(KINDS) - {"slack", "json", "text"}, kinds
