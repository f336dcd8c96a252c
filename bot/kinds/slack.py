"""Slack: an incoming webhook (``url``), 4,000 characters per message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.kinds.base import Kind, Message, json_message

if TYPE_CHECKING:
    from bot.config import Webhook


def escape(line: str) -> str:
    """Slack's required escaping: ``<!channel>`` in feed text stays text."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Slack(Kind):
    name = "slack"
    limit = 4000

    def escape(self, line: str) -> str:
        return escape(line)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message({"text": text, "unfurl_links": False, "unfurl_media": False}, text)


KIND = Slack()
