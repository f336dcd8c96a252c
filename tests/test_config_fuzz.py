"""Property-based tests of the config: generated files and edits.

Whatever the file says, reading it gives a Config or a ConfigError whose
every problem names its key path (or the file, for a TOML syntax error),
never another exception; a reload plan between two valid configs never
fails; and the service never starts on an invalid config.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_config
from bot.errors import ConfigError
from bot.reload import plan
from tests.conftest import ROOT

KEYS = {
    "": ["timezone", "state_dir", "colour"],
    "schedule": ["poll_every", "digest_at", "digest_every", "often"],
    "poll": [
        "first_poll",
        "max_age",
        "timeout",
        "concurrency",
        "user_agent",
        "allow_private_addresses",
        "host_spacing",
        "retention",
        "speed",
    ],
    "digest": ["default_topic", "lead", "headline_max", "style"],
    "feeds": [
        "name",
        "url",
        "handle",
        "headline",
        "body",
        "poll_every",
        "enabled",
        "include",
        "exclude",
        "max_paragraphs",
        "max_body_chars",
        "colour",
    ],
    "topics": ["tag", "match", "exclude", "label", "weight"],
    "labels": ["text", "match", "extra"],
    "webhooks": ["kind", "url", "url_file", "name", "secret", "secret_file", "token"],
}
LITERALS = [
    '"15m"',
    '"90s"',
    '"0s"',
    '"1d"',
    '"all"',
    '"none"',
    '"7am"',
    '"07:00"',
    '["07:00", "25:61"]',
    "[]",
    "0",
    "-1",
    "3",
    "100000",
    "true",
    "false",
    '""',
    '" "',
    '"Asia/Tokyo"',
    '"Mars/Base"',
    '"https://example.org/feed.xml"',
    '"ftp://x"',
    '"http://127.0.0.1:99999/x"',
    '"{title} {link}"',
    '"{title!x}"',
    '"{nope}"',
    '"p::before"',
    '"div.body p"',
    '"auto"',
    '"discord"',
    '"teams"',
    '"${UNSET_VAR}"',
    '"#tag"',
    '"ロシア"',
    '[["中国", "習近平"], "ロシア"]',
    "[[], 1]",
    "[1, 2]",
    "{ a = 1 }",
    '"@handle"',
    '"has space"',
    '"(label)"',
    "1.5",
    '"\\u0000"',
]
# Where (config.toml:LINE:, when the line is known), then the key path, a
# feed's or webhook's name after its index.
PATH = re.compile(r'^(\S+:\d+: )?([a-z_]+(\[\d+\])?)( \(".*?"\))?(\.[a-z_]+)?(\[\d+\])?: \S')


@st.composite
def config_text(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for key in draw(st.lists(st.sampled_from(KEYS[""]), max_size=3, unique=True)):
        lines.append(f"{key} = {draw(st.sampled_from(LITERALS))}")
    for section in ("schedule", "poll", "digest"):
        if draw(st.booleans()):
            lines.append(f"[{section}]")
            for key in draw(st.lists(st.sampled_from(KEYS[section]), max_size=4, unique=True)):
                lines.append(f"{key} = {draw(st.sampled_from(LITERALS))}")
    for table in ("feeds", "topics", "labels", "webhooks"):
        for _ in range(draw(st.integers(0, 3))):
            lines.append(f"[[{table}]]")
            for key in draw(st.lists(st.sampled_from(KEYS[table]), max_size=5, unique=True)):
                lines.append(f"{key} = {draw(st.sampled_from(LITERALS))}")
    return "\n".join(lines) + "\n"


def read(tmp: Path, text: str) -> ConfigError | object:
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_config(path, {"HOME": "/root"})
    except ConfigError as exc:
        return exc


def check_problems(exc: ConfigError, path: Path) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert PATH.match(problem) or re.match(rf"{re.escape(str(path))}:\d+: invalid TOML", problem), problem


@settings(
    max_examples=int(os.environ.get("FEEDBOT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=config_text())
def test_generated_configs_load_or_name_every_problem(tmp_path: Path, text: str) -> None:
    result = read(tmp_path, text)
    if isinstance(result, ConfigError):
        check_problems(result, tmp_path / "config.toml")


SHIPPED = (ROOT / "config.toml").read_text(encoding="utf-8")
DEMO = (ROOT / "bot" / "demo" / "config.toml").read_text(encoding="utf-8").replace("{{BASE}}", "http://127.0.0.1:1")


@st.composite
def edit(draw: st.DrawFn) -> str:
    """A valid config with a few lines changed, as a person editing it would."""
    lines = draw(st.sampled_from([SHIPPED, DEMO.replace("{{WEBHOOK}}", "https://example.org/h")])).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["value", "delete", "duplicate", "garbage"]))
        if action == "value" and "=" in lines[n] and not lines[n].lstrip().startswith("#"):
            lines[n] = lines[n].split("=", 1)[0] + "= " + draw(st.sampled_from(LITERALS))
        elif action == "delete":
            del lines[n]
        elif action == "duplicate":
            lines.insert(n, lines[n])
        elif action == "garbage":
            lines.insert(n, draw(st.sampled_from(["[[feeds]]", "[poll", "x =", "= 3", "[[feeds]]\nname = 1", "]]"])))
    return "\n".join(lines)


@settings(
    max_examples=int(os.environ.get("FEEDBOT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=edit())
def test_edited_configs_load_or_name_every_problem_and_plan(tmp_path: Path, text: str) -> None:
    old = read(tmp_path, SHIPPED)
    result = read(tmp_path, text)
    if isinstance(result, ConfigError):
        check_problems(result, tmp_path / "config.toml")
    else:
        assert not isinstance(old, ConfigError)
        plan(old, result).summary()  # a reload from the shipped config never fails  # type: ignore[arg-type]


def test_the_service_never_starts_on_an_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(SHIPPED.replace('timezone = "Asia/Tokyo"', 'timezone = "Mars/Base"'), encoding="utf-8")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.setblocking(False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_")}
    env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    try:
        r = subprocess.run(
            [sys.executable, "-m", "bot", "--config", str(path), "run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 2 and "timezone: 'Mars/Base'" in r.stderr and "Traceback" not in r.stderr
        try:
            said = listener.recv(4096)
        except BlockingIOError:
            said = b""
        assert b"READY=1" not in said
    finally:
        listener.close()
    assert signal.SIGTERM  # (the process ended by itself: nothing to stop)
