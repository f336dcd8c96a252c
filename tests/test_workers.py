"""The worker pool starts cheap (issue 27): workers are forked from a fork
server that imported the parsing stack once, and keep their limits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT

# In a process of its own: the fork server is one per process, started by
# the first pool, so a test session's earlier pools would decide it here.
CHECK = """
import asyncio, sys
from bot.workers import Workers
from tests.test_workers import loaded

async def go():
    workers = Workers(processes=2, cpu_seconds=5)
    try:
        first = await workers.run(loaded)
        extra = Workers(processes=1)
        extra.preload(["bot.extract"])  # too late: the fork server runs already
        try:
            late = await extra.run(loaded)
        finally:
            extra.close()
        return first, late, "fastfeedparser" in sys.modules
    finally:
        workers.close()

print(asyncio.run(go()))
"""


def loaded() -> tuple[bool, bool, bool]:
    """In the worker, before it runs anything: is the parsing stack there?"""
    return "bot.parse" in sys.modules, "fastfeedparser" in sys.modules, "bot.extract" in sys.modules


def test_workers_are_forked_with_the_parsing_stack_loaded() -> None:
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    # Loaded in the workers (by the fork server), never in the parent that asked.
    assert r.stdout.strip() == "((True, True, False), (True, True, False), False)"


def test_the_extraction_stack_is_preloaded_when_asked_before_the_first_pool() -> None:
    made = "    workers = Workers(processes=2, cpu_seconds=5)\n"
    code = CHECK.replace(made, made + "    workers.preload(['bot.extract'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "((True, True, True), (True, True, True), False)"


def test_the_event_loop_goes_on_while_the_pool_starts() -> None:
    """The first task's pool starts in a thread (the fork server's imports
    and the forks take a while): other coroutines run meanwhile."""
    import asyncio

    from bot.workers import Workers

    async def go() -> tuple[bool, int]:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            first = asyncio.ensure_future(workers.run(sum, [1, 2]))
            await asyncio.sleep(0)  # the run asks for the pool and waits for its start
            start = workers._start
            assert start is not None
            starting = not start[1].done()  # this coroutine runs while the start is still under way
            return starting, await first
        finally:
            workers.close()

    assert asyncio.run(go()) == (True, 3)


# In-process tasks (issue 27): a small input is parsed here, under a CPU
# timer, unless the workers are up or the budget is spent.

SMALL_FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    + b"".join(
        b"<item><title>item %d</title><link>http://127.0.0.1/a/%d</link><guid>g%d</guid>"
        b"<pubDate>Mon, 06 Jan 2025 0%d:00:00 +0900</pubDate></item>" % (n, n, n, n)
        for n in range(5)
    )
    + b"</channel></rss>"
)


def where(*_args: object) -> int:
    """The process a task ran in."""
    import os

    return os.getpid()


def spin(*_args: object) -> int:
    """A task that never ends, and swallows every ``Exception`` on the way."""
    while True:
        try:
            sum(range(1000))
        except Exception:  # what a careless parser does
            continue


def test_a_small_feed_is_parsed_here_without_starting_a_worker() -> None:
    import asyncio
    import signal

    from bot.parse import parse_feed, parse_feed_here
    from bot.workers import Workers

    async def go() -> object:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            parsed = await workers.run(parse_feed, SMALL_FEED, "http://127.0.0.1/f.xml", {}, inline=parse_feed_here)
            assert workers._pool is None and workers._start is None  # no worker, no fork server
            return parsed
        finally:
            workers.close()

    parsed = asyncio.run(go())
    assert parsed == parse_feed(SMALL_FEED, "http://127.0.0.1/f.xml", {})
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)  # the timer is off again


def test_a_feed_that_needs_feedparser_is_parsed_in_a_worker() -> None:
    import asyncio

    from bot.parse import parse_feed, parse_feed_here
    from bot.workers import Workers

    undated = SMALL_FEED.replace(b"<pubDate>Mon, 06 Jan 2025 01:00:00 +0900</pubDate>", b"")  # fast path declines
    assert undated != SMALL_FEED

    async def go() -> object:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            parsed = await workers.run(parse_feed, undated, "http://127.0.0.1/f.xml", {}, inline=parse_feed_here)
            assert workers._pool is not None  # parsed by a worker
            return parsed
        finally:
            workers.close()

    assert asyncio.run(go()) == parse_feed(undated, "http://127.0.0.1/f.xml", {})


def run_inline(task: Callable[..., int]) -> tuple[int, float]:
    """``task`` offered to run in this process (``where`` if it goes to a
    worker): the pid it returned, and this thread's CPU time spent on it."""
    import asyncio
    import time

    from bot.workers import Workers

    async def go() -> tuple[int, float]:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            used = time.thread_time()
            pid = await workers.run(where, b"x", inline=task)
            return pid, time.thread_time() - used
        finally:
            workers.close()

    return asyncio.run(go())


