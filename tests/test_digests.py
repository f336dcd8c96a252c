"""Several digests from one installation (issue 26), through the CLI and the
service: each digest its own feeds, schedule and destinations; a feed two
digests take is polled once and its items reach each digest once; a digest
added later starts with its first poll of each feed (``poll.first_poll``),
not the back catalogue; a removed digest's items stay for it."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config import load_config
from bot.loopback import Receiver, Server
from bot.pgserver import free_port
from bot.state import open_store
from tests.conftest import DynamicFeeds, FeedItem, run_cli, write_toml
from tests.test_instances import _scrape_until
from tests.test_service import NotifyListener, spawn_run

TOKYO = ZoneInfo("Asia/Tokyo")


def _config(feeds: DynamicFeeds, hooks: dict[str, str], digests: str, schedule: str = '["07:00"]') -> str:
    text = f'timezone = "Asia/Tokyo"\n[schedule]\ndigest_at = {schedule}\npoll_every = "1h"\n'
    text += '[digest]\nlabels = "date"\n'
    tags = {"nhk": '["ukraine"]', "reuters": '["ukraine", "mideast"]', "bbc": "[]"}
    names = {"nhk": "NHK", "reuters": "ロイター", "bbc": "BBC"}
    for key, name in names.items():
        text += f'[[feeds]]\nname = "{name}"\nurl = "{feeds.feed_url(key)}"\nbody = "feed"\ntags = {tags[key]}\n'
    for name, base in hooks.items():
        text += f'[[webhooks]]\nkind = "json"\nname = "{name}"\nurl = "{base}/hook"\n'
    return text + digests


TWO = """
[[digests]]
name = "ukraine"
tags = ["ukraine"]
webhooks = ["tg-ukraine"]

