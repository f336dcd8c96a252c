"""2,000 idle connections to the metrics endpoint, polls and digests going on.

    .venv/bin/python -m bench.idle_metrics [--connections 2000] [--write docs/scaling.md]

``feedbot run`` is started with systemd's default soft limit of 1,024 open
files, a feed on loopback polled every second and a ``json`` webhook
receiving a digest every second.  Each held connection sends the start
of a request line and headers, never the blank line that ends them (a
slowloris).  A new item is added to the feed and the
time until it reaches the webhook is measured: three times with no other
client, then three times while ``--connections`` connections to the
metrics endpoint are opened and held without sending a byte.  Side by
side, the same connections are held against prometheus-client's own
server (``start_http_server``, what feedbot used before issue 24) in a
process with the same limit, which then tries to open a file.

Figures: the delivery time held/quiet as a ratio (noise on a shared
machine makes absolute times meaningless), the service's peak of open file
descriptors, scrapes answered during the hold and after it, and whether
"Too many open files" appeared anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from bench.report import splice
from bot.loopback import Receiver, Reply, Request, Server
from bot.pgserver import free_port

SERVICE_FILES = 1_024  # systemd's default soft limit without LimitNOFILE


def limit_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVICE_FILES, hard))


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def scrape(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _hold(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        held.append(s)
    return held


PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # a request never finished: a slowloris


def _start_requests(held: list[socket.socket]) -> None:
    """Each connection sends the start of a request, and nothing more (a
    connection that sends nothing at all may never be accepted from a
    server's small backlog, and so costs it nothing)."""
    for s in held:
        with contextlib.suppress(OSError):
            s.send(PARTIAL)


def connected(held: list[socket.socket]) -> int:
    n = 0
    for s in held:
        try:
            s.getpeername()
            n += 1
        except OSError:
            pass
    return n


class Feed:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Reply:
        with self.lock:
            items = list(self.items)
        body = "".join(
            f"<item><title>{t}</title><guid isPermaLink='false'>{g}</guid>"
            f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate><description>{t}</description></item>"
            for g, t in items
        )
        doc = f"<rss version='2.0'><channel><title>f</title>{body}</channel></rss>"
        return Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, doc.encode())


def _prometheus_side(count: int) -> str:
    """prometheus-client's start_http_server under the same limit and load."""
    port = free_port()
    code = (
        "import sys, time\n"
        "from prometheus_client import start_http_server\n"
        f"start_http_server({port}, addr='127.0.0.1')\n"
        "print('up', flush=True)\n"
        "sys.stdin.readline()\n"
        "try:\n"
        "    open('/dev/null').close(); print('opened a file', flush=True)\n"
        "except OSError as exc:\n"
        "    print(f'cannot open a file: {exc.strerror}', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=limit_files,
    )
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()
    # One at a time, each until the server holds it (its small backlog
    # would otherwise keep most of them in the kernel, costing it nothing).
    held, stalled = [], 0
    for _ in range(count):
        before = _fds(proc.pid)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(PARTIAL)
        held.append(s)
        if not _until(lambda b=before: _fds(proc.pid) > b, 0.5):
            stalled += 1
            if stalled >= 5:  # it accepts no more: at its limit of open files
                break
        else:
            stalled = 0
    fds = _fds(proc.pid)
    proc.stdin.write("\n")
    proc.stdin.flush()
    said = proc.stdout.readline().strip()
    for s in held:
        s.close()
    proc.kill()
    proc.wait()
    return f"prometheus-client's server under the same limit and connections: {fds} open files, then {said}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=2_000)
    parser.add_argument("--write", type=Path, help="rewrite the figures in this markdown page")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 500)), hard))

    feed, rec = Feed(), Receiver()
    port = free_port()
    with Server(feed) as feeds, Server(rec) as hook, tempfile.TemporaryDirectory(prefix="feedbot-idle-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(
            f'[metrics]\nlisten = "127.0.0.1:{port}"\n[schedule]\npoll_every = "1s"\ndigest_every = "1s"\n'
            '[poll]\nfirst_poll = "all"\nhost_spacing = "0s"\n'
            f'[[feeds]]\nname = "f"\nurl = "{feeds.base}/feed"\nbody = "feed"\n'
            f'[[webhooks]]\nkind = "json"\nurl = "{hook.base}/hook"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=limit_files,
        )
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _fds(proc.pid))
                stop.wait(0.05)

        def delivery(n: int) -> float:
            title = f"記事{n:04d}"
            with feed.lock:
                feed.items.append((f"g{n}", title))
            started = time.monotonic()
            ok = _until(lambda: any(title in r.body.decode() for r in rec.accepted), 120)
            return time.monotonic() - started if ok else float("inf")

        sampler = threading.Thread(target=sample, daemon=True)
        try:
            _until(lambda: scrape(port) == 200, 60)
            sampler.start()
            quiet = [delivery(n) for n in range(3)]
            quiet_fds = peak[0]
            held = _hold(port, args.connections)
            _until(lambda: connected(held) >= args.connections, 60)
            _start_requests(held)
            during = [scrape(port) for _ in range(3)]
            loaded = [delivery(n) for n in range(3, 6)]
            accepted = connected(held)  # those over the cap were answered 503 and closed
            after_ok = _until(lambda: scrape(port) == 200, 60)
            for s in held:
                s.close()
        finally:
            stop.set()
            proc.terminate()
            _out, err = proc.communicate(timeout=60)
    emfile = err.count("Too many open files")
    q, loaded_median = statistics.median(quiet), statistics.median(loaded)
    text = (
        f"`python -m bench.idle_metrics`: `feedbot run` with a soft limit of {SERVICE_FILES} open files; "
        f"{args.connections} connections to its metrics endpoint, each with an unfinished request "
        f"({accepted} still open after the deliveries: the rest answered 503 and closed). "
        f"A new item reached the webhook in a median {q:.2f} s with no other client and {loaded_median:.2f} s "
        f"during the hold (ratio **{loaded_median / q:.2f}**); open files: {quiet_fds} quiet, peak {peak[0]} "
        f"during the hold; scrapes during the hold answered {during}, and 200 again after the idle ones timed out: "
        f'{after_ok}; "Too many open files" in the log: {emfile}; exit code {proc.returncode}. '
        + _prometheus_side(args.connections)
        + "."
    )
    print(text)
    if args.write:
        splice(args.write, "idle_metrics", text)
    return 0 if emfile == 0 and after_ok and loaded_median != float("inf") else 1


if __name__ == "__main__":
    sys.exit(main())
