"""The worker pool starts cheap (issue 27): workers are forked from a fork
server that imported the parsing stack once, and keep their limits."""

from __future__ import annotations

import subprocess
import sys

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
