"""The ``[[webhooks]]`` record: where a digest goes.  The kinds
(``bot/kinds/``) use it; it imports none of them (the reading of the
tables, which checks each kind's keys, is ``bot/config/reader.py``'s)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.secrets import Secret


@dataclass(frozen=True)
class Webhook:
    kind: str
    url: Secret
    name: str
    # The webhook's identity in the outbox, never derived from the URL: a
    # fixed or rotated URL keeps the pending digests.  "name:<name>" when
    # the config names it, else its kind and position ("discord#0").
    ident: str = ""
    secret: Secret | None = None  # HMAC key for json/text webhooks
    token: Secret | None = None  # the kind's credential: a bot or access token, an SMTP password
    # The kind's own keys (chat_id, room, to…), checked (bot/kinds/).
    options: Mapping[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def fingerprint(self) -> str:
        """Where the messages end up: two webhooks with the same are one destination twice."""
        where = "\0".join(f"{k}={v}" for k, v in sorted(self.options.items()) if k in ("chat_id", "to", "room"))
        token = self.token.fingerprint() if self.token is not None else ""
        return self.url.fingerprint(f"{self.kind}\0{where}\0{token}")
