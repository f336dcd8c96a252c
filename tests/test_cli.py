"""The CLI through real subprocesses: check, poll, digest, status, demo, exit codes."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.loopback import Receiver, Server
from tests.conftest import map_links, run_cli, write_toml
from tests.renderers import shown


@pytest.fixture
def hook() -> Iterator[tuple[str, Receiver]]:
    rec = Receiver()
    with Server(rec) as server:
        yield server.base + "/api/webhooks/123/SECRET-TOKEN", rec


def test_check_accepts_a_good_config(demo_config: Callable[[str | None], Path]) -> None:
    r = run_cli("--config", str(demo_config(None)), "check")
    assert r.returncode == 0, r.stderr
    assert ": ok — 4 feeds (4 enabled), 3 topics, 2 label rules, 0 webhooks" in r.stdout


def test_check_lists_every_problem_with_its_key_and_exits_2(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
timezone = "Tokyo"
[[feeds]]
name = "a"
url = "https://example.org/a"
[[feeds]]
name = "b"
url = "https://example.org/b"
[[feeds]]
name = "c"
url = "gopher://example.org/c"
poll_every = "0s"
[[webhooks]]
kind = "discord"
url = "${FEEDBOT_TEST_UNSET_HOOK}"
""",
    )
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().split("\n")
    assert lines[0] == f"feedbot: invalid config {path}:"
    assert lines[1:] == [
        f"  {path}:2: timezone: 'Tokyo' is not an IANA time zone name such as \"Asia/Tokyo\"",
        f"  {path}:11: feeds[2] (\"c\").url: not an http(s) URL: 'gopher://example.org/c'",
        f"  {path}:12: feeds[2] (\"c\").poll_every: must be at least 1s, not '0s'",
        f"  {path}:15: webhooks[0].url: environment variable FEEDBOT_TEST_UNSET_HOOK is not set",
        "  (a secret only the service can read, as systemd credentials are? `feedbot check --offline` checks the rest)",
    ]


def test_config_comes_from_env_then_working_directory(
    demo_config: Callable[[str | None], Path], tmp_path: Path
) -> None:
    path = demo_config(None)
    assert run_cli("check", env={"FEEDBOT_CONFIG": str(path)}).returncode == 0
    assert run_cli("check", cwd=path.parent).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = run_cli("check", cwd=empty)
    assert missing.returncode == 2 and "config.toml: no such file" in missing.stderr


def test_usage_errors_exit_2(demo_config: Callable[[str | None], Path]) -> None:
    path = str(demo_config(None))
    assert run_cli("--config", path, "frobnicate").returncode == 2
    bad_date = run_cli("--config", path, "digest", "--date", "21/01/2025")
    assert bad_date.returncode == 2 and "is not a date YYYY-MM-DD" in bad_date.stderr
    unknown = run_cli("--config", path, "poll", "--feed", "nope")
    assert unknown.returncode == 2 and "no feed named 'nope'" in unknown.stderr


