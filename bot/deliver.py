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
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from bot.config import Webhook
from bot.errors import DeliveryError
from bot.payloads import sign, target_url
from bot.state import OutMessage, Store

log = logging.getLogger("feedbot.deliver")

Sleep = Callable[[float], Awaitable[None]]
ATTEMPTS = 4  # POSTs of one message in one delivery run
BACKOFF_BASE = 1.0  # seconds, between those POSTs (full jitter)
BACKOFF_CAP = 30.0
RETRY_AFTER_WAIT_CAP = 30.0  # a longer Retry-After is waited out by the queue, not in the loop
QUEUE_BACKOFF_BASE = 30.0  # seconds before the service retries a failed queue, doubling
QUEUE_BACKOFF_CAP = 3600.0
HOLD_AFTER_REJECTION = 6 * 3600.0  # a 4xx is not retried blindly: next digest time, or in 6 h


@dataclass(frozen=True)
class DeliveryReport:
    webhook: str  # the webhook's display name
    sent: int
    pending: int
    error: str | None = None
    retry_at: datetime | None = None  # when the queue is tried again (backoff)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: the Retry-After header, or Discord's JSON ``retry_after``."""
    header = response.headers.get("retry-after", "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    value = body.get("retry_after") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def backoff(attempt: int, rng: random.Random, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Full jitter: a random wait up to base·2^attempt, capped."""
    return rng.uniform(base / 2, max(base, min(cap, base * 2**attempt)))


class Deliverer:
    """Sends each webhook's queue of recorded messages, in order.

    ``force``: try now even if the queue's head is waiting out a backoff (a
    digest run, a ``feedbot digest`` by hand); the service's delivery tick
    does not force.
    """

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

    async def deliver_all(self, webhooks: Sequence[Webhook], force: bool = True) -> list[DeliveryReport]:
        return list(await asyncio.gather(*(self.deliver(w, force) for w in webhooks)))

    async def deliver(self, webhook: Webhook, force: bool = True) -> DeliveryReport:
        queue = self.store.undelivered(webhook.ident)
        head = queue[0] if queue else None
        if head and not force and head.next_attempt_at and head.next_attempt_at > self.clock():
            return DeliveryReport(webhook.name, 0, len(queue), head.last_error, head.next_attempt_at)
        sent = 0
        for n, msg in enumerate(queue):
            if msg.in_flight_at is not None:
                log.warning(
                    "webhook=%s message=%s was being sent when feedbot stopped; sending it again (it may arrive twice)",
                    webhook.name,
                    msg.key,
                )
            self.store.mark_in_flight(msg, self.clock())
            try:
                await self.post(webhook, msg)
            except DeliveryError as exc:
                now = self.clock()
                pause = exc.retry_after if exc.retry_after is not None else self._pause(msg.attempts, exc.retryable)
                retry_at = now + timedelta(seconds=pause)
                self.store.mark_failed(msg, now, str(exc), retry_at)
                if str(exc) != msg.last_error:  # logged once, not at every retry
                    log.warning(
                        "webhook=%s status=error sent=%d pending=%d retry_at=%s error=%r",
                        webhook.name,
                        sent,
                        len(queue) - n,
                        retry_at.isoformat(timespec="seconds"),
                        str(exc),
                    )
                return DeliveryReport(webhook.name, sent, len(queue) - n, str(exc), retry_at)
            self.store.mark_delivered(msg, self.clock())
            sent += 1
        if queue:
            log.info("webhook=%s status=ok sent=%d pending=0", webhook.name, sent)
        return DeliveryReport(webhook.name, sent, 0)

    def _pause(self, attempts: int, retryable: bool) -> float:
        """How long a failed queue waits before the next unforced try."""
        if not retryable:
            return HOLD_AFTER_REJECTION
        return backoff(attempts, self.rng, QUEUE_BACKOFF_BASE, QUEUE_BACKOFF_CAP)

    async def post(self, webhook: Webhook, msg: OutMessage) -> None:
        """One message, with a few quick retries; DeliveryError if not accepted."""
        url = target_url(webhook.kind, webhook.url.reveal())
        headers = {"Content-Type": msg.content_type, "Idempotency-Key": msg.key}
        if webhook.secret is not None:
            headers.update(sign(webhook.secret.reveal(), msg.body, self.clock()))
        last: DeliveryError | None = None
        wait = 0.0
        for attempt in range(ATTEMPTS):
            if attempt:
                await self.sleep(wait)
            try:
                r = await self.client.post(url, content=msg.body, headers=headers)
            except httpx.HTTPError as exc:
                last = DeliveryError(f"{webhook.name}: request failed ({type(exc).__name__})")
                wait = backoff(attempt, self.rng)
                continue
            if 200 <= r.status_code < 300:
                return
            detail = f"{webhook.name}: HTTP {r.status_code}{_scrub(_reason(r), webhook)}"
            if r.status_code in (408, 429) or r.status_code >= 500:
                hint = _retry_after(r) if r.status_code in (429, 503) else None
                last = DeliveryError(detail, r.status_code, retry_after=hint)
                if hint is not None and hint > RETRY_AFTER_WAIT_CAP:
                    break  # a long rate limit: the queue waits it out, the loop does not
                wait = hint if hint is not None else backoff(attempt, self.rng)
                continue
            raise DeliveryError(detail, r.status_code, retryable=False)
        assert last is not None
        raise last


def _scrub(text: str, webhook: Webhook) -> str:
    """Receivers echo the request: keep the URL's secret parts out of errors."""
    url = webhook.url.reveal()
    parts = [url, *(p for p in url.split("://", 1)[-1].split("/")[1:] if len(p) >= 8)]
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, "…")
    return text


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
