"""feedbot: watches RSS/Atom feeds and posts a daily digest to chat webhooks.

The pipeline, one module per stage (see README "Design"):

    config → fetch → parse → poll.choose → extract → state
           → topics → render → payloads → deliver;  service schedules it, cli fronts it.
"""

from bot.tls import defer_aiohttp_defaults

__version__ = "0.1.0"

# Before anything imports aiohttp: its import-time TLS contexts, which
# feedbot never uses, load no CA store (bot/tls.py).
defer_aiohttp_defaults()