def test_reference_digest_end_to_end(
    demo_config: Callable[[str | None], Path],
    demo_site: tuple[Server, object],
    hook: tuple[str, Receiver],
    reference_text: str,
) -> None:
    url, rec = hook
    path = str(demo_config(url))
    base = demo_site[0].base

    polled = run_cli("--config", path, "poll")
    assert polled.returncode == 0, polled.stderr
    # A line per feed as each finishes (in no set order); logfmt: a name with a space is quoted.
    assert sorted(line.split(" ms=")[0] for line in polled.stdout.strip().split("\n")) == sorted(
        [
            "feed=NHKニュース status=ok new=2",
            "feed=ロイター status=ok new=3",
            'feed="矢野義昭(Yoshiaki Yano)" status=ok new=1',
            'feed="J Sato" status=ok new=1',
        ]
    )

    dry = run_cli("--config", path, "digest", "--dry-run", "--date", "2025-01-21")
    assert dry.returncode == 0, dry.stderr
    assert map_links(dry.stdout, base) == reference_text + "\n"
    assert rec.accepted == []  # a dry run sends nothing...

    sent = run_cli("--config", path, "digest", "--date", "2025-01-21")  # ...and records nothing
    assert sent.returncode == 0, sent.stderr
    contents = [shown("discord", r.json()["content"]) for r in rec.accepted]
    assert len(contents) == 2
    assert all(len(r.json()["content"].encode("utf-16-le")) // 2 <= 2000 for r in rec.accepted)
    assert map_links("\n".join(contents), base) == reference_text
    assert all(r.json()["allowed_mentions"] == {"parse": []} for r in rec.accepted)
    assert "SECRET-TOKEN" not in sent.stderr + sent.stdout

    again = run_cli("--config", path, "digest")
    assert again.returncode == 0 and len(rec.accepted) == 2
    assert "no new items" in again.stderr

    status = run_cli("--config", path, "status")
    assert status.returncode == 0
    assert "NHKニュース: last poll" in status.stdout and "items 2" in status.stdout
    assert "pending items: 0" in status.stdout
    assert "SECRET-TOKEN" not in status.stdout


def test_failed_delivery_exits_1_and_status_shows_it(
    demo_config: Callable[[str | None], Path], hook: tuple[str, Receiver]
) -> None:
    url, rec = hook
    path = str(demo_config(url))
    assert run_cli("--config", path, "poll", "--feed", "J Sato").returncode == 0
    rec.fail(1, 401, {"Content-Type": "application/json"}, b'{"message": "Invalid Webhook Token"}')
    r = run_cli("--config", path, "digest")
    assert r.returncode == 1
    assert "demo-discord: HTTP 401 (Invalid Webhook Token)" in r.stderr
    status = run_cli("--config", path, "status")
    assert "pending items: 1" in status.stdout
    assert "1 message(s) pending" in status.stdout and "HTTP 401" in status.stdout
    assert "SECRET-TOKEN" not in status.stdout + r.stderr
    # The next run delivers it, once.
    assert run_cli("--config", path, "digest").returncode == 0
    assert len(rec.accepted) == 1
    assert "pending items: 0" in run_cli("--config", path, "status").stdout


def test_no_webhook_writes_stdout_and_archives(demo_config: Callable[[str | None], Path]) -> None:
    path = demo_config(None)
    assert run_cli("--config", str(path), "poll", "--feed", "J Sato").returncode == 0
    r = run_cli("--config", str(path), "digest", "--date", "2025-01-21")
    assert r.returncode == 0
    assert r.stdout.startswith("ウクライナ陸軍第95旅団の一部が") and r.stdout.endswith("#ロシア(250121)\n")
    (archived,) = (path.parent / "state" / "digests").iterdir()
    assert archived.read_text(encoding="utf-8") == r.stdout
    assert run_cli("--config", str(path), "digest").stdout == ""


def test_unusable_state_directory_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = write_toml(tmp_path, f'state_dir = "{blocker}/state"\n')
    r = run_cli("--config", str(path), "status")
    assert r.returncode == 1
    assert r.stderr.startswith("feedbot: state directory") and "Traceback" not in r.stderr


def test_demo_runs_offline() -> None:
    r = run_cli("demo")
    assert r.returncode == 0, r.stderr
    assert "#中露(オンライン会談)" in r.stdout and "#ロシア(250121)" in r.stdout
    assert "sent as 2 Discord message(s)" in r.stdout
    assert "a second digest right away sends nothing: 0 new items." in r.stdout


def test_console_script_and_module_agree() -> None:
    script = shutil.which("feedbot", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the feedbot console script is not installed next to this Python")
    import subprocess

    out = subprocess.run([script, "--version"], capture_output=True, text=True, check=True).stdout
    assert out == run_cli("--version").stdout
    assert json.dumps(out)  # printable


def test_the_command_exits_without_collecting_its_heap() -> None:
    """``python -m bot`` and the console script run ``entry``: ``main``, then
    the heap frozen, so that the interpreter's exit does not walk every
    imported object (a tenth of a steady `feedbot poll`, issue 27); the
    atexit handlers still run."""
    import subprocess
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="feedbot")
    assert script.value == "bot.cli:entry"
    code = (
        "import atexit, gc, runpy, sys; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count())); "
        "sys.argv = ['feedbot', '--version']; runpy.run_module('bot', run_name='__main__')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    version, frozen = r.stdout.splitlines()
    assert version == run_cli("--version").stdout.strip()
    assert frozen.startswith("frozen ") and int(frozen.split()[1]) > 10_000  # the imported modules' objects


def test_every_command_has_help() -> None:
    for command in ("run", "poll", "digest", "check", "status", "demo"):
        r = run_cli(command, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: feedbot {command}")


def test_failed_archive_write_keeps_the_items_pending(demo_config: Callable[[str | None], Path]) -> None:
    path = demo_config(None)
    assert run_cli("--config", str(path), "poll", "--feed", "J Sato").returncode == 0
    (path.parent / "state" / "digests").write_text("in the way")  # a file where the folder goes
    r = run_cli("--config", str(path), "digest")
    assert r.returncode == 1
    assert r.stderr.startswith("feedbot: cannot archive the digest in") and "Traceback" not in r.stderr
    assert "pending items: 1" in run_cli("--config", str(path), "status").stdout


def test_secrets_only_the_service_can_read_are_a_problem_for_check_but_offline(tmp_path: Path) -> None:
    """With systemd credentials, the admin's `check` cannot read the URL: a
    problem (digest would stop on it), a warning with --offline."""
    path = write_toml(
        tmp_path,
        '[[feeds]]\nname = "a"\nurl = "https://example.org/a"\n'
        '[[webhooks]]\nkind = "discord"\nurl_file = "${CREDENTIALS_DIRECTORY}/discord-url"\n'
        '[[webhooks]]\nkind = "telegram"\ntoken_file = "missing-token"\nchat_id = 1\n',
    )
    r = run_cli("--config", str(path), "check")
    assert r.returncode == 2, r.stdout
    assert "webhooks[0].url_file: environment variable CREDENTIALS_DIRECTORY is not set" in r.stderr
    assert "webhooks[1].token_file: cannot read " in r.stderr and "feedbot check --offline" in r.stderr
    r = run_cli("--config", str(path), "check", "--offline")
    assert r.returncode == 0, r.stderr
    assert f"warning: {path}:6: webhooks[0].url_file: environment variable CREDENTIALS_DIRECTORY is not set" in r.stdout
    assert f"warning: {path}:9: webhooks[1].token_file: cannot read " in r.stdout
    status = run_cli("--config", str(path), "status")  # reads no secret: only the (not yet made) state is missing
    assert status.returncode == 1 and "no state at" in status.stderr and "invalid config" not in status.stderr
    d = run_cli("--config", str(path), "digest")
    assert d.returncode == 2
    assert "webhooks[0].url_file: environment variable CREDENTIALS_DIRECTORY is not set" in d.stderr


def test_a_failing_state_database_is_one_sentence(demo_config: Callable[[str | None], Path]) -> None:
    import sqlite3

    path = demo_config(None)
    from bot.state.sqlite import SQLiteStore

    SQLiteStore.open(path.parent / "state").close()  # the database, as a first run makes it
    db = sqlite3.connect(path.parent / "state" / "feedbot.sqlite3")
    # Every write of a seen key fails, as on a full or read-only disk.
    db.execute("CREATE TRIGGER fail BEFORE INSERT ON seen BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    db.commit()
    db.close()
    r = run_cli("--config", str(path), "poll", "--feed", "J Sato")
    assert r.returncode == 1
    assert r.stderr == "feedbot: the state database cannot be used: disk I/O error\n"
