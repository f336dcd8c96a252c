"""What the state hands out: typed records, the same from every backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import Entry


@dataclass(frozen=True)
class FeedState:
    url: str
    name: str = ""
    etag: str | None = None
    last_modified: str | None = None
    first_ok_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_new: int = 0
    error_count: int = 0
    failing_since: datetime | None = None
    items_taken: int = 0
    next_poll_at: datetime | None = None
    warned_at: datetime | None = None


@dataclass(frozen=True)
class Elsewhere:
    """A feed another instance polls now, or polled lately (``claim_feed``):
    the earliest time a claim of it could succeed (its lease ends, or its
    next poll is due), so the others try then and not before."""

    last_poll_at: datetime | None
    lease_until: datetime | None  # set while the other instance polls it


@dataclass(frozen=True)
class NewItem:
    """An entry chosen at poll time, with the body fetched for it."""

    entry: Entry
    body: tuple[str, ...]


@dataclass(frozen=True)
class OutMessage:
    digest_id: int
    webhook: str
    seq: int
    content_type: str
    body: bytes
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    in_flight_at: datetime | None = None  # a POST started and its outcome was never recorded

    @property
    def key(self) -> str:
        """The idempotency key receivers may dedupe on."""
        return f"feedbot-{self.digest_id}-{self.seq}"


@dataclass(frozen=True)
class WebhookBacklog:
    webhook: str
    pending: int
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Instance:
    """A running ``feedbot run`` that shares the state (its heartbeat row)."""

    id: str
    host: str
    pid: int
    version: str
    config_hash: str  # of its config file: instances that differ are told apart in `status`
    started_at: datetime
    seen_at: datetime
