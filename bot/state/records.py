"""What the state hands out: typed records, the same from every backend."""

from __future__ import annotations

import os
import socket
import uuid
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
    in_flight_by: str | None = None  # the instance that started it, or UNANSWERED

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
    set_aside: int = 0  # messages refused for good, out of the queue
    since: datetime | None = None  # when the first pending message's digest was built


@dataclass(frozen=True)
class DigestSummary:
    """The last digest built: what ``status`` says of it."""

    digest_id: int
    day: str  # its date, YYYY-MM-DD
    built_at: datetime
    items: int
    # Per webhook: (messages, accepted, set aside).
    webhooks: dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class SetAside:
    """A message its platform refused for good, kept out of the queue."""

    digest_id: int
    webhook: str
    seq: int
    error: str
    at: datetime  # when it was refused
    built_at: datetime  # when its digest was built
    size: int  # bytes

    @property
    def ref(self) -> str:
        """How ``feedbot outbox`` names it: digest-number@webhook."""
        return message_ref(self.digest_id, self.seq, self.webhook)


# ``in_flight_by`` of a message whose POST got no answer in time (or a
# gateway's 502/504): not an instance id, so nobody waits for it; its next
# POST is counted as a possible copy (reason "unanswered").
UNANSWERED = "unanswered"


def message_ref(digest_id: int, seq: int, webhook: str) -> str:
    """``12-0@mastodon``: the digest, the message's number in it, the
    webhook (its name, or ``kind#n`` for an unnamed one)."""
    return f"{digest_id}-{seq}@{webhook.removeprefix('name:')}"


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


@dataclass
class Lease:
    """The right to build and deliver digests (``Store.exclusive``): a row
    with an expiry in the database's clock, renewed by its holder while it
    runs.  ``token`` grows at every new holder: a holder that was stopped
    past the expiry finds its token gone and stops.  ``lost``: a renewal
    found it gone."""

    name: str
    holder: str
    token: int
    lost: bool = False


def instance_id() -> str:
    """A name for this process among those sharing the state: host, pid and
    a random part (``host-pid-xxxxxx``: ``instance_pid`` reads it back)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def instance_pid(instance: str) -> tuple[str, int] | None:
    """The host and pid in an ``instance_id``, if it is one."""
    host, _, rest = instance.rpartition("-")[0].rpartition("-")
    if not (host and rest.isdigit()):
        return None
    return host, int(rest)
