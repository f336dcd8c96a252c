"""No feed, page, list or neighbour can brick another feed or reach inside
(issue 24): one test (or a few) per finding.

Real loopback servers, the real CLI in a subprocess where the finding is
about what a user sees, the real SQLite state.  On loopback every address
is non-public, which is what the address-policy tests need: a typed
address on 127.0.0.1 is the user's own, an address on another port of it
found in a document is "inside".
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.fetch import make_client
from bot.loopback import Reply, Request, Server
from bot.poll import Poller, PollOutcome
from bot.state import open_store
from tests.conftest import Clock, run_cli, write_toml

RSS = (
    "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>{title}</title>"
    "<item><title>{title}の記事</title><link>http://news.example/{title}</link><guid>{title}</guid>"
    "<pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate><description>本文</description></item></channel></rss>"
)


def rss(title: str, **headers: str) -> Reply:
    return Reply(200, {"Content-Type": "application/rss+xml", **headers}, RSS.format(title=title).encode())


def feeds_config(tmp_path: Path, urls: dict[str, str], extra: str = "") -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    tables = "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\nbody = "none"\n' for name, url in urls.items())
    text = f'[poll]\nfirst_poll = "all"\nmax_age = "none"\nhost_spacing = "0s"\ntimeout = "2s"\n{extra}\n{tables}'
    return load_config(write_toml(tmp_path, text), {})


def poll_rounds(config: Config, clock: Clock, rounds: int) -> list[list[PollOutcome]]:
    """``rounds`` forced polls of every feed, one after the other, on one
    client (as the service polls): what each round gave."""

    async def go() -> list[list[PollOutcome]]:
        store = open_store(config)
        try:
            async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                done = []
                for _ in range(rounds):
                    done.append([await poller.poll(feed, force=True) for feed in config.feeds])
                    clock.advance(minutes=30)
                return done
        finally:
            store.close()

    return asyncio.run(go())


# -- 1. cookies: per feed, and one that cannot be sent is dropped -------------------------------


def test_a_feeds_unsendable_cookie_breaks_neither_it_nor_its_hosts_other_feeds(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Request] = []

    def host(req: Request) -> Reply:
        seen.append(req)
        if req.path == "/cookie_odd":
            # Latin-1 bytes and a tab in the value: http.cookiejar keeps it, no request can carry it
            return Reply(302, {"Location": "/cookie_odd/feed", "Set-Cookie": "e=\tb\xe9\xff; Path=/"})
        return rss(req.path.strip("/").replace("/", "-"))

    with Server(host) as server:
        names = ["cookie_odd", "loc_file", "creds", "loc_nonascii"]
        config = feeds_config(tmp_path, {n: f"{server.base}/{n}" for n in names})
        with caplog.at_level(logging.WARNING):
            rounds = poll_rounds(config, clock, 2)
    for outcomes in rounds:
        assert [(o.feed, o.status, o.error) for o in outcomes] == [(n, "ok", None) for n in names]
    assert not any("cookie" in r.headers for r in seen)
    assert any("cookie" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


def test_cookies_live_for_one_fetch_never_shared_between_feeds_or_polls(tmp_path: Path, clock: Clock) -> None:
    seen: list[tuple[str, str | None]] = []

    def host(req: Request) -> Reply:
        seen.append((req.path, req.headers.get("cookie")))
        if req.path == "/consent":
            return Reply(302, {"Location": "/consent/feed", "Set-Cookie": "ok=1; Path=/"})
        return rss("x")

    with Server(host) as server:
        config = feeds_config(tmp_path, {"consent": f"{server.base}/consent", "neighbour": f"{server.base}/other"})
        poll_rounds(config, clock, 2)
    assert seen == [
        ("/consent", None),
        ("/consent/feed", "ok=1"),  # the redirect that set it gets it back
        ("/other", None),  # another feed of the same host does not
        ("/consent", None),  # nor the next poll
        ("/consent/feed", "ok=1"),
        ("/other", None),
    ]


# -- 2. validators that cannot brick a feed ------------------------------------------------------

CONTROL_BYTES = [c for c in [*range(0x20), 0x7F] if chr(c) not in "\r\n"]


@pytest.mark.parametrize("byte", CONTROL_BYTES, ids=[f"0x{c:02x}" for c in CONTROL_BYTES])
def test_a_validator_with_a_control_byte_never_bricks_its_feed(tmp_path: Path, clock: Clock, byte: int) -> None:
    c = chr(byte)
    asked: list[Request] = []
    fixed = threading.Event()

    def server(req: Request) -> Reply:
        asked.append(req)
        if fixed.is_set():
            return rss("f", ETag='"clean"', **{"Last-Modified": "Tue, 21 Jan 2025 00:00:00 GMT"})
        return rss("f", ETag=f'"a{c}b"', **{"Last-Modified": f"Tue, 21 Jan 2025{c}00:00:00 GMT"})

    with Server(server) as feed:
        config = feeds_config(tmp_path, {"f": feed.base + "/feed"})
        poll_rounds(config, clock, 2)  # the bad validators come twice
        fixed.set()
        (after,) = poll_rounds(config, clock, 1)
    assert after[0].status == "ok", after  # the fixed server was asked, and answered
    assert len(asked) == 3
    for req in asked:
        for name in ("if-none-match", "if-modified-since"):
            assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", req.headers.get(name, "")), req.headers
    store = open_store(config)
    try:
        state = store.feed_state(feed.base + "/feed")
    finally:
        store.close()
    assert state.etag == '"clean"' and state.last_modified == "Tue, 21 Jan 2025 00:00:00 GMT"


def test_a_bad_validator_is_logged_once_and_one_stored_by_an_older_version_is_dropped(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[Request] = []

    def server(req: Request) -> Reply:
        asked.append(req)
        return rss("f", ETag='"a\x0bb\x1bc\x7f"')

    with Server(server) as feed:
        config = feeds_config(tmp_path, {"f": feed.base + "/feed"})
        store = open_store(config)
        try:  # what an older feedbot stored
            store.claim_feed(feed.base + "/feed", "f", "local", clock.now, timedelta(0), timedelta(seconds=10))
            store.record_poll(
                feed.base + "/feed", "f", clock.now, etag='"old\x1b"', last_modified=None, take=[], skip=[], present=[]
            )
        finally:
            store.close()
        with caplog.at_level(logging.WARNING, logger="feedbot"):
            rounds = poll_rounds(config, clock, 3)
    assert [o.status for (o,) in rounds] == ["ok", "ok", "ok"]
    assert [r.headers.get("if-none-match") for r in asked] == [None, None, None]
    warnings = [r.getMessage() for r in caplog.records if "ETag" in r.getMessage()]
    assert len(warnings) == 1, warnings


# -- 3. one entry's text costs that entry only ----------------------------------------------------


def test_an_entry_nested_too_deeply_costs_its_text_not_the_feed(tmp_path: Path) -> None:
    from html import escape

    deep = "<p>" + "<span>" * 1000 + "入れ子の本文" + "</span>" * 1000 + "</p>"
    doc = (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>深い記事</title><link>http://news.example/deep</link>"
        f"<pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate><description>{escape(deep)}</description></item>"
        "<item><title>普通の記事</title><link>http://news.example/fine</link>"
        "<pubDate>Tue, 21 Jan 2025 00:00:00 GMT</pubDate><description>普通の本文です。</description></item>"
        "</channel></rss>"
    ).encode()

    def handler(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "application/rss+xml"}, doc)

    with Server(handler) as server:
        path = write_toml(
            tmp_path,
            '[poll]\nfirst_poll = "all"\nmax_age = "none"\n'
            f'[[feeds]]\nname = "f"\nurl = "{server.base}/rss"\nbody = "feed"\n',
        )
        r = run_cli("--config", str(path), "poll")
    assert r.returncode == 0, r.stderr
    store = open_store(load_config(path, {}))
    try:
        items = {i.title: i.body for i in store.unbound_items()}
        state = store.feed_state(server.base + "/rss")
    finally:
        store.close()
    assert items == {"深い記事": (), "普通の記事": ("普通の本文です。",)}
    assert state.last_status == "ok-with-warning" and "深い記事" in (state.last_error or "")


# -- 4. one address policy for everything that fetches --------------------------------------------


@pytest.fixture
def inside() -> Iterator[tuple[Server, list[Request]]]:
    """A server "inside" (another port of 127.0.0.1): every request it gets is a finding."""
    hits: list[Request] = []

    def internal(req: Request) -> Reply:
        hits.append(req)
        return Reply(200, {"Content-Type": "application/rss+xml"}, RSS.format(title="deploy token AKIA-X").encode())

    with Server(internal) as server:
        yield server, hits


def plain_config(tmp_path: Path, extra: str = "") -> Path:
    """A config with no feeds; article pages and documents held to public addresses."""
    path = tmp_path / "config.toml"
    path.write_text(f'# mine\n[poll]\nfirst_poll = "all"\n{extra}\n', encoding="utf-8")
    return path


def test_add_refuses_an_alternate_inside_and_says_nothing_of_its_port(
    tmp_path: Path, inside: tuple[Server, list[Request]]
) -> None:
    internal, hits = inside
    alternates = [internal.base + "/internal/feed.xml", "http://127.0.0.1:9/closed.xml", "http://169.254.169.254/"]

    def page(req: Request) -> Reply:
        links = "".join(f'<link rel="alternate" type="application/rss+xml" href="{a}">' for a in alternates)
        return Reply(200, {"Content-Type": "text/html"}, f"<html><head>{links}</head></html>".encode())

    path = plain_config(tmp_path)
    before = path.read_bytes()
    with Server(page) as site:
        r = run_cli("--config", str(path), "add", site.base + "/", "--dry-run")
    assert r.returncode == 1 and hits == [] and path.read_bytes() == before
    assert "AKIA" not in r.stdout + r.stderr
    said, hint = r.stderr.strip().split(" (an address found in a page", 1)
    assert said.count("refused") == 3 and "--allow-private" in hint, said
    # the open port, the closed one and the metadata address read the same, but for the address
    notes = said.split("none could be read: ", 1)[1].split("; ")
    reasons = {re.sub(r"\d+\.\d+\.\d+\.\d+", "ADDR", n.split(": refused", 1)[1]) for n in notes}
    assert reasons == {": ADDR is a non-public address"}, notes


def test_add_takes_the_address_typed_but_not_where_it_redirects_inside(
    tmp_path: Path, inside: tuple[Server, list[Request]]
) -> None:
    internal, hits = inside

    def site(req: Request) -> Reply:
        if req.path == "/moved":
            return Reply(302, {"Location": "/feed"})  # the same origin: still the user's address
        if req.path == "/away":
            return Reply(302, {"Location": internal.base + "/feed"})
        return rss("mine")

    path = plain_config(tmp_path)
    with Server(site) as server:
        typed = run_cli("--config", str(path), "add", server.base + "/moved", "--dry-run")
        away = run_cli("--config", str(path), "add", server.base + "/away", "--dry-run")
        allowed = run_cli("--config", str(path), "add", server.base + "/away", "--dry-run", "--allow-private")
    assert typed.returncode == 0 and "mine" in typed.stdout, typed.stderr
    assert away.returncode == 1 and "refused" in away.stderr and "AKIA" not in away.stdout + away.stderr
    assert len(hits) == 1  # only with --allow-private
    assert allowed.returncode == 0 and "AKIA" in allowed.stdout


def test_a_feed_redirected_inside_is_refused_at_every_poll(
    tmp_path: Path, clock: Clock, inside: tuple[Server, list[Request]]
) -> None:
    internal, hits = inside

    def site(req: Request) -> Reply:
        return Reply(302, {"Location": internal.base + "/feed"})

    with Server(site) as server:
        config = feeds_config(tmp_path, {"f": server.base + "/feed"})
        rounds = poll_rounds(config, clock, 2)
        allowed = feeds_config(tmp_path / "allowed", {"f": server.base + "/feed"}, "allow_private_addresses = true")
        (followed,) = poll_rounds(allowed, clock, 1)
    assert hits and all(h.path == "/feed" for h in hits) and len(hits) == 1  # only where allowed
    for (outcome,) in rounds:
        assert outcome.status == "error" and "refused" in (outcome.error or ""), outcome
    assert followed[0].status == "ok"


def test_opml_import_refuses_outlines_inside_with_one_sentence_each(tmp_path: Path) -> None:
    outlines = {
        "loopback": "http://127.0.0.1:8080/feed",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "private": "http://10.0.0.5/rss",
        "v6": "http://[::1]/rss",
        "localhost": "http://localhost:1200/rss",
        "public": "https://203.0.114.7/rss",  # a public address, no DNS needed
    }
    opml = tmp_path / "list.opml"
    body = "".join(f'<outline text="{n}" type="rss" xmlUrl="{u}"/>' for n, u in outlines.items())
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>{body}</body></opml>', encoding="utf-8")
    path = plain_config(tmp_path)
    r = run_cli("--config", str(path), "opml", "import", str(opml))
    assert r.returncode == 0, r.stderr
    assert [f.name for f in load_config(path).feeds] == ["public"]
    assert "5 skipped, not public addresses" in r.stdout, r.stdout
    for name in ("loopback", "metadata", "private", "v6", "localhost"):
        (line,) = [x for x in r.stdout.splitlines() if x.strip().startswith(name + " ")]
        assert "non-public address" in line, line
    assert "--allow-private" in r.stdout
    (tmp_path / "flagged").mkdir()
    flagged = plain_config(tmp_path / "flagged")
    r = run_cli("--config", str(flagged), "opml", "import", str(opml), "--allow-private")
    assert r.returncode == 0 and len(load_config(flagged).feeds) == 6, r.stdout + r.stderr
    (tmp_path / "configured").mkdir()
    configured = plain_config(tmp_path / "configured", "allow_private_addresses = true")
    r = run_cli("--config", str(configured), "opml", "import", str(opml))
    assert r.returncode == 0 and len(load_config(configured).feeds) == 6, r.stdout + r.stderr


# -- 6. a PostgreSQL URL libpq would read otherwise -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://feedbot:XYZ@secret-tail@127.0.0.1:5432/feedbot",
        "postgresql://feedbot:XYZ/secret-tail@127.0.0.1:5432/feedbot",
        "postgresql://feedbot:XYZ?secret-tail@127.0.0.1:5432/feedbot",
        "postgresql://feedbot:XYZ#secret-tail@127.0.0.1:5432/feedbot",
    ],
)
def test_check_refuses_a_database_url_libpq_reads_otherwise_and_shows_no_password(tmp_path: Path, url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[state]\nurl = "{url}"\n', encoding="utf-8")
    secret = tmp_path / "url"
    secret.write_text(url, encoding="utf-8")
    from_file = tmp_path / "from-file.toml"
    from_file.write_text(f'[state]\nurl_file = "{secret}"\n', encoding="utf-8")
    said = ""
    for command in (["check"], ["status"], ["poll"]):
        r = run_cli("--config", str(path), *command)
        assert r.returncode == 2, r.stdout + r.stderr
        said += r.stdout + r.stderr
    r = run_cli("--config", str(from_file), "check")
    assert r.returncode == 2
    said += r.stdout + r.stderr
    (tmp_path / "sqlite").mkdir()
    copy = run_cli("--config", str(plain_config(tmp_path / "sqlite")), "state", "copy", "--to", url)
    assert copy.returncode == 2
    said += copy.stdout + copy.stderr
    assert "percent-encode" in said and "%40" in said and "url_file" in said
    for part in ("XYZ", "secret", "tail"):
        assert part not in said, said


# -- 7. numbering and edits stay linear ----------------------------------------------------------

LINEAR = {
    "opml numbering": "from bot.opml import Opml, Outline, plan_import\n"
    "plan = plan_import(Opml('x', tuple(Outline('Same', f'https://h.example/{n}') for n in range(40_000))), [], 'x')\n"
    "assert plan.add[-1].name == 'Same (40000)', plan.add[-1].name",
    "remove from 30,000 feeds": "from pathlib import Path\nfrom bot.configfile import ConfigFile\n"
    "text = '# mine\\n' + ''.join(f'\\n[[feeds]]\\n# from x\\nname = \"f{n}\"\\nurl = \"https://h.example/{n}\"\\n'"
    " for n in range(30_000))\n"
    "f = ConfigFile(Path('/tmp/x.toml'), text)\nf.validate({})\nf.remove_feed('f15000')\n"
    "assert len(f.validate({}).feeds) == 29_999 and 'f15000\"' not in f.text",
}


@pytest.mark.parametrize("code", list(LINEAR.values()), ids=list(LINEAR))
def test_config_work_grows_linearly(code: str) -> None:
    """In a process with a CPU-time limit of 20 s, far above what linear
    work on these sizes costs (bench/configedit.py has the figures); the
    quadratic numbering and table search took minutes."""
    limited = f"import resource; resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n{code}"
    r = subprocess.run([sys.executable, "-c", limited], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


TRICKY = '''# head
[poll]
x = 1

[[feeds]]
# commented header note
name = "a"
url = "https://a.example/1"
# body = "auto"

# --- banner of b ---
[[feeds]]  # b's
name = "b"
include = [
  "x",
  # inner
  "y",
]
url = "https://a.example/2"
# trailing
# more

[[feeds]]
name = "c"
url = "https://a.example/3"
headline = """
# not a comment

