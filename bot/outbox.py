"""``feedbot outbox``: the messages waiting for an operator.

A message its platform refused for good (too long, invalid: a 400, 413 or
422) is set aside by the delivery (``bot.deliver``) so that the webhook's
later messages go on; it stays in the state until someone decides:
``retry`` puts it back in its queue (after the platform's limit was raised,
say), ``drop`` gives it up (its digest's items are then settled for that
webhook).  A held queue (a refused address or token) is shown here too,
with its reason; ``drop`` on its first message is the way past one message
that should never be sent.

A message is named ``DIGEST-SEQ@WEBHOOK`` (``12-0@mastodon``): the digest's
number, the message's number in it, the webhook's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.state.records import message_ref
from bot.text import shown

if TYPE_CHECKING:
    from bot.config import Config
    from bot.state import Store

_REF = re.compile(r"^(\d+)-(\d+)@(.+)$")


@dataclass(frozen=True)
class Ref:
    digest_id: int
    seq: int
    webhook: str  # as written: a name, or ``kind#n``


def parse_ref(text: str) -> Ref:
    m = _REF.match(text.strip())
    if m is None:
        raise UsageError(f"{shown(text, 80)!r} names no message: write DIGEST-SEQ@WEBHOOK, as `feedbot outbox` lists")
    return Ref(int(m[1]), int(m[2]), m[3])


def idents(ref: Ref) -> tuple[str, ...]:
    """The outbox's webhook ids the name may stand for."""
    return (f"name:{ref.webhook}", ref.webhook)


def listing(config: Config, store: Store, when: Callable[[datetime | None], str]) -> list[str]:
    """What ``feedbot outbox`` prints: per webhook, its queue and its
    set-aside messages."""
    names = {w.ident: w.name for w in config.webhooks}
    aside = store.set_aside_messages()
    lines = []
    for b in store.backlog():
        who = names.get(b.webhook, f"{b.webhook.removeprefix('name:')} (no longer configured)")
        head = f"{who}: {b.pending} message(s) in the queue"
        if b.pending and b.last_error:
            head += f", held or failing since {when(b.last_attempt_at)}: {shown(b.last_error, 300)}"
            if b.next_attempt_at:
                head += f"; next try {when(b.next_attempt_at)}"
        lines.append(head)
        for m in (m for m in aside if m.webhook == b.webhook):
            lines.append(
                f"  set aside {m.ref}: digest of {when(m.built_at)}, {m.size} bytes,"
                f" refused {when(m.at)}: {shown(m.error, 300)}"
            )
    if not lines:
        lines.append("outbox: nothing waiting")
    elif aside:
        lines.append("act on a set-aside message: feedbot outbox retry REF (back in its queue) | drop REF (give it up)")
    return lines


def act(store: Store, action: str, refs: Sequence[str], every: bool) -> tuple[list[str], bool]:
    """``retry`` or ``drop`` the named messages (or, ``every``, each one set
    aside): what was done, a line each, and whether every one named was
    there to act on (the others are done all the same)."""
    if every:
        targets = [Ref(m.digest_id, m.seq, m.webhook) for m in store.set_aside_messages()]
    else:
        targets = [parse_ref(r) for r in refs]
    do = store.requeue if action == "retry" else store.drop_message
    lines, missing = [], []
    for ref in targets:
        label = message_ref(ref.digest_id, ref.seq, ref.webhook)
        if any(do(ref.digest_id, ident, ref.seq) for ident in idents(ref)):
            lines.append(f"{label}: {'back in its queue' if action == 'retry' else 'dropped'}")
        else:
            missing.append(label)
    if missing:
        what = "set aside" if action == "retry" else "waiting (in a queue or set aside)"
        lines.append(f"not {what}: {', '.join(missing)}")
    return lines or ["nothing set aside"], not missing
