"""Prometheus metrics (``[metrics] listen = "127.0.0.1:9464"``).

Counters are bumped where things happen (polls, page fetches, digests,
deliveries, copies sent again, worker tasks stopped, lease takeovers,
database statements and lock waits); the gauges that describe the state
(outbox backlog, failing feeds) are set by the service on its heartbeat,
every ten seconds, from what it reads in the database, not on each
scrape: the state is the event loop's, and a scrape comes from the HTTP
server's thread.  The endpoint is prometheus-client's own server.

This module imports nothing of feedbot's: everything else imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger("feedbot.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

polls = Counter("feedbot_polls", "Feed polls, by result", ["result"], registry=REGISTRY)
items_taken = Counter("feedbot_items_taken", "Entries taken for a digest", registry=REGISTRY)
page_fetches = Counter("feedbot_page_fetches", "Article pages fetched, by result", ["result"], registry=REGISTRY)
digests = Counter("feedbot_digests_built", "Digests built", registry=REGISTRY)
deliveries = Counter(
    "feedbot_deliveries", "Messages POSTed to webhooks, by webhook and result", ["webhook", "result"], registry=REGISTRY
)
worker_stopped = Counter(
    "feedbot_worker_tasks_stopped", "Parse and extraction tasks stopped at their limits", registry=REGISTRY
)
lease_takeovers = Counter(
    "feedbot_lease_takeovers", "Feeds taken over from an instance that died while polling them", registry=REGISTRY
)
lease_lapses = Counter(
    "feedbot_lease_lapses",
    "Leases (digest) taken from an instance that stopped renewing them: stopped, dead or cut off",
    ["lease"],
    registry=REGISTRY,
)
resent = Counter(
    "feedbot_messages_resent",
    "POSTs that may repeat one that arrived, by webhook and why: crash (in flight when a process stopped),"
    " takeover (in flight at another instance that is gone), unanswered (a retry after a timeout, a broken"
    " connection or a 5xx)",
    ["webhook", "reason"],
    registry=REGISTRY,
)
outbox_pending = Gauge("feedbot_outbox_pending", "Messages not yet accepted by their webhook", registry=REGISTRY)
outbox_oldest = Gauge(
    "feedbot_outbox_oldest_age_seconds", "Age of the oldest undelivered message's digest", registry=REGISTRY
)
outbox_set_aside = Gauge(
    "feedbot_outbox_set_aside",
    "Messages their platform refused for good, kept out of the queue (feedbot outbox)",
    registry=REGISTRY,
)
items_pending = Gauge("feedbot_items_pending", "Items not yet accepted by every webhook", registry=REGISTRY)
feeds_failing = Gauge("feedbot_feeds_failing", "Configured feeds whose last poll failed", registry=REGISTRY)
failing_for = Gauge(
    "feedbot_feed_failing_seconds", "How long each failing feed has been failing", ["feed"], registry=REGISTRY
)
instances = Gauge("feedbot_instances", "Instances sharing the state, by heartbeat", registry=REGISTRY)
resent_in_state = Gauge(
    "feedbot_messages_resent_recorded",
    "POSTs that may have repeated one that arrived, as the state records them (every instance)",
    registry=REGISTRY,
)
# The state database's cost (bench/scaling.py reads these): statements
# sent, and the waits for a lock another instance held.
db_statements = Counter("feedbot_db_statements", "Statements sent to the state database", registry=REGISTRY)
lock_waits = Counter(
    "feedbot_db_lock_waits", "Times a lock was held by another instance, by lock", ["lock"], registry=REGISTRY
)
lock_wait_seconds = Counter(
    "feedbot_db_lock_wait_seconds",
    "Time spent waiting for a lock another instance held, by lock",
    ["lock"],
    registry=REGISTRY,
)


def serve(listen: tuple[str, int]) -> Any:
    """Start the endpoint; returns the server (``shutdown()`` stops it)."""
    host, port = listen
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server


def refresh(
    pending: int,
    oldest_age: float,
    items: int,
    failing: Mapping[str, float],
    alive: int,
    resent_total: int,
    set_aside: int = 0,
) -> None:
    """The gauges (called from the event loop, on the heartbeat): messages
    pending, the oldest one's age in seconds, items pending, each failing
    feed's seconds of failing, the instances heard from lately, and the
    copies sent again by every instance (``resent_total``, from the state)."""
    outbox_pending.set(pending)
    outbox_set_aside.set(set_aside)
    outbox_oldest.set(oldest_age)
    items_pending.set(items)
    feeds_failing.set(len(failing))
    failing_for.clear()
    for name, seconds in failing.items():
        failing_for.labels(name).set(seconds)
    instances.set(alive)
    resent_in_state.set(resent_total)
