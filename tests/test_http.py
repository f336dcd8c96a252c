"""The HTTP edges, against real loopback servers: every one bounded, every failure mapped.

One stack serves feeds, pages and webhooks (bot/transport.py: httpx's API
on aiohttp).  Each test here stands for a way a hostile or broken server
or link hurt feedbot before (issue 12), and checks that it now costs one
recorded error on the feed, item or message it concerns, in bounded time
and memory.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import resource
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import health
from bot.config import PollSettings, load_config
from bot.deliver import Deliverer
from bot.errors import DeliveryError, FetchError
from bot.fetch import PageFetcher, fetch_feed, make_client
from bot.guard import is_loopback
from bot.health import retry_after_seconds
from bot.loopback import Reply, Request, Server, throwaway_certificate
from bot.poll import Poller
from bot.state import OutMessage, open_store
from bot.transport import Client
from tests.conftest import ROOT, Clock, DynamicFeeds, FeedItem, run_cli, write_toml

SETTINGS = PollSettings(timeout=timedelta(seconds=1))
DAY = timedelta(days=1)


def rss(title: str) -> Reply:
    """A small, valid feed as a server's answer."""
    doc = f"<rss version='2.0'><channel><title>{title}</title></channel></rss>"
    return Reply(200, {"Content-Type": "application/rss+xml"}, doc.encode())


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _get_feed(url: str, settings: PollSettings = SETTINGS) -> object:
    pages = PageFetcher(settings)  # the guarded clients, for hops off the feed's origin
    try:
        async with make_client(settings) as client:
            return await fetch_feed(client, url, None, None, 2 * settings.timeout.total_seconds(), pages)
    finally:
        await pages.aclose()


# -- webhooks -----------------------------------------------------------------------


def _post(url: str, deadline: float = 1.0) -> DeliveryError | None:
    """One POST of one message by a real Deliverer; the error it ends in."""
    from bot.config import Webhook
    from bot.secrets import Secret

    webhook = Webhook(kind="json", url=Secret(url), name="hook", ident="name:hook")
    msg = OutMessage(digest_id=1, webhook="name:hook", seq=0, content_type="application/json", body=b'{"content": "x"}')

    async def go() -> DeliveryError | None:
        async with make_client(SETTINGS) as client:
            slept: list[float] = []

            async def sleep(s: float) -> None:
                slept.append(s)

            deliverer = Deliverer(client, None, lambda: datetime.now(UTC), sleep=sleep, deadline=deadline)  # type: ignore[arg-type]
            try:
                await deliverer.post(webhook, msg)
            except DeliveryError as exc:
                return exc
            return None

    return run(go())  # type: ignore[return-value]


def test_a_receiver_that_drips_its_answer_is_cut_at_the_deadline() -> None:
    stop = threading.Event()

    def drip() -> Iterator[bytes]:
        for _ in range(100):  # a byte every 0.2 s: never a read timeout, never an end
            if stop.wait(0.2):
                return
            yield b"x"

    def handler(req: Request) -> Reply:
        return Reply(500, {"Content-Length": "100"}, stream=drip)

    with Server(handler) as server:
        started = time.monotonic()
        error = _post(server.base + "/hook", deadline=1.0)
        elapsed = time.monotonic() - started
        stop.set()
    assert error is not None and "no complete answer within 1s" in str(error)
    assert elapsed < 4 * 1.0 + 2  # four attempts, each cut at its deadline


def test_a_compressed_reply_is_not_inflated_beyond_a_small_cap() -> None:
    bomb = gzip.compress(b"\0" * (300 * 1024 * 1024), 9)  # 300 MB of zeros in ~300 KB

    def handler(req: Request) -> Reply:
        return Reply(500, {"Content-Encoding": "gzip", "Content-Type": "text/plain"}, bomb)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Server(handler) as server:
        error = _post(server.base + "/hook")
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert error is not None and "HTTP 500" in str(error)
    assert growth_mb < 60


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inf", DAY.total_seconds()),
        ("1e300", DAY.total_seconds()),
        ("9" * 5000, DAY.total_seconds()),
        ("Fri, 31 Dec 9999 23:59:59 GMT", DAY.total_seconds()),
        ("-5", 0.0),
        ("nan", None),
    ],
    ids=["inf", "1e300", "5000-digits", "year-9999", "negative", "nan"],
)
def test_a_huge_retry_after_from_a_webhook_is_capped(value: str, expected: float | None) -> None:
    def handler(req: Request) -> Reply:
        return Reply(429, {"Retry-After": value}, b"slow down")

    with Server(handler) as server:
        error = _post(server.base + "/hook")
    assert error is not None and error.status == 429
    assert error.retry_after == expected


