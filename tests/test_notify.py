"""The sd_notify protocol against a socket the test binds, and the reload plan."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_config
from bot.notify import Notifier
from bot.reload import plan
from bot.service import Service
from tests.conftest import write_toml


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


def test_messages_reach_the_socket(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled and n.watchdog_seconds is None
    assert n.ready("3 feeds ok")
    assert received(sock) == {"READY": "1", "STATUS": "3 feeds ok"}
    assert n.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    assert n.reloading()
    msg = received(sock)
    assert msg["RELOADING"] == "1" and int(msg["MONOTONIC_USEC"]) > 0
    assert n.stopping()
    assert received(sock)["STOPPING"] == "1"


def test_abstract_socket(tmp_path: Path) -> None:
    name = f"feedbot-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert received(sock) == {"STATUS": "hello"}
    finally:
        sock.close()


def test_without_systemd_nothing_happens() -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and not n.watchdog()


def test_a_gone_socket_is_not_an_error(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}).ready("x")


def test_watchdog_interval_only_for_this_process() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_seconds == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_seconds == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_seconds is None


BASE = """
timezone = "Asia/Tokyo"
[schedule]
poll_every = "15m"
[[feeds]]
name = "a"
url = "https://example.org/a"
[[feeds]]
name = "b"
url = "https://example.org/b"
poll_every = "5m"
[[feeds]]
name = "c"
url = "https://example.org/c"
enabled = false
"""


def test_reload_plan(tmp_path: Path) -> None:
    old = load_config(write_toml(tmp_path, BASE), {})
    same = plan(old, old)
    assert same.empty and same.summary() == "no scheduling change"
    edited = BASE.replace('poll_every = "5m"', 'poll_every = "1m"').replace("enabled = false", "enabled = true")
    edited = edited.replace('name = "a"\nurl = "https://example.org/a"', 'name = "a"\nurl = "https://example.org/a2"')
    new = load_config(write_toml(tmp_path, edited + '[digest]\ndefault_topic = "x"\n'), {})
    p = plan(old, new)
    assert [f.name for f in p.added] == ["a", "c"]  # a new URL is a new feed
    assert [f.name for f in p.removed] == ["a"]
    assert [f.name for f in p.rescheduled] == ["b"] and new.feed_interval(p.rescheduled[0]) == timedelta(minutes=1)
    assert not p.digests and not p.http and not p.webhooks
    assert "added a, c" in p.summary() and "new interval for b" in p.summary()
    moved = plan(old, replace(old, state_dir=tmp_path / "elsewhere", timezone=old.timezone))
    assert moved.needs_restart == ("state_dir",)
    times = load_config(write_toml(tmp_path, BASE.replace("[schedule]", '[schedule]\ndigest_at = ["08:00"]')), {})
    assert plan(old, times).digests


def test_status_updates_after_a_burst_of_polls_are_one_message(
    notify_socket: tuple[str, socket.socket], tmp_path: Path
) -> None:
    """A round of 1,000 polls asks for a STATUS 1,000 times: the line is built
    and sent once per window, after the burst, not once per poll."""
    path, sock = notify_socket
    config = load_config(write_toml(tmp_path, '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:1/a"\n'), {})
    service = Service(config, notifier=Notifier({"NOTIFY_SOCKET": path}))
    service.status_every = 0.0  # the window ends at the next turn of the loop
    built: list[int] = []

    def status_line() -> str:
        built.append(len(built))
        return f"line {len(built)}"

    service.status_line = status_line  # type: ignore[method-assign]

    async def burst() -> None:
        for _ in range(1000):
            service.report()
        await asyncio.sleep(0)  # one turn of the loop, not a wait

    asyncio.run(burst())
    assert received(sock) == {"STATUS": "line 1"}
    asyncio.run(burst())
    assert received(sock) == {"STATUS": "line 2"}
    assert len(built) == 2
