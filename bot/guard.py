"""Which addresses an article fetch may reach.

Article links come from feeds, which the bot does not control: a link (or a
redirect, or a DNS answer) pointing at 127.0.0.1, 10.0.0.5 or the cloud
metadata address would make the bot fetch from inside its own network.  So
article fetches reach only public addresses, unless the address belongs to
the host of the item's own feed (a feed on an intranet linking to its own
pages) or the config says ``[poll] allow_private_addresses = true``.

The check is made twice: on every hop's host before the request (which also
covers a pooled connection), and on the address actually connected to, in
the network backend (which covers DNS answers that change between the two).
Feed URLs and webhooks are configured by the user and are not restricted.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpcore

Resolver = Callable[[str, int], Awaitable[list[str]]]
IsPublic = Callable[[str], bool]


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (itself, if it is an address)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return [host.strip("[]")]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressRefused(Exception):
    """The address is not one article fetches may reach."""


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    own_hosts: frozenset[str] = field(default_factory=frozenset)  # the feed's host: always allowed
    public: IsPublic = is_public

    def allows(self, host: str, address: str) -> bool:
        return self.allow_private or host.lower() in self.own_hosts or self.public(address)

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        found = list(addresses)
        allowed = [a for a in found if self.allows(host, a)]
        if not allowed:
            shown = ", ".join(found[:3]) or "nothing"
            raise AddressRefused(f"{host} resolves to a non-public address ({shown})")
        return allowed


# Set by the page fetcher around each fetch; None (feeds, webhooks): no check.
current: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("feedbot_guard", default=None)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to allowed addresses."""

    def __init__(self, resolver: Resolver = resolve) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        policy = current.get()
        if policy is None:
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = policy.check(host, await self.resolver(host, port))
        except (AddressRefused, OSError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for article pages")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
