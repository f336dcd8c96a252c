"""Config parsing: defaults, conversions, and every problem named by key path."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import load_config, parse_duration
from bot.errors import ConfigError
from tests.conftest import ROOT, write_toml

MINIMAL = """
[[feeds]]
name = "A"
url = "https://example.org/a.xml"
"""


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problems found, without their ``config.toml:LINE: `` (lines are
    tested in tests/test_cli.py, through ``check``)."""
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return [re.sub(rf"^{re.escape(str(path))}:\d+: ", "", p) for p in info.value.problems]


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, MINIMAL), {})
    assert config.timezone.key == "UTC"
    assert config.state_dir == tmp_path / "state"
    assert config.schedule.poll_every == timedelta(minutes=15)
    assert config.schedule.digest_at == (time(7, 0),)
    assert config.poll.first_poll == timedelta(days=1)
    assert config.poll.max_age == timedelta(days=7)
    assert config.digest.headline_max == 140
    feed = config.feeds[0]
    assert (feed.headline, feed.body, feed.enabled, feed.handle) == ("{title} {link}", "auto", True, None)
    assert config.feed_interval(feed) == timedelta(minutes=15)


def test_shipped_config_is_valid() -> None:
    config = load_config(ROOT / "config.toml", {})
    assert config.feeds and config.topics
    assert config.timezone.key == "Asia/Tokyo"
    assert any("nhk" in f.url for f in config.feeds)


def test_full_config(tmp_path: Path) -> None:
    text = """
timezone = "Asia/Tokyo"
state_dir = "data/st"
[schedule]
poll_every = "90s"
digest_at = ["19:30", "07:00"]
[poll]
first_poll = "all"
max_age = "none"
timeout = "5s"
[digest]
default_topic = "ロシア"
lead = ["【随時更新】"]
headline_max = 100
[[feeds]]
name = "NHK"
handle = "@nhk_news"
url = "https://example.org/cat6.xml"
headline = "{title}{link} #nhk_news"
body = "div.body-text p"
poll_every = "5m"
enabled = false
[[topics]]
tag = "中露"
match = [["中国", "習近平"], "ロシア"]
exclude = ["天気"]
label = "会談"
[[labels]]
text = "オンライン会談"
match = [["オンライン", "ビデオ会談"]]
[[webhooks]]
kind = "discord"
url = "${HOOK}/x"
name = "main"
"""
    config = load_config(write_toml(tmp_path, text), {"HOOK": "https://discord.example/api/webhooks/1/secret"})
    assert config.state_dir == tmp_path / "data" / "st"
    assert config.schedule.digest_at == (time(7, 0), time(19, 30))
    assert config.poll.first_poll is None and config.poll.max_age is None
    feed = config.feeds[0]
    assert feed.handle == "nhk_news" and feed.body == "div.body-text p" and not feed.enabled
    assert config.feed_interval(feed) == timedelta(minutes=5)
    assert config.enabled_feeds == ()
    assert config.topics[0].match == (("中国", "習近平"), ("ロシア",))
    hook = config.webhooks[0]
    assert hook.url.reveal() == "https://discord.example/api/webhooks/1/secret/x"
    assert "/1/secret" not in repr(hook) and "/1/secret" not in str(hook.url)


def test_state_directory_from_systemd_wins(tmp_path: Path) -> None:
    config = load_config(write_toml(tmp_path, MINIMAL), {"STATE_DIRECTORY": "/var/lib/feedbot"})
    assert config.state_dir == Path("/var/lib/feedbot")


def test_every_problem_is_listed_with_its_key_path(tmp_path: Path) -> None:
    text = """
timezone = "Mars/Olympus"
colour = "blue"
[schedule]
poll_every = "often"
digest_at = ["25:00"]
[poll]
first_poll = "yesterday"
[digest]
headline_max = "long"
[[feeds]]
name = "A"
url = "https://example.org/a.xml"
[[feeds]]
name = "A"
url = "ftp://example.org/b.xml"
headline = "{titel}"
[[feeds]]
url = "not a url"
body = "div[["
[[topics]]
tag = "has space"
match = []
[[webhooks]]
kind = "icq"
url = "${NOPE}"
[[webhooks]]
kind = "telegram"
token = "${NOPE}"
"""
    found = problems(tmp_path, text)
    expected = [
        "timezone: 'Mars/Olympus' is not an IANA time zone name",
        "colour: unknown key",
        "schedule.poll_every: 'often' is not a duration",
        "schedule.digest_at: '25:00' is not a time of day",
        'poll.first_poll: \'yesterday\' is not "all", "none" or a duration',
        "digest.headline_max: must be an integer, not 'long'",
        "feeds[1] (\"A\").name: 'A' is already the name of feeds[0]",
        "feeds[1] (\"A\").url: not an http(s) URL: 'ftp://example.org/b.xml'",
        "feeds[1] (\"A\").headline: '{titel}' has an unknown placeholder {titel}",
        "feeds[2].name: missing (required)",
        "feeds[2].url: not an http(s) URL: 'not a url'",
        "feeds[2].body: 'div[[' is neither auto, feed, none nor a valid CSS selector",
        "topics[0].tag: 'has space' must not contain spaces",
        "topics[0].match: must be a non-empty list",
        "webhooks[0].kind: 'icq' is not one of discord, slack, json, text, telegram, line, email, misskey",
        "webhooks[1].chat_id: missing (required)",
        "webhooks[1].token: environment variable NOPE is not set",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in found), (prefix, found)
    assert len(found) == len(expected)


