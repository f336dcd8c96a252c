"""``feedbot run``: schedule arithmetic (pure) and the real service in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import load_config
from bot.digest import LAST_DIGEST_KEY
from bot.loopback import Receiver, Server
from bot.service import Service, first_due, latest_slot, missed_digest
from bot.state import open_store

TOKYO = ZoneInfo("Asia/Tokyo")


def spawn_run(path: Path, **env: str) -> subprocess.Popen[str]:
    """`feedbot run` on ``path`` as a real process, outside any FEEDBOT_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **env},
    )


def test_latest_slot_in_the_configured_zone() -> None:
    now = datetime(2025, 1, 20, 23, 30, tzinfo=UTC)  # 08:30 on the 21st in Tokyo
    assert latest_slot(now, (time(7, 0), time(19, 0)), TOKYO) == datetime(2025, 1, 21, 7, 0, tzinfo=TOKYO)
    early = datetime(2025, 1, 20, 21, 0, tzinfo=UTC)  # 06:00 on the 21st
    assert latest_slot(early, (time(7, 0), time(19, 0)), TOKYO) == datetime(2025, 1, 20, 19, 0, tzinfo=TOKYO)


def test_missed_digest_only_when_a_slot_passed_since_the_last_run() -> None:
    now = datetime(2025, 1, 20, 23, 30, tzinfo=UTC)
    slots = (time(7, 0),)
    assert missed_digest(now, slots, TOKYO, now - timedelta(hours=3))  # last run before 07:00 JST
    assert not missed_digest(now, slots, TOKYO, now - timedelta(hours=1))  # ran at 07:30 JST
    assert not missed_digest(now, slots, TOKYO, None)


def test_first_poll_due_from_the_last_poll() -> None:
    now = datetime(2025, 1, 21, tzinfo=UTC)
    assert first_due(now, None, timedelta(minutes=15)) == now
    assert first_due(now, now - timedelta(minutes=5), timedelta(minutes=15)) == now + timedelta(minutes=10)
    assert first_due(now, now - timedelta(hours=5), timedelta(minutes=15)) == now


def test_run_catches_up_a_missed_digest_and_stops_on_sigterm(demo_config: Callable[[str | None], Path]) -> None:
    rec = Receiver()
    with Server(rec) as hook:
        path = demo_config(hook.base + "/api/webhooks/1/x")
        config = load_config(path)
        store = open_store(config)
        store.set_meta(LAST_DIGEST_KEY, (datetime.now(UTC) - timedelta(days=3)).isoformat())
        store.close()
        days = {_today(config.timezone)}
        proc = spawn_run(path)
        try:
            # An event (the receiver's condition), not a sleep.
            assert rec.wait_for(2, timeout=60), "the missed digest was not delivered"
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        days.add(_today(config.timezone))  # the digest date, even across midnight
        assert proc.returncode == 0, err
        assert "catching up a digest missed while the service was down" in err
        assert "stopping" in err and "Traceback" not in err
        texts = [r.json()["content"] for r in rec.accepted]
        assert len(texts) == 2
        assert texts[-1].endswith(tuple(f"#ロシア({d})" for d in days))
        store = open_store(config)
        assert store.pending_count() == 0 and store.digest_count() == 1
        store.close()


def _today(zone: ZoneInfo) -> str:
    return datetime.now(zone).strftime("%y%m%d")


def test_sigterm_during_the_first_round_skips_feeds_not_started(tmp_path: Path) -> None:
    import threading

    from bot.loopback import Reply, Request
    from tests.conftest import write_toml

    arrived = threading.Event()
    release = threading.Event()
    paths: list[str] = []

    def slow(req: Request) -> Reply:
        paths.append(req.path)
        arrived.set()
        release.wait(60)  # held until the test has sent SIGTERM
        return Reply(200, {"Content-Type": "application/rss+xml"}, b"<rss version='2.0'><channel></channel></rss>")

    with Server(slow) as server:
        text = '[poll]\nconcurrency = 1\nhost_spacing = "0s"\n' + "".join(
            f'[[feeds]]\nname = "s{n}"\nurl = "{server.base}/s{n}"\n' for n in range(3)
        )
        path = write_toml(tmp_path, text)
        proc = spawn_run(path)
        try:
            assert arrived.wait(60)
            proc.send_signal(signal.SIGTERM)
            assert proc.stderr is not None
            seen = []
            for line in proc.stderr:  # until the loop says it is stopping
                seen.append(line)
                if "feedbot.service: stopping" in line:
                    break
            # Now let the one feed in progress finish its step.
            release.set()
            _out, rest = proc.communicate(timeout=30)
            err = "".join(seen) + rest
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert len(paths) == 1, paths  # the other two were never started
    assert "Traceback" not in err


class NotifyListener:
    """The socket systemd would give us: collects what the service says."""

    def __init__(self, path: Path) -> None:
        import socket as _socket

        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(30)
        self.path = str(path)
        self.log: list[dict[str, str]] = []

    def next(self, key: str, where: Callable[[dict[str, str]], bool] = lambda m: True) -> dict[str, str]:
        """Wait (on the socket, up to 30 s each) for a message with ``key``."""
        while True:
            data = self.sock.recv(65536).decode()
            msg = dict(line.split("=", 1) for line in data.split("\n"))
            self.log.append(msg)
            if key in msg and where(msg):
                return msg


