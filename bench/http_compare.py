"""CPU and wall time of rounds of conditional GETs, by HTTP stack, side by side.

    .venv/bin/python -m bench.http_compare [--rounds 3] [--quick] [--write docs/http.md]

Starts bench/origins.py in its own process (its CPU is not counted) and
times rounds of conditional GETs, 16 at a time, every one answered 304,
through each stack in turn, so that the machine's noise hits them alike:

- ``feedbot``: ``bot.fetch.fetch_feed`` on feedbot's client (httpx's API on
  aiohttp's HTTP/1.1, ``bot/transport.py``), as the service polls;
- ``httpx + httpcore``: httpx's client on its default transport;
- ``httpx + httpx-aiohttp``: httpx's client on the ``httpx-aiohttp``
  package's transport (``pip install -e .[bench]``; left out if missing);
- ``aiohttp``: an aiohttp session alone, the protocol library's own cost.

Cases: plain HTTP and HTTPS (a throwaway certificate, verified), one origin
with kept-alive connections and many origins (a new connection, and a TLS
handshake, for every GET), distant servers (50–200 ms before each answer),
and 1,000 and 10,000 feeds.  Figures are medians over ``--rounds`` rounds
after one warm-up round per stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.floor import cpu
from bench.report import splice
from bot.loopback import throwaway_certificate

CONCURRENCY = 16
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    name: str
    feeds: int
    origins: int
    tls: bool
    latency: tuple[float, float] = (0.0, 0.0)
    close: bool = False  # the server ends every connection: a new one per GET


CASES = [
    Case("HTTP, 1 origin, kept-alive, 1,000 feeds", 1000, 1, False),
    Case("HTTPS, 1 origin, kept-alive, 1,000 feeds", 1000, 1, True),
    Case("HTTP, 1,000 origins, a new connection per GET", 1000, 1000, False, close=True),
    Case("HTTPS, 1,000 origins, a new connection and TLS handshake per GET", 1000, 1000, True, close=True),
    Case("HTTPS, 200 origins, 50–200 ms per answer, 1,000 feeds", 1000, 200, True, (0.05, 0.2)),
    Case("HTTP, 1 origin, kept-alive, 10,000 feeds", 10000, 1, False),
]

One = Callable[[str, str], Awaitable[int]]  # (url, etag) -> status


def _start(case: Case, cert: tuple[Path, Path]) -> tuple[subprocess.Popen[str], list[str]]:
    args = [sys.executable, "-m", "bench.origins", "--origins", str(case.origins)]
    if case.tls:
        args += ["--tls", str(cert[0]), str(cert[1])]
    if case.latency[1]:
        args += ["--latency", str(case.latency[0]), str(case.latency[1])]
    if case.close:
        args.append("--close")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    ports = json.loads(proc.stdout.readline())
    scheme = "https" if case.tls else "http"
    return proc, [f"{scheme}://127.0.0.1:{port}" for port in ports]


async def _stacks() -> dict[str, tuple[One, Callable[[], Awaitable[None]]]]:
    import aiohttp

    from bot.config import PollSettings
    from bot.fetch import _ssl_context, fetch_feed, make_client

    stacks: dict[str, tuple[One, Callable[[], Awaitable[None]]]] = {}
    feedbot = make_client(PollSettings(concurrency=CONCURRENCY))

    async def through_feedbot(url: str, etag: str) -> int:
        return (await fetch_feed(feedbot, url, etag, None, 60.0)).status

    stacks["feedbot"] = (through_feedbot, feedbot.aclose)
    limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY)

    def through(client: httpx.AsyncClient) -> One:
        async def one(url: str, etag: str) -> int:
            async with client.stream("GET", url, headers={"If-None-Match": etag}) as r:
                await r.aread()
                return r.status_code

        return one

    plain = httpx.AsyncClient(limits=limits, verify=_ssl_context())
    stacks["httpx + httpcore"] = (through(plain), plain.aclose)
    try:
        from httpx_aiohttp import HttpxAiohttpClient
    except ImportError:
        print("httpx-aiohttp is not installed (pip install -e .[bench]): left out", file=sys.stderr)
    else:
        other = HttpxAiohttpClient(limits=limits, verify=_ssl_context())
        stacks["httpx + httpx-aiohttp"] = (through(other), other.aclose)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=_ssl_context(), limit=CONCURRENCY * 2), auto_decompress=False
    )

    async def bare(url: str, etag: str) -> int:
        async with session.get(url, headers={"If-None-Match": etag}) as r:
            await r.read()
            return r.status

    stacks["aiohttp"] = (bare, session.close)
    return stacks


async def _round(one: One, urls: list[str]) -> tuple[float, float]:
    bound = asyncio.Semaphore(CONCURRENCY)

    async def get(n: int, url: str) -> None:
        async with bound:
            status = await one(url, f'"e{n}"')
            assert status == 304, f"{url} answered {status}"

    started, wall = cpu(), time.perf_counter()
    await asyncio.gather(*(get(n, url) for n, url in enumerate(urls)))
    return cpu() - started, time.perf_counter() - wall


async def _measure(case: Case, bases: list[str], rounds: int) -> dict[str, tuple[float, float]]:
    urls = [f"{bases[n % len(bases)]}/feed/{n}.xml" for n in range(case.feeds)]
    stacks = await _stacks()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in stacks}
    for one, _ in stacks.values():
        await _round(one, urls)  # warm-up: connections, caches
    for _ in range(rounds):
        for name, (one, _) in stacks.items():
            samples[name].append(await _round(one, urls))
    for _, close in stacks.values():
        await close()
    return {
        name: (statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
        for name, runs in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the first two cases only")
    parser.add_argument("--write", type=Path, help="rewrite the figures in this markdown page (docs/http.md)")
    args = parser.parse_args(argv)
    cases = CASES[:2] if args.quick else CASES
    lines = [
        f"`python -m bench.http_compare` on {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}: CPU seconds (user + system) and wall seconds of one round of conditional "
        f"GETs answered 304, {CONCURRENCY} at a time, median of {args.rounds} rounds; the servers run in their "
        "own process. Ratios are to feedbot's CPU in the same round.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cert = throwaway_certificate(Path(tmp))
        os.environ["SSL_CERT_FILE"] = str(cert[0])  # every stack trusts the throwaway certificate
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for case in cases:
            proc, bases = _start(case, cert)
            try:
                print(f"{case.name} …", file=sys.stderr, flush=True)
                results[case.name] = asyncio.run(_measure(case, bases, args.rounds))
            finally:
                proc.terminate()
                proc.wait()
    names = list(next(iter(results.values())))
    lines += [
        "| case | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for case_name, found in results.items():
        own = found["feedbot"][0]
        cells = [f"{c:.3f} CPU, {w:.2f} wall ({c / own:.1f}×)" for c, w in (found[n] for n in names)]
        lines.append(f"| {case_name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        splice(args.write, "http_compare", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
