"""Posting recorded messages to webhooks (the delivery edge).

Messages come from the outbox in order, per webhook; each is marked
delivered only after the webhook accepted it (2xx).  A webhook's failure
stops that webhook's queue (order matters) and never another's.

Retries: transport errors, 408, 429 and 5xx are retried with exponential
backoff and jitter, capped; ``Retry-After`` and Discord's ``retry_after``
are honoured up to a day.  Other 4xx answers are not retried.  One that
refuses the message (400, 413, 422: too long, invalid) sets that message
aside, kept for ``feedbot outbox``, and the webhook's later messages go on;
one that refuses the destination (401, 403, 404, 410: its URL, token,
rights) holds the whole queue, with its reason in ``feedbot status``, until
the next digest time.  So does a third message refused in a row: a
destination that refuses everything is not emptied into the set-aside
pile.  No URL ever appears in an error.

Every POST has a deadline for the whole exchange (a receiver that drips
its answer cannot hold a digest), and a receiver's reply is read only to
``REPLY_MAX_BYTES`` (inflated within it): enough for an error message or a
``retry_after``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from bot import metrics, pause, smtp
from bot.config import Config, Webhook
from bot.errors import DeliveryError, FetchError, LeaseLost
from bot.fetch import read_limited, short
from bot.kinds import KINDS, HttpRequest, Kind, Reply
from bot.secrets import Scrubber
from bot.state import OutMessage, Store
from bot.state.records import UNANSWERED, Lease, instance_pid, message_ref
from bot.text import escape_controls, shown

log = logging.getLogger("feedbot.deliver")

Sleep = Callable[[float], Awaitable[None]]
Attempt = Callable[[bool], None]
ATTEMPTS = 4  # POSTs of one message in one delivery run
BACKOFF_BASE = 1.0  # seconds, between those POSTs (full jitter)
BACKOFF_CAP = 30.0
RETRY_AFTER_WAIT_CAP = 30.0  # a longer Retry-After is waited out by the queue, not in the loop
QUEUE_BACKOFF_BASE = 30.0  # seconds before the service retries a failed queue, doubling
QUEUE_BACKOFF_CAP = 3600.0
HOLD_AFTER_REJECTION = 6 * 3600.0  # a 4xx is not retried blindly: next digest time, or in 6 h
SET_ASIDE_IN_A_ROW = 3  # the third message refused in a row holds the webhook instead
# A message in flight at another instance that is alive but stopped is left
# to it this long (its answer may be in its socket: it records it when it
# resumes); then it is sent again, as one in flight at a dead instance is.
IN_FLIGHT_PATIENCE = timedelta(minutes=5)
# The connection is bounded; the exchange is bounded by ``deadline``, in time
# the process ran: no read timeout of the transport's own may fire first
# after a pause.
_NO_READ_LIMIT = httpx.Timeout(None, connect=10.0)
DELIVERY_TIMEOUT = 60.0  # seconds: digest.delivery_timeout's default
REPLY_MAX_BYTES = 64 * 1024  # of a receiver's answer: its error message, its retry_after


@dataclass(frozen=True)
class DeliveryReport:
    webhook: str  # the webhook's display name
    sent: int
    pending: int
    error: str | None = None
    retry_at: datetime | None = None  # when the queue is tried again (backoff)
    set_aside: int = 0  # messages refused for good in this run, out of the queue


def backoff(attempt: int, rng: random.Random, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Full jitter: a random wait up to base·2^attempt, capped."""
    return rng.uniform(base / 2, max(base, min(cap, base * 2**attempt)))


