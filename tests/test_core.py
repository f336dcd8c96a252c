"""Pure core: dedupe keys, the poll decider, topic matching, labels, payloads."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import DigestSettings, LabelRule, PollSettings, Topic
from bot.keys import Identity, Sharing, canonical_url, entry_keys
from bot.kinds import KINDS
from bot.kinds.discord import neutralise as neutralise_discord
from bot.kinds.discord import target_url
from bot.kinds.slack import escape as escape_slack
from bot.models import Block, Digest, Entry, Group, Item, Rendered
from bot.poll import choose
from bot.topics import build_digest, choose_label, fold, matches, topic_of

NOW = datetime(2025, 1, 21, 12, 0, tzinfo=UTC)

# -- keys -------------------------------------------------------------------


def test_canonical_url_drops_tracking_fragment_and_default_port() -> None:
    assert canonical_url("HTTPS://Example.ORG:443/a/b?utm_source=x&id=3&fbclid=y&gclid=z#frag") == (
        "https://example.org/a/b?id=3"
    )
    assert canonical_url("http://example.org:8080") == "http://example.org:8080/"


def _known(a: Identity, b: Identity, same_feed: bool = False) -> bool:
    """Would an entry with identity ``b`` be seen after ``a`` was recorded?"""
    recorded = set(a.keys) | ({a.alias} if a.alias and not same_feed else set())
    return bool(recorded & set(b.keys)) or (b.alias is not None and not same_feed and b.alias in recorded | set(a.keys))


def test_same_article_through_two_feeds_is_one_item() -> None:
    a = entry_keys("https://a/feed", None, "https://news.example/x?utm_medium=rss", "T", None)
    b = entry_keys("https://b/feed", "https://news.example/x", None, "Other title", None)
    c = entry_keys("https://c/feed", "RTRS-123", "https://news.example/x", "Third", None)
    assert _known(a, b) and _known(b, a)
    assert _known(a, c) and _known(c, a) and _known(b, c)


def test_guid_moving_between_http_and_https_is_the_same_entry() -> None:
    a = entry_keys("f", "http://example.org/post/1", None, "t", None)
    b = entry_keys("f", "https://example.org/post/1", None, "t", None)
    assert a == b


def test_opaque_guids_are_scoped_to_their_feed() -> None:
    assert entry_keys("https://a/feed", "42", None, "t", None) != entry_keys("https://b/feed", "42", None, "t", None)


def test_edited_title_or_date_keeps_identity() -> None:
    a = entry_keys("f", "tag:x,2025:1", "https://e/1", "Old title", "2025-01-01")
    b = entry_keys("f", "tag:x,2025:1", "https://e/1", "New title", "2025-01-02")
    assert a == b
    c = entry_keys("f", None, "https://e/1", "Old title", "2025-01-01")
    d = entry_keys("f", None, "https://e/1", "New title", "2025-01-02")
    assert _known(c, d, same_feed=True)


def test_entries_of_one_feed_sharing_a_link_stay_distinct() -> None:
    shared = Sharing(page_shared=True, link_shared=True)
    a = entry_keys("f", "1", "https://e/", "t1", None, shared)
    b = entry_keys("f", "2", "https://e/", "t2", None)  # later alone in the document
    assert not _known(a, b, same_feed=True)
    c = entry_keys("f", None, "https://e/", "t1", None, shared)
    d = entry_keys("f", None, "https://e/", "t2", None, shared)
    assert not _known(c, d, same_feed=True)


def test_a_guidless_entry_is_known_whatever_its_neighbours() -> None:
    """An entry first alone, then next to one sharing its link: not taken again."""
    alone = entry_keys("f", None, "http://e/", "A2", "2025-01-01")
    later = entry_keys("f", None, "http://e/", "A2", "2025-01-01", Sharing(page_shared=True, link_shared=True))
    assert _known(alone, later, same_feed=True)
    together = entry_keys("f", None, "http://e/d.html#b", "B", None, Sharing(page_shared=True))
    then_alone = entry_keys("f", None, "http://e/d.html#b", "B", None)
    assert _known(together, then_alone, same_feed=True)
    other = entry_keys("f", None, "http://e/d.html#c", "C", None, Sharing(page_shared=True))
    assert not _known(together, other, same_feed=True)


def test_repeated_guid_in_one_document_keeps_both_posts() -> None:
    a = entry_keys("f", "g1", None, "first", "2025-01-01")
    b = entry_keys("f", "g1", None, "second", "2025-01-02", Sharing(guid_repeated=True))
    assert not _known(a, b, same_feed=True)


def test_no_guid_no_link_falls_back_to_title_and_date() -> None:
    a = entry_keys("f", None, None, "t", "2025-01-01")
    assert a == entry_keys("f", None, None, "t", "2025-01-01")
    assert a != entry_keys("f", None, None, "t", "2025-01-02")


# -- choose -----------------------------------------------------------------


def _entry(n: int, age: timedelta | None) -> Entry:
    return Entry(keys=(bytes([n]) * 20,), title=f"t{n}", link=f"https://e/{n}", published=NOW - age if age else None)


def _titles(entries: tuple[Entry, ...]) -> list[str]:
    return [e.title for e in entries]


def test_first_poll_takes_the_window_and_marks_the_rest_seen() -> None:
    entries = [_entry(1, timedelta(hours=2)), _entry(2, timedelta(days=3)), _entry(3, None)]
    choice = choose(entries, set(), True, NOW, PollSettings(first_poll=timedelta(days=1)))
    assert _titles(choice.take) == ["t1"]
    assert _titles(choice.skip) == ["t2", "t3"]


def test_first_poll_all_and_none() -> None:
    entries = [_entry(1, timedelta(hours=2)), _entry(2, timedelta(days=3)), _entry(3, None)]
    everything = choose(entries, set(), True, NOW, PollSettings(first_poll=None, max_age=None))
    assert len(everything.take) == 3
    nothing = choose(entries, set(), True, NOW, PollSettings(first_poll=timedelta(0)))
    assert nothing.take == () and len(nothing.skip) == 3


def test_later_polls_take_new_entries_but_never_past_max_age() -> None:
    entries = [_entry(1, timedelta(days=2)), _entry(2, timedelta(days=8)), _entry(3, None)]
    choice = choose(entries, set(), False, NOW, PollSettings(max_age=timedelta(days=7)))
    assert _titles(choice.take) == ["t1", "t3"]
    assert _titles(choice.skip) == ["t2"]


def test_seen_entries_and_duplicates_in_one_document_are_skipped() -> None:
    entries = [_entry(1, timedelta(hours=1)), _entry(2, timedelta(hours=1)), _entry(2, timedelta(hours=1))]
    choice = choose(entries, {bytes([1]) * 20}, False, NOW, PollSettings())
    assert _titles(choice.take) == ["t2"]
    aliased = Entry((b"9" * 20,), "t9", "l", NOW, alias=bytes([1]) * 20)
    assert choose([aliased], {bytes([1]) * 20}, False, NOW, PollSettings()).take == ()


# -- topics -----------------------------------------------------------------


def _item(n: int, title: str, body: tuple[str, ...] = (), hours: int = 0) -> Item:
    return Item(n, "F", "u", title, f"https://e/{n}", NOW + timedelta(hours=hours), NOW, body)


def test_matching_is_nfkc_and_casefolded() -> None:
    assert matches((("usa",),), fold("ＵＳＡと日本"))
    assert matches((("ﾛｼｱ",),), fold("ロシア"))
    assert not matches((("中国",), ("ロシア",)), fold("中国だけ"))
    assert matches((("中国", "習近平"), ("ロシア",)), fold("習近平とロシア"))


def test_first_matching_topic_wins_and_exclude_rejects() -> None:
    topics = [
        Topic("米露", (("ロシア",), ("トランプ",)), exclude=("習近平",)),
        Topic("中露", (("ロシア",),)),
    ]
    assert topic_of(topics, fold("ロシアとトランプ")) == 0
    assert topic_of(topics, fold("ロシアとトランプと習近平")) == 1
    assert topic_of(topics, fold("天気")) is None


def test_label_is_the_rule_matched_by_most_items_ties_to_the_first() -> None:
    rules = [LabelRule("A", (("a",),)), LabelRule("B", (("b",),))]
    assert choose_label(rules, ["a b", "b"]) == "B"
    assert choose_label(rules, ["a", "b"]) == "A"
    assert choose_label(rules, ["c"]) is None  # no rule: the automatic label, or the date


def test_grouping_order_lead_fixed_label_and_fallback() -> None:
    topics = [Topic("X", (("x",),), label="固定"), Topic("Y", (("y",),))]
    items = [
        _item(1, "y news", hours=3),
        _item(2, "x news", hours=2),
        _item(3, "【随時更新】x live", hours=1),
        _item(4, "other", hours=0),
        _item(5, "y again", hours=-1),
    ]
    d = build_digest(
        items, date(2025, 1, 21), topics, (), DigestSettings(default_topic="ロシア", lead=("【随時更新】",))
    )
    assert [i.id for i in d.lead] == [3]
    assert [(g.tagline, [i.id for i in g.items]) for g in d.groups] == [
        ("#X(固定)", [2]),
        ("#Y(250121)", [5, 1]),
        ("#ロシア(250121)", [4]),
    ]


# -- payloads ---------------------------------------------------------------


def _rendered(lines: tuple[str, ...]) -> Rendered:
    item = Item(1, "F", "u", "t", "l", NOW, NOW, ())
    return Rendered(Digest("2025-01-21", (), (Group("T", "L", (item,)),)), (Block(lines, 1, "#T(L)"),))


def test_discord_payload_never_pings() -> None:
    rendered = _rendered(("@everyone look <@123> <@&456> <#789> @here", "— F January 21, 2025"))
    (msg,) = KINDS["discord"].build(rendered, 7, ZoneInfo("UTC"))
    payload = json.loads(msg.body)
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["content"].startswith("\\@everyone look \\<@123\\> \\<@&456\\> \\<#789\\> \\@here")
    assert neutralise_discord("(@nhk_news)") == "(@nhk\\_news)"  # a handle is no ping; its _ no emphasis


def test_slack_payload_escapes_control_sequences() -> None:
    rendered = _rendered(("<!channel> & <@U123> <https://evil|click>", "— F"))
    (msg,) = KINDS["slack"].build(rendered, 7, ZoneInfo("UTC"))
    text = json.loads(msg.body)["text"]
    assert "<" not in text and ">" not in text
    assert text.startswith("&lt;!channel&gt; &amp; &lt;@U123&gt;")
    assert json.loads(msg.body)["unfurl_links"] is False
    assert escape_slack("a&b") == "a&amp;b"


def test_json_payload_carries_the_structured_digest() -> None:
    rendered = _rendered(("head", "— F January 21, 2025", "body"))
    (msg,) = KINDS["json"].build(rendered, 7, ZoneInfo("Asia/Tokyo"))
    data = json.loads(msg.body)
    assert data["digest_id"] == 7 and data["date"] == "2025-01-21"
    assert data["text"] == "head\n— F January 21, 2025\nbody\n#T(L)"
    group = data["groups"][0]
    assert (group["tag"], group["label"]) == ("T", "L")
    item = group["items"][0]
    assert item["headline"] == "head" and item["body"] == ["body"] and item["link"] == "l"


def test_text_payload_is_plain_utf8() -> None:
    (msg,) = KINDS["text"].build(_rendered(("ロシア", "— F")), 1, ZoneInfo("UTC"))
    assert msg.content_type == "text/plain; charset=utf-8"
    assert msg.body.decode("utf-8") == "ロシア\n— F\n#T(L)"


def test_discord_url_waits_for_acceptance() -> None:
    assert target_url("https://d/api/webhooks/1/x") == "https://d/api/webhooks/1/x?wait=true"
    assert target_url("https://d/x?thread_id=3") == "https://d/x?thread_id=3&wait=true"


def test_feed_filter_on_title_and_feed_text() -> None:
    from bot.config import Feed
    from bot.poll import wanted

    feed = Feed("F", "u", include=(("ロシア", "ウクライナ"),), exclude=("天気",))
    ok = Entry((b"1" * 20,), "ロシア外相が会見", "l", NOW)
    via_text = Entry((b"2" * 20,), "外相会見", "l", NOW, content=("ウクライナ情勢について",))
    other = Entry((b"3" * 20,), "国内の話題", "l", NOW)
    blocked = Entry((b"4" * 20,), "ロシアの天気", "l", NOW)
    assert [wanted(feed, e) for e in (ok, via_text, other, blocked)] == [True, True, False, False]
    choice = choose([ok, other], set(), False, NOW, PollSettings(), lambda e: wanted(feed, e))
    assert choice.take == (ok,) and choice.skip == (other,)
    assert wanted(Feed("G", "u"), other)


def test_public_addresses() -> None:
    from bot.guard import Policy, is_public

    for private in (
        "127.0.0.1",
        "10.0.0.5",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "0.0.0.0",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "not-an-ip",
        # IPv6 forms that carry an IPv4 address are judged as that address.
        "::7f00:1",  # IPv4-compatible ::127.0.0.1
        "::ffff:0:7f00:1",  # SIIT-translated
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address 169.254.169.254
        "64:ff9b:1::1",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
    ):
        assert not is_public(private), private
    for public in ("8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"):
        assert is_public(public), public
    policy = Policy.for_feed("http://intranet.local:8080/feed.xml")
    assert policy.allows("intranet.local", 8080, "10.0.0.5", own_origin=True)
    assert not policy.allows("intranet.local", 8080, "10.0.0.5", own_origin=False)  # the pooled client never
    assert not policy.allows("intranet.local", 9090, "10.0.0.5", own_origin=True)  # another port: not the origin
    assert not policy.allows("evil.example", 8080, "10.0.0.5", own_origin=True)
    assert Policy(allow_private=True).allows("evil.example", 80, "127.0.0.1", own_origin=False)


def test_feed_backoff_and_server_hints() -> None:
    from bot import health

    m15 = timedelta(minutes=15)
    assert [health.after_failure(m15, n, None) for n in (1, 2, 3)] == [m15, 2 * m15, 4 * m15]
    assert health.after_failure(m15, 30, None) == timedelta(hours=6)  # capped, never off
    assert health.after_failure(m15, 1, 3600) == timedelta(hours=1)  # Retry-After asks for longer
    assert health.after_failure(m15, 1, 10 * 86400) == timedelta(days=1)  # a server typo is capped
    assert health.after_success(m15, {"Cache-Control": "public, max-age=3600"}, None) == timedelta(hours=1)
    assert health.after_success(m15, {"cache-control": "max-age=60"}, None) is None  # shorter: our interval
    assert health.after_success(m15, {}, 120) == timedelta(hours=2)  # RSS <ttl> in minutes
    assert health.after_success(m15, {}, None) is None
    day = timedelta(days=1)
    assert not health.should_warn(NOW, NOW - timedelta(hours=23), None)
    assert health.should_warn(NOW, NOW - day, None)
    assert not health.should_warn(NOW, NOW - 3 * day, NOW - timedelta(hours=2))
    assert health.should_warn(NOW, NOW - 3 * day, NOW - day)