def test_discords_json_retry_after_is_capped_too() -> None:
    def handler(req: Request) -> Reply:
        return Reply(429, {"Content-Type": "application/json"}, b'{"message": "rate limited", "retry_after": 1e308}')

    with Server(handler) as server:
        error = _post(server.base + "/hook")
    assert error is not None and error.retry_after == DAY.total_seconds()


def test_a_webhook_url_with_whitespace_fails_check(tmp_path: Path) -> None:
    url_file = tmp_path / "hook.url"
    url_file.write_text("https://discord.example/api/webhooks/1/abc\nhttps://discord.example/api/webhooks/2/def\n")
    config = write_toml(tmp_path, f'[[webhooks]]\nkind = "discord"\nurl_file = "{url_file}"\n')
    r = run_cli("--config", str(config), "check")
    assert r.returncode == 2
    assert "webhooks[0].url_file: contains whitespace or control characters" in r.stderr
    assert "abc" not in r.stderr + r.stdout  # the secret is not echoed


# -- feeds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "1e300"}, DAY),
        ({"Retry-After": "inf"}, DAY),
        ({"Retry-After": "9" * 5000}, DAY),
    ],
)
def test_a_huge_hint_on_a_failing_feed_is_capped(headers: dict[str, str], expected: timedelta) -> None:
    def handler(req: Request) -> Reply:
        return Reply(429, headers, b"")

    with Server(handler) as server, pytest.raises(FetchError) as caught:
        run(_get_feed(server.base + "/feed"))
    assert caught.value.retry_after == expected.total_seconds()
    assert health.after_failure(timedelta(minutes=15), 1, caught.value.retry_after) == expected


def test_huge_max_age_and_ttl_on_a_good_feed_are_capped() -> None:
    m15 = timedelta(minutes=15)
    assert health.after_success(m15, {"Cache-Control": "max-age=" + "9" * 5000}, None) == DAY
    assert health.after_success(m15, {}, 10**15) == DAY
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT") == DAY.total_seconds()
    assert retry_after_seconds("garbage") is None


def test_a_feed_with_a_huge_ttl_polls_and_waits_a_day(tmp_path: Path, clock: Clock) -> None:
    ttl = "9" * 5000
    doc = f"<rss version='2.0'><channel><title>t</title><ttl>{ttl}</ttl><item><title>a</title><link>http://127.0.0.1/a</link></item></channel></rss>"

    def handler(req: Request) -> Reply:
        return Reply(200, {"Content-Type": "application/rss+xml", "Cache-Control": "max-age=1e999"}, doc.encode())

    with Server(handler) as server:
        config = load_config(
            write_toml(
                tmp_path, f'[poll]\nfirst_poll = "all"\n[[feeds]]\nname = "t"\nurl = "{server.base}/f"\nbody = "none"\n'
            ),
            {},
        )
        store = open_store(config)

        async def go() -> None:
            async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                (outcome,) = await poller.poll_all(config.feeds)
                assert outcome.status == "ok", outcome

        try:
            run(go())
            state = store.feed_state(server.base + "/f")
            assert state.next_poll_at is not None and state.next_poll_at - clock.now == DAY
        finally:
            store.close()


# -- links, redirects and bodies that do not parse ---------------------------------------