def test_under_systemd_notify_reload_and_watchdog(demo_config: Callable[[str | None], Path], tmp_path: Path) -> None:
    from bot.demo import SITE  # noqa: F401 - the demo site serves the feeds
    from tests.conftest import run_cli

    rec = Receiver()
    with Server(rec) as hook:
        path = demo_config(hook.base + "/api/webhooks/1/x")
        full = path.read_text(encoding="utf-8")
        # Start with three feeds; the fourth (J Sato) is added by an edit.
        start = full.replace('[[feeds]]\nname = "J Sato"', '[[feeds]]\nenabled = false\nname = "J Sato"')
        path.write_text(start.replace('poll_every = "15m"', 'poll_every = "1h"'), encoding="utf-8")
        listener = NotifyListener(tmp_path / "notify.sock")
        proc = spawn_run(path, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="2000000")
        try:
            ready = listener.next("READY")
            assert "feeds ok" in ready["STATUS"] and "next digest" in ready["STATUS"]
            listener.next("WATCHDOG")
            listener.next("STATUS", lambda m: "3 feeds ok" in m["STATUS"])  # after the first polls

            # An edit adding a feed is picked up without a restart...
            path.write_text(full.replace('poll_every = "15m"', 'poll_every = "1h"'), encoding="utf-8")
            listener.next("RELOADING")
            listener.next("READY", lambda m: "4 feeds ok" in m["STATUS"] or "feeds ok" in m["STATUS"])
            listener.next("STATUS", lambda m: m["STATUS"].startswith("4 feeds ok"))  # J Sato polled

            # ...a file that is not TOML is rejected in one STATUS line (the
            # problem goes on over lines: its line quoted, its cause)...
            path.write_text(full.replace('timezone = "Asia/Tokyo"', 'timezone = "Asia/Tokyo'), encoding="utf-8")
            listener.next("RELOADING")
            not_toml = listener.next("READY")
            assert not_toml["STATUS"].startswith(f"config error (1 problem(s): {path}:")
            assert "invalid TOML: Illegal character" in not_toml["STATUS"]
            # ...a broken edit is rejected whole and the old config runs on...
            path.write_text(full.replace('timezone = "Asia/Tokyo"', 'timezone = "Mars/Base"'), encoding="utf-8")
            listener.next("RELOADING")
            rejected = listener.next("READY")
            assert rejected["STATUS"].startswith(f"config error (1 problem(s): {path}:")
            assert ": timezone: 'Mars/Base'" in rejected["STATUS"]
            status = run_cli("--config", str(path), "status")  # answers from the state, and names the problem
            assert status.returncode == 0 and "is invalid (1 problem;" in status.stdout, status.stderr
            assert "the service rejected an edit at" in status.stdout
            assert "timezone: 'Mars/Base' is not an IANA time zone" in status.stdout
            assert proc.poll() is None
            # ...and SIGHUP reloads (the fixed file) too.
            path.write_text(full, encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            listener.next("RELOADING")
            listener.next("READY", lambda m: "feeds ok" in m["STATUS"])
            proc.send_signal(signal.SIGTERM)
            listener.next("STOPPING")
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            listener.sock.close()
    assert proc.returncode == 0, err
    assert f"config rejected (the file changed), keeping the running one: {path}:" in err
    assert ": timezone: 'Mars/Base' is not an IANA time zone name" in err
    assert "invalid TOML: Illegal character" in err
    assert "config reloaded (the file changed): added J Sato" in err
    assert "config reloaded (SIGHUP)" in err
    assert 'feed="J Sato" status=ok new=1' in err
    assert sum(1 for m in listener.log if "WATCHDOG" in m) >= 1


def test_the_poll_tick_starts_due_feeds_on_a_fixed_rate_never_twice_at_once(tmp_path: Path) -> None:
    """One scheduler job for all feeds: each due feed is started once, its
    next time is a whole number of intervals after the last due time (late
    rounds merged into one), and a feed still being polled is not restarted."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[schedule]\npoll_every = "10m"\n'
        '[[feeds]]\nname = "fast"\nurl = "http://127.0.0.1:1/fast"\n'
        '[[feeds]]\nname = "slow"\nurl = "http://127.0.0.1:1/slow"\npoll_every = "1h"\n',
        encoding="utf-8",
    )
    config = load_config(path, {})
    start = datetime(2025, 1, 21, 9, 0, tzinfo=UTC)
    now = [start]
    service = Service(config, clock=lambda: now[0])
    started: list[str] = []
    release = asyncio.Event()

    async def poll(feed: Any) -> None:  # stands in for the real poll, and stays "in flight" until released
        service._polling.add(feed.url)
        started.append(feed.name)
        await release.wait()
        service._polling.discard(feed.url)

    service._poll = poll  # type: ignore[method-assign]
    fast, slow = config.feeds
    service._due = {fast.url: (fast, start), slow.url: (slow, start + timedelta(minutes=30))}

    async def settle() -> None:
        for _ in range(4):  # the job's task, then its work's
            await asyncio.sleep(0)

    async def go() -> None:
        await service._tick()
        await settle()  # the spawned poll starts
        assert started == ["fast"]
        assert service._due[fast.url][1] == start + timedelta(minutes=10)
        now[0] = start + timedelta(minutes=25)  # fast is due again (two rounds late) but still in flight
        await service._tick()
        await settle()
        assert started == ["fast"]
        release.set()
        await settle()
        await service._tick()  # now it may start; the missed rounds are one poll
        await settle()
        assert started == ["fast", "fast"]
        assert service._due[fast.url][1] == start + timedelta(minutes=30)  # on the 10-minute grid
        now[0] = start + timedelta(minutes=30)
        await service._tick()
        for _ in range(3):
            await settle()
        assert sorted(started) == ["fast", "fast", "fast", "slow"]
        assert service._due[slow.url][1] == start + timedelta(minutes=90)
        await asyncio.gather(*service.running)

    asyncio.run(go())
