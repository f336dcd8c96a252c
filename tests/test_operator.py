"""What an operator sees of a running bot (issue 25), through the real CLI:
``status`` and ``list`` that answer when the config file is invalid and
never create a state by asking; the last digest and the next one; one
labelled clock; ``poll`` lines as each feed finishes, each failure once;
logfmt values quoted; a closed pipe without a traceback; a dead webhook
that says what failed."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.loopback import Receiver, Reply, Request, Server
from bot.pgserver import free_port
from tests.conftest import ROOT, DynamicFeeds, FeedItem, run_cli, write_toml

NOW = datetime.now(UTC)


def _config(
    tmp_path: Path, feeds: DynamicFeeds, extra: str = "", names: tuple[str, ...] = ("a",), top: str = ""
) -> Path:
    text = f'timezone = "Asia/Tokyo"\n{top}[poll]\nhost_spacing = "0s"\nfirst_poll = "all"\n' + extra
    for name in names:
        feeds.feeds.setdefault(name, [FeedItem(f"{name}-1", f"{name} の記事", None, NOW)])
        text += f'[[feeds]]\nname = "{name}"\nurl = "{feeds.feed_url(name)}"\nbody = "feed"\n'
    return write_toml(tmp_path, text)


def test_status_and_list_answer_from_the_state_when_the_config_is_invalid(tmp_path: Path, feeds: DynamicFeeds) -> None:
    path = _config(tmp_path, feeds, names=("a", "b"))
    assert run_cli("--config", str(path), "poll").returncode == 0
    # An edit that breaks the file: a typo in one feed.
    path.write_text(path.read_text(encoding="utf-8").replace('name = "b"', 'name = "b"\nhandel = "x"'))
    assert run_cli("--config", str(path), "check").returncode == 2

    status = run_cli("--config", str(path), "status")
    assert status.returncode == 0, status.stderr
    first = status.stdout.splitlines()[0]
    assert first.startswith(f"config: {path} is invalid (1 problem; `feedbot check` lists them).")
    assert "keeps the config it last accepted" in first
    assert "  a: last poll " in status.stdout and " JST ok, new 1" in status.stdout  # the state, its zone named
    listed = run_cli("--config", str(path), "list")
    assert listed.returncode == 0 and "is invalid (1 problem" in listed.stdout
    assert any(line.startswith("a ") and "ok, polled" in line and "JST" in line for line in listed.stdout.splitlines())
    assert "outbox: nothing waiting" in run_cli("--config", str(path), "outbox").stdout

    # Not even TOML: the state in its default place is still read.
    path.write_text(path.read_text(encoding="utf-8") + '\nname = "unterminated\n')
    status = run_cli("--config", str(path), "status")
    assert status.returncode == 0 and "is invalid" in status.stdout and "pending items: 2" in status.stdout


def test_a_missing_state_is_said_and_not_created(tmp_path: Path, feeds: DynamicFeeds) -> None:
    path = _config(tmp_path, feeds, top='state_dir = "nowhere/state"\n')
    status = run_cli("--config", str(path), "status")
    assert status.returncode == 1
    assert f"no state at {tmp_path / 'nowhere/state/feedbot.sqlite3'}" in status.stderr
    assert "STATE_DIRECTORY=/var/lib/feedbot feedbot status" in status.stderr
    listed = run_cli("--config", str(path), "list")
    assert listed.returncode == 0 and "never polled" in listed.stdout and "no state at" in listed.stderr
    assert run_cli("--config", str(path), "outbox").returncode == 1
    assert not (tmp_path / "nowhere").exists()  # asking made nothing


def test_status_says_the_last_digest_where_it_went_and_the_next(tmp_path: Path, feeds: DynamicFeeds) -> None:
    rec = Receiver()
    dead = free_port()  # nothing listens there
    with Server(rec) as hook:
        extra = (
            '[schedule]\ndigest_at = ["07:00"]\n'
            f'[[webhooks]]\nkind = "json"\nname = "hook"\nurl = "{hook.base}/in"\n'
            f'[[webhooks]]\nkind = "json"\nname = "gone"\nurl = "http://127.0.0.1:{dead}/in"\n'
        )
        path = _config(tmp_path, feeds, extra=extra)
        assert run_cli("--config", str(path), "poll").returncode == 0
        assert "digests: none built yet" in run_cli("--config", str(path), "status").stdout
        run_cli("--config", str(path), "digest")
    status = run_cli("--config", str(path), "status").stdout
    assert "digests: last #1 of " in status and "1 item(s); gone 0/1 accepted; hook 1/1 accepted" in status, status
    assert "  next digest: " in status and " 07:00 JST" in status
    # The dead webhook says what failed, as a dead feed does.
    assert "gone (json http://127.0.0.1:" in status and "cannot connect: Cannot connect to host 127.0.0.1" in status
    assert "ConnectError" not in status


def test_poll_prints_each_feed_as_it_finishes_and_a_failure_once(tmp_path: Path, feeds: DynamicFeeds) -> None:
    release = threading.Event()
    slow_feed = DynamicFeeds()
    slow_feed.feeds["slow"] = [FeedItem("s-1", "遅い記事", None, NOW)]

    def slow(req: Request) -> Reply:
        release.wait(60)  # answered once the test has read the other feeds' lines
        return slow_feed(req)

    with Server(slow) as server:
        slow_feed.base = server.base
        path = _config(tmp_path, feeds, names=("a",))
        text = path.read_text(encoding="utf-8")
        text += f'[[feeds]]\nname = "slow"\nurl = "{server.base}/feed/slow"\nbody = "feed"\n'
        text += f'[[feeds]]\nname = "例新聞 国際"\nurl = "http://127.0.0.1:{free_port()}/feed"\n'
        path.write_text(text, encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--config", str(path), "poll"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
        )
        assert proc.stdout is not None
        early = [proc.stdout.readline(), proc.stdout.readline()]  # while "slow" is still waiting for its answer
        release.set()
        rest, err = proc.communicate(timeout=60)
    assert sorted(line.split(" ")[0] for line in early) == ['feed="例新聞', "feed=a"], early
    assert rest.startswith("feed=slow status=ok new=1")
    assert proc.returncode == 1  # one feed failed
    failure = [line for line in early if "status=error" in line]
    assert failure and failure[0].startswith('feed="例新聞 国際" status=error')  # quoted: one field
    assert "status=error" not in err  # printed once, not logged as well


def test_log_values_with_spaces_are_quoted_and_times_carry_their_offset(capsys: pytest.CaptureFixture[str]) -> None:
    from bot import logs

    logs.setup(logging.INFO)
    try:
        logging.getLogger("feedbot.test").info("feed=%s status=%s new=%d", "例新聞 国際", "ok", 3)
        logging.getLogger("feedbot.test").info("webhook=%s error=%s", 'say "hi"', "")
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith('feed="例新聞 国際" status=ok new=3')
    assert err[1].endswith('webhook="say \\"hi\\"" error=""')
    stamp = err[0].split(" ")[0]
    assert datetime.fromisoformat(stamp).utcoffset() is not None  # ISO 8601 with its offset


def test_a_closed_pipe_ends_status_quietly(tmp_path: Path) -> None:
    """`feedbot status | head -1`: more output than a pipe holds, the reader
    gone after one line."""
    lines = "".join(f'[[feeds]]\nname = "feed {n}"\nurl = "https://example.org/{n}"\n' for n in range(4000))
    path = write_toml(tmp_path, lines)
    run_cli("--config", str(path), "list")  # nothing to read yet: no state made either
    (tmp_path / "state").mkdir()
    from bot.state.sqlite import SQLiteStore

    SQLiteStore.open(tmp_path / "state").close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(path), "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


def test_verbose_logs_every_request_and_page(tmp_path: Path, feeds: DynamicFeeds) -> None:
    link = feeds.article("/news/1.html", ["ロシア外相が会談した。" * 5, "停戦交渉は続いている。" * 5])
    feeds.feeds["a"] = [FeedItem("a-1", "記事", link, NOW)]
    path = write_toml(
        tmp_path,
        'timezone = "Asia/Tokyo"\n[poll]\nhost_spacing = "0s"\nfirst_poll = "all"\nallow_private_addresses = true\n'
        f'[[feeds]]\nname = "a"\nurl = "{feeds.feed_url("a")}"\n',
    )
    quiet = run_cli("--config", str(path), "poll")
    assert quiet.returncode == 0 and "request=GET" not in quiet.stderr
    loud = run_cli("--config", str(path), "-v", "poll")  # the feed again: conditional, answered 304
    assert "feed=a request=GET status=304 bytes=0 conditional=yes" in loud.stderr, loud.stderr
    (tmp_path / "state").rename(tmp_path / "old-state")
    loud = run_cli("--config", str(path), "-v", "poll")
    assert "feed=a request=GET status=200" in loud.stderr and "conditional=no" in loud.stderr
    assert f"feed=a article={link} status=200 bytes=" in loud.stderr
    assert "DEBUG asyncio" not in loud.stderr  # feedbot's steps, not every library's


def test_a_long_first_poll_shows_progress_in_the_log_and_polling_now_in_status(
    tmp_path: Path, feeds: DynamicFeeds
) -> None:
    """A feed whose server answers only when the test lets it: the service
    logs a progress line while it waits, and ``status`` shows the feed as
    being polled (the heartbeat says so, every 10 s)."""
    import signal

    from tests.test_service import spawn_run

    release = threading.Event()
    slow_feed = DynamicFeeds()
    slow_feed.feeds["slow"] = [FeedItem("s-1", "遅い記事", None, NOW)]

    def slow(req: Request) -> Reply:
        release.wait(90)
        return slow_feed(req)

    with Server(slow) as server:
        slow_feed.base = server.base
        path = _config(tmp_path, feeds, names=("a",))
        path.write_text(
            path.read_text(encoding="utf-8")
            + f'[[feeds]]\nname = "遅いフィード"\nurl = "{server.base}/feed/slow"\nbody = "feed"\n',
            encoding="utf-8",
        )
        proc = spawn_run(path)
        assert proc.stderr is not None
        try:
            progress = ""
            for line in proc.stderr:  # the log, as it comes (ends if the service does)
                if "first polls:" in line:
                    progress = line
                    break
            assert "first polls: 1/2 feeds done after " in progress and "polling now: 遅いフィード" in progress
            seen = ""
            for _ in range(60):  # each `status` is a process: about 0.5 s
                seen = run_cli("--config", str(path), "status").stdout
                if "polling now" in seen:
                    break
            assert "  遅いフィード: never polled — polling now (instance " in seen, seen
        finally:
            release.set()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
    assert proc.returncode == 0
