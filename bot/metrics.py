"""Prometheus metrics (``[metrics] listen = "127.0.0.1:9464"``).

Counters are bumped where things happen (polls, page fetches, digests,
deliveries, copies sent again, worker tasks stopped, lease takeovers,
database statements and lock waits); the gauges that describe the state
(outbox backlog, failing feeds) are set by the service on its heartbeat,
every ten seconds, from what it reads in the database, not on each
scrape, which costs a rendering of the registry and nothing else.

The endpoint is bounded (issue 24: prometheus-client's own server ran a
thread per connection with no timeout, and 1,010 idle connections took
the service to its limit of open files: polls failed with "Too many open
files").  It is aiohttp's server on the service's own event loop: no
thread per connection; a request must arrive within ``READ_SECONDS`` of
the connection (or of the last answer on a kept-alive one), or the
connection is closed; at most ``MAX_CONNECTIONS`` are open at once, and
one over that is answered 503 and closed at once.  So a flood of
connections costs the service at most ``MAX_CONNECTIONS`` file
descriptors, for at most ``READ_SECONDS`` each; it can make scrapes fail
while it lasts, never polls or deliveries.

This module imports nothing of feedbot's: everything else imports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

log = logging.getLogger("feedbot.metrics")

MAX_CONNECTIONS = 64  # open at once; Prometheus holds one per scraper
READ_SECONDS = 10.0  # for a request to arrive; an idle kept-alive connection is closed after it too
# The whole answer to a connection over the cap: a constant, sent and closed.
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

REGISTRY = CollectorRegistry(auto_describe=True)

polls = Counter("feedbot_polls", "Feed polls, by result", ["result"], registry=REGISTRY)
items_taken = Counter("feedbot_items_taken", "Entries taken for a digest", registry=REGISTRY)
page_fetches = Counter("feedbot_page_fetches", "Article pages fetched, by result", ["result"], registry=REGISTRY)
digests = Counter(
    "feedbot_digests_built",
    'Digests built, by digest (its [[digests]] name; "" without them)',
    ["digest"],
    registry=REGISTRY,
)
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
items_waiting = Gauge(
    "feedbot_digest_items_waiting",
    "Items taken and not yet in a digest, by the digest they wait for (a removed digest's too)",
    ["digest"],
    registry=REGISTRY,
)
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


class _Busy(asyncio.Protocol):
    """A connection over the cap: 503, closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(BUSY)
        transport.close()


class Endpoint:
    """The running endpoint: ``await close()`` stops it."""

    def __init__(self, server: Any, listener: asyncio.Server) -> None:
        self.server = server
        self.listener = listener

    @property
    def port(self) -> int:
        return int(self.listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.listener.close()
        await self.server.shutdown(1.0)
        await self.listener.wait_closed()


async def _answer(request: Any) -> Any:
    from aiohttp import web

    if request.method not in ("GET", "HEAD"):
        return web.Response(status=405, headers={"Allow": "GET, HEAD"})
    if request.path not in ("/metrics", "/"):
        return web.Response(status=404, text="metrics are at /metrics\n")
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(listen: tuple[str, int], limit: int = MAX_CONNECTIONS, read_seconds: float = READ_SECONDS) -> Endpoint:
    """Start the endpoint on the running event loop (see the module's docstring)."""
    from aiohttp import web  # the service's HTTP stack already; imported here, for `run` alone

    class Bounded(web.Server):
        """aiohttp's server, counting connections from the moment one is
        made (``connections`` counts them only once they have started)."""

        def __init__(self) -> None:
            super().__init__(_answer, keepalive_timeout=read_seconds, access_log=None)
            # Handlers made and not started yet, with when: a burst of
            # accepts makes them all before the first starts.
            self.starting: dict[Any, float] = {}

        def connection(self) -> asyncio.BaseProtocol:
            now = self._loop.time()
            for handler, made in list(self.starting.items()):
                if now - made > read_seconds:  # its connection failed before it started
                    del self.starting[handler]
            if len(self.connections) + len(self.starting) >= limit:
                return _Busy()
            handler = self()
            self.starting[handler] = now
            return handler

        def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
            self.starting.pop(handler, None)
            super().connection_made(handler, transport)

    host, port = listen
    server = Bounded()
    listener = await asyncio.get_running_loop().create_server(server.connection, host, port, reuse_address=True)
    log.info("metrics on http://%s:%d/metrics (at most %d connections, %gs to ask)", host, port, limit, read_seconds)
    return Endpoint(server, listener)


def refresh(
    pending: int,
    oldest_age: float,
    items: int,
    failing: Mapping[str, float],
    alive: int,
    resent_total: int,
    set_aside: int = 0,
    waiting: Mapping[str, int] | None = None,
) -> None:
    """The gauges (called from the event loop, on the heartbeat): messages
    pending, the oldest one's age in seconds, items pending, each failing
    feed's seconds of failing, the instances heard from lately, and the
    copies sent again by every instance (``resent_total``, from the state)."""
    outbox_pending.set(pending)
    outbox_set_aside.set(set_aside)
    outbox_oldest.set(oldest_age)
    items_pending.set(items)
    if waiting is not None:
        items_waiting.clear()
        for name, count in waiting.items():
            items_waiting.labels(name).set(count)
    feeds_failing.set(len(failing))
    failing_for.clear()
    for name, seconds in failing.items():
        failing_for.labels(name).set(seconds)
    instances.set(alive)
    resent_in_state.set(resent_total)
