"""Loopback stand-ins for the platforms feedbot posts to, speaking each
one's API shape as its documentation gives it: paths, authentication,
limits (an over-long message is refused as the platform refuses it), error
bodies, rate-limit answers with the platform's own hints, and the
idempotency each offers (LINE's retry key, Mastodon's Idempotency-Key,
Matrix's transaction ids).  An SMTP server (aiosmtpd) with STARTTLS and
AUTH for e-mail.  Used by tests/test_kinds.py and bench/killtest.py.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from bot.kinds.mastodon import mastodon_length
from bot.kinds.teams import card_text
from bot.loopback import Reply, Request, Server, throwaway_certificate
from bot.pgserver import free_port
from bot.render import utf16_len
from tests import renderers
from tests.renderers import shown

# aiosmtpd 1.4 warns about its own use of a deprecated attribute at each AUTH,
# and about AUTH without STARTTLS, which is right for SMTPS (TLS from the
# first byte); pyproject.toml says the same for pytest.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

TOKEN = "123456:TEST-token-SECRET"
ZWSP = "\u200b"


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode())


@dataclass
class Platform:
    """One platform: ``texts`` holds what its users would read, in order."""

    kind: str
    texts: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the texts as sent (escaped for the platform)
    requests: list[Request] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)  # the accepted requests' JSON
    limit_announced: int | None = None  # Misskey / Mastodon: what the server says its limit is
    # Mastodon, Telegram: a text refused as invalid (422; Telegram's 400 echoes
    # the request's path, token percent-encoded, as some proxies do)
    refuse: Callable[[str], bool] | None = None
    delay: float = 0.0  # seconds before each post is answered (a slow platform), after it is accepted
    _rate_limited: int = 0
    _seen_keys: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def rate_limit(self, count: int = 1) -> None:
        """The next ``count`` posts get the platform's 429."""
        with self._lock:
            self._rate_limited += count

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.texts) >= count, timeout)

    def joined(self) -> str:
        """The texts read back as one, the zero-width spaces of the
        escaping taken out."""
        return "\n".join(self.texts).replace(ZWSP, "")

    # -- the server ------------------------------------------------------------------

    def __call__(self, req: Request) -> Reply:
        handler: Callable[[Request], Reply] = getattr(self, f"_{self.kind}")
        with self._lock:
            self.requests.append(req)
        reply = handler(req)
        if self.delay:  # a slow platform: the post is made, the answer comes late
            time.sleep(self.delay)
        return reply

    def _accept(self, texts: list[str], body: Any) -> None:
        with self._lock:
            self.raw.extend(texts)
            self.texts.extend(shown(self.kind, t) for t in texts)
            self.bodies.append(body)
            self._lock.notify_all()

    def _limited(self) -> bool:
        with self._lock:
            if self._rate_limited:
                self._rate_limited -= 1
                return True
            return False

    def _bearer(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {TOKEN}"

    # Telegram Bot API: POST /bot<token>/sendMessage
    def _telegram(self, req: Request) -> Reply:
        if req.path != f"/bot{TOKEN}/sendMessage":
            return _json(
                401 if req.path.endswith("/sendMessage") else 404,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
        if self._limited():
            return _json(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 3",
                    "parameters": {"retry_after": 3},
                },
            )
        body = req.json()
        if "chat_id" not in body:
            return _json(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"})
        if utf16_len(body["text"]) > 4096:
            return _json(400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
        if "parse_mode" in body:
            return _json(400, {"ok": False, "error_code": 400, "description": "Bad Request: unexpected parse_mode"})
        if self.refuse is not None and self.refuse(body["text"]):
            said = f"Bad Request: text is invalid (/bot{quote(TOKEN, safe='')}/sendMessage)"
            return _json(400, {"ok": False, "error_code": 400, "description": said})
        self._accept([body["text"]], body)
        return _json(200, {"ok": True, "result": {"message_id": len(self.texts), "chat": {"id": body["chat_id"]}}})

    # LINE Messaging API: POST /v2/bot/message/push
    def _line(self, req: Request) -> Reply:
        if req.path != "/v2/bot/message/push":
            return _json(404, {"message": "Not found"})
        if not self._bearer(req):
            return _json(
                401,
                {
                    "message": "Authentication failed. Confirm that the access token in the authorization header"
                    " is valid."
                },
            )
        key = req.headers.get("x-line-retry-key", "")
        if key in self._seen_keys:
            return _json(
                409,
                {"message": "The retry key is already accepted"},
                {"x-line-accepted-request-id": self._seen_keys[key]},
            )
        if self._limited():
            return _json(429, {"message": "The API rate limit has been exceeded. Try again later."})
        body = req.json()
        messages = body.get("messages", [])
        if not 1 <= len(messages) <= 5 or any(utf16_len(m["text"]) > 5000 for m in messages):
            return _json(
                400,
                {
                    "message": "The request body has 1 error(s)",
                    "details": [{"message": "too long", "property": "messages"}],
                },
            )
        self._seen_keys[key] = f"req-{len(self._seen_keys)}"
        self._accept([m["text"] for m in messages], body)
        return _json(200, {"sentMessages": [{"id": str(n)} for n in range(len(messages))]})

    # Misskey: POST /api/meta, POST /api/notes/create
    def _misskey(self, req: Request) -> Reply:
        limit = self.limit_announced or 3000
        if req.path == "/api/meta":
            return _json(200, {"maxNoteTextLength": limit, "name": "test"})
        if req.path != "/api/notes/create":
            return _json(404, {"error": {"message": "No such endpoint.", "code": "NO_SUCH_ENDPOINT"}})
        if not self._bearer(req):
            return _json(401, {"error": {"message": "Authentication failed.", "code": "AUTHENTICATION_FAILED"}})
        if self._limited():
            return _json(
                429,
                {
                    "error": {
                        "message": "Rate limit exceeded. Please try again later.",
                        "code": "RATE_LIMIT_EXCEEDED",
                        "id": "d5826d14-3982-4d2e-8011-b9e9f02499ef",
                        "info": {"resetMs": 2500, "fullResetMs": 60000},
                    }
                },
            )
        body = req.json()
        if utf16_len(body["text"]) > limit:
            return _json(400, {"error": {"message": "Invalid param.", "code": "INVALID_PARAM"}})
        self._accept([body["text"]], body)
        return _json(200, {"createdNote": {"id": f"note{len(self.texts)}"}})

    # Mastodon: GET /api/v2/instance, POST /api/v1/statuses
    def _mastodon(self, req: Request) -> Reply:
        limit = self.limit_announced or 500
        if req.path == "/api/v2/instance":
            return _json(200, {"domain": "test", "configuration": {"statuses": {"max_characters": limit}}})
        if req.path != "/api/v1/statuses":
            return _json(404, {"error": "Record not found"})
        if not self._bearer(req):
            return _json(401, {"error": "The access token is invalid"})
        key = req.headers.get("idempotency-key", "")
        if key and key in self._seen_keys:
            return _json(200, self._seen_keys[key])  # the same status again, not a new one
        if self._limited():
            reset = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return _json(
                429,
                {"error": "Too many requests"},
                {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            )
        body = req.json()
        if _mastodon_count(body["status"]) > limit:
            return _json(422, {"error": f"Validation failed: Text character limit of {limit} exceeded"})
        if self.refuse is not None and self.refuse(body["status"]):
            return _json(422, {"error": "Validation failed: Text contains a word this server does not allow"})
        status = {
            "id": str(100 + len(self.texts)),
            "in_reply_to_id": body.get("in_reply_to_id"),
            "visibility": body.get("visibility"),
        }
        if key:
            self._seen_keys[key] = status
        self._accept([body["status"]], body)
        return _json(200, status)

    # Matrix client-server API: PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}
    def _matrix(self, req: Request) -> Reply:
        parts = urlsplit(req.path).path.split("/")
        if (
            req.method != "PUT"
            or parts[1:5] != ["_matrix", "client", "v3", "rooms"]
            or parts[6:8] != ["send", "m.room.message"]
        ):
            return _json(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
        if not self._bearer(req):
            return _json(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."})
        txn = unquote(parts[8])
        if txn in self._seen_keys:
            return _json(200, {"event_id": self._seen_keys[txn]})  # the same transaction: the same event
        if self._limited():
            return _json(429, {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2000})
        if len(req.body) > 65_536:
            return _json(413, {"errcode": "M_TOO_LARGE", "error": "event too large"})
        body = req.json()
        event = f"$event{len(self.texts)}"
        self._seen_keys[txn] = event
        self._accept([body["body"]], {**body, "room": unquote(parts[5])})
        return _json(200, {"event_id": event})

    # Teams Workflows: POST (a card), 202
    def _teams(self, req: Request) -> Reply:
        if self._limited():
            return Reply(429, {"Retry-After": "2"}, b"")
        if len(req.body) > 28 * 1024:
            return _json(
                413, {"error": {"code": "RequestEntityTooLarge", "message": "The request content was too large"}}
            )
        body = req.json()
        self._accept([card_text(req.body)], body)
        return Reply(202, {}, b"")

    # Google Chat incoming webhook: POST /v1/spaces/{space}/messages?key=&token=&messageReplyOption=&requestId=
    def _googlechat(self, req: Request) -> Reply:
        query = parse_qs(urlsplit(req.path).query)
        if query.get("token") != ["SECRET-chat-token"]:
            return _json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        request_id = query.get("requestId", [""])[0]
        if request_id and request_id in self._seen_keys:
            return _json(200, self._seen_keys[request_id])  # the message created with that id, not a new one
        if self._limited():
            return _json(
                429,
                {
                    "error": {
                        "code": 429,
                        "message": "Resource has been exhausted (e.g. check quota).",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                },
                {"Retry-After": "2"},
            )
        body = req.json()
        try:  # a card message: its one text paragraph (HTML)
            text = body["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"]
        except (KeyError, IndexError, TypeError):
            return _json(400, {"error": {"code": 400, "message": "Invalid card", "status": "INVALID_ARGUMENT"}})
        if len(text) > 4096:
            return _json(400, {"error": {"code": 400, "message": "Message too long", "status": "INVALID_ARGUMENT"}})
        message = {"name": f"spaces/X/messages/{len(self.texts)}", "thread": {"threadKey": body["thread"]["threadKey"]}}
        if request_id:
            self._seen_keys[request_id] = message
        self._accept(
            [text],
            {**body, "threadKey": body["thread"]["threadKey"], "option": query.get("messageReplyOption")},
        )
        return _json(200, message)


def _mastodon_count(status: str) -> int:
    """A status's length as Mastodon counts it: with Mastodon's own URL rule
    (twitter-text as it configures it), where the parsers are installed."""
    if renderers.available():
        return int(renderers.shared().ask("mastodon", status)["length"])
    return mastodon_length(status)


def webhook_toml(kind: str, base: str, name: str | None = None) -> str:
    """A ``[[webhooks]]`` table for ``kind`` pointing at a Platform served at ``base``."""
    head = f'[[webhooks]]\nkind = "{kind}"\nname = "{name or kind}"\n'
    return (
        head
        + {
            "telegram": f'url = "{base}"\ntoken = "{TOKEN}"\nchat_id = -1001234567890\n',
            "line": f'url = "{base}"\ntoken = "{TOKEN}"\nto = "U0123456789abcdef0123456789abcdef"\n',
            "misskey": f'url = "{base}"\ntoken = "{TOKEN}"\n',
            "mastodon": f'url = "{base}"\ntoken = "{TOKEN}"\n',
            "matrix": f'url = "{base}"\ntoken = "{TOKEN}"\nroom = "!news:example.org"\n',
            "teams": f'url = "{base}/workflows/abc/triggers/manual/paths/invoke?sig=SECRET-teams"\n',
            "googlechat": f'url = "{base}/v1/spaces/X/messages?key=K&token=SECRET-chat-token"\n',
        }[kind]
    )


HTTP_KINDS = ("telegram", "line", "misskey", "mastodon", "matrix", "teams", "googlechat")


# -- e-mail -----------------------------------------------------------------------------


class Mailbox:
    """An SMTP server on loopback (aiosmtpd) that requires STARTTLS and
    AUTH (user ``feedbot``, password ``SECRET-mail``), keeping every message
    it accepts, parsed."""

    USER = "feedbot"
    PASSWORD = "SECRET-mail"

    def __init__(self, folder: Path, implicit_tls: bool = False, eight_bit: bool = True) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        cert, key = throwaway_certificate(folder)
        self.ca_file = cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # as received, for the encodings on the wire
        self.security = "tls" if implicit_tls else "starttls"
        self.envelopes: list[tuple[str, list[str]]] = []
        self.mail_options: list[list[str]] = []  # MAIL FROM's parameters (BODY=8BITMIME)
        self.fail_next: list[str] = []  # SMTP replies for the next DATA commands ("451 4.3.0 try later")
        self.refuse: Callable[[], str | None] | None = None  # asked at each DATA: a reply to refuse with
        self._cond = threading.Condition()
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with outer._cond:
                    if outer.fail_next:
                        return outer.fail_next.pop(0)
                    refusal = outer.refuse() if outer.refuse is not None else None
                    if refusal is not None:
                        return refusal
                    message = BytesParser(policy=policy.SMTP).parsebytes(envelope.original_content)
                    outer.messages.append(message)  # type: ignore[arg-type]
                    outer.raw.append(envelope.original_content)
                    outer.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    outer.mail_options.append(list(envelope.mail_options))
                    outer._cond.notify_all()
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.login == b"feedbot" and data.password == b"SECRET-mail"
            return AuthResult(success=ok, handled=False)  # handled=True would leave the client unanswered

        port = free_port()  # aiosmtpd's start-up check cannot use port 0
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=port,
            # STARTTLS on a plain port, or TLS from the first byte (SMTPS)
            tls_context=None if implicit_tls else context,
            ssl_context=context if implicit_tls else None,
            require_starttls=not implicit_tls,
            authenticator=authenticate,
            auth_required=True,
            # aiosmtpd counts only STARTTLS as TLS here; SMTPS is TLS from the first byte
            auth_require_tls=not implicit_tls,
            # aiosmtpd offers 8BITMIME unless it decodes the data itself: a
            # server without it (RFC 6152) is one that decodes.
            decode_data=not eight_bit,
        )

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)

    def toml(self, name: str = "mail") -> str:
        return (
            f'[[webhooks]]\nkind = "email"\nname = "{name}"\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'security = "{self.security}"\nusername = "{self.USER}"\npassword = "{self.PASSWORD}"\n'
            f'from = "feedbot <digest@example.jp>"\nto = ["reader@example.jp", "デスク <desk@example.jp>"]\n'
            f'subject = "ニュースダイジェスト {{date}}"\nca_file = "{self.ca_file}"\n'
        )


def serve(kind: str) -> tuple[Server, Platform]:
    platform = Platform(kind)
    return Server(platform), platform
