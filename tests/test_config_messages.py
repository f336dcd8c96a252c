"""`feedbot check`'s messages, as an operator reads them (issue 25): the
line, the feed's name, the key meant, the value refused, TOML syntax in
plain words, and the examples in the docs run as they are shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


def check(folder: Path, text: str, *args: str) -> tuple[int, list[str]]:
    """``feedbot --config config.toml check`` in ``folder``: the exit status
    and the problem lines (relative path, as the docs show it)."""
    (folder / "config.toml").write_text(text, encoding="utf-8")
    r = run_cli("--config", "config.toml", "check", *args, cwd=folder)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr.splitlines()


def test_a_problem_names_its_line_and_the_feed_or_webhook_by_name(tmp_path: Path) -> None:
    text = """\
# feeds of the morning digest
[[feeds]]
name = "NHKニュース"
url = "https://www3.nhk.or.jp/rss/news/cat0.xml"

[[feeds]]
name = 'NHK "国際"'
url = "https://www3.nhk.or.jp/rss/news/cat6.xml"
max_paragraphs = 0

[[webhooks]]
kind = "json"
name = "archive"
url = "https://hooks.example/in"
timeout = 3

[[webhooks]]
kind = "json"
url = "https://hooks.example/other"
colour = "red"
"""
    code, lines = check(tmp_path, text)
    assert code == 2
    assert lines == [
        "feedbot: invalid config config.toml:",
        '  config.toml:9: feeds[1] ("NHK \\"国際\\"").max_paragraphs: must be between 1 and 1000, not 0',
        '  config.toml:15: webhooks[0] ("archive").timeout: unknown key',
        "  config.toml:20: webhooks[1].colour: unknown key",  # no name: the index alone
    ]


def test_lines_are_found_past_multiline_values_and_quoted_keys(tmp_path: Path) -> None:
    """An array's element on a line of its own ("  ["x"],") looks like a
    table header, a string may hold "[[feeds]]", and U+2028 ends a line for
    str.splitlines but not for TOML: none of them moves a line."""
    text = '''\
[[feeds]]
name = "a"
url = "https://a.example/feed"
include = [
  ["x"],
  ["y", "z"],
]
exclude = ["天気\u2028予報"]
headline = """
[[feeds]]
name = "not a feed"
{title}"""
"poll_every" = "0s"

[[feeds]]
name = "b\u2028c"
url = "https://b.example/feed"
enabled = 1
'''
    code, lines = check(tmp_path, text)
    assert code == 2
    assert lines[1:] == [
        "  config.toml:13: feeds[0] (\"a\").poll_every: must be at least 1s, not '0s'",
        '  config.toml:18: feeds[1] ("b\\u2028c").enabled: must be true or false, not 1',
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[poll]\nconcurency = 4\n", 'config.toml:2: poll.concurency: unknown key; did you mean "concurrency"?'),
        ('[[feed]]\nname = "a"\n', 'config.toml:1: feed: unknown key; did you mean "feeds"?'),
        ('[shedule]\npoll_every = "5m"\n', 'config.toml:1: shedule: unknown key; did you mean "schedule"?'),
        ('colour = "blue"\n', "config.toml:1: colour: unknown key"),  # nothing close: no guess
        (
            '[digest]\nlabels = "dates"\n',
            "config.toml:2: digest.labels: 'dates' is not one of 'auto', 'date'; did you mean \"date\"?",
        ),
        (
            '[[webhooks]]\nkind = "discrod"\nurl = "https://x.example/a"\n',
            "config.toml:2: webhooks[0].kind: 'discrod' is not one of discord, slack, json, text, telegram, line,"
            ' email, misskey, mastodon, matrix, teams, googlechat; did you mean "discord"?',
        ),
    ],
)
def test_an_unknown_key_or_choice_gets_the_nearest_valid_one(tmp_path: Path, text: str, expected: str) -> None:
    code, lines = check(tmp_path, text)
    assert code == 2 and lines[1:] == [f"  {expected}"]


def test_every_refused_value_is_shown(tmp_path: Path) -> None:
    text = """\
