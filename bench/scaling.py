"""Scaling out: one database, several instances, 10,000 feeds.

    .venv/bin/python -m bench.scaling [--feeds 10000] [--interval 60] [--rounds 2] [--write docs/scaling.md]…

The local feed farm (bench/farm.py, its own process) serves the feeds; a
PostgreSQL server of our own (bot/pgserver.py, fsync on) holds the state.
Four set-ups, one after the other in one run, each on a fresh database:
one instance on SQLite, then 1, 2 and 3 instances (`feedbot run`
processes) on PostgreSQL.  For each:

1. the first round (every feed new to the state) is waited for;
2. then ``--rounds`` rounds in which every feed answers 304: each
   instance's CPU (its process tree, from /proc) over that window divided by
   the rounds, the statements each sent to the database per poll, the lock
   waits (an instance finding a lock held by another: counted by the
   instances themselves, ``feedbot_db_lock_waits``), and how the polls were
   shared out — all read from each instance's own metrics endpoint;
3. with two or three instances, one is SIGKILLed while the others run: the
   time until every feed it polled has been polled by another, and how late
   that was against the feed's due time (the poll tick is 5 s).

Compare ratios, not absolute times: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.killtest import State
from bench.proctree import CpuMeter
from bench.run import start_farm
from bot.pgserver import PgServer, free_port
from bot.state import DB_NAME

ROOT = Path(__file__).resolve().parent.parent
TICK = 5.0  # bot/service.py POLL_TICK_SECONDS


@dataclass
class Instance:
    proc: subprocess.Popen[bytes]
    port: int
    cpu: CpuMeter

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@dataclass
class Setup:
    label: str
    backend: str  # "sqlite" | "postgres"
    instances: int
    first_round_s: float = 0.0
    cpu_per_round: list[float] = field(default_factory=list)  # per instance
    polls_share: list[int] = field(default_factory=list)  # 304 polls per instance in the window
    statements_per_poll: float = 0.0
    elsewhere_per_poll: float = 0.0
    lock_waits_first: int = 0
    lock_wait_s_first: float = 0.0
    lock_waits_steady: int = 0
    lock_wait_s_steady: float = 0.0
    takeover: str = "—"


def config_text(base: str, feeds: int, interval: int, state: str, metrics_port: int) -> str:
    where = f'[state]\nurl = "{state}"\n' if state.startswith("postgresql://") else ""
    text = (
        ("" if where else f'state_dir = "{state}"\n')
        + 'timezone = "Asia/Tokyo"\n[schedule]\n'
        + f'poll_every = "{interval}s"\ndigest_at = ["23:59"]\n'
        + '[poll]\nhost_spacing = "0s"\nconcurrency = 16\n'
        + f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
        + where
    )
    return text + "".join(f'[[feeds]]\nname = "f{n}"\nurl = "{base}/feed/{n}.xml"\n' for n in range(feeds))


def sum_metric(snaps: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]], name: str, **labels: str) -> float:
    total = 0.0
    for snap in snaps:
        for (n, lab), value in snap.items():
            if n == name and all(dict(lab).get(k) == v for k, v in labels.items()):
                total += value
    return total


def polls(snap: dict[tuple[str, tuple[tuple[str, str], ...]], float], result: str) -> float:
    return sum_metric([snap], "feedbot_polls_total", result=result)


def wait_for(what: str, check: Callable[[], bool], timeout: float, step: float = 0.5) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def polled(db: State) -> int:
    try:
        return int(str(db.one("SELECT COUNT(*) FROM feeds WHERE last_poll_at IS NOT NULL") or 0))
    except Exception:  # not created yet
        return 0


def run_setup(setup: Setup, base: str, feeds: int, interval: int, rounds: int, pg: PgServer | None) -> Setup:
    folder = Path(tempfile.mkdtemp(prefix="feedbot-scale-"))
    state = pg.new_database() if pg is not None else str(folder / "state")
    db = State(None, state) if state.startswith("postgresql://") else State(Path(state) / DB_NAME)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    instances: list[Instance] = []
    for n in range(setup.instances):
        port = free_port()
        path = folder / f"config{n}.toml"  # one file each: the same text but for the metrics port
        path.write_text(config_text(base, feeds, interval, state, port), encoding="utf-8")
        with (folder / f"log{n}.txt").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(path), "run"], stdout=log, stderr=log, env=env, cwd=ROOT
            )
        instances.append(Instance(proc, port, CpuMeter(proc.pid)))
    try:
        started = time.monotonic()
        wait_for("the metrics endpoints", lambda: all(_up(i) for i in instances), 60)
        zero = [i.scrape() for i in instances]
        wait_for("the first round", lambda: polled(db) >= feeds, 600)
        setup.first_round_s = time.monotonic() - started
        # The first round's lock waits (every feed new: items and seen keys written).
        time.sleep(2 * TICK)  # the last polls' records, and a tick for the scrape to settle
        before = [i.scrape() for i in instances]
        cpu0 = [i.cpu.total() for i in instances]
        setup.lock_waits_first = int(
            sum_metric(before, "feedbot_db_lock_waits_total") - sum_metric(zero, "feedbot_db_lock_waits_total")
        )
        setup.lock_wait_s_first = sum_metric(before, "feedbot_db_lock_wait_seconds_total") - sum_metric(
            zero, "feedbot_db_lock_wait_seconds_total"
        )
        base_304 = sum(polls(s, "not-modified") for s in before)

        def rounds_done() -> bool:
            for i in instances:
                i.cpu.total()  # sample often: workers that end are still counted
            return sum(polls(i.scrape(), "not-modified") for i in instances) - base_304 >= rounds * feeds

        wait_for(f"{rounds} rounds of 304s", rounds_done, rounds * interval + 300, step=1.0)
        after = [i.scrape() for i in instances]
        cpu1 = [i.cpu.total() for i in instances]
        setup.cpu_per_round = [(b - a) / rounds for a, b in zip(cpu0, cpu1, strict=True)]
        done = [polls(a, "not-modified") - polls(b, "not-modified") for a, b in zip(after, before, strict=True)]
        setup.polls_share = [int(d) for d in done]
        all_polls = sum(done)
        setup.statements_per_poll = (
            sum_metric(after, "feedbot_db_statements_total") - sum_metric(before, "feedbot_db_statements_total")
        ) / all_polls
        setup.elsewhere_per_poll = (
            sum_metric(after, "feedbot_polls_total", result="elsewhere")
            - sum_metric(before, "feedbot_polls_total", result="elsewhere")
        ) / all_polls
        setup.lock_waits_steady = int(
            sum_metric(after, "feedbot_db_lock_waits_total") - sum_metric(before, "feedbot_db_lock_waits_total")
        )
        setup.lock_wait_s_steady = sum_metric(after, "feedbot_db_lock_wait_seconds_total") - sum_metric(
            before, "feedbot_db_lock_wait_seconds_total"
        )
        if setup.instances > 1:
            setup.takeover = takeover(db, instances, interval)
    finally:
        for i in instances:
            if i.proc.poll() is None:
                i.proc.send_signal(signal.SIGTERM)
        for i in instances:
            try:
                i.proc.wait(30)
            except subprocess.TimeoutExpired:
                i.proc.kill()
    return setup


def takeover(db: State, instances: list[Instance], interval: int) -> str:
    """SIGKILL the first instance mid-round; how soon, and how late against
    their due times, the others poll every feed it had."""
    victim = instances[0]
    ident = str(db.rows(f"SELECT id FROM instances WHERE pid = {victim.proc.pid}")[0][0])
    # Halfway between two rounds of its feeds, so that some are mid-poll or due soon.
    time.sleep(interval / 2)
    victim.proc.kill()
    killed = time.time()
    mine = db.rows(
        f"SELECT url, last_poll_at, lease_owner = '{ident}' FROM feeds"
        f" WHERE polled_by = '{ident}' OR lease_owner = '{ident}'"
    )
    before = {str(u): (int(str(t)) if t is not None else 0, bool(leased)) for u, t, leased in mine}

    def moved() -> bool:
        rows = db.rows(f"SELECT COUNT(*) FROM feeds WHERE polled_by = '{ident}' OR lease_owner = '{ident}'")
        return int(str(rows[0][0])) == 0

    took = wait_for("the takeover", moved, interval * 2 + 180)
    late: list[float] = []
    late_leased: list[float] = []
    for url, polled_at in db.rows("SELECT url, last_poll_at FROM feeds"):
        if str(url) in before:
            last, leased = before[str(url)]
            due = max(last + interval, killed)  # a feed is due an interval after its last poll
            (late_leased if leased else late).append(int(str(polled_at)) - due)
    worst = max(late, default=0.0)
    text = (
        f"{len(before):,} feeds taken over in {took:.0f} s; at most {worst:.0f} s after they were due"
        f" ({worst / TICK:.1f} ticks)"
    )
    if late_leased:
        text += f"; {len(late_leased)} claimed at the kill: {max(late_leased):.0f} s"
    return text


def _up(instance: Instance) -> bool:
    if instance.proc.poll() is not None:
        raise SystemExit(f"an instance exited ({instance.proc.returncode}) at start")
    try:
        instance.scrape()
        return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--interval", type=int, default=60, help="poll_every, seconds")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--write",
        type=Path,
        action="append",
        default=[],
        help="write the figures into this Markdown file's table (between <!-- scaling:begin/end -->; repeatable)",
    )
    parser.add_argument(
        "--setups", default="1s,1p,2p,3p", help="which set-ups: 1s (SQLite), 1p 2p 3p (instances on PostgreSQL)"
    )
    args = parser.parse_args(argv)
    farm, base = start_farm(args.feeds, args.items, 1)
    pg = PgServer(durable=True).start()
    results: list[Setup] = []
    try:
        every = {
            "1s": ("1 instance, SQLite", "sqlite", 1),
            "1p": ("1 instance, PostgreSQL", "postgres", 1),
            "2p": ("2 instances, PostgreSQL", "postgres", 2),
            "3p": ("3 instances, PostgreSQL", "postgres", 3),
        }
        # A set-up may be named again ("1s,1p,1s,1p"): each time a fresh run,
        # so that the PostgreSQL-to-SQLite ratio comes from pairs run back to
        # back (set-ups minutes apart met different loads on a shared machine).
        plan = [Setup(*every[key]) for key in args.setups.split(",")]
        for setup in plan:
            print(f"{setup.label} …", flush=True)
            results.append(
                run_setup(
                    setup, base, args.feeds, args.interval, args.rounds, pg if setup.backend == "postgres" else None
                )
            )
            print("  " + row(results[-1]), flush=True)
    finally:
        pg.stop()
        farm.terminate()
    table = render(results, args)
    print(table)
    for path in args.write:
        write(path, table)
    return 0


def row(s: Setup) -> str:
    cpu = " + ".join(f"{c:.2f}" for c in s.cpu_per_round)
    share = " / ".join(f"{p:,}" for p in s.polls_share)
    return (
        f"| {s.label} | {s.first_round_s:.0f} s | {cpu} = {sum(s.cpu_per_round):.2f} s | {share} |"
        f" {s.statements_per_poll:.2f} ({s.elsewhere_per_poll:.2f} left to another) |"
        f" {s.lock_waits_first} ({s.lock_wait_s_first:.1f} s) / {s.lock_waits_steady} ({s.lock_wait_s_steady:.1f} s) |"
        f" {s.takeover} |"
    )


def render(results: list[Setup], args: argparse.Namespace) -> str:
    head = (
        f"<!-- bench.scaling: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs;"
        f" {args.feeds:,} feeds, poll_every {args.interval} s, {args.rounds} rounds of 304s -->\n"
        "| set-up | first round (wall) | CPU per all-304 round, per instance = total |"
        " 304 polls per instance in the window | statements per poll | lock waits: first round / 304 rounds |"
        " one instance SIGKILLed |\n|---|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(row(s) for s in results) + "\n" + ratios(results)


def ratios(results: list[Setup]) -> str:
    """One instance's CPU per round on PostgreSQL over SQLite, per pair of
    the two set-ups run one after the other (issue 27: at most 1.2)."""
    sqlite = [s for s in results if s.backend == "sqlite"]
    postgres = [s for s in results if s.backend == "postgres" and s.instances == 1]
    pairs = [
        sum(p.cpu_per_round) / sum(q.cpu_per_round)
        for q, p in zip(sqlite, postgres, strict=False)  # an unpaired run is left out
        if sum(q.cpu_per_round)
    ]
    if not pairs:
        return ""
    shown = ", ".join(f"{r:.2f}" for r in pairs)
    median = statistics.median(pairs)
    return f"\nOne instance, CPU per all-304 round, PostgreSQL ÷ SQLite: {shown} (median {median:.2f}).\n"


def write(path: Path, table: str) -> None:
    """Replace the table between the markers in ``path``."""
    start, end = "<!-- scaling:begin -->", "<!-- scaling:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else f"{start}\n{end}\n"
    a, b = text.index(start) + len(start), text.index(end)
    path.write_text(text[:a] + "\n" + table + text[b:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
