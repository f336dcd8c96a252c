"""Which addresses a fetch may reach: one policy for everything that fetches.

Article links come from feeds, which the bot does not control: a link (or a
redirect, or a DNS answer) pointing at 127.0.0.1, 10.0.0.5 or the cloud
metadata address would make the bot fetch from inside its own network.  So
article fetches reach only public addresses, unless the page is on the
exact origin (scheme, host and port) of the item's own feed and not on a
loopback address (a feed on an intranet linking to its own pages; a local
bridge such as RSSHub on ``localhost:1200`` relays links from anywhere, so
its origin gets no exception), or the config says
``[poll] allow_private_addresses = true``.

The same holds for every address found in a document rather than given by
the user (issue 24): a redirect of a feed off the origin the user gave, an
alternate link or well-known path ``feedbot add`` tries on another origin,
an OPML outline.  An address the user gave (a feed's ``url``, the address
typed after ``feedbot add``) and its own origin may be anything: it is
theirs.  A refusal happens before any connection, so its message is the
same whether a port is open or not.

How: the guarded connections resolve names through ``GuardedResolver``,
which resolves each name once, checks every address it gets, and gives
aiohttp only the allowed ones to connect to, so a DNS answer that changes
between a check and the connection cannot slip past.  aiohttp does not ask
a resolver about an address written in the URL, so the fetcher checks
those itself (``Policy.check_literal``), at every redirect hop.  Webhooks
are configured by the user and are not restricted.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

Resolver = Callable[[str, int], Awaitable[list[str]]]
IsPublic = Callable[[str], bool]
Origin = tuple[str, str, int]  # scheme, host (lower case), port

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible form, ::a.b.c.d
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT's IPv4-translated form, ::ffff:0:a.b.c.d


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: mapped (::ffff:a.b.c.d),
    translated (::ffff:0:a.b.c.d), compatible (::a.b.c.d), NAT64
    (64:ff9b::a.b.c.d), 6to4 (2002:AABB:CCDD::)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _COMPATIBLE or ip in _TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only; an IPv6 address
    that carries an IPv4 one is judged as that IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner.is_global and not inner.is_multicast and not inner.is_unspecified
    return ip.is_global and not ip.is_multicast


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 and ::1, in any IPv6 form that carries them."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner.is_loopback
    return ip.is_loopback


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (itself, if it is an address)."""
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal)
        return [literal]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressRefused(Exception):
    """The address is not one article fetches may reach."""


def origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host.lower(), url.port or (443 if url.scheme == "https" else 80))


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    own: Origin | None = None  # the feed's origin: its pages may be on a private address
    public: IsPublic = is_public
    loopback: IsPublic = is_loopback

    @classmethod
    def for_feed(
        cls,
        feed_url: str,
        *,
        allow_private: bool = False,
        public: IsPublic = is_public,
        loopback: IsPublic = is_loopback,
    ) -> Policy:
        try:
            own: Origin | None = origin_of(httpx.URL(feed_url))
        except (httpx.InvalidURL, ValueError):
            own = None
        return cls(allow_private, own, public, loopback)

    def is_own(self, url: httpx.URL) -> bool:
        """On the feed's (or the given address's) origin, or its upgrade to
        https on the same host: http://a/feed redirected to https://a/feed."""
        if self.own is None:
            return False
        origin = origin_of(url)
        return origin == self.own or (self.own[0], self.own[2], origin) == ("http", 80, ("https", self.own[1], 443))

    def allows(self, host: str, port: int, address: str, *, own_origin: bool) -> bool:
        if self.allow_private or self.public(address):
            return True
        if not own_origin or self.own is None or self.loopback(address):
            return False
        upgraded = self.own[0] == "http" and self.own[2] == 80 and port == 443  # is_own's https upgrade
        return host.lower() == self.own[1] and (port == self.own[2] or upgraded)

    def check(self, host: str, port: int, addresses: Iterable[str], *, own_origin: bool) -> list[str]:
        found = list(addresses)
        allowed = [a for a in found if self.allows(host, port, a, own_origin=own_origin)]
        if not allowed:
            if [host.strip("[]")] == found:
                raise AddressRefused(f"{host} is a non-public address")
            shown = ", ".join(found[:3]) or "nothing"
            raise AddressRefused(f"{host} resolves to a non-public address ({shown})")
        return allowed

    def check_literal(self, host: str, port: int, *, own_origin: bool) -> None:
        """An address written in the URL (aiohttp connects to it unasked)."""
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return
        self.check(host, port, [literal], own_origin=own_origin)


async def refusal(url: str, policy: Policy, resolver: Resolver = resolve) -> str | None:
    """Why ``policy`` refuses ``url`` (an address found in a document, not
    fetched now: an OPML outline), or None.  A name that does not resolve
    here cannot be judged and is not refused: its polls will say."""
    try:
        target = httpx.URL(url)
        port = origin_of(target)[2]
    except (httpx.InvalidURL, ValueError):
        return None  # not an address at all: the caller's own check says so
    try:
        addresses = await resolver(target.host, port)
    except (OSError, UnicodeError):
        return None
    try:
        policy.check(target.host, port, addresses, own_origin=False)
    except AddressRefused as exc:
        return str(exc)
    return None


# Set by the fetcher around each guarded fetch; connections made without one
# (there are none on the page clients) are held to public addresses.
current: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("feedbot_guard", default=None)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for the article-page clients: one lookup per
    connection, every address checked, only allowed ones returned.

    ``own_origin``: the client that serves a feed's own origin may reach its
    private address; the pooled client for every other page may not (so a
    kept-alive connection to a private address never serves another feed).
    """

    def __init__(self, resolver: Resolver = resolve, *, own_origin: bool = False) -> None:
        self.resolver = resolver
        self.own_origin = own_origin

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        policy = current.get() or Policy()
        try:
            found = await self.resolver(host, port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot resolve {host} ({exc.strerror or exc})") from None
        allowed = policy.check(host, port, found, own_origin=self.own_origin)
        return [_result(host, address, port) for address in allowed]

    async def close(self) -> None:
        return None


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    entry: dict[str, Any] = {
        "hostname": host,
        "host": address,
        "port": port,
        "family": family,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    }
    return entry  # type: ignore[return-value]
