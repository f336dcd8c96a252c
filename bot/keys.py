"""Dedupe identity of feed entries (pure).

Keys are 20-byte SHA-1 digests, stored as BLOBs (compact and fast, see
PERF_NOTES).  An entry has been seen when any of its ``keys`` has been
recorded, or its ``alias`` has been recorded by another feed.

* An entry with a GUID/id is its GUID.  A GUID that is a URL is
  canonicalised (below; fragment kept: a GUID with a fragment names one
  entry on purpose) and global, so the same article through two feeds, or a
  GUID moving from http to https, is one item; an opaque GUID ("tag:…",
  "12345") is scoped to its feed, since two feeds may both number their
  posts from 1.  Its link is an *alias*: it makes the same article one item
  when another feed has it (with an opaque GUID, say), but never hides an
  entry of the same feed, where distinct GUIDs may share a link.
* An entry without a GUID is its canonical link (global, fragment dropped),
  plus its link with the fragment when it has one, plus a hash of its title
  and date (scoped to its feed).  Several entries of one document that share
  a page (Scripting News links every post of a day to one page, told apart
  by the fragment) or a link (a feed that links every entry to its home
  page) are not known by it; every key an entry has in one poll is one it
  can have in the next, so no entry comes back when its neighbours change.

A GUID repeated for different entries of one document is a publisher bug;
the repeats are keyed by GUID, date and title so that no post is lost.
Editing an entry's title or date changes neither GUID nor link, so an
edited entry is not taken again.

Canonical URL: scheme and host lower-cased, default port and fragment
dropped, tracking parameters (``utm_*``, ``fbclid``, ``gclid``…) removed;
for the *key*, http and https are treated as one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ocid",
        "cmpid",
        "ncid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "ref_src",
        "s_cid",
    }
)
TRACKING_PREFIXES = ("utm_", "__twitter", "_hs", "pk_", "mtm_")

Key = bytes


def _digest(kind: str, value: str) -> Key:
    return hashlib.sha1(f"{kind}\0{value}".encode("utf-8", "surrogatepass")).digest()


def split_url(value: str) -> SplitResult | None:
    """``urlsplit``, or None for a URL it refuses (``http://[::1/a``):
    one unreadable link in a feed costs its entry, never the feed."""
    try:
        return urlsplit(value.strip())
    except ValueError:
        return None


def is_url(value: str) -> bool:
    parts = split_url(value)
    return parts is not None and parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


# A poll asks about each link several times (pass keep_fragment by position,
# so that the calls share cache entries); the cache stays small.
@lru_cache(maxsize=4096)
def canonical_url(url: str, keep_fragment: bool = False) -> str:
    """The URL people would call "the same page", for dedupe and display.

    A link urlsplit cannot read (``http://[::1/a``) is its own canonical
    form: one bad link costs its entry nothing but a tidy key."""
    parts = split_url(url)
    if parts is None:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the netloc as given
        port, host = None, parts.netloc.lower()
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = ""
    if parts.query:
        query = urlencode(
            [
                (k, v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
                if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
            ],
            doseq=True,
        )
    path = parts.path or "/"
    fragment = parts.fragment if keep_fragment else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


def _url_key(url: str, keep_fragment: bool) -> Key:
    canon = canonical_url(url, keep_fragment)
    # http and https are one page for identity.
    return _digest("url", canon.split("://", 1)[1])


@dataclass(frozen=True)
class Sharing:
    """How an entry's link relates to the other entries of its document."""

    page_shared: bool = False  # another entry links the same page (fragments aside)
    link_shared: bool = False  # another entry has exactly the same link
    guid_repeated: bool = False  # an earlier entry of the document has the same GUID


@dataclass(frozen=True)
class Identity:
    """An entry's keys: seen when any of ``keys`` has been recorded, or when
    ``alias`` has been recorded by another feed."""

    keys: tuple[Key, ...]
    alias: Key | None = None


def entry_keys(
    feed_url: str, guid: str | None, link: str | None, title: str, date: str | None, sharing: Sharing = Sharing()
) -> Identity:
    """The identity of one entry (see the module docstring)."""
    g = (guid or "").strip()
    has_link = bool(link) and is_url(link or "")
    title_key = _digest("title", f"{feed_url}\0{title}\0{date or ''}")
    if g and sharing.guid_repeated:
        # A publisher bug (Scripting News reuses a GUID for two posts): the
        # first keeps the GUID, the others are told apart by date and title.
        return Identity((_digest("guid-repeat", f"{feed_url}\0{g}\0{date or ''}\0{title}"),))
    if g:
        first = _url_key(g, keep_fragment=True) if is_url(g) else _digest("guid", f"{feed_url}\0{g}")
        # The link is only an alias, for the same article in another feed: in
        # its own feed, entries with distinct GUIDs may share a link.
        alias = _url_key(link, keep_fragment=sharing.page_shared) if has_link and link else None
        return Identity((first,), None if sharing.link_shared or alias == first else alias)
    keys: list[Key] = []
    if has_link and link:
        # Every key that can stay the same from one poll to the next, so
        # that the entry is known whatever its neighbours in the document.
        if not sharing.page_shared:
            keys.append(_url_key(link, keep_fragment=False))
        if (split_url(link) or urlsplit("")).fragment and not sharing.link_shared:
            keys.append(_url_key(link, keep_fragment=True))
    keys.append(title_key)
    return Identity(tuple(keys))
