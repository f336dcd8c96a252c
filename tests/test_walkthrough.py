"""docs/walkthrough.md, run as written: each ``$`` line of its console
blocks in one fresh folder, the real ``feedbot`` command, a news site on
loopback in place of ``https://news.example.jp``; what the page shows after
a command must be what feedbot printed (in order; ``…`` for what differs
from run to run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.loopback import Reply, Request, Server
from tests.conftest import ROOT, DynamicFeeds, FeedItem

PAGE = ROOT / "docs" / "walkthrough.md"
SITE = "https://news.example.jp"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)
HEREDOC = re.compile(r"<<'(\w+)'$")


def steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, the lines shown after it) of every console block."""
    out: list[tuple[str, list[str]]] = []
    for block in BLOCK.findall(text):
        lines = block.rstrip("\n").split("\n")
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), f"{PAGE.name}: output before a command: {lines[i]!r}"
            command = lines[i][2:]
            i += 1
            if m := HEREDOC.search(command):  # the document's lines are the command's
                end = lines.index(m.group(1), i)
                command = "\n".join([command, *lines[i : end + 1]])
                i = end + 1
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            out.append((command, shown))
    return out


def pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("…")))


def shows(expected: list[str], printed: list[str]) -> str | None:
    """Why ``printed`` does not show ``expected`` in order, or None."""
    at = 0
    for line in expected:
        p = pattern(line)
        while at < len(printed) and not p.fullmatch(printed[at]):
            at += 1
        if at == len(printed):
            return f"not printed (in this order): {line!r}"
        at += 1
    return None


class NewsSite(DynamicFeeds):
    """The site of the walkthrough: its feed at /rss/cat6.xml, two articles."""

    def __call__(self, req: Request) -> Reply:
        if req.path.split("?")[0] == "/rss/cat6.xml":
            return Reply(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, self.rss("NHKニュース"))
        return super().__call__(req)


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    feeds = NewsSite()
    with Server(feeds) as server:
        base = feeds.base = server.base
        now = datetime.now(UTC)
        first = feeds.article(
            "/news/1.html",
            [
                "ロシアのプーチン大統領は21日、中国の習近平国家主席とオンラインで首脳会談を行いました。",
                "両首脳は、アメリカのトランプ新政権の発足を受けて、両国の協力を確認したとみられます。" * 2,
                "会談は1時間半にわたって行われ、エネルギー分野での協力についても意見を交わしたということです。",
            ],
        )
        second = feeds.article("/news/2.html", ["停戦に向けた協議は、週明けにも再開される見通しです。" * 3])
        feeds.feeds["NHKニュース"] = [
            FeedItem("n1", "ロシアと中国 オンラインで首脳会談", first, now - timedelta(hours=1)),
            FeedItem("n2", "ウクライナ 停戦協議は続く", second, now - timedelta(hours=2)),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "STATE_DIRECTORY"}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["COLUMNS"] = "200"
        for command, expected in steps(PAGE.read_text(encoding="utf-8")):
            run = command.replace(SITE, base)
            r = subprocess.run(
                ["bash", "-c", run], cwd=tmp_path, env=env, capture_output=True, encoding="utf-8", timeout=120
            )
            if command.startswith("cat > config.toml"):
                # The trial's site is on this machine; an outlet's is public.
                with (tmp_path / "config.toml").open("a", encoding="utf-8") as f:
                    f.write("\n[poll]\nallow_private_addresses = true\n")
            printed = (r.stderr + r.stdout).replace(base, SITE).splitlines()
            why = shows(expected, printed)
            assert why is None, f"$ {command}\n{why}\nprinted:\n" + "\n".join(printed)