timezone = 9
state_dir = ""
[schedule]
poll_every = 15
digest_every = "0s"
digest_at = "7am"
[poll]
first_poll = "sometimes"
max_age = true
timeout = "0s"
concurrency = 100
allow_private_addresses = "yes"
host_spacing = "soon"
[digest]
lead = 3
headline_max = "long"
labels = "weekly"
health_after = "0s"
delivery_timeout = "1s"
[[feeds]]
name = "a"
url = "https://a.example/feed"
handle = "a b"
headline = "{link}"
body = "p::before"
include = [1]
exclude = "  "
[[topics]]
tag = "a b"
match = []
[metrics]
listen = "9464"
"""
    code, lines = check(tmp_path, text)
    assert code == 2
    expected = [
        "timezone: must be a string, not 9",
        "state_dir: must not be empty",
        'schedule.poll_every: must be a duration string such as "15m", not 15',
        "schedule.digest_every: must be at least 1s, not '0s'",
        "schedule.digest_at: '7am' is not a time of day HH:MM",
        'poll.first_poll: \'sometimes\' is not "all", "none" or a duration such as "1d"',
        'poll.max_age: true is not "none" or a duration such as "1d"',
        "poll.timeout: must be longer than zero, not '0s'",
        "poll.concurrency: must be between 1 and 64, not 100",
        "poll.allow_private_addresses: must be true or false, not 'yes'",
        "poll.host_spacing: 'soon' is not a duration",
        "digest.lead: must be a list of non-empty strings, not 3",
        "digest.headline_max: must be an integer, not 'long'",
        "digest.labels: 'weekly' is not one of 'auto', 'date'",
        "digest.health_after: must be longer than zero, not '0s'",
        "digest.delivery_timeout: must be between 5s and 60m, not '1s'",
        "feeds[0] (\"a\").handle: 'a b' must not contain spaces",
        "feeds[0] (\"a\").headline: '{link}' must contain {title}",
        "feeds[0] (\"a\").body: 'p::before' is neither auto, feed, none nor a valid CSS selector",
        'feeds[0] ("a").include: each element must be a non-empty string or a non-empty list of strings, not 1',
        "feeds[0] (\"a\").exclude: must be a list of non-empty strings, not '  '",
        "topics[0].tag: 'a b' must not contain spaces",
        "topics[0].match: must be a non-empty list of strings or lists of alternatives, not []",
        "metrics.listen: '9464' is not \"host:port\"",
    ]
    shown = [re.sub(r"^  config\.toml:\d+: ", "", line) for line in lines[1:]]
    for start in expected:
        assert any(line.startswith(start) for line in shown), (start, shown)
    assert len(shown) == len(expected), shown


def test_a_credential_is_not_shown_even_when_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hook").write_text("https://discord.example/api/webhooks/1/s3cr3t\0\n", encoding="utf-8")
    code, lines = check(tmp_path, '[[webhooks]]\nkind = "discord"\nurl_file = "hook"\n')
    assert code == 2
    assert lines[1:] == ["  config.toml:3: webhooks[0].url_file: must be a non-empty string without NUL characters"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[poll]\ntimeout = "20s\n',
            [
                "  config.toml:2: invalid TOML: Illegal character '\\n' (at line 2, column 15)",
                '    2 | timeout = "20s',
                "      |               ^",
                '    a string is not closed on this line: add its closing quote (text over several lines needs """)',
            ],
        ),
        (
            '[[feeds]]\nname = "a"\nurl = "https://a.example/feed"\nname = "b"\n',
            [
                "  config.toml:4: invalid TOML: Cannot overwrite a value (at line 4, column 11)",
                '    4 | name = "b"',
                "      |           ^",
                "    this key already has a value in this table: remove one of the two; if it starts another entry,"
                " put a [[feeds]] (or [[webhooks]] …) line before it",
            ],
        ),
        (
            '[poll]\ntimeout = "20s"\n\n[poll]\nconcurrency = 4\n',
            [
                "  config.toml:4: invalid TOML: Cannot declare ('poll',) twice (at line 4, column 6)",
                "    4 | [poll]",
                "      |      ^",
                "    [poll] is declared twice (or was set as a key before): keep one [poll] and put all its keys"
                " under it; for a list of entries write [[poll]] before each",
            ],
        ),
        (
            '[[feeds]]\nname "NHK"\n',
            [
                "  config.toml:2: invalid TOML: Expected '=' after a key in a key/value pair (at line 2, column 6)",
                '    2 | name "NHK"',
                "      |      ^",
                '    a key must be followed by = and a value (name = "NHK"); a key with spaces must be quoted',
            ],
        ),
        (
            "[[feeds]]\nname = 国際\n",
            [
                "  config.toml:2: invalid TOML: Invalid value (at line 2, column 8)",
                "    2 | name = 国際",
                "      |        ^",
                '    text must be in double quotes (name = "NHK"); true and false are written in lower case',
            ],
        ),
        (
            'a = 1\nlead = """\nfirst line\n',
            [
                "  config.toml:2: invalid TOML: Unterminated string (at end of document)",
                '    2 | lead = """',
                '    the """ string that starts on this line is never closed: add the closing """',
            ],
        ),
        (
            '[digest]\nlead = [\n  "x",\n',
            [
                "  config.toml:3: invalid TOML: Invalid value (at end of document)",
                '    3 |   "x",',
                "    the file ends in the middle of a value: an array [ … ] or inline table { … } above is not closed",
            ],
        ),
        (
            "[poll]\n\ttimeout = 20s\n",
            [
                "  config.toml:2: invalid TOML: Expected newline or end of document after a statement"
                " (at line 2, column 14)",
                "    2 |  timeout = 20s",  # the tab shown as one space, so that the caret is under the "s"
                "      |              ^",
                '    a duration is text: put it in quotes (timeout = "20s")',
            ],
        ),
    ],
    ids=[
        "unclosed-string",
        "duplicate-key",
        "duplicate-table",
        "missing-equals",
        "unquoted",
        "unclosed-multiline",
        "unclosed-array",
        "unquoted-duration",
    ],
)
def test_invalid_toml_is_explained_at_its_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    code, lines = check(tmp_path, text)
    assert code == 2
    assert lines == ["feedbot: invalid config config.toml:", *expected]


