"""Chaos: three `feedbot run` on one PostgreSQL, under kills, pauses and
database restarts, aimed at the worst moments.  A verdict, not a figure.

    .venv/bin/python -m bench.chaos [--seed 1] [--stops 3] [--kills 4] [--restarts 2]
    .venv/bin/python -m bench.chaos --short      # what .ci/run runs

The bench starts its own PostgreSQL server (bot/pgserver.py), a loopback
farm whose feeds gain items as they are polled (bench/killtest.py's), and a
Discord-like receiver that answers 500, 429 or slowly now and then (seeded)
and has no idempotency: a message POSTed twice is shown twice.  Three
instances poll every 2 s and send a digest every 10 s.  Then, one after
the other, in a seeded order:

- **SIGKILL aimed at an in-flight POST**: the receiver holds a POST, the
  bench kills the instance that sent it (the outbox says which), the
  receiver accepts the POST (the platform posted it; its sender never
  heard), and the instance is started again;
- **SIGSTOP aimed at an in-flight POST**, longer than the lease (40–55 s
  for a 30 s lease): the receiver accepts the POST while its sender is
  stopped (1–4 s after it came, as in issue 21's run); then SIGCONT;
- **PostgreSQL restarted**, ``-m fast`` and ``-m immediate`` in turn;
  with ``--stops`` of 2 or more, one restart falls inside a stop.

The verdict, after the feeds stop growing and the queue drains:

- **0 lost**: every item the feeds published is in an accepted message;
- **0 unexplained duplicates**: an item in two accepted messages only if
  it is one message accepted twice, the first time from a POST whose
  sender was killed during that very request;
- **0 slots sent twice**: every digest is the one digest of its slot;
- **no stall past the bound** while an instance is stopped: each slot
  that fell due during a stop was built within 2 × the lease (60 s) of
  its time, and delivered within that too, or, behind a message in flight
  at the stopped instance, within the lease of the stop's end (the message
  is left to its live sender: it holds the answer);
- **a clean stop**: every instance exits 0 within 30 s of SIGTERM, and no
  log holds a traceback; the copies ``feedbot status`` counts cover the
  duplicates seen.

It prints every fault, the figures, and ``chaos: PASS`` or ``chaos: FAIL``
last (exit 0 or 1).  Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.killtest import Farm, start, write_config
from bot.loopback import Reply, Request, Server
from bot.pgserver import PgServer
from bot.state.sql import LEASE_SECONDS
from tests.renderers import shown

INSTANCES = 3
DIGEST_EVERY = 10  # seconds
BOUND = 2 * LEASE_SECONDS  # the stall a stopped instance may cause, at most
KEY = re.compile(r"feedbot-(\d+)-(\d+)")


@dataclass
class Post:
    key: str
    content: str
    arrived: float
    accepted: bool = False
    answered: float = 0.0
    killed: bool = False  # its sender was SIGKILLed while it was held
    stopped: bool = False  # its sender was SIGSTOPped while it was held


@dataclass
class Aim:
    """A POST the receiver holds for the bench to act on."""

    arrived: threading.Event = field(default_factory=threading.Event)
    answer: threading.Event = field(default_factory=threading.Event)
    post: Post | None = None


class Receiver:
    """Discord-like, without idempotency: records every POST; seeded 500s,
    429s and slow answers; holds the next POST when the bench aims at it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.posts: list[Post] = []
        self.aim: Aim | None = None
        self.stopping = threading.Event()

    def __call__(self, req: Request) -> Reply:
        content = shown("discord", json.loads(req.body).get("content", ""))  # what Discord shows of it
        post = Post(req.headers.get("idempotency-key", ""), content, time.time())
        with self.lock:
            self.posts.append(post)
            aim, self.aim = self.aim, None
            roll, slow = self.rng.random(), self.rng.uniform(1.0, 3.0)
        if aim is not None:
            aim.post = post
            aim.arrived.set()
            aim.answer.wait(60)
        elif roll < 0.05:
            return Reply(500, {}, b"try later")
        elif roll < 0.10:
            return Reply(429, {"Retry-After": "1", "Content-Type": "application/json"}, b'{"retry_after": 1}')
        elif roll < 0.20:
            self.stopping.wait(slow)  # a slow platform: the sender waits (within its deadline)
        post.accepted, post.answered = True, time.time()
        return Reply(200, {"Content-Type": "application/json"}, b'{"id": "1"}')

    def held(self, timeout: float) -> Aim | None:
        """Hold the next POST; None if none comes within ``timeout``."""
        aim = Aim()
        with self.lock:
            self.aim = aim
        if aim.arrived.wait(timeout):
            return aim
        with self.lock:
            if self.aim is aim:
                self.aim = None
                return None
        aim.arrived.wait()  # it came just now
        return aim


