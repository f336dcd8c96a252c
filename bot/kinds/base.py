"""What every kind of destination shares: the message record, the request
shape, the reply, and the base class a kind fills in.

A kind is one small module (``bot/kinds/telegram.py``…) that says:

* its configuration keys beyond ``kind`` and ``name`` (``url``, a secret
  such as ``token``, options such as ``chat_id``), checked by ``feedbot
  check`` with the key's path;
* its limit per message and how the platform counts it;
* how feed text is made inert there (mentions, markup);
* the body of each message (pure: stored in the outbox, so a crash never
  rebuilds it differently, and never holding a secret);
* the request that carries a stored message (method, URL, headers; secrets
  are added here, at send time), and the platform's own retry hints.

Splitting between items (``bot/render.split``), retries, backoff and the
outbox's in-flight rule are shared (``bot/deliver.py``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from bot.errors import Refused
from bot.health import cap_hint, retry_after_seconds
from bot.models import DeliveryProblem, FailingFeed, Rendered
from bot.render import split, utf16_len
from bot.spans import escape_line

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook
    from bot.secrets import Secret
    from bot.state.records import OutMessage

Measure = Callable[[str], int]
# Statuses that refuse one request's content (invalid, too large, of a type
# not taken, unprocessable); any other 4xx that is not retried (401, 403,
# 404, 405, 410…) refuses the destination.
MESSAGE_REFUSALS = frozenset({400, 413, 414, 415, 422})
ZWSP = "\u200b"
# "@name" (a handle, an e-mail's user part is preceded by a letter and left
# alone): broken with a zero-width space after "@" where the platform
# would turn it into a mention that notifies someone.
_AT_HANDLE = re.compile(r"(?<!\w)([@＠])(?=[\w.\-]*\w)", re.ASCII)  # the full-width ＠ too (twitter-text's)


@dataclass(frozen=True)
class Message:
    body: bytes
    content_type: str
    text: str  # what people will read, for logs and tests


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """A platform's answer, read to at most 64 KB."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None


REQUIRED: Any = object()  # an option without a default


@dataclass(frozen=True)
class Option:
    convert: Callable[[Any], Any]  # raises ValueError/TypeError with a message for the user
    default: Any = REQUIRED