def test_bad_links_and_redirects_cost_their_item_its_body_not_the_feed_its_poll(
    tmp_path: Path, feeds: DynamicFeeds, clock: Clock
) -> None:
    site_requests: list[Request] = []

    def site(req: Request) -> Reply:
        site_requests.append(req)
        html = {"Content-Type": "text/html; charset=utf-8"}
        match req.path:
            case "/to-big-port":
                return Reply(302, {"Location": "http://news.example:99999/x"})
            case "/to-open-bracket":
                return Reply(302, {"Location": "http://[::1/x"})
            case "/to-tab":
                return Reply(302, {"Location": "http://news.example/a\tb"})
            case "/fake-gzip":
                return Reply(
                    200, {**html, "Content-Encoding": "gzip"}, b"<html><body><p>not gzip at all</p></body></html>"
                )
            case "/good":
                return Reply(
                    200,
                    html,
                    "<html><body><article><p>本文はここにあります。これは記事の本文です。十分な長さの段落です。</p></article></body></html>".encode(),
                )
        return Reply(404, {}, b"")

    with Server(site) as server:
        base = server.base
        links = {
            "big-port": "http://127.0.0.1:99999/a",
            "open-bracket": "http://[::1/a",
            "to-big-port": base + "/to-big-port",
            "to-open-bracket": base + "/to-open-bracket",
            "to-tab": base + "/to-tab",
            "fake-gzip": base + "/fake-gzip",
            "good": base + "/good",
        }
        feeds.feeds["site"] = [
            FeedItem(name, name, link, clock.now - timedelta(hours=1), f"{name}のフィード本文")
            for name, link in links.items()
        ]
        text = (
            '[poll]\ntimeout = "1s"\nfirst_poll = "all"\nhost_spacing = "0s"\nallow_private_addresses = true\n'
            f'[[feeds]]\nname = "site"\nurl = "{feeds.feed_url("site")}"\n'
        )
        config = load_config(write_toml(tmp_path, text), {})
        store = open_store(config)

        async def go() -> None:
            async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                (outcome,) = await poller.poll_all(config.feeds)
                assert outcome.status == "ok" and outcome.new == len(links), outcome

        try:
            run(go())
            bodies = {i.title: i.body for i in store.unbound_items()}
        finally:
            store.close()
    assert set(bodies) == set(links)  # every item stored
    for name in links:
        if name != "good":
            assert bodies[name] == (f"{name}のフィード本文",), name  # the feed's own text, in place of the page's
    assert bodies["good"][0].startswith("本文はここにあります")


def test_no_empty_cookie_header_on_redirects_and_credentials_stay_on_their_origin() -> None:
    seen: list[Request] = []

    def other(req: Request) -> Reply:
        seen.append(req)
        return rss("x")

    with Server(other, "127.0.0.3") as elsewhere:

        def first(req: Request) -> Reply:
            seen.append(req)
            if req.path == "/start":
                return Reply(302, {"Location": "/next"})
            return Reply(302, {"Location": elsewhere.base + "/feed"})

        with Server(first) as server:
            url = server.base.replace("http://", "http://user:pass@") + "/start"
            # 127.0.0.3 stands for another public host here
            run(_get_feed(url, PollSettings(timeout=timedelta(seconds=1), allow_private_addresses=True)))
    assert [r.path for r in seen] == ["/start", "/next", "/feed"]
    assert all("cookie" not in r.headers for r in seen)
    assert "authorization" in seen[0].headers and "authorization" in seen[1].headers
    assert "authorization" not in seen[2].headers  # another origin: the credentials stay behind


def test_a_server_that_sets_a_cookie_on_a_redirect_gets_it_back() -> None:
    seen: list[Request] = []

    def handler(req: Request) -> Reply:
        seen.append(req)
        if req.path == "/start":
            return Reply(302, {"Location": "/feed", "Set-Cookie": "check=1; Path=/"})
        return rss("x")

    with Server(handler) as server:
        run(_get_feed(server.base + "/start"))
    assert seen[1].headers.get("cookie") == "check=1"


# -- TLS and proxies -----------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return throwaway_certificate(tmp_path)


def test_https_verifies_the_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)

    def handler(req: Request) -> Reply:
        return Reply(
            200,
            {"Content-Type": "application/rss+xml", "ETag": '"1"'},
            b"<rss version='2.0'><channel><title>tls</title></channel></rss>",
        )

    with Server(handler) as server:
        server.httpd.socket = server_ssl.wrap_socket(server.httpd.socket, server_side=True)
        url = server.base.replace("http://", "https://") + "/feed"
        with pytest.raises(FetchError, match="certificate"):
            run(_get_feed(url))  # a certificate nobody vouches for
        trusting = ssl.create_default_context(cafile=str(cert))

        async def trusted() -> object:
            options = {"ssl_context": trusting, "max_connections": 2}
            async with Client(transport_options=options, follow_redirects=True) as client:
                return await fetch_feed(client, url, None, None, 5.0)

        response = run(trusted())
    assert response.status == 200 and b"tls" in response.content  # type: ignore[attr-defined]


