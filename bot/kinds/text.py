"""``text``: the digest as one ``text/plain`` message, exactly the house
format; a feed-health report, if any, as a second."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from bot.kinds.base import Message, health_report
from bot.kinds.signed import Signed
from bot.models import Rendered

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook

HEALTH_LIMIT = 4000  # a plain-text receiver gets a report of this size at most
PLAIN = "text/plain; charset=utf-8"


class Text(Signed):
    name = "text"

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        messages = [Message(rendered.text.encode("utf-8"), PLAIN, rendered.text)]
        report = health_report(rendered, zone, HEALTH_LIMIT, lambda line, _links: line)
        if report:
            messages.append(Message(report.encode("utf-8"), PLAIN, report))
        return messages


KIND = Text()