def test_an_in_process_task_past_its_cpu_limit_is_run_again_in_a_worker() -> None:
    import os
    import signal

    from bot import workers as mod

    pid, cpu = run_inline(spin)
    assert pid != os.getpid()  # stopped here, then run by a worker
    assert mod.INLINE_CPU_SECONDS <= cpu < mod.INLINE_CPU_SECONDS + 1.0  # the spin was cut near its limit
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert not mod._armed


def _burn(seconds: float) -> None:
    import time

    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


class _Slow:
    """An object whose finalizer takes 5 ms of CPU."""

    def __del__(self) -> None:
        _burn(0.005)


def spin_in_finalizers(*_args: object) -> int:
    """A task that never ends and spends nine tenths of its CPU in
    finalizers, where Python ignores what is raised (the CPU timer's stop
    once landed in one, a regex object's ``__del__``, and the task went on)."""
    while True:
        _Slow()  # dropped at once: its ``__del__`` runs here
        _burn(0.0005)


def test_a_task_stopped_while_a_finalizer_runs_is_stopped_outside_it() -> None:
    import os
    import signal

    from bot import workers as mod

    ignored: list[object] = []
    before = sys.unraisablehook
    sys.unraisablehook = lambda report: ignored.append(report.exc_type)

    try:
        pid, cpu = run_inline(spin_in_finalizers)
    finally:
        sys.unraisablehook = before
    assert mod._Overrun not in ignored  # never raised where Python ignores it
    assert pid != os.getpid()  # stopped here, then run by a worker
    assert mod.INLINE_CPU_SECONDS <= cpu < mod.INLINE_CPU_SECONDS + 0.5
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_a_busy_cycle_spends_the_budget_then_uses_the_workers(monkeypatch: object) -> None:
    import asyncio
    import os
    import time

    import pytest

    from bot import workers as mod
    from bot.workers import Workers

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(mod, "INLINE_BURST", 0.02)
    monkeypatch.setattr(mod, "INLINE_RATE", 0.0)  # no refill: the test's own pace does not matter

    def busy(*_args: object) -> int:
        end = time.thread_time() + 0.005
        while time.thread_time() < end:
            pass
        return os.getpid()

    async def go() -> list[int]:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            pids = [await workers.run(where, b"x", inline=busy) for _ in range(6)]
            start = workers._start
            assert start is not None  # half the budget spent: the pool was started
            await asyncio.wrap_future(start[1])
            pids.append(await workers.run(where, b"x", inline=busy))  # the pool is up: a worker takes it
            return pids
        finally:
            workers.close()

    pids = asyncio.run(go())
    here = [p == os.getpid() for p in pids]
    assert here[:2] == [True, True]  # within the budget: here
    assert True not in here[here.index(False) :]  # once one went to a worker, every later one did
    assert here[-1] is False


def test_a_big_input_always_goes_to_a_worker() -> None:
    import asyncio
    import os

    from bot.workers import INLINE_BYTES, Workers

    async def go() -> int:
        workers = Workers(processes=1, cpu_seconds=5)
        try:
            return await workers.run(where, b"x" * (INLINE_BYTES + 1), inline=where)
        finally:
            workers.close()

    assert asyncio.run(go()) != os.getpid()


def imported_by_poll(config: Path) -> set[str]:
    """The modules a `feedbot poll` process imported (``-X importtime``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "STATE_DIRECTORY"}
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", "--config", str(config), "poll"],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.parent,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}


def test_a_poll_imports_only_what_its_cycle_uses(tmp_path: Path) -> None:
    """Issue 27: an unchanged cycle imports no parser, worker pool or metrics
    library; a cycle where a small feed changed parses it here, without the
    worker pool (no multiprocessing, no pebble) and without feedparser."""
    from bot.loopback import Reply, Request, Server

    version = [1]

    def feed(req: Request) -> Reply:
        etag = f'"v{version[0]}"'
        if {k.lower(): v for k, v in req.headers.items()}.get("if-none-match") == etag:
            return Reply(304, {"ETag": etag})
        body = SMALL_FEED.replace(b"item 0", b"item 0 v%d" % version[0]).replace(b"g0", b"g0v%d" % version[0])
        return Reply(200, {"Content-Type": "application/rss+xml", "ETag": etag}, body)

    with Server(feed) as server:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[poll]\nfirst_poll = "all"\nmax_age = "none"\n[[feeds]]\nname = "f"\nurl = "{server.base}/f.xml"\n',
            encoding="utf-8",
        )
        first = imported_by_poll(config)
        steady = imported_by_poll(config)
        version[0] = 2
        changed = imported_by_poll(config)
    workers = {"multiprocessing", "pebble"}
    assert {"bot.parse", "fastfeedparser"} <= first and not workers & first  # 5 entries: parsed here
    assert not {"bot.parse", "fastfeedparser", "feedparser", "prometheus_client", "bot.extract", *workers} & steady
    assert {"bot.parse", "fastfeedparser"} <= changed
    assert not {"feedparser", "prometheus_client", "bot.extract", "trafilatura", *workers} & changed
