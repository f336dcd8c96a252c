"""CPU per round of conditional GETs, by HTTP path, side by side in one run.

    .venv/bin/python -m bench.http_compare [--feeds 1000] [--rounds 5]

Starts the feed farm (bench/farm.py) in its own process, learns every
feed's ETag, then times rounds of N conditional GETs (all answered 304),
16 at a time, alternating the paths so that the machine's noise hits all
of them alike:

- ``httpx``: httpx's client on its default transport (httpcore);
- ``httpx + wire``: httpx's client on bot/wire.py's transport;
- ``direct``: ``bot.fetch.get`` as feedbot polls (the transport, directly).

Prints the median CPU seconds of each path per round and its ratio to the
first.  bench/floor.py gives the floor of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Awaitable, Callable

import httpx

from bench.floor import cpu
from bench.run import start_farm
from bot.config import PollSettings
from bot.fetch import FEED_ACCEPT, FEED_MAX_BYTES, _ssl_context, get, make_client
from bot.wire import WireTransport

CONCURRENCY = 16


async def round_of(one: Callable[[int], Awaitable[int]], feeds: int) -> float:
    bound = asyncio.Semaphore(CONCURRENCY)

    async def bounded(n: int) -> None:
        async with bound:
            status = await one(n)
            assert status == 304, f"feed {n} answered {status}"

    start = cpu()
    await asyncio.gather(*(bounded(n) for n in range(feeds)))
    return cpu() - start


async def compare(base: str, feeds: int, rounds: int) -> dict[str, list[float]]:
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY)
    plain = httpx.AsyncClient(limits=limits, verify=_ssl_context())
    wired = httpx.AsyncClient(transport=WireTransport(_ssl_context(), CONCURRENCY))
    feedbot = make_client(PollSettings(concurrency=CONCURRENCY))
    etags = [(await plain.get(f"{base}/feed/{n}.xml")).headers["etag"] for n in range(feeds)]

    def through(client: httpx.AsyncClient) -> Callable[[int], Awaitable[int]]:
        async def one(n: int) -> int:
            headers = {"Accept": FEED_ACCEPT, "If-None-Match": etags[n]}
            async with client.stream("GET", f"{base}/feed/{n}.xml", headers=headers) as r:
                await r.aread()
                return r.status_code

        return one

    async def direct(n: int) -> int:
        headers = {"Accept": FEED_ACCEPT, "If-None-Match": etags[n]}
        return (
            await get(feedbot, f"{base}/feed/{n}.xml", headers=headers, max_bytes=FEED_MAX_BYTES, deadline=30)
        ).status

    paths = {"httpx": through(plain), "httpx + wire": through(wired), "direct": direct}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for one in paths.values():  # a first round each: connections opened, caches warm
        await round_of(one, feeds)
    for _ in range(rounds):
        for name, one in paths.items():
            times[name].append(await round_of(one, feeds))
    for client in (plain, wired, feedbot):
        await client.aclose()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    farm, base = start_farm(args.feeds, 5, 1)
    try:
        times = asyncio.run(compare(base, args.feeds, args.rounds))
    finally:
        farm.terminate()
    first = statistics.median(next(iter(times.values())))
    print(f"{args.feeds} conditional GETs (304), {CONCURRENCY} at a time, median of {args.rounds} rounds:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:14} {median:.3f} s CPU  ({first / median:.1f}× less than httpx)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
