"""Mastodon: ``POST /api/v1/statuses`` on a server (``url``, an access ``token``).

The server's limit is read from the instance API
(``configuration.statuses.max_characters``; 500 when it cannot be read),
counted as Mastodon counts, or more (``mastodon_length``).  A digest is a
thread: each status after the first replies to the one before (its id
kept in the outbox).  ``Idempotency-Key`` from the message's key: a status
sent again after a crash is recognised by the server.  Visibility
``unlisted`` by default; handles never mention anybody.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from bot.health import cap_hint
from bot.kinds.base import (
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    bearer,
    break_handles,
    break_shortcodes,
    choice,
    endpoint,
    json_message,
    positive,
    unique_key,
)
from bot.spans import URL

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

DEFAULT_LIMIT = 500
URL_LENGTH = 23  # a link Mastodon finds counts this much, whatever its length
# Mastodon finds a link with twitter-text's rule as its own initializer
# configures it (config/initializers/twitter_regex.rb); a link it does not
# find counts as the characters it is.  Counting a link as 23 where
# Mastodon would count its characters is the one way to count short, and a
# status that is too long is refused for good (HTTP 422).  So the count
# here can only be over: 23 only for the part of a link Mastodon surely
# finds (not glued to a letter, digit, @, $ or # before it; a host of
# letters, digits and hyphens under a known top-level domain; no userinfo;
# cut at a bracket and at the last character it may end with); the rest,
# and any other link, as characters; a mention's domain counted, which
# Mastodon does not; code points, never fewer than Mastodon's graphemes.
_NOT_BEFORE = frozenset("@＠$#＃\u202a\u202b\u202c\u202d\u202e")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_QUERY_CHARS = re.compile(r"[^a-zA-Z0-9!?*';:&=+$/%#\[\]\-_.,~|@^\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]")
_ENDS = re.compile(r"[A-Za-z0-9/_\-#=&]$")
TLDS = frozenset(
    """com net org info biz edu gov mil int name pro aero coop museum mobi asia tel travel jobs cat post xxx
    app dev io ai co me tv cc news blog online site xyz top tech store shop club live media world today cloud
    jp uk us de fr it es nl be ch at se no fi dk pl cz pt ie gr hu ro bg hr si sk lt lv ee ua ru by kz
    cn tw hk mo kr sg my th vn ph id in pk bd lk np au nz ca mx br ar cl co pe ve uy za eg ng ke ma tn il
    tr sa ae qa ir iq is lu li mt cy eu""".split()
)


def mastodon_length(text: str) -> int:
    """Characters as Mastodon counts a status, or more (never fewer)."""
    total, at = 0, 0
    for m in URL.finditer(text):
        url = m.group(0)
        counted = _counted_part(text, m.start(), url)
        total += m.start() - at + (URL_LENGTH + len(url) - len(counted) if counted else len(url))
        at = m.end()
    return total + len(text[at:])


def _counted_part(text: str, start: int, url: str) -> str:
    """The prefix of ``url`` that Mastodon surely counts as one link ("" if none)."""
    if start and ((text[start - 1].isalnum() and text[start - 1].isascii()) or text[start - 1] in _NOT_BEFORE):
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return ""
    if "@" in parts.netloc or not host:
        return ""
    labels = host.split(".")
    if len(labels) < 2 or labels[-1].lower() not in TLDS or not all(_HOST_LABEL.match(x) for x in labels):
        return ""
    for bracket in "()":
        if bracket in url:
            url = url[: url.index(bracket)]
    if "?" in url:
        head, _, query = url.partition("?")
        bad = _QUERY_CHARS.search(query)
        url = head + "?" + (query[: bad.start()] if bad else query)
    while url and not _ENDS.search(url):
        url = url[:-1]
    scheme_and_host = len(parts.scheme) + 3 + len(parts.netloc)
    return url if len(url) >= scheme_and_host else ""


class Mastodon(Kind):
    name = "mastodon"
    limit = DEFAULT_LIMIT

    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {
        "visibility": Option(choice("public", "unlisted", "private", "direct"), "unlisted")
    }
    reads_reply = True

    def measure(self, text: str) -> int:
        return mastodon_length(text)

    def text(self, text: str) -> str:
        # In text only: a link's "@" (medium.com/@writer) is not a handle.
        return break_shortcodes(break_handles(text))

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        visibility = webhook.options["visibility"] if webhook is not None else "unlisted"
        payload = {"status": text, "visibility": visibility}
        return json_message(payload, text)

    def limit_request(self, webhook: Webhook) -> HttpRequest | None:
        return HttpRequest("GET", endpoint(webhook, "/api/v2/instance"), {}, b"")

    def limit_from(self, reply: Reply) -> int | None:
        body = reply.json()
        try:
            return positive(body["configuration"]["statuses"]["max_characters"])  # type: ignore[index]
        except (KeyError, TypeError):
            return None

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        body = json.loads(msg.body)
        if previous is not None:
            body["in_reply_to_id"] = previous
        headers = {**bearer(webhook), "Idempotency-Key": unique_key(webhook, msg)}
        return HttpRequest("POST", endpoint(webhook, "/api/v1/statuses"), headers, json.dumps(body).encode())

    def remote_id(self, reply: Reply) -> str | None:
        body = reply.json()
        value = body.get("id") if isinstance(body, dict) else None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

    def retry_hint(self, reply: Reply) -> float | None:
        header = super().retry_hint(reply)
        if header is not None:
            return header
        reset = reply.headers.get("x-ratelimit-reset", "")
        try:
            when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return cap_hint(max(0.0, (when - datetime.now(UTC)).total_seconds()))


KIND = Mastodon()
