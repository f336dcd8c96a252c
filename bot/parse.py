"""Feed documents to entries (pure): bytes and headers in, ParsedFeed out.

feedparser never fetches here: it gets the bytes and the response headers
(for the charset).  Its HTML sanitiser and relative-URI resolver are off
(about 40% of its time, PERF_NOTES): every title and body is reduced to
plain text anyway, and links are resolved against the feed URL below.

A document feedparser could make nothing of raises ParseError naming the
feed; a survivable problem (``bozo`` with entries) is returned as a warning.
"""

from __future__ import annotations

import calendar
import re
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import fastfeedparser  # here, not in _fast: an in-process parse (parse_feed_here) imports nothing under its timer

from bot.errors import Declined, ParseError
from bot.health import bounded_int
from bot.keys import Sharing, canonical_url, entry_keys, is_url
from bot.markup import (
    bounded_markup,
    charset_from_content_type,
    html_paragraphs,
    looks_like_markup,
    normalise_codec,
    plain,
)
from bot.models import Entry, ParsedFeed
from bot.secrets import without_credentials
from bot.text import collapse, no_surrogates, shown

# feedparser's notes that are not problems: a feed served as text/plain, or
# a charset header that disagrees with the document (it then uses the right
# one).
_BENIGN = frozenset({"NonXMLContentType", "CharacterEncodingOverride"})
# Characters of one entry's text read at most: a feed may be 10 MB, and one
# entry of all of it would cost the worker its time limit, and the feed.
ENTRY_TEXT_MAX = 1_000_000