class Deliverer:
    """Sends each webhook's queue of recorded messages, in order, under the
    digest lease (``Store.exclusive``) of ``owner``.

    ``force``: try now even if the queue's head is waiting out a backoff (a
    digest run, a ``feedbot digest`` by hand); the service's delivery tick
    does not force.

    Before every POST, first or retry, the message is marked in flight by
    this instance in the same statement that proves the lease is still its
    own (``Store.mark_attempt``); an instance that lost the lease while it
    was stopped sends nothing more and says so (``LeaseLost``).  A message
    another instance left in flight is left to it while that instance is
    alive (stopped, perhaps, with the platform's answer in its socket) for
    up to ``IN_FLIGHT_PATIENCE``; then, or once it is gone, sent again.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        store: Store,
        clock: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        deadline: float = DELIVERY_TIMEOUT,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        # A whole POST and its answer (an SMTP session), digest.delivery_timeout:
        # its own setting, longer than a feed's (a platform that answers late
        # has usually posted); counted in time the process ran (``bot.pause``).
        self.deadline = deadline

    @classmethod
    def configured(
        cls, config: Config, client: httpx.AsyncClient, store: Store, clock: Callable[[], datetime]
    ) -> Deliverer:
        return cls(client, store, clock, deadline=config.digest.delivery_timeout.total_seconds())

    async def deliver_all(self, webhooks: Sequence[Webhook], lease: Lease, force: bool = True) -> list[DeliveryReport]:
        return list(await asyncio.gather(*(self.deliver(w, lease, force) for w in webhooks)))

    async def deliver(self, webhook: Webhook, lease: Lease, force: bool = True) -> DeliveryReport:
        queue = self.store.undelivered(webhook.ident)
        head = queue[0] if queue else None
        if head and not force and head.next_attempt_at and head.next_attempt_at > self.clock():
            return DeliveryReport(webhook.name, 0, len(queue), head.last_error, head.next_attempt_at)
        sent = aside = 0
        for n, msg in enumerate(queue):
            reason = self._interrupted(webhook, msg, lease.holder)
            if reason == "elsewhere":
                return DeliveryReport(webhook.name, sent, len(queue) - n, msg.last_error, None, aside)
            try:
                remote_id = await self.post(webhook, msg, self._fence(webhook, msg, lease, reason))
            except LeaseLost as exc:
                log.warning("webhook=%s: %s; message %s is left to the lease's holder", webhook.name, exc, msg.key)
                return DeliveryReport(webhook.name, sent, len(queue) - n, str(exc), None, aside)
            except DeliveryError as exc:
                now = self.clock()
                if exc.refused == "message":
                    if self.store.refused_in_a_row(webhook.ident) + 1 < SET_ASIDE_IN_A_ROW:
                        self._set_aside(webhook, msg, now, str(exc))
                        aside += 1
                        continue
                    exc = DeliveryError(
                        f"{exc} — the {SET_ASIDE_IN_A_ROW}rd message refused in a row: the webhook is held"
                        " (feedbot outbox lists the others)",
                        exc.status,
                        retryable=False,
                        refused="webhook",
                    )
                pause = exc.retry_after if exc.retry_after is not None else self._pause(msg.attempts, exc.retryable)
                retry_at = now + timedelta(seconds=pause)
                self.store.mark_failed(msg, now, str(exc), retry_at, unanswered=exc.maybe_sent)
                metrics.deliveries.labels(webhook.name, "failed").inc()
                if str(exc) != msg.last_error:  # logged once, not at every retry
                    log.warning(
                        "webhook=%s status=error sent=%d pending=%d retry_at=%s error=%r",
                        webhook.name,
                        sent,
                        len(queue) - n,
                        retry_at.isoformat(timespec="seconds"),
                        str(exc),
                    )
                return DeliveryReport(webhook.name, sent, len(queue) - n, str(exc), retry_at, aside)
            self.store.mark_delivered(msg, self.clock(), remote_id)
            metrics.deliveries.labels(webhook.name, "ok").inc()
            sent += 1
        if queue:
            log.info("webhook=%s status=ok sent=%d set_aside=%d pending=0", webhook.name, sent, aside)
        return DeliveryReport(webhook.name, sent, 0, None, None, aside)

    def _set_aside(self, webhook: Webhook, msg: OutMessage, now: datetime, error: str) -> None:
        self.store.set_aside(msg, now, error)
        metrics.deliveries.labels(webhook.name, "set_aside").inc()
        log.warning(
            "webhook=%s message=%s refused for good, set aside (feedbot outbox retry|drop %s); the queue goes on: %s",
            webhook.name,
            msg.key,
            message_ref(msg.digest_id, msg.seq, msg.webhook),
            error,
        )

    def _interrupted(self, webhook: Webhook, msg: OutMessage, me: str) -> str | None:
        """Why ``msg``'s first POST now may repeat one that arrived ("crash",
        "takeover"), None if it cannot, "elsewhere" if it is left for now to
        the live instance that has it in flight."""
        if msg.in_flight_at is None:
            return None
        by = msg.in_flight_by
        if by == UNANSWERED:
            log.info(
                "webhook=%s message=%s: its last POST got no answer in time; sending it again (it may arrive twice)",
                webhook.name,
                msg.key,
            )
            return "unanswered"
        recent = self.clock() - msg.in_flight_at < IN_FLIGHT_PATIENCE
        if by is not None and by != me and recent and self.store.instance_alive(by, since=msg.in_flight_at):
            log.info(
                "webhook=%s message=%s is in flight at instance %s, which is alive (stopped or slow): left to it",
                webhook.name,
                msg.key,
                by,
            )
            return "elsewhere"
        log.warning(
            "webhook=%s message=%s was being sent when %s stopped; sending it again (it may arrive twice)",
            webhook.name,
            msg.key,
            "feedbot" if by is None or instance_pid(by) is None else f"instance {by}",
        )
        return "takeover" if by is not None and by != me else "crash"

    def _fence(self, webhook: Webhook, msg: OutMessage, lease: Lease, first: str | None) -> Attempt:
        """What runs before each POST of ``msg``: the in-flight mark under
        the lease; a POST that may make a copy is counted (``first``: why
        the first one may; a retry: after an answer that never came)."""
        tried = False

        def attempt(uncertain: bool) -> None:
            nonlocal tried
            why = first if not tried else "unanswered" if uncertain else None
            tried = True
            if not self.store.mark_attempt(msg, self.clock(), lease, resent=why is not None):
                raise LeaseLost("this instance lost the digest lease (it was stopped or cut off from the database)")
            if why is not None:
                metrics.resent.labels(webhook.name, why).inc()

        return attempt

    def _pause(self, attempts: int, retryable: bool) -> float:
        """How long a failed queue waits before the next unforced try."""
        if not retryable:
            return HOLD_AFTER_REJECTION
        return backoff(attempts, self.rng, QUEUE_BACKOFF_BASE, QUEUE_BACKOFF_CAP)

    async def post(self, webhook: Webhook, msg: OutMessage, before: Attempt | None = None) -> str | None:
        """One message, with a few quick retries; DeliveryError if not
        accepted.  Returns the id the platform gave it (kinds that thread).
        ``before(uncertain)`` runs before every POST (the fence);
        ``uncertain``: an earlier POST of it may have arrived."""
        kind = KINDS[webhook.kind]
        previous = self.store.previous_remote_id(msg) if kind.reads_reply and msg.seq > 0 else None
        last: DeliveryError | None = None
        uncertain = False
        wait = 0.0
        for attempt in range(ATTEMPTS):
            if attempt:
                await self.sleep(wait)
            if before is not None:
                before(last is not None and last.maybe_sent)
            try:
                if kind.transport == "smtp":
                    await smtp.send(webhook, msg, self.clock(), self.deadline)
                    return None
                r = await self.exchange(kind.request(webhook, msg, previous, self.clock()), kind.reads_reply)
            except DeliveryError as exc:
                if not exc.retryable:
                    raise DeliveryError(
                        f"{webhook.name}: {_scrub(str(exc), webhook)}", exc.status, retryable=False, refused=exc.refused
                    ) from None
                said = f"{webhook.name}: {_scrub(str(exc), webhook)}"
                last = DeliveryError(said, exc.status, maybe_sent=exc.maybe_sent)
                uncertain = uncertain or exc.maybe_sent
                if exc.timed_out:
                    break  # one deadline per run: the queue's backoff tries again
                wait = backoff(attempt, self.rng)
                continue
            if 200 <= r.status < 300:
                return kind.remote_id(r)
            if kind.already_accepted(r):
                log.info(
                    "webhook=%s message=%s was accepted before (%d): not sent twice", webhook.name, msg.key, r.status
                )
                return None
            detail = f"{webhook.name}: HTTP {r.status}{_scrub(_reason(kind, r), webhook)}"
            if r.status in (408, 429) or r.status >= 500:
                hint = kind.retry_hint(r) if r.status in (429, 503) else None
                # A gateway that lost the platform's answer (502, 504) cannot
                # say whether it was posted; the platform's own 5xx says not.
                last = DeliveryError(detail, r.status, retry_after=hint, maybe_sent=r.status in (502, 504))
                uncertain = uncertain or last.maybe_sent
                if hint is not None and hint > RETRY_AFTER_WAIT_CAP:
                    break  # a long rate limit: the queue waits it out, the loop does not
                wait = hint if hint is not None else backoff(attempt, self.rng)
                continue
            refused = kind.refusal(r)
            if refused == "webhook":
                detail += " — held: the destination refused it (check the webhook's address, token and rights)"
            raise DeliveryError(detail, r.status, retryable=False, refused=refused)
        assert last is not None
        last.maybe_sent = uncertain  # any POST of this run may have arrived: the next one may make a copy
        raise last

    async def exchange(self, req: HttpRequest, read_accepted: bool = False) -> Reply:
        """One request within the deadline: the answer (a 2xx's body read
        only if ``read_accepted``); DeliveryError (without the URL) if there
        was none."""
        try:
            async with (
                pause.deadline(self.deadline),
                self.client.stream(
                    req.method, req.url, content=req.body, headers=req.headers, timeout=_NO_READ_LIMIT
                ) as r,
            ):
                if 200 <= r.status_code < 300 and not read_accepted:
                    return Reply(r.status_code, r.headers, b"")  # the answer's body is not needed
                try:
                    text = await read_limited(r.aiter_raw(), r.headers, REPLY_MAX_BYTES)
                except FetchError:
                    text = b""  # too long or not inflatable: the status says enough
                return Reply(r.status_code, r.headers, text)
        except TimeoutError:
            raise DeliveryError(
                f"no complete answer within {self.deadline:g}s", maybe_sent=True, timed_out=True
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # What failed, as a dead feed says it ("Cannot connect to host
            # hooks.example:443 … [Connection refused]"): the host and port
            # only, never the path (the caller scrubs the URL's parts too).
            said = shown(str(exc), 200) or type(exc).__name__
            raise DeliveryError(f"cannot connect: {said}") from None  # nothing was sent
        except httpx.HTTPError as exc:
            raise DeliveryError(f"request failed ({type(exc).__name__})", maybe_sent=True) from None
        except (ValueError, UnicodeError):
            raise DeliveryError("request failed (the URL is not valid)") from None


def _scrub(text: str, webhook: Webhook) -> str:
    """Receivers echo the request: keep the URL's secret parts out of errors
    (which ``status`` prints and the state keeps).  Every part of the URL
    after the host can be a token: the path whole and by segment, the query
    whole and every value, as written or percent-encoded (``bot.secrets``).
    A server's words are shown, never obeyed: control characters escaped
    (an ESC or a BEL in a reply reaches no terminal and no log)."""
    secrets = url_parts(webhook.url.reveal()) | set(KINDS[webhook.kind].secrets(webhook))
    return escape_controls(Scrubber(dict.fromkeys(secrets, "…"))(text))


def url_parts(url: str) -> set[str]:
    """The parts of a webhook URL that may be its credential."""
    try:
        parts = urlsplit(url)
        values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    except ValueError:
        return {url}
    secrets = {url, url.split("://", 1)[-1], parts.path, parts.query, *values}
    secrets |= {segment for segment in parts.path.split("/") if len(segment) >= 6}
    return {unquote(x) for x in secrets} | secrets


def _reason(kind: Kind, r: Reply) -> str:
    """A short reason from the body (platforms say what was wrong)."""
    said = kind.reason(r)
    if said:
        return f" ({short(said, 120)})"
    body = r.json()
    if body:
        return f" ({short(json.dumps(body, ensure_ascii=False), 120)})"
    text = short(r.body.decode("utf-8", "replace"), 120)
    return f" ({text})" if text else ""
