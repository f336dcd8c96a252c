"""The plain HTTP kinds (``json``, ``text``): any endpoint, signed with an
HMAC when the webhook has a ``secret``."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from bot.kinds.base import HttpRequest, Kind

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

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


class Signed(Kind):
    signed = True

    def request(self, webhook: Webhook, msg: OutMessage, previous: str | None, now: datetime) -> HttpRequest:
        plain = super().request(webhook, msg, previous, now)
        if webhook.secret is None:
            return plain
        return HttpRequest(
            plain.method, plain.url, {**plain.headers, **sign(webhook.secret.reveal(), msg.body, now)}, plain.body
        )

    def secrets(self, webhook: Webhook) -> list[str]:
        return [webhook.secret.reveal()] if webhook.secret is not None else []