_XML_ENCODING = re.compile(rb"""^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.I)
# Declared Japanese charsets whose real codec is a superset Python does not
# pick by the name: Windows-written "Shift_JIS" is CP932 (①, 髙, ～).
_SUPERSETS = frozenset({"cp932", "euc_jis_2004"})


def transcode(data: bytes, headers: dict[str, str], detect: bool = True) -> tuple[bytes, str | None]:
    """Give feedparser UTF-8 where its own decoding would go wrong.

    * A declared Shift_JIS/EUC-JP is decoded with the superset that really
      decodes it (CP932, EUC-JIS-2004): feedparser would give up on the first
      CP932-only character (①, 髙, ～) and read the whole feed as Latin-2.
    * A declared (or, for XML, implied UTF-8) charset that does not decode
      cleanly is not trusted: the encoding is detected instead; but UTF-8
      with a few broken bytes stays UTF-8, the broken bytes replaced (and
      a warning returned), rather than the whole feed read in a wrong codec.

    Documents with a BOM or NUL bytes (UTF-16/32) are left to feedparser.
    ``headers`` is updated to match the returned bytes.
    """
    if data[:4].startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:200]:
        return data, None
    warning = None
    m = _XML_ENCODING.match(data[:500])
    declared = charset_from_content_type(headers.get("content-type")) or (m.group(2).decode("ascii") if m else None)
    codec = normalise_codec(declared) if declared else "utf-8"
    try:
        text: str | None = data.decode(codec or "utf-8")
    except (UnicodeDecodeError, LookupError):
        text = _mostly_utf8(data) if (codec or "utf-8") == "utf-8" else None
        if text is not None:
            warning = "invalid UTF-8 bytes replaced"
        elif not detect:
            raise Declined("needs charset detection") from None
        else:
            text = _detect(data)
    else:
        if codec not in _SUPERSETS:
            return data, None  # feedparser decodes it as declared, correctly
    if text is None:
        return data, None
    if m:  # the declaration is at the start: only the head is searched
        head = re.sub(r"""(encoding\s*=\s*["'])[^"']+""", r"\1utf-8", text[:1000], count=1)
        text = head + text[1000:]
    if "content-type" in headers:
        headers["content-type"] = re.sub(r"charset\s*=\s*[^;\s]+", "charset=utf-8", headers["content-type"], flags=re.I)
    return text.encode("utf-8"), warning


# A numeric character reference to no character: a lone surrogate (&#xD800;),
# NUL, or past U+10FFFF.  Bounded digits keep the search linear.
_REFERENCE = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _repair_references(data: bytes) -> tuple[bytes, str | None]:
    """References to no character become U+FFFD: one such entity made the
    parser fail the whole feed (a surrogate cannot be encoded)."""
    if b"&#" not in data:
        return data, None
    count = 0

    def fix(m: re.Match[bytes]) -> bytes:
        nonlocal count
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            count += 1
            return b"&#xFFFD;"
        return m.group(0)

    fixed = _REFERENCE.sub(fix, data)
    return fixed, (f"{count} invalid character reference{'s' if count != 1 else ''} replaced" if count else None)


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few broken bytes (at most 1 in 100 characters, or 4), repaired.

    Shift_JIS or EUC-JP read as UTF-8 breaks at nearly every Japanese
    character, far above that, and goes to detection instead.
    """
    text = data.decode("utf-8", errors="replace")
    return text if text.count("\ufffd") <= max(4, len(text) // 100) else None


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    codec = normalise_codec(best.encoding) if best is not None and best.encoding else None
    for candidate in (codec, "cp932", "euc_jis_2004"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return None


def parse_feed_here(data: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """``parse_feed`` in the service's own process (``Workers.run``'s
    ``inline``): the fast path only.  A document that needs feedparser or
    charset detection raises ``Declined``, and a worker parses it: their
    imports (and feedparser's cost, hundreds of times lxml's) stay there."""
    return parse_feed(data, url, headers, slow=False)


def parse_feed(
    data: bytes, url: str, headers: Mapping[str, str] | None = None, fast: bool = True, slow: bool = True
) -> ParsedFeed:
    """Parse a feed document fetched from ``url``.

    ``fast``: try fastfeedparser first (lxml; some 30 times faster, see
    BENCHMARKS.md); a document it rejects, or one whose form it does not
    read as feedparser does, goes to feedparser, the most forgiving parser.
    ``slow=False``: never feedparser nor charset detection (``Declined``).
    """
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    data, repaired = transcode(data, response_headers, detect=slow)
    data, references = _repair_references(data)
    repaired = "; ".join(w for w in (repaired, references) if w) or None
    response_headers.setdefault("content-location", url)
    parsed = _json_feed(data, url) if data.lstrip()[:1] == b"{" else None
    if parsed is None and fast:
        parsed = _fast(data)
    if parsed is None:
        if not slow:
            raise Declined("needs feedparser")
        parsed = _slow(data, response_headers, url)
    raw_entries, channel, warning = parsed
    warning = "; ".join(w for w in (repaired, warning) if w) or None

    links = [_link(e, url) for e in raw_entries]
    # Each link's two canonical forms, computed once: they are most of the
    # cost of a long feed after parsing.
    page_keys = [canonical_url(x, False) if x else "" for x in links]
    exact_keys = [canonical_url(x, True) if x else "" for x in links]
    pages = Counter(k for k in page_keys if k)
    exact = Counter(k for k in exact_keys if k)
    guids: set[str] = set()
    entries: list[Entry] = []
    skipped: list[str] = []
    textless: list[str] = []
    for raw, link, page_key, exact_key in zip(raw_entries, links, page_keys, exact_keys, strict=True):
        guid = str(raw.get("id") or "").strip()
        sharing = (
            Sharing(guid_repeated=guid in guids, page_shared=pages[page_key] > 1, link_shared=exact[exact_key] > 1)
            if link
            else Sharing(guid_repeated=guid in guids)
        )
        guids.add(guid)
        try:
            entry, problem = _entry(raw, url, link, sharing)
        except (ValueError, TypeError, UnicodeError, LookupError, OverflowError, RecursionError) as exc:
            # One entry nobody could read costs that entry, not the feed.
            skipped.append(_why(exc))
            continue
        entries.append(entry)
        if problem is not None:
            textless.append(f"{shown(entry.title, 60)!r}: {problem}")
    if skipped:
        note = f"{len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} skipped ({skipped[0]})"
        warning = "; ".join(w for w in (warning, note) if w)
    if textless:
        count = len(textless)
        entries_ = f"{count} entr{'y' if count == 1 else 'ies'}"
        note = f"the text of {entries_} could not be read, the title stands alone ({textless[0]})"
        warning = "; ".join(w for w in (warning, note) if w)
    title = plain(no_surrogates(str(channel.get("title", ""))))
    ttl = str(channel.get("ttl", "")).strip()
    minutes = bounded_int(ttl) if ttl.isascii() and ttl.isdigit() else None
    return ParsedFeed(title=title, entries=tuple(entries), warning=warning, ttl=minutes)


Parsed = tuple[list[Any], Mapping[str, Any], str | None]  # entries, channel, warning


def _json_feed(data: bytes, url: str) -> Parsed | None:
    """JSON Feed 1.0/1.1 (jsonfeed.org), which feedparser 6.0 does not read:
    its items as the same raw entries the XML parsers give.  None when the
    document is not a JSON Feed."""
    if b"jsonfeed.org/version" not in data[:4096]:
        return None
    import json

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"feed {without_credentials(url)}: not a valid JSON Feed ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(f"feed {without_credentials(url)}: not a valid JSON Feed (no items)")
    entries = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        content = item.get("content_html") or item.get("content_text") or ""
        when = item.get("date_published") or item.get("date_modified")
        try:
            published = datetime.fromisoformat(when) if isinstance(when, str) else None
        except ValueError:
            published = None
        if published is not None and published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        entries.append(
            {
                "title": _json_text(item.get("title")),
                "link": _json_text(item.get("url") or item.get("external_url")),
                "id": _json_text(item.get("id")),
                "published_dt": published,
                "content": [{"value": _json_text(content)}] if content else [],
                "summary": _json_text(item.get("summary")),
            }
        )
    return entries, {"title": _json_text(doc.get("title"))}, None


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else ""


def _slow(data: bytes, headers: dict[str, str], url: str) -> Parsed:
    import feedparser  # only for the documents the fast path does not take

    try:
        result: Any = feedparser.parse(data, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser is meant not to raise; if it does, it is this feed's error
        raise ParseError(f"feed {without_credentials(url)}: parser failed: {type(exc).__name__}: {exc}") from exc
    raw_entries = list(result.get("entries") or [])
    problem = result.get("bozo_exception")
    detail = f"{type(problem).__name__}: {problem}" if result.get("bozo") and problem else None
    if not raw_entries and not result.get("version"):
        raise ParseError(f"feed {without_credentials(url)}: not a feed ({detail or 'no RSS, Atom or JSON feed found'})")
    warning = detail if detail and type(problem).__name__ not in _BENIGN else None
    return raw_entries, result.get("feed", {}), warning


# Only plain, well-formed RSS 2.0/RSS 1.0/Atom 1.0 goes the fast way: the
# forms where fastfeedparser's reading was proven identical to feedparser's
# on the corpora (bench/parser_identity.py); anything else, feedparser.
_FAST_ROOTS = re.compile(
    rb"<(rss\s+version=[\"']2\.0[\"']|rdf:RDF\s|feed\s+xmlns=[\"']http://www\.w3\.org/2005/Atom[\"'])"
)


def _fast_root(head: bytes) -> bool:
    """Whether the document's root is one of ``_FAST_ROOTS``, after an
    optional XML declaration and any comments.  A loop with ``find``, not a
    regex: ``(<!--.*?-->\\s*)*`` backtracked exponentially on a run of empty
    comments before a root it then rejected (26 of them cost 42 s)."""
    at = len(head) - len(head.lstrip())
    if head.startswith(b"<?xml", at):
        end = head.find(b">", at)
        if end < 0:
            return False
        at = end + 1
    while True:
        at += len(head[at:]) - len(head[at:].lstrip())
        if not head.startswith(b"<!--", at):
            break
        end = head.find(b"-->", at + 4)
        if end < 0:
            return False
        at = end + 3
    return _FAST_ROOTS.match(head, at) is not None


# Literal markers, found with bytes.find (a case-insensitive regex over every
# document cost more than the fast parser itself).
_NOT_FAST = (b"<!DOCTYPE", b"<!doctype", b"<!ENTITY", b"base64", b"xhtml", b"xml:base", b"<base", b"<dcterms:")


_DATE_MARKERS = (b"<pubDate", b"<pubdate", b"date>", b"<published", b"<updated", b"<issued", b"<modified", b"<created")


def _fast(data: bytes) -> Parsed | None:
    m = _XML_ENCODING.match(data[:500])
    if m and m.group(2).lower() not in (b"utf-8", b"utf8"):
        return None  # declared legacy charsets: feedparser's repairs (cp1252 "demoronizing")
    if not _fast_root(data[:2000]) or any(marker in data for marker in _NOT_FAST):
        return None
    if not data.rstrip()[-12:].endswith((b"</rss>", b"</rdf:RDF>", b"</feed>")):
        return None  # cut short: lxml's recovery would read it silently; feedparser says what is wrong
    try:
        result: Any = fastfeedparser.parse(data, include_tags=False, include_media=False, include_enclosures=False)
    except Exception:
        return None  # malformed for lxml: feedparser's loose parser will try
    entries = []
    has_ids = b"<guid" in data or b"<id>" in data or b"rdf:about" in data
    # A feed with no date element at all has nothing for feedparser to read
    # better: its undated entries stay on the fast path (a 100,000-entry
    # undated feed cost feedparser 30 s of CPU, past the worker's limit).
    has_dates = any(marker in data for marker in _DATE_MARKERS)
    for e in result.get("entries") or []:
        if has_ids and not e.get("id"):
            return None  # an id it did not find (a namespaced <guid>): feedparser finds it
        when = e.get("published") or e.get("updated")
        if not (e.get("title") and e.get("link") and (when or not has_dates)):
            return None  # an entry missing a title, link or date: feedparser's rules for those
        try:
            published = datetime.fromisoformat(when) if when else None
        except ValueError:
            return None  # a date it could not read: feedparser reads more forms
        if published is not None and published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        content = [{"value": c.get("value", "")} for c in e.get("content") or [] if isinstance(c, dict)]
        entries.append(
            {
                "title": e.get("title") or "",
                "link": e.get("link") or "",
                "id": (e.get("id") or "") if has_ids else "",  # it makes up an id from the link; feedparser does not
                "published_dt": published,
                "content": content,
                "summary": e.get("description") or "",
            }
        )
    if not entries:
        return None  # feedparser tells an empty feed from a non-feed
    channel = dict(result.get("feed") or {})
    at = data.find(b"<ttl>")
    if at >= 0:  # RSS's <ttl>, which fastfeedparser does not read
        end = data.find(b"</ttl>", at, at + 10_000)
        channel["ttl"] = data[at + 5 : end].decode("utf-8", "replace") if end > 0 else ""
    return entries, channel, None


# As browsers read a URL: tabs and line breaks dropped, other control
# characters percent-encoded (a NUL would not even be storable in PostgreSQL).
_URL_STRIPPED = str.maketrans("", "", "\t\r\n")
_URL_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def _percent(m: re.Match[str]) -> str:
    return f"%{ord(m.group(0)):02X}"


def _link(raw: Any, feed_url: str) -> str:
    link = raw.get("link") or ""
    if not link:
        guid = raw.get("id") or ""
        if is_url(guid) and raw.get("guidislink", True):
            link = guid
    link = _URL_CONTROLS.sub(_percent, no_surrogates(str(link).strip()).translate(_URL_STRIPPED))
    if link.startswith(("https://", "http://")):
        return link  # already absolute: urljoin is the costliest step of a poll's parse
    try:
        absolute = urljoin(feed_url, link) if link else ""
    except ValueError:
        return link  # unreadable: kept as given; its page fetch will fail and say so
    # Only web links reach a digest: javascript:, data:, file: and the like are dropped.
    return absolute if absolute.lower().startswith(("https://", "http://")) else ""


def _date(raw: Any) -> datetime | None:
    fast = raw.get("published_dt")
    if isinstance(fast, datetime):
        return fast.astimezone(UTC)
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {str(exc)[:80]}"


def _content(raw: Any) -> tuple[str, ...]:
    """The entry's own text: the longest content, else the summary; a text
    longer than ``ENTRY_TEXT_MAX`` is cut first (scripts and styles out), as
    a page is before extraction."""
    contents = [c.get("value", "") for c in raw.get("content") or [] if isinstance(c, dict)]
    best = max(contents, key=len, default="")
    if not best:
        best = str(raw.get("summary") or raw.get("description") or "")
    if len(best) > ENTRY_TEXT_MAX:
        best = bounded_markup(best, ENTRY_TEXT_MAX)
    return tuple(html_paragraphs(no_surrogates(best))) if best else ()


def _entry(raw: Any, feed_url: str, link: str, sharing: Sharing) -> tuple[Entry, str | None]:
    """The entry, and why its text was left out (None: it was not).

    Whatever its text does (markup nested a thousand deep, a codec that
    fails) costs that text only: the entry keeps its title (issue 24)."""
    raw_title = no_surrogates(str(raw.get("title") or ""))
    # The title is plain text (DIGEST_FORMAT): markup is stripped even from
    # a title the feed calls plain, since feeds escape HTML into titles.
    title = plain(raw_title) if looks_like_markup(raw_title) or "&" in raw_title else collapse(raw_title)
    published = _date(raw)
    guid = no_surrogates(str(raw.get("id") or "")) or None
    identity = entry_keys(
        feed_url,
        str(guid) if guid else None,
        link or None,
        title,
        published.isoformat() if published else None,
        sharing,
    )
    problem = None
    try:
        content = _content(raw)
    except (ValueError, TypeError, UnicodeError, LookupError, RecursionError) as exc:
        content, problem = (), _why(exc)
    entry = Entry(
        keys=identity.keys, title=title, link=link, published=published, content=content, alias=identity.alias
    )
    return entry, problem