class Kind:
    """The base of every kind; class attributes are the kind's facts."""

    name: ClassVar[str] = ""
    limit: ClassVar[int] = 0  # per message, as ``measure`` counts; 0: one message per digest
    # ``url``: REQUIRED, a default (an API's public address), or None (no url key).
    url: ClassVar[Any] = REQUIRED
    url_is_secret: ClassVar[bool] = True  # a webhook URL is a credential; a server's address is not
    # The URL alone lets anyone post (Discord, Slack, Teams, Google Chat): it
    # never travels unencrypted, but to this machine.  json and text
    # endpoints are the operator's own, often on a LAN, and signed instead.
    https_only: ClassVar[bool] = False
    secret: ClassVar[str | None] = None  # the secret key's name ("token", "password"): key and key_file
    secret_required: ClassVar[bool] = True
    signed: ClassVar[bool] = False  # takes ``secret``/``secret_file`` (HMAC), as json and text do
    options: ClassVar[dict[str, Option]] = {}
    reads_reply: ClassVar[bool] = False  # the 2xx answer carries an id the next message needs
    transport: ClassVar[str] = "http"  # or "smtp" (bot/smtp.py sends those)

    def check(self, options: Mapping[str, Any], token: Secret | None, url: str) -> tuple[str, str] | None:
        """A problem between keys (the key, what is wrong), or None.  A
        token never travels unencrypted, but to this machine."""
        parts = urlsplit(url)  # the scheme lowercased: HTTP:// is http://
        if parts.scheme != "http" or loopback(parts.hostname or ""):
            return None
        if token is not None:
            return "url", "is http://: the token would travel unencrypted (use https://)"
        if self.https_only:
            return "url", f"is http://: a {self.name} webhook URL is itself the credential (use https://)"
        return None

    def address(self, options: Mapping[str, Any]) -> str:
        """Where a kind without ``url`` sends, as logs and ``status`` show it."""
        return ""

    # -- building (pure) ------------------------------------------------------------

    def measure(self, text: str) -> int:
        """A message's size as the platform counts it (UTF-16 units, as
        JavaScript does, unless a kind says otherwise)."""
        return utf16_len(text)

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        """The digest's messages for this kind, in order."""
        texts = chunks(rendered, zone, limit or self.limit, self.escape, self.measure)
        return [self.message(text, digest_id, n, webhook) for n, text in enumerate(texts)]

    def escape(self, line: str, links: Sequence[str] = ()) -> str:
        """A line made inert on this platform: its text spans through
        ``text``, its links (``links``: the item's own, found exactly; any
        other URL, by ``bot.spans.URL``) through ``link``."""
        return escape_line(line, links, self.text, self.link)

    def text(self, text: str) -> str:
        """Text (no link in it) as the platform will show it as written."""
        return text

    def link(self, url: str) -> str:
        """A link, as the platform will link all of it and change none of it."""
        return url

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        raise NotImplementedError

    def limit_request(self, webhook: Webhook) -> HttpRequest | None:
        """Where the platform lets servers choose the limit (Misskey,
        Mastodon): the request that asks the server (bot/digest.py sends it)."""
        return None

    def limit_from(self, reply: Reply) -> int | None:
        """The server's limit from its answer to ``limit_request``."""
        return None

    # -- sending ----------------------------------------------------------------------

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        """The request carrying ``msg``; ``previous``: the id the platform
        gave the digest's previous message (for threads)."""
        return HttpRequest(
            "POST", webhook.url.reveal(), {"Content-Type": msg.content_type, "Idempotency-Key": msg.key}, msg.body
        )

    def retry_hint(self, reply: Reply) -> float | None:
        """Seconds the platform asked to wait (at most a day): ``Retry-After``,
        else a JSON ``retry_after`` (Discord's); kinds add their own fields."""
        header = reply.headers.get("retry-after", "")
        if header.strip():
            return retry_after_seconds(header)
        body = reply.json()
        return hint_number(body.get("retry_after")) if isinstance(body, dict) else None

    def already_accepted(self, reply: Reply) -> bool:
        """A non-2xx answer that means the message was accepted before (an
        idempotency key the platform recognised): delivered, not failed."""
        return False

    def remote_id(self, reply: Reply) -> str | None:
        """The id of the message the platform created (``reads_reply`` kinds)."""
        return None

    def reason(self, reply: Reply) -> str | None:
        """A short reason from an error answer, if the platform gives one."""
        body = reply.json()
        if isinstance(body, dict):
            for key in ("message", "description", "error", "errcode"):
                value = body.get(key)
                if isinstance(value, str):
                    return value
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return str(value["message"])
        return None

    def refusal(self, reply: Reply) -> Refused:
        """Whose fault a 4xx that is not retried is: this message's (too
        long, invalid: it is set aside and the queue goes on) or the
        webhook's (its URL, token, rights or destination: the whole queue
        is held until it is fixed).  Kinds whose platforms answer a
        configuration problem with a 400 say so."""
        return "message" if reply.status in MESSAGE_REFUSALS else "webhook"

    def secrets(self, webhook: Webhook) -> list[str]:
        """Values to keep out of errors besides the URL."""
        return [webhook.token.reveal()] if webhook.token is not None and webhook.token.reveal() else []


def endpoint(webhook: Webhook, path: str) -> str:
    """``path`` on the webhook's server (its ``url``, with or without a trailing slash)."""
    return f"{webhook.url.reveal().rstrip('/')}{path}"


def bearer(webhook: Webhook) -> dict[str, str]:
    """The headers of a JSON request authenticated with the webhook's token."""
    assert webhook.token is not None
    return {"Content-Type": "application/json", "Authorization": f"Bearer {webhook.token.reveal()}"}


def unique_key(webhook: Webhook, msg: OutMessage, size: int = 16) -> str:
    """A key for the platform's idempotency (a retry key, a transaction
    id): the same for every send of one stored message, and different for
    any other, even after the state was reset and digest numbers start
    again (the message's own bytes are in it).  ASCII letters, digits and -."""
    digest = hashlib.sha256(f"{webhook.ident}\n{msg.key}\n".encode() + msg.body).hexdigest()
    return f"{msg.key}-{digest[:size]}"


def json_message(payload: object, text: str) -> Message:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Message(body, "application/json", text)