class Run:
    def __init__(self, seed: int, folder: Path) -> None:
        self.rng = random.Random(seed)
        self.folder = folder
        self.pg = PgServer().start()
        self.url = self.pg.new_database()
        self.farm = Farm(random.Random(seed + 1))
        self.receiver = Receiver(random.Random(seed + 2))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.events: list[str] = []
        self.started = time.time()
        self.stops: list[tuple[float, float, bool]] = []  # (from, to, aimed at an in-flight POST)
        self.config: Path | None = None

    def say(self, text: str) -> None:
        line = f"{time.time() - self.started:7.1f}s  {text}"
        self.events.append(line)
        print(line, flush=True)

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        for _ in range(50):  # the server may be restarting
            try:
                return self.pg.sql(self.url, statement)
            except Exception:
                threading.Event().wait(0.2)
        raise RuntimeError(f"the database did not answer: {statement}")

    def log(self, n: int) -> Path:
        return self.folder / f"instance{n}.log"

    def sender(self, post: Post) -> int | None:
        """The instance slot (0..2) whose process sent ``post`` (the outbox
        names the instance that marked it in flight: host-pid-xxxxxx)."""
        m = KEY.fullmatch(post.key)
        if m is None:
            return None
        rows = self.sql(
            f"SELECT in_flight_by FROM outbox WHERE digest_id={int(m[1])} AND seq={int(m[2])}"
            " AND webhook='name:receiver'"
        )
        if not rows or rows[0][0] is None:
            return None
        pid = int(str(rows[0][0]).rsplit("-", 2)[1])
        return next((n for n, p in enumerate(self.procs) if p.pid == pid), None)

    # -- faults ------------------------------------------------------------------

    def kill(self) -> None:
        aim = self.receiver.held(60)
        if aim is None or aim.post is None:
            self.say("kill: no POST came within 60 s; skipped")
            return
        n = self.sender(aim.post)
        if n is None:
            aim.answer.set()
            self.say(f"kill: the sender of {aim.post.key} is not known; skipped")
            return
        self.procs[n].send_signal(signal.SIGKILL)
        self.procs[n].wait()
        aim.post.killed = True
        aim.answer.set()  # the platform posts it; its sender never hears
        self.say(f"SIGKILL instance {n} during its POST of {aim.post.key} (accepted after the kill)")
        assert self.config is not None
        self.procs[n] = start(self.config, self.log(n))

    def stop(self, seconds: float, restart_inside: bool) -> None:
        aim = self.receiver.held(60)
        n = self.sender(aim.post) if aim is not None and aim.post is not None else None
        if aim is None or aim.post is None or n is None:
            if aim is not None:
                aim.answer.set()
            self.say("stop: no POST of a known sender within 60 s; skipped")
            return
        self.procs[n].send_signal(signal.SIGSTOP)
        began = time.time()
        aim.post.stopped = True
        late = self.rng.uniform(1.0, 4.0)
        self.say(
            f"SIGSTOP instance {n} during its POST of {aim.post.key}; accepted {late:.1f} s later; for {seconds:.0f} s"
        )
        threading.Event().wait(late)
        aim.answer.set()  # the answer lands in the stopped process's socket
        if restart_inside:
            threading.Event().wait(seconds / 3)
            self.restart("fast")
        threading.Event().wait(max(0.0, began + seconds - time.time()))
        self.procs[n].send_signal(signal.SIGCONT)
        self.stops.append((began, time.time(), True))
        self.say(f"SIGCONT instance {n}")

    def restart(self, mode: str) -> None:
        self.pg.restart(mode=mode)
        self.say(f"PostgreSQL restarted (-m {mode})")

    # -- the run -------------------------------------------------------------------

    def go(self, stops: int, kills: int, restarts: int) -> bool:
        hooks = self.receiver
        with Server(self.farm) as feeds, Server(hooks) as hook:
            self.config = write_config(
                self.folder,
                feeds.base,
                hook.base,
                self.url,
            )
            text = self.config.read_text(encoding="utf-8")
            text = text.replace('poll_every = "1s"', 'poll_every = "2s"').replace(
                'digest_every = "1s"', f'digest_every = "{DIGEST_EVERY}s"'
            )
            self.config.write_text(text.replace('timeout = "2s"', 'timeout = "4s"'), encoding="utf-8")
            self.procs = [start(self.config, self.log(n)) for n in range(INSTANCES)]
            self.say(
                f"{INSTANCES} instances on {self.pg.url()}; lease {LEASE_SECONDS} s, digest every {DIGEST_EVERY} s"
            )
            faults = ["kill"] * kills + ["stop"] * stops + ["restart"] * restarts
            self.rng.shuffle(faults)
            modes = ["fast", "immediate"]
            done_inside = False
            for n, fault in enumerate(faults):
                threading.Event().wait(self.rng.uniform(4, 12))
                if fault == "kill":
                    self.kill()
                elif fault == "stop":
                    inside = stops >= 2 and not done_inside and n > 0
                    done_inside |= inside
                    self.stop(self.rng.uniform(LEASE_SECONDS + 10, LEASE_SECONDS + 25), inside)
                else:
                    self.restart(modes[n % 2])
            threading.Event().wait(5)
            with self.farm.lock:
                self.farm.growing = False
            grown = time.time()
            self.say("the feeds stop growing; waiting for the queue to drain")
            settled = self.settle(grown, 180)
            self.say("drained" if settled else "NOT drained within 180 s")
            codes, slow = self.stop_all()
            hooks.stopping.set()
        return self.verdict(codes, slow, settled)

    def settle(self, since: float, limit: float) -> bool:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            rows = self.sql(
                "SELECT (SELECT COUNT(*) FROM items WHERE digest_id IS NULL),"
                " (SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND dropped = 0),"
                " (SELECT COALESCE(MIN(last_poll_at), 0) FROM feeds)"
            )
            unbound, undelivered, polled = (int(str(x)) for x in rows[0])
            if unbound == 0 and undelivered == 0 and polled > since + 1:
                return True
            threading.Event().wait(0.5)
        return False

    def stop_all(self) -> tuple[list[int | None], float]:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        began = time.monotonic()
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=max(1.0, 30 - (time.monotonic() - began))))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(None)
        return codes, time.monotonic() - began

    # -- the verdict ---------------------------------------------------------------

    def verdict(self, codes: list[int | None], slowest: float, settled: bool) -> bool:
        posts = self.receiver.posts
        accepted = [p for p in posts if p.accepted]
        by_key: dict[str, list[Post]] = {}
        for p in accepted:
            by_key.setdefault(p.key, []).append(p)
        copies = {k: ps for k, ps in by_key.items() if len(ps) > 1}
        unexplained = [k for k, ps in copies.items() if not any(p.killed for p in ps[:-1])]
        published = self.farm.published()
        lines = Counter(
            line.split(" ")[0]
            for ps in by_key.values()
            for line in ps[0].content.split("\n")
            if line.startswith("kill-") and " http://127.0.0.1/" in line
        )
        lost = {t for t in published if lines[t] == 0}
        twice = {t for t in published if lines[t] > 1}
        unslotted = self.sql(
            "SELECT COUNT(*) FROM digests d WHERE NOT EXISTS (SELECT 1 FROM digest_slots s WHERE s.digest_id = d.id)"
        )[0][0]
        resent = int(str(self.sql("SELECT COALESCE(SUM(resent), 0) FROM outbox")[0][0]))
        stalls = self.stalls(by_key)
        traces = sum(self.log(n).read_text(errors="replace").count("Traceback") for n in range(INSTANCES))
        worst_built = max((s[1] for s in stalls), default=0.0)
        late = [s for s in stalls if s[2] > s[3]]
        worst_sent = max((s[2] for s in stalls), default=0.0)
        print()
        print(f"items published: {len(published)}; delivered: {len(published) - len(lost)}; lost: {len(lost)}")
        print(f"POSTs: {len(posts)}; accepted: {len(accepted)}; messages: {len(by_key)}")
        print(f"messages accepted twice: {len(copies)} ({len(unexplained)} not explained by a SIGKILL in that POST)")
        for key in unexplained:
            print(
                f"  {key}: "
                + "; ".join(
                    f"{p.arrived - self.started:.1f}s killed={p.killed} stopped={p.stopped}" for p in by_key[key]
                )
            )
        print(f"items in two messages: {len(twice)}; copies counted by the state (status): {resent}")
        print(f"digests not the one digest of a slot: {unslotted}")
        print(
            f"slot times during a stop: {len(stalls)}; the next digest built at most {worst_built:.0f} s later"
            f" (bound {BOUND} s); its first message accepted at most {worst_sent:.0f} s later; past the bound"
            f" ({BOUND} s, or the stop's end + {LEASE_SECONDS} s behind a message in flight at the stopped"
            f" instance): {len(late)}"
        )
        print(f"exit codes on SIGTERM: {codes} (the slowest in {slowest:.1f} s); tracebacks in the logs: {traces}")
        ok = (
            settled
            and not lost
            and not unexplained
            and not twice
            and unslotted == 0
            and worst_built <= BOUND
            and not late
            and all(c == 0 for c in codes)
            and traces == 0
            and resent >= sum(len(ps) - 1 for ps in copies.values())
        )
        print(f"chaos: {'PASS' if ok else 'FAIL'}")
        return ok

    def stalls(self, by_key: dict[str, list[Post]]) -> list[tuple[int, float, float, float]]:
        """Per slot time that fell while an instance was stopped: (its
        time, seconds until the next digest was built, until that digest's
        first message was accepted, and the delivery bound: ``BOUND``, or,
        after a stop aimed at an in-flight POST, the stop's end plus the
        lease: the webhook's queue waits for the stopped sender)."""
        built = sorted((int(str(c)), int(str(d))) for d, c in self.sql("SELECT id, created_at FROM digests"))
        sent: dict[int, float] = {}
        for key, ps in by_key.items():
            m = KEY.fullmatch(key)
            if m:
                sent[int(m[1])] = min(sent.get(int(m[1]), ps[0].answered), ps[0].answered)
        out = []
        for began, ended, aimed in self.stops:
            for due in range(int(began) // DIGEST_EVERY * DIGEST_EVERY + DIGEST_EVERY, int(ended), DIGEST_EVERY):
                after = [(c, d) for c, d in built if c >= due]
                if not after:
                    out.append((due, float("inf"), float("inf"), BOUND))
                    continue
                created, digest = after[0]
                accepted = min((t for d, t in sent.items() if d >= digest), default=float("inf"))
                allowed = max(BOUND, ended - due + LEASE_SECONDS) if aimed else BOUND
                out.append((due, float(created - due), accepted - due, allowed))
        return out

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
        self.pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stops", type=int, default=3)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="one stop, two kills, two restarts (CI)")
    parser.add_argument("--keep", type=Path, help="copy the instances' logs into this folder")
    args = parser.parse_args(argv)
    if args.short:
        args.stops, args.kills, args.restarts = 1, 2, 2
    with tempfile.TemporaryDirectory(prefix="feedbot-chaos-") as tmp:
        run = Run(args.seed, Path(tmp))
        try:
            ok = run.go(args.stops, args.kills, args.restarts)
        finally:
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                for n in range(INSTANCES):
                    if run.log(n).exists():
                        (args.keep / run.log(n).name).write_bytes(run.log(n).read_bytes())
                (args.keep / "slots.txt").write_text(
                    "\n".join(
                        str(r) for r in run.sql("SELECT slot, at, digest_id, instance FROM digest_slots ORDER BY slot")
                    )
                )
            run.close()
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.pop("FEEDBOT_CONFIG", None)
    sys.exit(main())
