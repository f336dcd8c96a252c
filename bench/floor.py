"""The machine's floor for a poll cycle: the least a Python process can do.

    .venv/bin/python -m bench.floor --base http://127.0.0.1:PORT --feeds 1000

Run by bench/run.py against the same farm, in its own process.  It prints
one JSON object: the CPU seconds (user + system, in-process: no start-up)
of two rounds over the N feeds with the leanest client there is (asyncio
protocols, keep-alive, 16 connections, no parsing of headers beyond
Content-Length and ETag, no state, no logging):

- ``all_new``: GET every feed and parse it with libxml2 (lxml.etree),
  reading title, link, guid and date of each item: cycle 1's floor;
- ``all_304``: the conditional GETs of an unchanged round: cycle 3's floor.

feedbot does more per feed (dedupe, state, limits, errors), so it cannot
reach these; they say how much of its cost is the job itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from urllib.parse import urlsplit

from lxml import etree

CONNECTIONS = 16


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client(asyncio.Protocol):
    """One keep-alive connection: one request at a time, the whole response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1
        self.head = b""
        self.done: asyncio.Future[tuple[bytes, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            length = 0
            for line in self.head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            self.need = 0 if self.head[9:12] == b"304" else length
        if len(self.buf) >= self.need and self.done is not None:
            body = bytes(self.buf[: self.need])
            del self.buf[: self.need]
            self.need = -1
            self.done.set_result((self.head, body))

    async def get(self, path: str, etag: bytes | None) -> tuple[bytes, bytes]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        extra = b"If-None-Match: " + etag + b"\r\n" if etag else b""
        self.transport.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: farm\r\n" + extra + b"\r\n")
        return await self.done


def items(body: bytes) -> int:
    root = etree.fromstring(body)
    count = 0
    for item in root.iter("item"):
        for field in ("title", "link", "guid", "pubDate"):
            item.findtext(field)
        count += 1
    return count


async def rounds(base: str, feeds: int) -> dict[str, float]:
    url = urlsplit(base)
    loop = asyncio.get_running_loop()
    clients = [
        (await loop.create_connection(Client, url.hostname, url.port))[1] for _ in range(min(CONNECTIONS, feeds))
    ]
    etags: dict[int, bytes] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def worker(client: Client, conditional: bool) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            head, body = await client.get(f"/feed/{n}.xml", etags.get(n) if conditional else None)
            if not conditional:
                for line in head.split(b"\r\n"):
                    if line[:5].lower() == b"etag:":
                        etags[n] = line[5:].strip()
                items(body)

    figures = {}
    for name, conditional in (("all_new", False), ("all_304", True)):
        for n in range(feeds):
            queue.put_nowait(n)
        start = cpu()
        await asyncio.gather(*(worker(c, conditional) for c in clients))
        figures[name] = cpu() - start
    for c in clients:
        assert c.transport is not None
        c.transport.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--feeds", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(rounds(args.base, args.feeds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
