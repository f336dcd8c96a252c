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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("feedbot.metrics")

MAX_CONNECTIONS = 64  # open at once; Prometheus holds one per scraper
READ_SECONDS = 10.0  # for a request to arrive; an idle kept-alive connection is closed after it too
# The whole answer to a connection over the cap: a constant, sent and closed.
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# The metrics, made on first use (``__getattr__``): prometheus-client is
# imported then, and not at all by a one-shot command that calls ``off()``
# (`feedbot poll` exports nothing; the import was 3% of an unchanged cycle).
# name: (kind, exported name, help, labels).  The state database's cost
# (bench/scaling.py reads it): statements sent, and the waits for a lock
# another instance held.
_SPECS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "polls": (
        "Counter",
        "feedbot_polls",
        "Feed polls, by result",
        ("result",),
    ),
    "items_taken": (
        "Counter",
        "feedbot_items_taken",
        "Entries taken for a digest",
        (),
    ),
    "page_fetches": (
        "Counter",
        "feedbot_page_fetches",
        "Article pages fetched, by result",
        ("result",),
    ),
    "digests": (
        "Counter",
        "feedbot_digests_built",
        'Digests built, by digest (its [[digests]] name; "" without them)',
        ("digest",),
    ),
    "deliveries": (
        "Counter",
        "feedbot_deliveries",
        "Messages POSTed to webhooks, by webhook and result",
        ("webhook", "result"),
    ),
    "worker_stopped": (
        "Counter",
        "feedbot_worker_tasks_stopped",
        "Parse and extraction tasks stopped at their limits",
        (),
    ),
    "lease_takeovers": (
        "Counter",
        "feedbot_lease_takeovers",
        "Feeds taken over from an instance that died while polling them",
        (),
    ),
    "lease_lapses": (
        "Counter",
        "feedbot_lease_lapses",
        "Leases (digest) taken from an instance that stopped renewing them: stopped, dead or cut off",
        ("lease",),
    ),
    "resent": (
        "Counter",
        "feedbot_messages_resent",
        "POSTs that may repeat one that arrived, by webhook and why: crash (in flight when a process "
        "stopped), takeover (in flight at another instance that is gone), unanswered (a retry after a "
        "timeout, a broken connection or a 5xx)",
        ("webhook", "reason"),
    ),
    "outbox_pending": (
        "Gauge",
        "feedbot_outbox_pending",
        "Messages not yet accepted by their webhook",
        (),
    ),
    "outbox_oldest": (
        "Gauge",
        "feedbot_outbox_oldest_age_seconds",
        "Age of the oldest undelivered message's digest",
        (),
    ),
    "outbox_set_aside": (
        "Gauge",
        "feedbot_outbox_set_aside",
        "Messages their platform refused for good, kept out of the queue (feedbot outbox)",
        (),
    ),
    "items_pending": (
        "Gauge",
        "feedbot_items_pending",
        "Items not yet accepted by every webhook",
        (),
    ),
    "items_waiting": (
        "Gauge",
        "feedbot_digest_items_waiting",
        "Items taken and not yet in a digest, by the digest they wait for (a removed digest's too)",
        ("digest",),
    ),
    "feeds_failing": (
        "Gauge",
        "feedbot_feeds_failing",
        "Configured feeds whose last poll failed",
        (),
    ),
    "failing_for": (
        "Gauge",
        "feedbot_feed_failing_seconds",
        "How long each failing feed has been failing",
        ("feed",),
    ),
    "instances": (
        "Gauge",
        "feedbot_instances",
        "Instances sharing the state, by heartbeat",
        (),
    ),
    "resent_in_state": (
        "Gauge",
        "feedbot_messages_resent_recorded",
        "POSTs that may have repeated one that arrived, as the state records them (every instance)",
        (),
    ),
    "db_statements": (
        "Counter",
        "feedbot_db_statements",
        "Statements sent to the state database",
        (),
    ),
    "lock_waits": (
        "Counter",
        "feedbot_db_lock_waits",
        "Times a lock was held by another instance, by lock",
        ("lock",),
    ),
    "lock_wait_seconds": (
        "Counter",
        "feedbot_db_lock_wait_seconds",
        "Time spent waiting for a lock another instance held, by lock",
        ("lock",),
    ),
}

REGISTRY: CollectorRegistry
polls: Counter
items_taken: Counter
page_fetches: Counter
digests: Counter
deliveries: Counter
worker_stopped: Counter
lease_takeovers: Counter
lease_lapses: Counter
resent: Counter
outbox_pending: Gauge
outbox_oldest: Gauge
outbox_set_aside: Gauge
items_pending: Gauge
items_waiting: Gauge
feeds_failing: Gauge
failing_for: Gauge
instances: Gauge
resent_in_state: Gauge
db_statements: Counter
lock_waits: Counter
lock_wait_seconds: Counter


def _make(off: bool) -> dict[str, Any]:
    if off:
        return dict.fromkeys(("REGISTRY", *_SPECS), _NULL)
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry(auto_describe=True)
    made: dict[str, Any] = {"REGISTRY": registry}
    for name, (kind, exported, doc, labels) in _SPECS.items():
        made[name] = (Counter if kind == "Counter" else Gauge)(exported, doc, labels, registry=registry)
    return made


def _ready(off: bool = False) -> None:
    """The metrics made (or, ``off``, no-ops), once per process."""
    if "REGISTRY" not in globals():
        globals().update(_make(off))


def off() -> None:
    """Metrics as no-ops, unless made already: for a command that exports
    none (`feedbot poll`, `digest`), which then never imports prometheus-client."""
    _ready(off=True)


def __getattr__(name: str) -> Any:
    if name == "REGISTRY" or name in _SPECS:
        _ready()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Null:
    """A metric that counts nothing (``off``)."""

    def labels(self, *args: object, **kwargs: object) -> _Null:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def clear(self) -> None:
        return None


_NULL = _Null()


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
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from bot import metrics as this  # its metrics are made on first use (``__getattr__``)

    return web.Response(body=generate_latest(this.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


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
    from bot import metrics as this  # its metrics are made on first use (``__getattr__``)

    this.outbox_pending.set(pending)
    this.outbox_set_aside.set(set_aside)
    this.outbox_oldest.set(oldest_age)
    this.items_pending.set(items)
    if waiting is not None:
        this.items_waiting.clear()
        for name, count in waiting.items():
            this.items_waiting.labels(name).set(count)
    this.feeds_failing.set(len(failing))
    this.failing_for.clear()
    for name, seconds in failing.items():
        this.failing_for.labels(name).set(seconds)
    this.instances.set(alive)
    this.resent_in_state.set(resent_total)
