"""100,000 feeds at a 15-minute interval: can one instance hold them?

    .venv/bin/python -m bench.hundredk [--feeds 100000] [--origins 50] [--setups 1s,1p,2p,3p] [--write docs/scaling.md]

A feed farm of its own process (bench/farm.py, 2 items a feed) listens on
``--origins`` ports of 127.0.0.1 (each an origin to the client: its own
connections); the feeds are spread over them.  For each set-up (one
instance on SQLite; one, two, three on one PostgreSQL of the bench's own):

1. ``feedbot run`` (``poll_every = "15m"``, ``body = "feed"``) is started on
   an empty state and the first round (every feed new, its two items
   taken) is timed, wall and CPU;
2. the instances are stopped, every feed's last poll moved 15 minutes
   back in the state, and they are started again: every feed is due at
   once and answers 304.  That round is timed — wall until every feed was
   polled again, CPU of every process tree — with the peak memory (RSS
   and proportional set size of each tree) and the peak of open file
   descriptors.  A round must end within 5 minutes for the interval to be
   held with room to spare (issue 27).

Compare ratios, not absolute times: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.killtest import State
from bench.proctree import CpuMeter, pss_kb, tree, tree_rss_kb
from bench.scaling import polled, wait_for
from bot.pgserver import PgServer
from bot.state import DB_NAME

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 900
ROUND_TARGET = 300.0  # seconds: a third of the interval


@dataclass
class Result:
    label: str
    instances: int
    first_wall: float = 0.0
    first_cpu: float = 0.0
    round_wall: float = 0.0
    round_cpu: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    fds: int = 0


def start_farm(feeds: int, origins: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.farm", "--feeds", str(feeds), "--items", "2", "--origins", str(origins)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, [f"http://127.0.0.1:{port}" for port in proc.stdout.readline().split()]


def config_text(bases: list[str], feeds: int, state: str) -> str:
    where = f'[state]\nurl = "{state}"\n' if state.startswith("postgresql://") else f'state_dir = "{state}"\n'
    text = (
        'timezone = "Asia/Tokyo"\n'
        + ("" if state.startswith("postgresql://") else where)
        + f'[schedule]\npoll_every = "{INTERVAL}s"\ndigest_at = ["23:59"]\n'
        + '[poll]\nhost_spacing = "0s"\nconcurrency = 32\nfirst_poll = "all"\nmax_age = "none"\n'
        + (where if state.startswith("postgresql://") else "")
    )
    return text + "".join(
        f'[[feeds]]\nname = "f{n}"\nurl = "{bases[n % len(bases)]}/feed/{n}.xml"\nbody = "feed"\n' for n in range(feeds)
    )


def fds(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):  # gone meanwhile
            total += len(os.listdir(f"/proc/{p}/fd"))
    return total


def start(path: Path, log: Path, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    procs = []
    for _ in range(count):
        with log.open("ab") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot", "--config", str(path), "run"],
                    stdout=out,
                    stderr=out,
                    env=env,
                    cwd=ROOT,
                )
            )
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=120)


def run_setup(result: Result, bases: list[str], feeds: int, pg: PgServer | None) -> Result:
    folder = Path(tempfile.mkdtemp(prefix="feedbot-100k-"))
    state = pg.new_database() if pg is not None else str(folder / "state")
    db = State(None, state) if pg is not None else State(Path(state) / DB_NAME)
    path = folder / "config.toml"
    path.write_text(config_text(bases, feeds, state), encoding="utf-8")
    log = folder / "log.txt"

    started = time.monotonic()
    procs = start(path, log, result.instances)
    meters = [CpuMeter(p.pid) for p in procs]

    def sample() -> None:
        for m in meters:
            m.total()

    wait_for("the first round", lambda: (sample(), polled(db) >= feeds)[1], 3600, step=1.0)
    result.first_wall = time.monotonic() - started
    result.first_cpu = sum(m.total() for m in meters)
    stop(procs)

    # Every feed due at once: its last poll an interval back.
    shift = f"last_poll_at = last_poll_at - {INTERVAL}, next_poll_at = NULL"
    if pg is not None:
        import psycopg

        with psycopg.connect(state, autocommit=True) as conn:
            conn.execute(f"UPDATE feeds SET {shift}")  # type: ignore[arg-type]
    else:
        import sqlite3

        conn = sqlite3.connect(Path(state) / DB_NAME)
        conn.execute(f"UPDATE feeds SET {shift}")
        conn.commit()
        conn.close()
    mark = int(time.time())

    def done() -> int:
        return int(str(db.one(f"SELECT COUNT(*) FROM feeds WHERE last_poll_at >= {mark}") or 0))

    started = time.monotonic()
    procs = start(path, log, result.instances)
    meters = [CpuMeter(p.pid) for p in procs]
    peak_rss = peak_pss = peak_fds = 0

    def progress() -> bool:
        nonlocal peak_rss, peak_pss, peak_fds
        sample()
        peak_rss = max(peak_rss, sum(tree_rss_kb(p.pid) for p in procs))
        peak_pss = max(peak_pss, sum(pss_kb(q) for p in procs for q in tree(p.pid)))
        peak_fds = max(peak_fds, sum(fds(p.pid) for p in procs))
        return done() >= feeds

    wait_for("the 304 round", progress, 3600, step=1.0)
    result.round_wall = time.monotonic() - started
    result.round_cpu = [m.total() for m in meters]
    result.rss_mb, result.pss_mb, result.fds = peak_rss / 1024, peak_pss / 1024, peak_fds
    stop(procs)
    text = log.read_text(encoding="utf-8", errors="replace")
    if "Traceback" in text:
        print(f"  tracebacks in {log}", flush=True)
    return result


def row(r: Result) -> str:
    cpu = " + ".join(f"{c:.0f}" for c in r.round_cpu)
    held = "yes" if r.round_wall <= ROUND_TARGET else "NO"
    return (
        f"| {r.label} | {r.first_wall:.0f} s ({r.first_cpu:.0f} s CPU) | {r.round_wall:.0f} s | {cpu} = "
        f"{sum(r.round_cpu):.0f} s | {r.rss_mb:.0f} MB ({r.pss_mb:.0f} MB PSS) | {r.fds} | {held} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--origins", type=int, default=50)
    parser.add_argument("--setups", default="1s,1p,2p,3p")
    parser.add_argument("--write", type=Path, help="write the table into this Markdown file (between markers)")
    args = parser.parse_args(argv)
    every = {
        "1s": Result("1 instance, SQLite", 1),
        "1p": Result("1 instance, PostgreSQL", 1),
        "2p": Result("2 instances, PostgreSQL", 2),
        "3p": Result("3 instances, PostgreSQL", 3),
    }
    farm, bases = start_farm(args.feeds, args.origins)
    pg = PgServer(durable=True).start() if any(k.endswith("p") for k in args.setups.split(",")) else None
    results = []
    try:
        for key in args.setups.split(","):
            print(f"{every[key].label} …", flush=True)
            results.append(run_setup(every[key], bases, args.feeds, pg if key.endswith("p") else None))
            print("  " + row(results[-1]), flush=True)
    finally:
        if pg is not None:
            pg.stop()
        farm.terminate()
    table = (
        f"<!-- bench.hundredk: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs;"
        f" {args.feeds:,} feeds on {args.origins} origins, poll_every {INTERVAL // 60} min -->\n"
        "| set-up | first round: wall (CPU) | all-304 round: wall | its CPU, per instance = total |"
        " peak memory | peak open files | round ≤ 5 min |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(row(r) for r in results)
        + "\n"
    )
    print(table)
    if args.write:
        start_mark, end_mark = "<!-- hundredk:begin -->", "<!-- hundredk:end -->"
        text = args.write.read_text(encoding="utf-8")
        if start_mark not in text:
            text += f"\n{start_mark}\n{end_mark}\n"
        a, b = text.index(start_mark) + len(start_mark), text.index(end_mark)
        args.write.write_text(text[:a] + "\n" + table + text[b:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
