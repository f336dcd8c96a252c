"""The benchmark: a local feed farm, feedbot and rss2email side by side.

    .venv/bin/python -m bench.run [--feeds 1000] [--items 50] [--write BENCHMARKS.md]

One run, one process tree: the farm (bench/farm.py) runs in its own
process; each feedbot cycle is a `feedbot poll` subprocess and each
rss2email cycle an `r2e run --no-send` subprocess, timed by wall clock and
by CPU (user + system, from the children's rusage).  rss2email is installed
in bench/.venv-r2e on first use.  Cycles:

1. first poll of N feeds × M items, bodies off (everything new);
2. the same with body = "auto" over a smaller farm (article pages fetched);
3. nothing changed (all 304);
4. 10% of the feeds gained one item;
5. dedupe: 10,000 lookups + inserts against 1,000,000 stored keys;
6. rendering and splitting a digest of 500 items;
7. peak RSS of `feedbot run` holding the N feeds over several cycles;
8. `feedbot --help` start-up.

It prints a table, the machine's floor for cycles 1 and 3 (bench/floor.py:
the leanest client, no state) and the profile of a changed-feed cycle (where
the CPU goes: parse, HTTP, SQLite, rendering, start-up, event loop), and
writes them to BENCHMARKS.md.
Compare ratios, not absolute times: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.proctree import CpuMeter, process_cpu, rss_kb, tree, tree_rss_kb
from bot.workers import IDLE_SECONDS as WORKERS_IDLE

ROOT = Path(__file__).resolve().parent.parent
R2E_VENV = ROOT / "bench" / ".venv-r2e"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, output) of a subprocess and of the
    processes it starts (feedbot's workers: they are not its children once
    a fork server starts them, so their CPU is sampled while they run)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        others: dict[int, float] = {}
        while proc.poll() is None:
            for pid in tree(proc.pid)[1:]:
                others[pid] = max(others.get(pid, 0.0), process_cpu(pid))
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        output = out.read() + err.read()
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0 + sum(others.values())
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{output[-2000:]}")
    return wall, cpu, output


def start_farm(feeds: int, items: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.farm", "--feeds", str(feeds), "--items", str(items), "--seed", str(seed)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().strip()}"


def feedbot_config(folder: Path, base: str, feeds: int, body: str, extra: str = "") -> Path:
    # concurrency 16: twice the default, as a user watching 1,000 feeds would set it.
    text = f'[poll]\nfirst_poll = "all"\nmax_age = "none"\nhost_spacing = "0s"\nconcurrency = 16\n{extra}\n'
    text += "".join(f'[[feeds]]\nname = "f{n}"\nurl = "{base}/feed/{n}.xml"\nbody = "{body}"\n' for n in range(feeds))
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def r2e_ready() -> Path | None:
    r2e = R2E_VENV / "bin" / "r2e"
    if not r2e.exists():
        print("installing rss2email in bench/.venv-r2e …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(R2E_VENV)], check=True)
        r = subprocess.run(
            [str(R2E_VENV / "bin" / "pip"), "install", "-q", "rss2email>=3.14,<4"], capture_output=True, text=True
        )
        if r.returncode != 0:
            print(f"rss2email could not be installed: {r.stderr[-500:]}")
            return None
    return r2e


def r2e_config(folder: Path, base: str, feeds: int) -> tuple[Path, Path]:
    lines = [
        "[DEFAULT]",
        "to = bench@example.org",
        "from = bench@example.org",
        "email-protocol = sendmail",
        "sendmail = /bin/true",
        "",
    ]
    for n in range(feeds):
        lines += [f"[feed.f{n}]", f"url = {base}/feed/{n}.xml", ""]
    cfg = folder / "r2e.cfg"
    cfg.write_text("\n".join(lines), encoding="utf-8")
    return cfg, folder / "r2e.json"


def dedupe_bench(folder: Path) -> float:
    """Seconds for 10,000 lookups + inserts against 1,000,000 stored keys."""
    from bot.models import Entry
    from bot.state import SQLiteStore

    store = SQLiteStore.open(folder / "dedupe")
    rng = random.Random(7)
    with store.transaction():
        db = store.conn
        db.execute("INSERT INTO feeds(url, name) VALUES ('http://f', 'f')")
        for _ in range(100):
            db.executemany("INSERT INTO seen VALUES (?, 0, 1)", [(rng.randbytes(20),) for _ in range(10_000)])
    now = datetime(2025, 1, 21, tzinfo=UTC)
    entries = [Entry((rng.randbytes(20),), "t", "l", now) for _ in range(10_000)]
    t0 = time.perf_counter()
    seen = store.seen("http://f", entries)
    store.record_poll(
        "http://f",
        "f",
        now,
        etag=None,
        last_modified=None,
        take=[],
        skip=[e for e in entries if not seen.intersection(e.keys)],
    )
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


def render_bench(folder: Path) -> float:
    """Median seconds to render and split (Discord) a digest of 500 items."""
    from bot.compose import compose
    from bot.config import load_config
    from bot.kinds import KINDS
    from bot.models import Item

    config = load_config(ROOT / "config.toml", {})
    rng = random.Random(3)
    words = "ロシア ウクライナ 首脳会談 プーチン 習近平 トランプ 停戦 交渉 中国 米国".split()
    now = datetime(2025, 1, 21, tzinfo=UTC)
    items = [
        Item(
            n,
            "NHKニュース",
            config.feeds[0].url,
            "、".join(rng.choices(words, k=4)),
            f"https://example.org/{n}",
            now - timedelta(minutes=n),
            now,
            tuple("。".join(rng.choices(words, k=12)) for _ in range(3)),
        )
        for n in range(500)
    ]
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        KINDS["discord"].build(compose(config, items, date(2025, 1, 21)), 1, config.timezone)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rss_of_run(
    config: Path, seconds: float, cycle: float, between: Callable[[], float] | None = None
) -> tuple[list[int], list[int], float, float, list[float]]:
    """VmRSS samples (KB) of `feedbot run` and its workers, every 2 s; their
    CPU seconds per poll cycle (every feed answering 304) once the service
    has settled, over ``seconds``: after its first round (every feed new:
    the first idle second marks its end) and the minute its workers idle
    before they stop (``bot.workers.IDLE_SECONDS``), so that neither the
    first round's tail nor the idle pool is counted as an all-304 round;
    the CPU per cycle of that minute, shown beside it; and what ``between``
    returned, called once per cycle while the service is idle between its
    rounds (rss2email's all-304 run: the two measured side by side in time,
    so the machine's drift hits both alike)."""
    # As under systemd: a notify socket (drained here), so STATUS= updates are paid for.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    (config.parent / "notify.sock").unlink(missing_ok=True)
    notify.bind(str(config.parent / "notify.sock"))
    notify.settimeout(1)
    notified = [0]

    def drain() -> None:
        while True:
            try:
                notify.recv(4096)
                notified[0] += 1
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    env = {**os.environ, "STATE_DIRECTORY": "", "NOTIFY_SOCKET": str(config.parent / "notify.sock")}
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/feedbot"), "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    samples: list[int] = []
    main_samples: list[int] = []  # the service's own process
    others: list[float] = []
    try:
        start = time.monotonic()
        first_end = first_cpu = settled_from = settled_cpu = None
        next_sample = start + 2
        meter = CpuMeter(proc.pid)  # workers stop when idle: their CPU must not vanish with them
        last_cpu, idle_checks, burst_seen = meter.total(), 0, False
        while settled_from is None or time.monotonic() < settled_from + seconds:
            if time.monotonic() > start + seconds + 600:
                raise RuntimeError("the service did not settle: its first round never ended")
            time.sleep(0.25)
            now = time.monotonic()
            if now >= next_sample:
                next_sample += 2
                samples.append(tree_rss_kb(proc.pid))  # the service and its worker processes
                main_samples.append(rss_kb(proc.pid))
            cpu = meter.total()
            busy, last_cpu = cpu - last_cpu > 0.02, cpu
            idle_checks = 0 if busy else idle_checks + 1
            burst_seen = burst_seen or busy
            if first_end is None:
                if burst_seen and idle_checks >= 4:  # the first round is over
                    first_end, first_cpu, burst_seen = now, cpu, False
                continue
            if settled_from is None and now >= first_end + WORKERS_IDLE + cycle:
                settled_from, settled_cpu = now, cpu
            # `between` runs once after each round, when the service has been
            # idle for a second: never beside a round, which would slow both.
            if between is not None and burst_seen and idle_checks >= 4:
                burst_seen = False
                others.append(between())
                last_cpu = meter.total()
        assert first_cpu is not None and first_end is not None and settled_cpu is not None
        per_cycle = (meter.total() - settled_cpu) / ((time.monotonic() - settled_from) / cycle)
        idle_minute = (settled_cpu - first_cpu) / ((settled_from - first_end) / cycle)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        notify.close()
    assert notified[0] > 0, "the service sent no notification"
    return samples, main_samples, per_cycle, idle_minute, others


# The profiled cycle: cProfile on CPU time (its default, wall time, would
# count the waits for the farm's answers as the event loop's).
PROFILED = """
import cProfile, sys, time
from bot.cli import main
profiler = cProfile.Profile(time.process_time)
profiler.enable()
try:
    main(sys.argv[2:])
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[1])
"""

STAGES = {
    # Checked in order, against "file:function" of each profile entry.
    "parse": ("parse.py", "fastfeedparser", "feedparser", "keys.py", "extract.py", "text.py", "sgmllib", "lxml"),
    "HTTP": ("httpx", "aiohttp", "yarl", "multidict", "fetch.py", "transport.py", "ssl", "socket", "selector_events"),
    "SQLite": ("bot/state/", "sqlite3"),
    "rendering": ("render.py", "topics.py", "kinds/"),
    "start-up (imports, config)": (
        "<module>",
        "importlib",
        "bot/config/",
        "marshal",
        "compile",
        "dataclasses",
        "tomllib",
        "re/_",
    ),
    "event loop, scheduling, logging": ("asyncio", "selectors", "epoll", "poll.py", "logging", "logs.py"),
}


def floor(base: str, feeds: int) -> dict[str, float]:
    """CPU seconds of the leanest client's two rounds (bench/floor.py)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.floor", "--base", base, "--feeds", str(feeds)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def _stage(func: tuple[str, int, str]) -> str | None:
    where = f"{func[0]}:{func[2]}"
    return next((s for s, keys in STAGES.items() if any(k in where for k in keys)), None)


def profile(config: Path) -> dict[str, float]:
    """CPU seconds of one `feedbot poll` by stage (each function's own time)."""
    out = config.parent / "cycle.prof"
    subprocess.run(
        [sys.executable, "-c", PROFILED, str(out), "--config", str(config), "poll"],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    totals = dict.fromkeys([*STAGES, "other"], 0.0)
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    for func, (_, _, tottime, _, callers) in stats.items():
        stage = _stage(func)
        if stage is None and callers:
            # A built-in or a helper of no stage (isinstance, dict.get, …):
            # its time goes to the stages of its callers, in proportion.
            for caller, (_, _, share, _) in callers.items():
                totals[_stage(caller) or "other"] += share
        else:
            totals[stage or "other"] += tottime
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--body-feeds", type=int, default=100)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--no-r2e", action="store_true")
    args = parser.parse_args(argv)
    feedbot = str(ROOT / ".venv/bin/feedbot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "STATE_DIRECTORY"}
    rows: list[tuple[str, str, str, str]] = []  # cycle, feedbot, rss2email, ratio
    r2e = None if args.no_r2e else r2e_ready()
    with tempfile.TemporaryDirectory(prefix="feedbot-bench-") as tmp:
        folder = Path(tmp)
        (folder / "fb").mkdir()
        (folder / "r2e").mkdir()
        farm, base = start_farm(args.feeds, args.items, 1)
        try:
            config = feedbot_config(folder / "fb", base, args.feeds, "none")
            fb: dict[int, tuple[float, float, str]] = {}
            rr: dict[int, tuple[float, float, str]] = {}
            cfg = data = None
            if r2e:
                cfg, data = r2e_config(folder / "r2e", base, args.feeds)
            for cycle in (1, 3, 4):
                if cycle == 4:
                    urllib.request.urlopen(f"{base}/_change?share=0.1").read()
                # Cycle 3 changes nothing, so it can be repeated: the median of 3
                # (alternating the two tools) tames a noisy machine.
                runs = 3 if cycle == 3 else 1
                fb_runs, rr_runs = [], []
                for _ in range(runs):
                    fb_runs.append(timed([feedbot, "--config", str(config), "poll"], env))
                    if r2e and cfg and data:
                        rr_runs.append(timed([str(r2e), "-c", str(cfg), "-d", str(data), "run", "--no-send"], env))
                fb[cycle] = sorted(fb_runs, key=lambda r: r[1])[len(fb_runs) // 2]
                if rr_runs:
                    rr[cycle] = sorted(rr_runs, key=lambda r: r[1])[len(rr_runs) // 2]
            new4 = fb[4][2].count("new=1")
            floors = [floor(base, args.feeds) for _ in range(3)]
            low = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
            urllib.request.urlopen(f"{base}/_change?share=0.1").read()
            stages = profile(config)
            # Row 7 on the same farm: `feedbot run`, with rss2email's all-304
            # run between the service's rounds.
            (folder / "run").mkdir()
            run_config = feedbot_config(
                folder / "run",
                base,
                args.feeds,
                "none",
                # Polls every 10 s; the digest of all N × M items at once (an
                # artificial load, a memory peak of its own) is kept out of it.
                '[schedule]\npoll_every = "10s"\ndigest_every = "1h"\ndigest_at = []',
            )
            between: Callable[[], float] | None = None
            if r2e and cfg and data:
                r2e_run = [str(r2e), "-c", str(cfg), "-d", str(data), "run", "--no-send"]
                timed(r2e_run, env)  # catch up with the last change: the runs between rounds are all 304

                def r2e_cpu() -> float:
                    return timed(r2e_run, env)[1]

                between = r2e_cpu

            samples, main_samples, steady, idle_minute, interleaved = rss_of_run(run_config, 80, 10, between)
        finally:
            farm.terminate()
        small, small_base = start_farm(args.body_feeds, 20, 2)
        try:
            (folder / "body").mkdir()
            body_config = feedbot_config(
                folder / "body", small_base, args.body_feeds, "auto", "allow_private_addresses = true"
            )
            fb[2] = timed([feedbot, "--config", str(body_config), "poll"], env)
        finally:
            small.terminate()
        dedupe = dedupe_bench(folder)
        render = render_bench(folder)
        starts = []
        for _ in range(10):
            t0 = time.perf_counter()
            subprocess.run([feedbot, "--help"], capture_output=True, check=True)
            starts.append(time.perf_counter() - t0)

    def ratio(a: float, b: float | None) -> str:
        return f"{b / a:.1f}× less" if b else "–"

    def cell(r: tuple[float, float, str] | None) -> str:
        return f"{r[0]:.2f} s wall, {r[1]:.2f} s CPU" if r else "–"

    n = f"{args.feeds} × {args.items}"
    rows += [
        (
            f"1. first poll, {n}, bodies off",
            cell(fb[1]),
            cell(rr.get(1)),
            f"wall {ratio(fb[1][0], rr[1][0] if 1 in rr else None)}, "
            f"CPU {ratio(fb[1][1], rr[1][1] if 1 in rr else None)}; feedbot used {fb[1][1] / fb[1][0]:.1f} cores"
            f" (CPU ÷ wall; rss2email {rr[1][1] / rr[1][0]:.1f})"
            if 1 in rr
            else "–",
        ),
        (f'2. first poll, {args.body_feeds} × 20, body = "auto"', cell(fb[2]), "–", "–"),
        (
            f"3. nothing changed (all 304), {args.feeds} feeds, median of 3",
            cell(fb[3]),
            cell(rr.get(3)),
            f"CPU {ratio(fb[3][1], rr[3][1] if 3 in rr else None)}",
        ),
        (
            f"4. 10% of feeds gained an item ({new4} new)",
            cell(fb[4]),
            cell(rr.get(4)),
            f"CPU {ratio(fb[4][1], rr[4][1] if 4 in rr else None)}; "
            f"{(fb[4][1] - fb[3][1]) / max(new4, 1) * 1000:.1f} ms CPU per new item over cycle 3",
        ),
        ("5. dedupe: 10,000 lookups + inserts vs 1,000,000 keys", f"{dedupe:.3f} s", "–", "target < 0.5 s"),
        ("6. render + split a 500-item digest", f"{render * 1000:.1f} ms", "–", "target < 50 ms"),
        (
            f"7. `feedbot run` polling {args.feeds} feeds every 10 s, RSS every 2 s ({len(samples)} samples)",
            f"peak {max(samples) / 1024:.0f} MB; first {samples[0] / 1024:.0f}, last {samples[-1] / 1024:.0f} MB"
            f" (the service's own process: peak {max(main_samples) / 1024:.0f}, last {main_samples[-1] / 1024:.0f} MB;"
            " the rest: the workers that parsed the first round, stopped after a minute idle, their fork server"
            " and multiprocessing's resource tracker);"
            f" {steady:.2f} s CPU per all-304 cycle once settled ({idle_minute:.2f} s in the minute after the"
            " first round, while its workers idle before they stop)",
            f"{statistics.median(interleaved):.2f} s CPU per all-304 run (median of {len(interleaved)},"
            " run between the service's rounds)"
            if interleaved
            else "–",
            "target < 100 MB, flat (the service and its worker processes); all-304 cycle CPU "
            + ratio(steady, statistics.median(interleaved) if interleaved else None),
        ),
        (
            "8. `feedbot --help` start-up",
            f"{statistics.median(starts) * 1000:.0f} ms (median of 10)",
            "–",
            "target < 300 ms",
        ),
    ]
    total = sum(stages.values()) or 1.0
    lines = [
        "# Benchmarks",
        "",
        f"`python -m bench.run` on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" {datetime.now(UTC):%Y-%m-%d}. Feeds served on 127.0.0.1 by bench/farm.py in its own process; feedbot"
        " and rss2email 3.14 (`r2e run --no-send`) run one after the other on the same farm, in one run. CPU is"
        " user + system of the measured process. Absolute times are of a shared, noisy machine: read the ratios.",
        "",
        "| cycle | feedbot | rss2email | ratio / target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "The machine's floor (bench/floor.py: asyncio protocols on 16 keep-alive connections, lxml for the"
        " items, no state, measured in-process, so without start-up; median of 3) against feedbot:",
        "",
        "| round | floor | feedbot | feedbot ÷ floor |",
        "|---|---|---|---|",
        f"| all new: GET + parse {n} | {low['all_new']:.2f} s CPU | {fb[1][1]:.2f} s CPU (`feedbot poll`, cycle 1)"
        f" | {fb[1][1] / low['all_new']:.1f}× |",
        f"| all 304: {args.feeds} conditional GETs | {low['all_304']:.3f} s CPU | {steady:.2f} s CPU (service, row 7);"
        f" {fb[3][1]:.2f} s (`feedbot poll`, cycle 3)"
        f" | {steady / low['all_304']:.1f}×; {fb[3][1] / low['all_304']:.1f}× |",
        "",
        f"Where the CPU of a changed-feed cycle (cycle 4's kind, {args.feeds} feeds) goes: a `feedbot poll`"
        " under cProfile timing CPU (not wall) time, each function's own time:",
        "",
        "| stage | share |",
        "|---|---|",
        *(f"| {k} | {v / total:.0%} |" for k, v in stages.items()),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        # Hand-written notes below "## Notes" survive a new run.
        old = args.write.read_text(encoding="utf-8") if args.write.exists() else ""
        notes = old[old.index("## Notes") :] if "## Notes" in old else ""
        args.write.write_text(report + ("\n" + notes if notes else ""), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
