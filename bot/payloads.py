"""What each kind of webhook is sent (pure): a registry, not a chain of ifs.

``PAYLOADS[kind](rendered, digest_id)`` returns the messages, in order, that
deliver one digest to a webhook of that kind.  Each kind owns its size limit
and its escaping, so the same digest is cut differently for Discord (2,000
characters) and Slack (4,000), and feed text can never ping anybody.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.models import Block, FailingFeed, Item, Rendered
from bot.render import split, utf16_len

DISCORD_LIMIT = 2000
SLACK_LIMIT = 4000
TEXT_HEALTH_LIMIT = 4000  # a plain-text receiver gets a report of this size at most
JSON_SCHEMA = "feedbot.digest/1"

_ZWSP = "\u200b"
_DISCORD_MENTION = re.compile(r"@(everyone|here)|<(@[!&]?|#)(?=\d)", re.I)
# Markdown that could make feed text pass for something else: a masked link
# ("[nhk.or.jp](https://evil.example)"), a spoiler, a code fence, and the
# line-start forms (headings, subtext, quotes).
_DISCORD_INLINE = re.compile(r"\]\(|\|\||```")
_DISCORD_LINE_START = re.compile(r"^(?:#{1,3} |-# |>>> |> )")


@dataclass(frozen=True)
class Message:
    body: bytes
    content_type: str
    text: str  # what people will read, for logs and tests


Builder = Callable[[Rendered, int, tzinfo], list[Message]]


def _map_blocks(rendered: Rendered, fn: Callable[[str], str]) -> list[Block]:
    return [
        Block(tuple(fn(x) for x in b.lines), b.item_id, fn(b.tagline) if b.tagline else None) for b in rendered.blocks
    ]


def neutralise_discord(line: str) -> str:
    """``@everyone`` and ``<@123>`` shown as text, never as a ping; masked
    links, spoilers, code fences, headings and quotes shown as the text they
    are (a zero-width space breaks each, and the words read the same)."""
    line = _DISCORD_MENTION.sub(_broken, line)
    line = _DISCORD_INLINE.sub(_broken, line)
    return _ZWSP + line if _DISCORD_LINE_START.match(line) else line


def _broken(m: re.Match[str]) -> str:
    return m.group(0)[0] + _ZWSP + m.group(0)[1:]


def escape_slack(line: str) -> str:
    """Slack's required escaping: ``<!channel>`` in feed text stays text."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_message(payload: object, text: str) -> Message:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Message(body, "application/json", text)


def health_lines(feeds: Sequence[FailingFeed], zone: tzinfo, limit: int, size: Callable[[str], int] = len) -> list[str]:
    """The broken-feed report: a heading and a line per feed, cut to fit
    ``limit`` (the rest counted in a last line)."""
    lines = [f"⚠ feedbot: {len(feeds)} feed{'s' if len(feeds) != 1 else ''} failing"]
    for n, feed in enumerate(feeds):
        since = feed.since.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        line = f"- {feed.name}: failing since {since} ({feed.tries} tries): {feed.error}"
        more = f"… and {len(feeds) - n} more"
        if size("\n".join([*lines, line, more])) > limit:
            lines.append(more)
            break
        lines.append(line)
    return lines


def _health(rendered: Rendered, zone: tzinfo, limit: int, escape: Callable[[str], str]) -> str | None:
    if not rendered.health:
        return None
    return "\n".join(escape(line) for line in health_lines(rendered.health, zone, limit - 200, utf16_len))


def discord(rendered: Rendered, digest_id: int, zone: tzinfo) -> list[Message]:
    blocks = _map_blocks(rendered, neutralise_discord)
    texts = split(blocks, DISCORD_LIMIT, utf16_len)
    report = _health(rendered, zone, DISCORD_LIMIT, neutralise_discord)
    return [
        _json_message({"content": text, "allowed_mentions": {"parse": []}}, text)
        for text in [*texts, *([report] if report else [])]
    ]


def slack(rendered: Rendered, digest_id: int, zone: tzinfo) -> list[Message]:
    blocks = _map_blocks(rendered, escape_slack)
    texts = split(blocks, SLACK_LIMIT, utf16_len)
    report = _health(rendered, zone, SLACK_LIMIT, escape_slack)
    return [
        _json_message({"text": text, "unfurl_links": False, "unfurl_media": False}, text)
        for text in [*texts, *([report] if report else [])]
    ]


def text(rendered: Rendered, digest_id: int, zone: tzinfo) -> list[Message]:
    body = rendered.text
    messages = [Message(body.encode("utf-8"), "text/plain; charset=utf-8", body)]
    report = _health(rendered, zone, TEXT_HEALTH_LIMIT, lambda line: line)
    if report:
        messages.append(Message(report.encode("utf-8"), "text/plain; charset=utf-8", report))
    return messages


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
    }


def json_kind(rendered: Rendered, digest_id: int, zone: tzinfo) -> list[Message]:
    return [_json_message(structured(rendered, digest_id, zone), rendered.text)]


PAYLOADS: dict[str, Builder] = {"discord": discord, "slack": slack, "json": json_kind, "text": text}


SIGNATURE_HEADER = "X-Feedbot-Signature"
TIMESTAMP_HEADER = "X-Feedbot-Timestamp"


def sign(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """HMAC-SHA256 over ``"<timestamp>." + body``, for receivers to verify.

    The timestamp is signed too, so a receiver can refuse replays of old
    requests (docs/webhooks.md has a verification snippet).
    """
    timestamp = str(int(now.timestamp()))
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: "sha256=" + mac.hexdigest()}


def target_url(kind: str, url: str) -> str:
    """Discord answers 204 and drops errors silently unless asked to wait."""
    if kind == "discord" and "wait=" not in url:
        return url + ("&" if "?" in url else "?") + "wait=true"
    return url
