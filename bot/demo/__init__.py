"""``feedbot demo``: an offline tour of the whole pipeline on loopback.

Serves the bundled sample site (``site/``: feeds and article pages
equivalent to the reference digest) and a Discord-style webhook receiver on
127.0.0.1, writes a config for them into a temporary folder, polls, builds
the digest for 2025-01-21 and shows what the webhook received.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from bot.loopback import Receiver, Server, SiteHandler

DEMO_DIR = Path(__file__).parent
SITE = DEMO_DIR / "site"
CONFIG_TEMPLATE = DEMO_DIR / "config.toml"
DEMO_DATE = date(2025, 1, 21)


def write_config(folder: Path, base: str, webhook: str | None) -> Path:
    """The demo config for servers at ``base`` (and ``webhook``, or none)."""
    text = CONFIG_TEMPLATE.read_text(encoding="utf-8").replace("{{BASE}}", base)
    text = text[: text.index("[[webhooks]]")] if webhook is None else text.replace("{{WEBHOOK}}", webhook)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(out: TextIO) -> int:
    from bot.config import load_config
    from bot.deliver import Deliverer
    from bot.digest import Digester
    from bot.fetch import make_client
    from bot.poll import Poller
    from bot.state import open_store

    site = SiteHandler(SITE)
    receiver = Receiver()
    with Server(site) as feeds, Server(receiver) as hook, tempfile.TemporaryDirectory(prefix="feedbot-demo-") as tmp:
        site.base = feeds.base
        config = load_config(write_config(Path(tmp), feeds.base, hook.base + "/api/webhooks/demo/token"))
        out.write(f"feed server: {feeds.base}   webhook receiver: {hook.base}   state: {config.state_dir}\n\n")

        def now() -> datetime:
            return datetime.now(UTC)

        async def tour() -> int:
            store = open_store(config)
            try:
                async with make_client(config.poll) as client:
                    async with Poller(config, store, client, now) as poller:
                        for o in await poller.poll_all(config.enabled_feeds, force=True):
                            out.write(f"poll: {o.line()}\n")
                    digester = Digester(config, store, Deliverer.configured(config, client, store, now), now, out)
                    result = await digester.run(DEMO_DATE)
                    again = await digester.run(DEMO_DATE)
            finally:
                store.close()
            messages = [r.json()["content"] for r in receiver.accepted]
            out.write(f"\ndigest: {result.items} items, sent as {len(messages)} Discord message(s)\n")
            for n, text in enumerate(messages, 1):
                out.write(f"\n--- message {n} ({len(text)} characters) ---\n{text}\n")
            out.write(f"\na second digest right away sends nothing: {again.items} new items.\n")
            return 0 if result.ok else 1

        return asyncio.run(tour())