def test_tls_context_is_built_on_the_first_https_request(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27: a run of plain-HTTP feeds loads no CA store; the first HTTPS
    request builds the one context, which still verifies."""
    from bot import tls

    built: list[ssl.SSLContext] = []
    real = tls.context.__wrapped__

    def counted() -> ssl.SSLContext:
        built.append(real())
        return built[-1]

    monkeypatch.setattr(tls, "context", functools.lru_cache(maxsize=1)(counted))
    with Server(lambda req: rss("plain")) as server:
        response = run(_get_feed(server.base + "/feed"))
    assert response.status == 200 and not built  # type: ignore[attr-defined]
    cert, key = certificate
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)
    with Server(lambda req: rss("tls")) as server:
        server.httpd.socket = server_ssl.wrap_socket(server.httpd.socket, server_side=True)
        with pytest.raises(FetchError, match="certificate"):
            run(_get_feed(server.base.replace("http://", "https://") + "/feed"))
    assert len(built) == 1 and built[0].verify_mode == ssl.CERT_REQUIRED and built[0].check_hostname


def test_importing_the_http_stack_loads_no_ca_store() -> None:
    """aiohttp's import-time default contexts load no CA store (bot/tls.py);
    a connection that used one would trust nothing (fails closed)."""
    code = (
        "import ssl\n"
        "loads = []\n"
        "real = ssl.SSLContext.load_verify_locations\n"
        "ssl.SSLContext.load_verify_locations = lambda self, *a, **k: (loads.append(a), real(self, *a, **k))[1]\n"
        "import bot.cli, bot.fetch, bot.poll, aiohttp.connector as c\n"
        "from bot.config import PollSettings\n"
        "bot.fetch.make_client(PollSettings())\n"
        "default = c._SSL_CONTEXT_VERIFIED\n"
        "print(len(loads), default.cert_store_stats()['x509_ca'], default.verify_mode)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["0", "0", str(int(ssl.CERT_REQUIRED))]


def test_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Request] = []

    def proxy(req: Request) -> Reply:
        seen.append(req)
        return rss("p")

    def direct(req: Request) -> Reply:
        return rss("d")

    with Server(proxy) as server, Server(direct, "127.0.0.3") as origin:
        monkeypatch.setenv("HTTP_PROXY", server.base.replace("http://", "http://me:pa55@"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.3")
        monkeypatch.delenv("no_proxy", raising=False)
        response = run(_get_feed("http://feeds.example/rss"))
        bypassed = run(_get_feed(origin.base + "/rss"))

        async def page() -> object:
            pages = PageFetcher(PollSettings(timeout=timedelta(seconds=1), allow_private_addresses=True))
            try:
                monkeypatch.delenv("NO_PROXY")
                return await pages.fetch(origin.base + "/page", origin.base + "/rss", 5.0)
            finally:
                await pages.aclose()

        direct_page = run(page())  # pages never go through a proxy: the guard could not see where it connects
    assert response.status == 200 and b"<title>p" in response.content  # type: ignore[attr-defined]
    assert seen[0].path == "http://feeds.example/rss"  # the absolute form a proxy is sent
    assert seen[0].headers.get("proxy-authorization") == "Basic bWU6cGE1NQ=="  # me:pa55
    assert b"<title>d" in bypassed.content and len(seen) == 1  # type: ignore[attr-defined]
    assert direct_page.status == 200 and len(seen) == 1  # type: ignore[attr-defined]


# -- the article-page guard on the transport -----------------------------------------------------


def test_a_name_is_resolved_once_per_connection_and_rebinding_is_caught() -> None:
    """The first answer is public, any later one private: the connection is
    made to the checked first answer, never after a second lookup."""
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.2"] if len(calls) == 1 else ["127.0.0.3"]

    hits: list[str] = []

    def public_site(req: Request) -> Reply:
        hits.append("public")
        return Reply(200, {"Content-Type": "text/html"}, b"<html><body><p>ok</p></body></html>")

    def internal(req: Request) -> Reply:
        hits.append("internal")
        return Reply(200, {"Content-Type": "text/html"}, b"secret")

    with Server(public_site, "127.0.0.2") as site, Server(internal, "127.0.0.3"):
        port = site.base.rsplit(":", 1)[1]

        async def go() -> object:
            pages = PageFetcher(SETTINGS, resolver=rebinding, public=lambda a: a == "127.0.0.2")
            try:
                return await pages.fetch(f"http://rebind.example:{port}/a", "https://feeds.example/rss", 5.0)
            finally:
                await pages.aclose()

        page = run(go())
    assert page.status == 200 and hits == ["public"]  # type: ignore[attr-defined]
    assert calls == ["rebind.example"]


def test_the_feeds_own_origin_is_exact(tmp_path: Path) -> None:
    """A feed on an intranet host may link to its own pages, not to another
    port of the same host; a feed on loopback (a local bridge) gets no
    exception at all."""
    hits: list[str] = []

    def bridge(req: Request) -> Reply:
        hits.append(req.path)
        return Reply(200, {"Content-Type": "text/html"}, b"<html><body><p>bridge page</p></body></html>")

    with Server(bridge) as own, Server(bridge) as other:

        async def go(link: str, loopback: Callable[[str], bool]) -> object:
            pages = PageFetcher(SETTINGS, loopback=loopback)
            try:
                return await pages.fetch(link, own.base + "/feed.xml", 5.0)
            finally:
                await pages.aclose()

        def intranet(address: str) -> bool:
            return False  # here 127.0.0.1 stands for an intranet address

        assert run(go(own.base + "/mine", intranet)).status == 200  # type: ignore[attr-defined]
        with pytest.raises(FetchError, match="refused"):
            run(go(other.base + "/not-mine", intranet))
        with pytest.raises(FetchError, match="refused"):
            run(go(own.base.replace("127.0.0.1", "[::ffff:127.0.0.1]") + "/mapped", intranet))
        with pytest.raises(FetchError, match="refused"):
            run(go(own.base + "/bridge", is_loopback))  # the real classification: loopback
    assert hits == ["/mine"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {b"If-None-Match": b'"v1"', b"If-Modified-Since": b"Mon, 06 Jan 2025 00:00:00 GMT"},
        {b"accept": b"text/html", b"X-Feed": b"1"},  # a client default replaced, whatever its case
    ],
)
def test_a_request_is_built_as_httpx_builds_it(headers: dict[bytes, bytes]) -> None:
    """fetch._get_request skips build_request's merges (issue 27): the same
    request, header for header, in order, with the client's timeouts."""
    import httpx

    from bot.fetch import _get_request

    async def go() -> tuple[httpx.Request, httpx.Request]:
        async with make_client(PollSettings()) as client:
            url = httpx.URL("http://127.0.0.1:8080/feed.xml?x=1")
            return _get_request(client, url, headers), client.build_request("GET", url, headers=headers)

    ours, theirs = asyncio.run(go())
    assert (ours.method, ours.url, ours.headers.raw) == (theirs.method, theirs.url, theirs.headers.raw)
    assert ours.extensions == theirs.extensions
    assert ours.read() == theirs.read() == b""


def test_one_hop_without_the_clients_layers_is_what_send_gives() -> None:
    """Client.send_hop skips httpx's auth, redirect and hook layers when they
    have nothing to do (issue 27): the same status, headers, body and next
    request as ``send(follow_redirects=False, stream=True)``; with
    credentials in the URL it is ``send`` itself; a closed client refuses."""

    def handler(req: Request) -> Reply:
        if req.path == "/moved":
            return Reply(301, {"Location": "/feed?x=1", "Set-Cookie": "a=1"})
        if req.headers.get("if-none-match") == '"v1"':
            return Reply(304, {"ETag": '"v1"'})
        seen_auth.append(req.headers.get("authorization"))
        return rss("x")

    seen_auth: list[str | None] = []

    async def both(client: Client, url: str, headers: dict[str, str]) -> list[tuple[object, ...]]:
        got = []
        for send in (client.send_hop, lambda r: client.send(r, follow_redirects=False, stream=True)):
            r = await send(client.build_request("GET", url, headers=headers))
            try:
                body = await r.aread()
                nxt = r.next_request
                got.append(
                    (
                        r.status_code,
                        [(k, v) for k, v in r.headers.raw if k.lower() != b"date"],
                        body,
                        str(r.request.url),
                        None if nxt is None else (str(nxt.url), nxt.headers.raw),
                    )
                )
            finally:
                await r.aclose()
        return got

    async def go(base: str) -> None:
        async with make_client(SETTINGS) as client:
            for path, headers in (("/feed", {}), ("/feed", {"If-None-Match": '"v1"'}), ("/moved", {"X-A": "b"})):
                ours, theirs = await both(client, base + path, headers)
                assert ours == theirs
                if path == "/moved":
                    assert ours[4] is not None and str(ours[4][0]).endswith("/feed?x=1")
            await both(client, base.replace("http://", "http://u:p@") + "/feed", {})
        with pytest.raises(RuntimeError, match="closed"):
            await client.send_hop(client.build_request("GET", base + "/feed"))

    with Server(handler) as server:
        run(go(server.base))
    assert seen_auth[:2] == [None, None]
    assert seen_auth[2:] == ["Basic dTpw"] * 2  # base64 of "u:p"
