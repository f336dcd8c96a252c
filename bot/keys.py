"""Dedupe identity of feed entries (pure).

An entry is known by one or more 20-byte keys (SHA-1 digests, stored as
BLOBs: compact and fast, see PERF_NOTES).  An entry has been seen when any
of its keys has:

* its GUID/id: when the GUID is a URL it is canonicalised (below) and
  global, so the same article through two feeds, or a GUID that moves from
  http to https, is one item; an opaque GUID ("tag:…", "12345") is scoped to
  its feed, since two feeds may both number their posts from 1;
* its canonical link (global), unless several entries of the same document
  share the link (a feed that links every entry to its home page);
* only when it has neither: a hash of its title and date, scoped to its feed.

Editing an entry's title or date does not change its GUID or link, so an
edited entry is not taken again.

Canonical URL: scheme and host lower-cased, default port and fragment
dropped, tracking parameters (``utm_*``, ``fbclid``, ``gclid``…) removed;
for the *key*, http and https are treated as one.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def is_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def canonical_url(url: str) -> str:
    """The URL people would call "the same page", for dedupe and display."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def _url_key(url: str) -> Key:
    canon = canonical_url(url)
    # http and https are one page for identity.
    return _digest("url", canon.split("://", 1)[1])


def entry_keys(
    feed_url: str, guid: str | None, link: str | None, title: str, date: str | None, link_shared: bool = False
) -> tuple[Key, ...]:
    """The keys of one entry; ``link_shared``: other entries have the same link."""
    keys: list[Key] = []
    if guid and guid.strip():
        g = guid.strip()
        keys.append(_url_key(g) if is_url(g) else _digest("guid", f"{feed_url}\0{g}"))
    if link and is_url(link) and not link_shared:
        k = _url_key(link)
        if k not in keys:
            keys.append(k)
    if not keys:
        keys.append(_digest("title", f"{feed_url}\0{title}\0{date or ''}"))
    return tuple(keys)
