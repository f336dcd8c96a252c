"""Prometheus metrics (``[metrics] listen = "127.0.0.1:9464"``).

Counters are bumped where things happen (polls, page fetches, digests,
deliveries, worker tasks stopped, lease takeovers, database statements
and lock waits); the gauges that
describe the state (outbox backlog, failing feeds) are refreshed from the
database on the service's heartbeat, every ten seconds, not on each
scrape: the state is the event loop's, and a scrape comes from the HTTP
server's thread.  The endpoint is prometheus-client's own server.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from bot.config import Config
    from bot.state import Store

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
outbox_pending = Gauge("feedbot_outbox_pending", "Messages not yet accepted by their webhook", registry=REGISTRY)
outbox_oldest = Gauge(
    "feedbot_outbox_oldest_age_seconds", "Age of the oldest undelivered message's digest", registry=REGISTRY
)
items_pending = Gauge("feedbot_items_pending", "Items not yet accepted by every webhook", registry=REGISTRY)
feeds_failing = Gauge("feedbot_feeds_failing", "Configured feeds whose last poll failed", registry=REGISTRY)
failing_for = Gauge(
    "feedbot_feed_failing_seconds", "How long each failing feed has been failing", ["feed"], registry=REGISTRY
)
instances = Gauge("feedbot_instances", "Instances sharing the state, by heartbeat", registry=REGISTRY)
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


def refresh(store: Store, config: Config, now: datetime, alive: int) -> None:
    """The gauges, from the state (called from the event loop); ``alive``:
    the instances heard from lately, as the heartbeat just read them."""
    pending = sum(b.pending for b in store.backlog())
    outbox_pending.set(pending)
    oldest = store.oldest_pending()
    outbox_oldest.set((now - oldest).total_seconds() if oldest else 0)
    items_pending.set(store.pending_count())
    names = {f.url: f.name for f in config.enabled_feeds}
    failing = {url: s for url, s in store.failing_states().items() if url in names}
    feeds_failing.set(len(failing))
    failing_for.clear()
    for url, state in failing.items():
        since = state.failing_since or now
        failing_for.labels(names[url]).set(max(0.0, (now - since).total_seconds()))
    instances.set(alive)
