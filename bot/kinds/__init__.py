"""Where digests go: one module per kind (as Miniflux keeps one package per
integration), each with its keys, its limit, its escaping and its request
shape (``bot/kinds/base.py`` says what a kind provides).  Splitting,
retries and the outbox are shared."""

from __future__ import annotations

from bot.kinds import (
    discord,
    email,
    googlechat,
    jsonhook,
    line,
    mastodon,
    matrix,
    misskey,
    slack,
    teams,
    telegram,
    text,
)
from bot.kinds.base import HttpRequest, Kind, Message, Option, Reply

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        discord.KIND,
        slack.KIND,
        jsonhook.KIND,
        text.KIND,
        telegram.KIND,
        line.KIND,
        email.KIND,
        misskey.KIND,
        mastodon.KIND,
        matrix.KIND,
        teams.KIND,
        googlechat.KIND,
    )
}

__all__ = ["KINDS", "HttpRequest", "Kind", "Message", "Option", "Reply"]
