"""What readers see of feedbot's messages on each platform.

``Oracles``: the platforms' own parsers (tests/oracles/oracles.js, one node
process), for the property tests and the Mastodon stand-in's count.
``shown``: feedbot's escaping read back as each platform renders it (a
backslash escape, ``<url>``, ``<plain>``, a card's HTML), for tests that
compare delivered text with a digest; tests/test_render_oracles.py shows,
with the parsers, that the platforms read it so.
"""

from __future__ import annotations

import atexit
import html
import json
import os
import re
import shutil
import subprocess
import threading
from typing import Any

import pytest

from bot.kinds.teams import card_text
from tests.conftest import ROOT

ORACLES = ROOT / "tests" / "oracles"
INERT = dict.fromkeys(map(ord, "\u200b\u2060"))  # what the escaping may add that nobody sees


class Oracles:
    """One node process running tests/oracles/oracles.js (thread-safe)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("node") or "node", "oracles.js"],
            cwd=ORACLES,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lock = threading.Lock()

    def ask(self, platform: str, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write(json.dumps({"platform": platform, "text": text}) + "\n")
            self.proc.stdin.flush()
            answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer["error"]
        return answer

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def available() -> bool:
    """The parsers are installed; if not, a test skips, unless CI requires them."""
    if shutil.which("node") is not None and (ORACLES / "node_modules").is_dir():
        return True
    if os.environ.get("FEEDBOT_REQUIRE_ORACLES"):
        pytest.fail("the platforms' parsers are not installed (bash bootstrap.sh test installs them)")
    return False


_shared: Oracles | None = None
_shared_lock = threading.Lock()


def shared() -> Oracles:
    """One process for the test session (stopped when it ends)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Oracles()
            atexit.register(_shared.close)
        return _shared


def seen(text: str) -> str:
    return text.translate(INERT)


_BACKSLASHED = re.compile(r"\\([!-/:-@\[-`{-~])")
_BRACKETED = re.compile(r"<((?i:https?)://[^<> ]+)>")


def shown(kind: str, raw: str) -> str:
    """What a reader sees of ``raw``, a message body's text of ``kind``."""
    if kind in ("discord", "teams"):
        text = card_text(raw.encode()) if kind == "teams" and raw.startswith("{") else raw
        return seen(_BACKSLASHED.sub(r"\1", _BRACKETED.sub(r"\1", text)))
    if kind == "misskey":
        return seen(_BRACKETED.sub(r"\1", raw).replace("<plain>", "").replace("</plain>", ""))
    if kind == "googlechat":
        return seen(html.unescape(re.sub(r"<[^>]+>", "", raw.replace("<br>", "\n"))))
    if kind == "slack":
        return seen(raw.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    return seen(raw)