"""

[[feeds]]
name = "d"
url = "https://a.example/4"
headline = """
[not a header]

# x"""
# after d
[[topics]]
tag = "t"
match = ["a"]
'''


@pytest.mark.parametrize("which", ["shipped", "tricky"])
def test_a_fast_edit_is_byte_for_byte_the_edit_tomlkit_reads(which: str) -> None:
    """Tables found by their header lines (linear) give exactly the edit
    found through tomlkit's reading of the whole file (ten times slower):
    each feed removed, and two appended."""
    from bot.configfile import ConfigFile, NewFeed

    text = (Path(__file__).resolve().parent.parent / "config.toml").read_text() if which == "shipped" else TRICKY
    path = Path("/nonexistent/config.toml")

    def by_tomlkit(edit: str, arg: object) -> str:
        slow = ConfigFile(path, text)
        tables = slow._tables()
        if edit == "remove":
            (start, end) = next((s, e) for v, s, e in tables if v["name"] == arg)
            return slow._cut(start, end)
        return slow._inserted(arg, tables[-1][2])  # type: ignore[arg-type]

    for name in [v["name"] for v in ConfigFile(path, text).feeds()]:
        fast = ConfigFile(path, text)
        fast.remove_feed(name)
        assert fast.text == by_tomlkit("remove", name), name
    new = [NewFeed("n1", "https://n.example/1", comments=("from x",)), NewFeed("n2", "https://n.example/2", body="-")]
    fast = ConfigFile(path, text)
    fast.add_feeds(new)
    assert fast.text == by_tomlkit("add", new)
