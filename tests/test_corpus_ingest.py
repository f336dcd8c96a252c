"""The feedparser project's corpus (2,107 files) through the whole ingest path.

Every file is served over HTTP from a loopback server, with the ``Header:``
lines its comment gives, and polled as a feed: fetch, parse, normalise,
dedupe, store; then all the items are rendered into one digest and split
for Discord.  Every file must end as items, a feed with no entries, or a
recorded per-feed error; no exception may escape.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import date
from pathlib import Path

from bot.compose import compose
from bot.config import load_config
from bot.fetch import make_client
from bot.kinds import KINDS
from bot.loopback import Reply, Request, Server
from bot.poll import Poller
from bot.state import open_store
from tests.conftest import Clock, write_toml

_HEADER = re.compile(r"^Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.M)


def comment_headers(data: bytes) -> dict[str, str]:
    """The ``Header:`` lines of a corpus file's leading comment."""
    for codec in ("utf-8", "utf-16", "utf-32"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if "Description:" in text or "Header:" in text:
            head = text[: text.find("-->")] if "-->" in text else text[:2000]
            return {k: v for k, v in _HEADER.findall(head)}
    return {}


def test_every_corpus_file_is_handled(corpus: Path, tmp_path: Path, clock: Clock) -> None:
    files = sorted(p for p in (corpus / "feedparser").rglob("*") if p.is_file())
    assert len(files) >= 2107
    served = {f"/f/{n}": path for n, path in enumerate(files)}

    def handler(req: Request) -> Reply:
        path = served[req.path]
        data = path.read_bytes()
        headers = {"Content-Type": "application/xml"}
        headers.update(comment_headers(data))
        headers.pop("Content-Length", None)
        return Reply(200, headers, data)

    with Server(handler) as server:
        text = '[poll]\nfirst_poll = "all"\nmax_age = "none"\nconcurrency = 16\nhost_spacing = "0s"\n'
        text += "".join(
            f'[[feeds]]\nname = "c{n}"\nurl = "{server.base}{p}"\nbody = "feed"\n' for n, p in enumerate(served)
        )
        config = load_config(write_toml(tmp_path, text), {})

        async def ingest() -> list[str]:
            store = open_store(config)
            try:
                async with make_client(config.poll) as client, Poller(config, store, client, clock) as poller:
                    outcomes = await poller.poll_all(config.feeds)
                return [o.status if o.status != "ok" or o.new else "ok-empty" for o in outcomes]
            finally:
                store.close()

        statuses = asyncio.run(ingest())
    counts = Counter(statuses)
    print(
        f"\nfeedparser corpus: {len(files)} files: {counts['ok']} with items, {counts['ok-empty']} valid without "
        f"entries, {counts['error']} recorded errors, 0 escaped exceptions"
    )
    assert set(counts) <= {"ok", "ok-empty", "error"}
    assert sum(counts.values()) == len(files)
    assert "unexpected failure" not in str(statuses)

    store = open_store(config)
    try:
        unexpected = [
            (s.name, s.last_error)
            for s in store.all_feed_states().values()
            if s.last_error and "unexpected failure" in s.last_error
        ]
        assert not unexpected, unexpected[:5]
        items = store.unbound_items()
    finally:
        store.close()
    rendered = compose(config, items, date(2025, 1, 21))
    assert all("\n" not in line for b in rendered.blocks for line in b.all_lines)
    messages = KINDS["discord"].build(rendered, 1, config.timezone)
    assert messages and len(items) > 1000
