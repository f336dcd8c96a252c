"""A busy day under the watchdog (issue 21): a digest of 10,000 pending
items is composed off the event loop, which keeps answering throughout."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.busy import busy_items, fill_state
from bot.config import load_config
from bot.loopback import Receiver, Server
from bot.service import FIRST_START_KEY
from bot.state import open_store
from tests.conftest import write_toml
from tests.test_service import spawn_run

WATCHDOG_SECONDS = 2.0  # WATCHDOG_USEC: the service pings every second


def test_ten_thousand_items_go_out_with_the_watchdog_fed_throughout(tmp_path: Path, corpus: Path) -> None:
    rec = Receiver()
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(WATCHDOG_SECONDS * 2)
    with Server(rec) as hook:
        path = write_toml(
            tmp_path,
            'timezone = "UTC"\n[schedule]\ndigest_at = ["00:00"]\n'
            f'[[webhooks]]\nkind = "json"\nurl = "{hook.base}/hook"\n',
        )
        now = datetime.now(UTC)
        store = open_store(load_config(path))
        fill_state(store, busy_items(corpus=corpus), now)  # 200 feeds × 50 items, pending
        store.set_meta(FIRST_START_KEY, (now - timedelta(days=2)).isoformat())  # today's 00:00 digest was missed
        store.close()
        proc = spawn_run(path, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC=str(int(WATCHDOG_SECONDS * 1e6)))
        pings: list[float] = []
        try:
            while not rec.requests:
                try:
                    message = sock.recv(4096).decode()
                except TimeoutError:
                    raise AssertionError(f"no notification for {WATCHDOG_SECONDS * 2:g}s: the loop is stuck") from None
                if "WATCHDOG=1" in message:
                    pings.append(time.monotonic())
                assert proc.poll() is None, proc.communicate()[1]
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        finally:
            sock.close()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    digest = json.loads(rec.requests[0].body)
    assert sum(len(g["items"]) for g in digest["groups"]) + len(digest.get("lead", [])) == 10_000
    assert "items=10000" in err and "stories found among candidate pairs" in err
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert len(pings) >= 3 and max(gaps) <= WATCHDOG_SECONDS, f"longest gap between WATCHDOG=1: {max(gaps):.2f}s"
