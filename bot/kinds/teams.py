"""Microsoft Teams: a Workflows webhook (``url``) posting an Adaptive Card.

A request is at most ~28 KB: a message's card is kept under 24,000 bytes
of JSON.  Each line is a TextBlock of its own: in one TextBlock, lines
joined by a single line break run together into one paragraph.  A
TextBlock reads a little markdown (CommonMark's): feed text has every
ASCII punctuation mark backslash-escaped, CommonMark's own escape, so
``*bold*`` and ``2*3*4`` read as written; a link is written as an
autolink, ``<https://…>``, inside which markdown does not apply (so
``/wiki/__init__/`` stays a link to that page).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from bot.kinds.base import Kind, Message, json_message

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook

_PUNCT = re.compile(r"[!-/:-@\[-`{-~]")  # every ASCII punctuation mark


def markdown_text(line: str) -> str:
    return _PUNCT.sub(r"\\\g<0>", line)


def markdown_link(url: str) -> str:
    """An autolink where CommonMark allows one (no space, ``<`` or ``>``, or
    control character in it); otherwise escaped text, intact but unlinked."""
    if any(c in url for c in "<> ") or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return markdown_text(url)
    return f"<{url}>"


def blocks(text: str) -> list[dict[str, object]]:
    return [{"type": "TextBlock", "text": line or " ", "wrap": True} for line in text.split("\n")]


def card(text: str) -> dict[str, object]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": blocks(text),
                },
            }
        ],
    }


def card_size(text: str) -> int:
    """The card's bytes as JSON (what the 28 KB limit counts)."""
    return len(json.dumps(card(text), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class Teams(Kind):
    name = "teams"
    limit = 24_000
    https_only = True

    def measure(self, text: str) -> int:
        return card_size(text)

    def text(self, text: str) -> str:
        return markdown_text(text)

    def link(self, url: str) -> str:
        return markdown_link(url)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message(card(text), text)


def card_text(body: bytes) -> str:
    """The text of a card this module made, a line per TextBlock (for tests and logs)."""
    content = json.loads(body)["attachments"][0]["content"]
    return "\n".join(str(b["text"]) for b in content["body"])


KIND = Teams()
