"""Slack: an incoming webhook (``url``), 4,000 characters per message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.errors import Refused
from bot.kinds.base import Kind, Message, Reply, break_shortcodes, json_message

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook


# Slack's incoming-webhook errors that name the destination, not the message.
_DESTINATION_PROBLEMS = frozenset(
    {
        "user_not_found",
        "channel_not_found",
        "channel_is_archived",
        "invalid_token",
        "no_service",
        "no_team",
        "team_disabled",
        "action_prohibited",
        "posting_to_general_channel_denied",
    }
)


def escape(line: str) -> str:
    """Slack's required escaping: ``<!channel>`` in feed text stays text."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(line: str) -> str:
    """Escaped, and ``:name:`` (an emoji, a workspace's custom one) broken
    by a zero-width space: Slack has no escape for it."""
    return break_shortcodes(escape(line))


class Slack(Kind):
    """Text with Slack's markup off (``mrkdwn: false``: its own plain-text
    mode, so ``*bold*`` and ``_x_`` in feed text read as written), ``&``,
    ``<`` and ``>`` escaped as Slack requires (``<!channel>`` stays text),
    in links too (Slack shows and follows them unescaped)."""

    name = "slack"
    limit = 4000
    https_only = True

    def text(self, text: str) -> str:
        return inert(text)

    def link(self, url: str) -> str:
        return escape(url)

    def refusal(self, reply: Reply) -> Refused:
        # Slack answers in plain text; a 400 "user_not_found" (and the
        # like) is the destination's problem, "invalid_payload" or
        # "no_text" the message's.
        said = reply.body.decode("utf-8", "replace").strip()
        if reply.status == 400 and said in _DESTINATION_PROBLEMS:
            return "webhook"
        return super().refusal(reply)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        payload = {"text": text, "mrkdwn": False, "unfurl_links": False, "unfurl_media": False}
        return json_message(payload, text)


KIND = Slack()
