"""Deadlines that do not count the time the process was stopped.

A process stopped with SIGSTOP (a frozen VM, a long pause, a laptop lid)
sees, when it resumes, every timer it had as expired at once: a webhook's
answer that arrived while it was stopped sits in the socket, and the
request's deadline fires in the same turn of the loop, before the answer
is read.  The message is then sent again, a copy the platform accepted
twice (issue 21: stopped 25 s, "no complete answer within 20s", although
the answer had arrived 1.5 s after the POST).

``deadline(seconds)`` is ``asyncio.timeout`` measured in time the loop
ran: a ticker (a plain callback every ``TICK`` seconds, only while a
deadline is open) notices a turn of the loop that came much later than it
was due, and credits that gap; when the deadline falls due, the credited
time is added once more, and the block gets that much longer, so the
answer in the socket is read first.  A loop blocked by code (not stopped)
looks the same and is credited the same: the deadline is for the peer, and
the peer was not the slow one.  No clock of the operating system tells a
stopped process apart from a running one; this is "where that can be known".
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

TICK = 0.25  # seconds between the ticker's turns
LATE = 1.0  # a turn this much later than due counts as time stopped


class _Ticker:
    """Time the loop did not run, added up (one per event loop, holding no
    reference to it: a loop's ticker goes with it)."""

    def __init__(self, now: float) -> None:
        self.stopped = 0.0  # seconds credited so far
        self.users = 0
        self._last = now
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.users += 1
        if self.users == 1:
            loop = asyncio.get_running_loop()
            self._last = loop.time()
            self._handle = loop.call_later(TICK, self._tick)

    def stop(self) -> None:
        self.users -= 1
        if self.users == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self.now_stopped()
        self._handle = asyncio.get_running_loop().call_later(TICK, self._tick)

    def now_stopped(self) -> float:
        """Credited time, including a stop that ends in this turn of the
        loop (which the ticker's own turn may not have seen yet)."""
        now = asyncio.get_running_loop().time()
        late = now - self._last - TICK
        if late > LATE:
            self.stopped += late
        self._last = now
        return self.stopped


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = weakref.WeakKeyDictionary()


def _ticker() -> _Ticker:
    loop = asyncio.get_running_loop()
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = _Ticker(loop.time())
    return ticker


@contextlib.asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)``, not counting time the loop did not run
    (``TimeoutError`` when it expires)."""
    loop = asyncio.get_running_loop()
    ticker = _ticker()
    ticker.start()
    credited = ticker.stopped
    scope = asyncio.timeout(None)
    handle: asyncio.TimerHandle | None = None

    def due() -> None:
        nonlocal credited, handle
        stopped = ticker.now_stopped()
        if stopped - credited > 0:
            extra, credited = stopped - credited, stopped
            handle = loop.call_later(extra, due)  # the block gets back the time it lost
        else:
            scope.reschedule(loop.time())

    handle = loop.call_later(seconds, due)
    try:
        async with scope:
            yield
    finally:
        if handle is not None:
            handle.cancel()
        ticker.stop()
