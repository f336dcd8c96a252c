"""Mastodon: ``POST /api/v1/statuses`` on a server (``url``, an access ``token``).

The server's limit is read from the instance API
(``configuration.statuses.max_characters``; 500 when it cannot be read),
counting every link as 23 characters as Mastodon does.  A digest is a
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

from bot.health import cap_hint
from bot.kinds.base import (
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    bearer,
    break_handles,
    choice,
    endpoint,
    json_message,
    positive,
    unique_key,
)

if TYPE_CHECKING:
    from bot.config import Webhook
    from bot.state.records import OutMessage

DEFAULT_LIMIT = 500
URL_LENGTH = 23  # every link counts this much, whatever its length
_URL = re.compile(r"https?://\S+")
# What Mastodon does not count as part of a link at its end.
_URL_TAIL = ".,:;!?)]}>'\"」』】）。、"


def mastodon_length(text: str) -> int:
    """Characters as Mastodon counts them: a link is 23, whatever its
    length; punctuation after it counts as itself."""
    return len(_URL.sub(lambda m: "x" * URL_LENGTH + "y" * (len(m.group(0)) - len(m.group(0).rstrip(_URL_TAIL))), text))


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

    def escape(self, line: str) -> str:
        return break_handles(line)

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
