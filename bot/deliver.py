"""Posting recorded messages to webhooks (the delivery edge).

Messages come from the outbox in order, per webhook; each is marked
delivered only after the webhook accepted it (2xx).  A webhook's failure
stops that webhook's queue (order matters) and never another's.

Retries: transport errors, 408, 429 and 5xx are retried with exponential
backoff and jitter, capped; ``Retry-After`` and Discord's ``retry_after``
are honoured.  Other 4xx answers are not retried: the message stays pending
with its error for ``feedbot status``.  No URL ever appears in an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from bot.config import Webhook
from bot.errors import DeliveryError
from bot.payloads import target_url
from bot.state import OutMessage, Store

log = logging.getLogger("feedbot.deliver")

Sleep = Callable[[float], Awaitable[None]]
ATTEMPTS = 4
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0


@dataclass(frozen=True)
class DeliveryReport:
    webhook: str  # the webhook's display name
    sent: int
    pending: int
    error: str | None = None


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after", "")
    try:
        return float(header)
    except ValueError:
        pass
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    value = body.get("retry_after") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) else None


def backoff(attempt: int, rng: random.Random) -> float:
    """Full jitter: a random wait up to base·2^attempt, capped."""
    return rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


class Deliverer:
    def __init__(
        self,
        client: httpx.AsyncClient,
        store: Store,
        clock: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()

    async def deliver_all(self, webhooks: Sequence[Webhook]) -> list[DeliveryReport]:
        return list(await asyncio.gather(*(self.deliver(w) for w in webhooks)))

    async def deliver(self, webhook: Webhook) -> DeliveryReport:
        queue = self.store.undelivered(webhook.ident)
        sent = 0
        for n, msg in enumerate(queue):
            try:
                await self.post(webhook, msg)
            except DeliveryError as exc:
                self.store.mark_failed(msg, self.clock(), str(exc))
                log.warning(
                    "webhook=%s status=error sent=%d pending=%d error=%r", webhook.name, sent, len(queue) - n, str(exc)
                )
                return DeliveryReport(webhook.name, sent, len(queue) - n, str(exc))
            self.store.mark_delivered(msg, self.clock())
            sent += 1
        if queue:
            log.info("webhook=%s status=ok sent=%d pending=0", webhook.name, sent)
        return DeliveryReport(webhook.name, sent, 0)

    async def post(self, webhook: Webhook, msg: OutMessage) -> None:
        url = target_url(webhook.kind, webhook.url.reveal())
        headers = {
            "Content-Type": msg.content_type,
            "Idempotency-Key": f"feedbot-{msg.digest_id}-{msg.seq}",
        }
        last: DeliveryError | None = None
        last_wait = 0.0
        for attempt in range(ATTEMPTS):
            if attempt:
                await self.sleep(last_wait)
            try:
                r = await self.client.post(url, content=msg.body, headers=headers)
            except httpx.HTTPError as exc:
                last = DeliveryError(f"{webhook.name}: request failed ({type(exc).__name__})")
                last_wait = backoff(attempt, self.rng)
                continue
            if 200 <= r.status_code < 300:
                return
            detail = f"{webhook.name}: HTTP {r.status_code}{_reason(r)}"
            if r.status_code == 429 or r.status_code == 408 or r.status_code >= 500:
                last = DeliveryError(detail, r.status_code)
                hint = _retry_after(r) if r.status_code in (429, 503) else None
                last_wait = min(hint, RETRY_AFTER_CAP) if hint is not None else backoff(attempt, self.rng)
                continue
            raise DeliveryError(detail, r.status_code, retryable=False)
        assert last is not None
        raise last


def _reason(r: httpx.Response) -> str:
    """A short reason from the body (Discord/Slack say what was wrong)."""
    try:
        body = r.json()
    except (ValueError, UnicodeDecodeError):
        text = r.text.strip().splitlines()[0][:120] if r.text.strip() else ""
        return f" ({text})" if text else ""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f" ({body['message'][:120]})"
    return f" ({json.dumps(body, ensure_ascii=False)[:120]})" if body else ""
