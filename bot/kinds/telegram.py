"""Telegram: the Bot API's ``sendMessage`` (``token``, ``chat_id``).

4,096 characters per message, sent as plain text (no ``parse_mode``: feed
text is never read as markup), link previews off, handles broken so that
``@name`` notifies nobody.  A 429 says how long to wait in
``parameters.retry_after``.  ``url`` is the Bot API server (the public one
by default; a local ``telegram-bot-api`` server works too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from bot.errors import Refused
from bot.kinds.base import (
    HttpRequest,
    Kind,
    Message,
    Option,
    Reply,
    a_string_or_int,
    break_handles,
    endpoint,
    hint_number,
    json_message,
)

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.secrets import Secret
    from bot.state.records import OutMessage


_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_CHAT = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,}$")
# What the Bot API's 400s say of a chat the bot cannot post to.
_CHAT_PROBLEM = re.compile(r"chat|rights|PEER_ID|member|kicked|blocked|deactivated|thread not found", re.I)


def chat_id(v: Any) -> str:
    """``-1001234567890`` (a number) or ``"@channelname"``."""
    s = a_string_or_int(v)
    if not (_CHAT.match(s) or s.lstrip("-").isdigit()):
        raise ValueError(f"{s!r} is neither a chat's number nor a public @channelname")
    return s


class Telegram(Kind):
    name = "telegram"
    limit = 4096
    url = "https://api.telegram.org"
    url_is_secret = False
    secret = "token"
    options: ClassVar[dict[str, Option]] = {"chat_id": Option(chat_id)}

    def check(self, options: Mapping[str, Any], token: Secret | None, url: str) -> tuple[str, str] | None:
        if token is not None and token.reveal() and not _TOKEN.match(token.reveal()):
            return "token", "is not a bot token (digits, a colon, then letters, digits, - and _; from @BotFather)"
        return super().check(options, token, url)

    def text(self, text: str) -> str:
        return break_handles(text)  # in text only: a link's "@" (medium.com/@writer) is not a handle

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        # The chat is added at send time: the stored body is the same
        # whichever chat the webhook points at now.
        payload = {"text": text, "link_preview_options": {"is_disabled": True}}
        return json_message(payload, text)

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        assert webhook.token is not None
        body = {"chat_id": webhook.options["chat_id"], **json.loads(msg.body)}
        url = endpoint(webhook, f"/bot{webhook.token.reveal()}/sendMessage")
        return HttpRequest("POST", url, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def refusal(self, reply: Reply) -> Refused:
        # A 400 also says the chat is wrong ("chat not found", "group chat
        # was upgraded", "not enough rights", PEER_ID_INVALID…): the
        # destination, not this message.
        if reply.status == 400 and _CHAT_PROBLEM.search(self.reason(reply) or ""):
            return "webhook"
        return super().refusal(reply)

    def retry_hint(self, reply: Reply) -> float | None:
        body = reply.json()
        parameters = body.get("parameters") if isinstance(body, dict) else None
        if isinstance(parameters, dict) and "retry_after" in parameters:
            return hint_number(parameters["retry_after"])
        return super().retry_hint(reply)


KIND = Telegram()
