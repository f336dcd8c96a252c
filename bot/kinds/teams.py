"""Microsoft Teams: a Workflows webhook (``url``) posting an Adaptive Card.

A request is at most ~28 KB: a message's text is kept under 24,000 bytes as
JSON, leaving room for the card around it.  The card's TextBlock reads a
little markdown: feed text has its links, emphasis and list starts broken
by a zero-width space, so it reads as it was written.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from bot.kinds.base import ZWSP, Kind, Message, json_message
from bot.kinds.matrix import json_bytes

if TYPE_CHECKING:
    from bot.config import Webhook

_INLINE = re.compile(r"\]\(|\*\*|(?<!\w)[*_](?=\S)")
_LINE_START = re.compile(r"^(?:[-*+] |\d+\. |#+ |> )")


def neutralise(line: str) -> str:
    line = _INLINE.sub(lambda m: m.group(0)[0] + ZWSP + m.group(0)[1:], line)
    return ZWSP + line if _LINE_START.match(line) else line


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
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


class Teams(Kind):
    name = "teams"
    limit = 24_000

    def measure(self, text: str) -> int:
        return json_bytes(text)

    def escape(self, line: str) -> str:
        return neutralise(line)

    def message(self, text: str, digest_id: int, seq: int, webhook: Webhook | None) -> Message:
        return json_message(card(text), text)


def card_text(body: bytes) -> str:
    """The text of a card this module made (for tests and logs)."""
    content = json.loads(body)["attachments"][0]["content"]
    return str(content["body"][0]["text"])


KIND = Teams()