def hint_number(value: object, scale: float = 1.0) -> float | None:
    """A JSON number of seconds (times ``scale``) as a capped wait."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return cap_hint(float(value) * scale)


SERVER_LIMIT_CAP = 100_000  # a server announcing more is believed up to this


def loopback(host: str) -> bool:
    """This machine's own address: the one place a secret may go unencrypted."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def positive(value: object) -> int | None:
    """A JSON number that can be a limit (capped: a server cannot make one
    message of a whole week of digests)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, SERVER_LIMIT_CAP)
    return None


def break_handles(line: str) -> str:
    """``@nhk_news`` shown as text, never a mention that notifies a user."""
    return _AT_HANDLE.sub(r"\1" + ZWSP, line)


_SHORTCODE = re.compile(r":(?=[^\s:]+:)")


def break_shortcodes(line: str) -> str:
    """``:blobcat:`` shown as text, never a platform's (custom) emoji."""
    return _SHORTCODE.sub(":" + ZWSP, line)


Escape = Callable[[str, Sequence[str]], str]  # (line, the item's links) -> the line made inert


def health_lines(
    feeds: Sequence[FailingFeed],
    zone: tzinfo,
    limit: int,
    size: Measure = len,
    deliveries: Sequence[DeliveryProblem] = (),
) -> list[str]:
    """The health report: a heading, a line per webhook whose messages need
    an operator and a line per failing feed, cut to fit ``limit`` (the rest
    counted in a last line)."""
    said = []
    if deliveries:
        said.append(f"{len(deliveries)} webhook{'s' if len(deliveries) != 1 else ''} with undelivered messages")
    if feeds:
        said.append(f"{len(feeds)} feed{'s' if len(feeds) != 1 else ''} failing")
    lines = [f"⚠ feedbot: {', '.join(said)}"]
    entries = [_delivery_line(d) for d in deliveries]
    for feed in feeds:
        since = feed.since.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        entries.append(f"- {feed.name}: failing since {since} ({feed.tries} tries): {feed.error}")
    for n, line in enumerate(entries):
        more = f"… and {len(entries) - n} more"
        if size("\n".join([*lines, line, more])) > limit:
            lines.append(more)
            break
        lines.append(line)
    return lines


def _delivery_line(d: DeliveryProblem) -> str:
    parts = []
    if d.set_aside:
        parts.append(f"{d.set_aside} message(s) refused for good and set aside (feedbot outbox)")
    if d.pending:
        parts.append(f"{d.pending} message(s) waiting")
    return f"- {d.webhook}: {', '.join(parts)}: {d.error}"


def health_report(
    rendered: Rendered, zone: tzinfo, limit: int, escape: Escape, measure: Measure = utf16_len
) -> str | None:
    """The feed-health report, escaped and measured as the kind measures
    (bytes of JSON for Matrix and Teams)."""
    if not rendered.health and not rendered.deliveries:
        return None

    def size(text: str) -> int:  # as it will be sent: each line escaped
        return measure("\n".join(escape(line, ()) for line in text.split("\n")))

    return "\n".join(escape(line, ()) for line in health_lines(rendered.health, zone, limit, size, rendered.deliveries))


def chunks(rendered: Rendered, zone: tzinfo, limit: int, escape: Escape, measure: Measure = utf16_len) -> list[str]:
    """The digest's text cut between items into pieces of at most ``limit``
    (an item longer than that cut inside its body), escaped, and the
    feed-health report as a last piece."""
    texts = split(rendered.blocks, limit, measure, escape)
    report = health_report(rendered, zone, limit, escape, measure)
    return [*texts, *([report] if report else [])]


# -- option converters (raise ValueError/TypeError with a message for the user) --------


def a_token(v: Any) -> str:
    """A token as platforms issue them: printable ASCII, no spaces."""
    s = a_string(v)
    if not all(33 <= ord(c) < 127 for c in s):
        raise ValueError("must be printable ASCII without spaces (a token as the platform gave it)")
    return s


def a_string(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise TypeError("must be a non-empty string")
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters")
    return v.strip()


def a_string_or_int(v: Any) -> str:
    """A chat id: ``-1001234567890`` or ``"@channelname"``."""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return a_string(v)


def choice(*values: str) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        s = a_string(v)
        if s not in values:
            raise ValueError(f"{s!r} is not one of {', '.join(values)}")
        return s

    return convert


def an_int(lo: int, hi: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"must be an integer, not {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi}, not {v}")
        return v

    return convert