[[digests]]
name = "mideast"
feeds = ["ロイター"]
webhooks = ["mideast-desk", "mail-en"]
digest_at = ["07:00", "19:00"]
default_topic = "中東"
"""


def _items(rec: Receiver) -> list[str]:
    """Every item title the receiver accepted, in order (a repeat is a defect)."""
    return [i["title"] for req in rec.accepted for g in json.loads(req.body)["groups"] for i in g["items"]]


def _groups(rec: Receiver) -> list[str]:
    return [g["tag"] for req in rec.accepted for g in json.loads(req.body)["groups"]]


def _fill(feeds: DynamicFeeds, now: datetime) -> None:
    feeds.feeds["nhk"] = [
        FeedItem(f"n{n}", f"NHK記事{n}", f"https://nhk.example/{n}", now - timedelta(hours=n + 1)) for n in range(2)
    ]
    feeds.feeds["reuters"] = [
        FeedItem(f"r{n}", f"ロイター記事{n}", f"https://reuters.example/{n}", now - timedelta(hours=n + 1))
        for n in range(2)
    ]
    feeds.feeds["bbc"] = [FeedItem("b0", "BBC item", "https://bbc.example/0", now - timedelta(hours=1))]


def _cli(path: Path, *args: str, code: int = 0) -> str:
    r = run_cli("--config", str(path), *args)
    assert r.returncode == code, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_two_digests_sharing_a_feed_each_get_its_items_once_at_their_own_destinations(
    tmp_path: Path, feeds: DynamicFeeds
) -> None:
    _fill(feeds, datetime.now(UTC))
    recs = {name: Receiver() for name in ("tg-ukraine", "mideast-desk", "mail-en")}
    with Server(recs["tg-ukraine"]) as a, Server(recs["mideast-desk"]) as b, Server(recs["mail-en"]) as c:
        path = write_toml(
            tmp_path, _config(feeds, {"tg-ukraine": a.base, "mideast-desk": b.base, "mail-en": c.base}, TWO)
        )
        checked = _cli(path, "check")
        assert "digest ukraine: at 07:00; to tg-ukraine; 2 feed(s): NHK, ロイター" in checked
        assert "digest mideast: at 07:00, 19:00; to mideast-desk, mail-en; 1 feed(s): ロイター" in checked
        assert "BBC" in checked and "no digest" in checked  # a feed polled for no digest is a warning

        _cli(path, "poll")
        assert [r.path for r in feeds.requests].count("/feed/reuters") == 1  # one poll for two digests
        pending = _cli(path, "pending", "--name", "mideast")
        assert "ロイター記事0" in pending and "NHK記事0" not in pending
        assert "no such digest" in _cli(path, "pending", "--name", "mideest", code=2)
        listed = _cli(path, "list")
        assert "[ukraine, mideast]" in listed and "[no digest]" in listed

        _cli(path, "digest", "--name", "ukraine")
        assert sorted(_items(recs["tg-ukraine"])) == ["NHK記事0", "NHK記事1", "ロイター記事0", "ロイター記事1"]
        assert not recs["mideast-desk"].accepted and not recs["mail-en"].accepted

        out = _cli(path, "digest")  # every digest: only mideast has items left
        assert "digest ukraine: no new items" in out
        for name in ("mideast-desk", "mail-en"):
            assert sorted(_items(recs[name])) == ["ロイター記事0", "ロイター記事1"]
            assert all(tag.startswith("中東") for tag in _groups(recs[name]))  # its own default_topic
        assert all(tag.startswith("ニュース") for tag in _groups(recs["tg-ukraine"]))

        feeds.feeds["reuters"].append(FeedItem("r9", "ロイター新記事", "https://reuters.example/9", datetime.now(UTC)))
        _cli(path, "poll")
        _cli(path, "digest")
        _cli(path, "digest")  # nothing more anywhere
        for name, expected in {
            "tg-ukraine": ["NHK記事0", "NHK記事1", "ロイター新記事", "ロイター記事0", "ロイター記事1"],
            "mideast-desk": ["ロイター新記事", "ロイター記事0", "ロイター記事1"],
            "mail-en": ["ロイター新記事", "ロイター記事0", "ロイター記事1"],
        }.items():
            got = _items(recs[name])
            assert sorted(got) == expected and max(Counter(got).values()) == 1, (name, got)
        assert "BBC item" not in _items(recs["tg-ukraine"])

        status = _cli(path, "status")
        assert "digest ukraine: 2 feed(s), 0 item(s) waiting" in status
        assert "digest mideast: 1 feed(s), 0 item(s) waiting" in status
        assert status.count("digests: last #") == 2


def test_a_digest_added_later_starts_with_its_first_poll_and_a_removed_one_keeps_its_items(
    tmp_path: Path, feeds: DynamicFeeds
) -> None:
    now = datetime.now(UTC)
    _fill(feeds, now)
    feeds.feeds["nhk"].append(FeedItem("old", "NHK古い記事", "https://nhk.example/old", now - timedelta(days=3)))
    recs = {name: Receiver() for name in ("tg-ukraine", "mideast-desk", "mail-en")}
    with Server(recs["tg-ukraine"]) as a, Server(recs["mideast-desk"]) as b, Server(recs["mail-en"]) as c:
        hooks = {"tg-ukraine": a.base, "mideast-desk": b.base, "mail-en": c.base}
        path = write_toml(tmp_path, _config(feeds, hooks, TWO))
        _cli(path, "poll")
        _cli(path, "digest")
        assert "NHK古い記事" not in _items(recs["tg-ukraine"])  # first_poll: one day
        # A third digest: NHK in English for the mail desk.  NHK was polled
        # long ago for the others; this digest's first poll of it takes the
        # first_poll window (the last day), not the three-day-old entry.
        third = TWO + '\n[[digests]]\nname = "en"\nfeeds = ["NHK"]\nwebhooks = ["mail-en"]\n'
        path.write_text(_config(feeds, hooks, third), encoding="utf-8")
        feeds.feeds["nhk"].append(FeedItem("n9", "NHK新記事", "https://nhk.example/9", datetime.now(UTC)))
        _cli(path, "poll")
        _cli(path, "digest", "--name", "en")
        assert sorted(_items(recs["mail-en"])) == [
            "NHK新記事",
            "NHK記事0",
            "NHK記事1",
            "ロイター記事0",
            "ロイター記事1",
        ]
        # The others get only what is new to them.
        _cli(path, "digest", "--name", "ukraine")
        assert _items(recs["tg-ukraine"]).count("NHK新記事") == 1 and _items(recs["tg-ukraine"]).count("NHK記事0") == 1

        # Removing mideast leaves its pending items; ukraine goes on untouched.
        feeds.feeds["reuters"].append(FeedItem("r9", "ロイター新記事", "https://reuters.example/9", datetime.now(UTC)))
        _cli(path, "poll")
        path.write_text(_config(feeds, hooks, TWO.split('[[digests]]\nname = "mideast"')[0]), encoding="utf-8")
        _cli(path, "digest")
        assert _items(recs["tg-ukraine"]).count("ロイター新記事") == 1
        status = _cli(path, "status")
        assert "digest mideast (no longer configured): 1 item(s) kept" in status
        before = len(recs["mideast-desk"].accepted)
        path.write_text(_config(feeds, hooks, third), encoding="utf-8")  # it comes back: its item goes out
        _cli(path, "digest", "--name", "mideast")
        assert len(recs["mideast-desk"].accepted) == before + 1
        assert _items(recs["mideast-desk"])[-1:] == ["ロイター新記事"]


def _slot_times(now: datetime, back: timedelta) -> str:
    at = (now - back).astimezone(TOKYO)
    return f'["{time(at.hour, at.minute).isoformat("minutes")}"]'


def test_the_service_keeps_each_digests_schedule_and_picks_up_a_new_digest_live(
    tmp_path: Path, feeds: DynamicFeeds
) -> None:
    """At start, a digest whose slot passed while the service was down is
    caught up, and one whose last run came after its slot is not; a digest
    added by an edit is taken in without a restart."""
    now = datetime.now(UTC)
    _fill(feeds, now)
    recs = {name: Receiver() for name in ("tg-ukraine", "mideast-desk", "mail-en")}
    with Server(recs["tg-ukraine"]) as a, Server(recs["mideast-desk"]) as b, Server(recs["mail-en"]) as c:
        hooks = {"tg-ukraine": a.base, "mideast-desk": b.base, "mail-en": c.base}
        two = TWO.replace('digest_at = ["07:00", "19:00"]', f"digest_at = {_slot_times(now, timedelta(hours=2))}")
        port = free_port()
        # A broken feed (of no digest) too: the metrics helper waits for its failure.
        two = (
            f'[metrics]\nlisten = "127.0.0.1:{port}"\n[[feeds]]\nname = "broken"\nurl = "{feeds.base}/gone.xml"\n' + two
        )
        path = write_toml(tmp_path, _config(feeds, hooks, two, schedule=_slot_times(now, timedelta(hours=1))))
        _cli(path, "poll", code=1)  # the broken feed
        store = open_store(load_config(path))
        store.set_meta("last_digest_at:ukraine", (now - timedelta(hours=3)).isoformat())  # before its slot: missed
        store.set_meta("last_digest_at:mideast", (now - timedelta(minutes=90)).isoformat())  # after its slot
        store.close()
        listener = NotifyListener(tmp_path / "notify.sock")
        proc = spawn_run(path, NOTIFY_SOCKET=listener.path)
        try:
            listener.next("READY")
            assert recs["tg-ukraine"].wait_for(1), "the missed ukraine digest was not caught up"
            built = ("feedbot_digests_built_total", (("digest", "ukraine"),))
            waiting = "feedbot_digest_items_waiting"
            # The gauges follow at the next heartbeat (every 10 s).
            samples = _scrape_until(
                port, lambda s: s.get(built, 0) >= 1 and s.get((waiting, (("digest", "ukraine"),))) == 0
            )
            assert samples[(waiting, (("digest", "mideast"),))] == 2  # ロイター's two wait for 19:00
            listener.next("STATUS")
            third = two + '\n[[digests]]\nname = "en"\nfeeds = ["NHK"]\nwebhooks = ["mail-en"]\n'
            path.write_text(
                _config(feeds, hooks, third, schedule=_slot_times(now, timedelta(hours=1))), encoding="utf-8"
            )
            listener.next("RELOADING")
            listener.next("READY")
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            listener.sock.close()
    assert proc.returncode == 0, err
    assert "catching up a digest (ukraine) missed while the service was down" in err
    assert "(mideast) missed" not in err and not recs["mideast-desk"].accepted
    assert sorted(_items(recs["tg-ukraine"])) == ["NHK記事0", "NHK記事1", "ロイター記事0", "ロイター記事1"]
    assert "config reloaded (the file changed): added digest en" in err