_EXAMPLE = re.compile(r"<!-- check-example: (\S+) -->\n```toml\n(.*?)```", re.S)
_OUTPUT = re.compile(r"<!-- check-output: (\S+) -->\n```\n\$ feedbot (.*?)\n(.*?)```", re.S)
DOCS = ["README.md", "docs/configuration.md"]


def _examples() -> list[tuple[str, str, list[str], str]]:
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        configs = dict(_EXAMPLE.findall(text))
        outputs = {name: (args, shown) for name, args, shown in _OUTPUT.findall(text)}
        assert configs and configs.keys() == outputs.keys(), (doc, configs.keys(), outputs.keys())
        found += [(f"{doc}:{name}", configs[name], outputs[name][0].split(), outputs[name][1]) for name in configs]
    return found


@pytest.mark.parametrize(("where", "config", "args", "shown"), _examples(), ids=lambda v: v if "\n" not in v else "")
def test_the_messages_in_the_docs_are_the_programs_own(
    tmp_path: Path, where: str, config: str, args: list[str], shown: str
) -> None:
    """Each example config the docs show with its ``check`` output is run as
    shown: a change of wording fails here until the docs say it too."""
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    r = run_cli(*args, cwd=tmp_path)
    assert r.stdout + r.stderr == shown, f"{where}: the docs show\n{shown}\nthe program says\n{r.stdout + r.stderr}"