def test_webhook_url_file_and_errors_never_show_the_secret(tmp_path: Path) -> None:
    (tmp_path / "hook").write_text("https://hooks.example/services/T0/B0/s3cr3t\n")
    config = load_config(write_toml(tmp_path, MINIMAL + '[[webhooks]]\nkind = "slack"\nurl_file = "hook"\n'), {})
    assert config.webhooks[0].url.reveal() == "https://hooks.example/services/T0/B0/s3cr3t"
    assert config.webhooks[0].url.redacted() == "https://hooks.example/…"
    found = problems(tmp_path, MINIMAL + '[[webhooks]]\nkind = "slack"\nurl = "${H}"\n', {"H": "s3cr3t-token"})
    assert found == ["webhooks[0].url: not an http(s) URL"]
    assert "s3cr3t" not in "".join(found)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "timezone = \n")
    assert len(found) == 1 and "invalid TOML" in found[0] and "line 1" in found[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", {})


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "-3m", "3 days"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_user_agent_placeholders_are_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + '[poll]\nuser_agent = "bot {foo}"\n')
    assert found == [
        "poll.user_agent: 'bot {foo}' may contain only the placeholder {version}; write {{ and }} for literal braces"
    ]
    ok = load_config(write_toml(tmp_path, MINIMAL + '[poll]\nuser_agent = "bot/{version} {{x}}"\n'), {})
    assert ok.poll.user_agent == "bot/{version} {{x}}"


def test_url_file_names_an_unset_variable(tmp_path: Path) -> None:
    text = MINIMAL + '[[webhooks]]\nkind = "discord"\nurl_file = "${CREDENTIALS_DIRECTORY}/hook"\n'
    assert problems(tmp_path, text) == ["webhooks[0].url_file: environment variable CREDENTIALS_DIRECTORY is not set"]
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "hook").write_text("https://discord.example/api/webhooks/1/t")
    config = load_config(write_toml(tmp_path, text), {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert config.webhooks[0].url.reveal().endswith("/1/t")


def test_feed_filters(tmp_path: Path) -> None:
    text = MINIMAL + 'include = [["ロシア", "ウクライナ"]]\nexclude = ["天気"]\n'
    feed = load_config(write_toml(tmp_path, text), {}).feeds[0]
    assert feed.include == (("ロシア", "ウクライナ"),) and feed.exclude == ("天気",)
    assert problems(tmp_path, MINIMAL + "include = 3\n") == [
        'feeds[0] ("A").include: must be a non-empty list of strings or lists of alternatives, not 3'
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('headline = "{title!x} {link}"', "feeds[0] (\"A\").headline: '{title!x} {link}' is not a valid template"),
        ('headline = "{title:d} {link}"', "feeds[0] (\"A\").headline: '{title:d} {link}' is not a valid template"),
        ('body = "p::before"', "feeds[0] (\"A\").body: 'p::before' is neither auto, feed, none nor a valid CSS"),
    ],
)
def test_templates_and_selectors_that_fail_only_when_used(tmp_path: Path, extra: str, expected: str) -> None:
    (found,) = problems(tmp_path, MINIMAL + extra + "\n")
    assert found.startswith(expected)


def test_ports_out_of_range(tmp_path: Path) -> None:
    text = '[[feeds]]\nname = "A"\nurl = "http://127.0.0.1:99999/f.xml"\n'
    text += '[[webhooks]]\nkind = "discord"\nurl = "${H}"\n'
    found = problems(tmp_path, text, {"H": "https://discord.example:99999/api/webhooks/1/secret"})
    assert found == [
        "feeds[0] (\"A\").url: has an invalid port (0-65535): 'http://127.0.0.1:99999/f.xml'",
        "webhooks[0].url: has an invalid port (0-65535)",
    ]


def test_every_bad_digest_time_is_named(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + '[schedule]\ndigest_at = ["25:00", "07:00", "7am"]\n') == [
        "schedule.digest_at: '25:00', '7am' are not times of day HH:MM"
    ]
