"""``json``: the digest as one structured document (schema
``feedbot.digest/1``), for any endpoint that wants data, not text."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from bot.kinds.base import Message, json_message
from bot.kinds.signed import Signed
from bot.models import Item, Rendered

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook

JSON_SCHEMA = "feedbot.digest/1"


def _item_json(item: Item, lines: tuple[str, ...], zone: tzinfo) -> dict[str, object]:
    return {
        "id": item.id,
        "feed": item.feed,
        "feed_url": item.feed_url,
        "title": item.title,
        "link": item.link,
        "published": item.published.isoformat() if item.published else None,
        "first_seen": item.first_seen.isoformat(),
        "date": item.when.astimezone(zone).date().isoformat(),
        "headline": lines[0],
        "attribution": lines[1],
        "body": list(lines[2:]),
    }


def structured(rendered: Rendered, digest_id: int, zone: tzinfo) -> dict[str, object]:
    lines = {b.item_id: b.lines for b in rendered.blocks}
    d = rendered.digest
    return {
        "schema": JSON_SCHEMA,
        "digest_id": digest_id,
        "date": d.date,
        "text": rendered.text,
        "lead": [_item_json(i, lines[i.id], zone) for i in d.lead],
        "groups": [
            {
                "tag": g.tag,
                "label": g.label,
                "tagline": g.tagline,
                "items": [_item_json(i, lines[i.id], zone) for i in g.items],
            }
            for g in d.groups
        ],
        # Feeds failing for longer than digest.health_after: data beside the
        # digest, never inside its text.
        "health": [
            {"feed": f.name, "failing_since": f.since.isoformat(), "tries": f.tries, "error": f.error}
            for f in rendered.health
        ],
        "deliveries": [
            {"webhook": d.webhook, "set_aside": d.set_aside, "pending": d.pending, "error": d.error}
            for d in rendered.deliveries
        ],
    }


class Json(Signed):
    name = "json"

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        return [json_message(structured(rendered, digest_id, zone), rendered.text)]


KIND = Json()
