"""Many feed origins that answer conditional GETs, for bench/http_compare.py.

    python -m bench.origins --origins 200 [--tls CERT KEY] [--latency 0.05 0.2]

Listens on ``--origins`` ports of 127.0.0.1 (each port is an origin to a
client: its own pool of connections, its own TLS handshakes) and prints
them as one JSON line.  ``GET /feed/N.xml`` answers 200 with a small RSS
document and the ETag ``"eN"``, or 304 when ``If-None-Match`` is ``"eN"``,
after a random wait between the two ``--latency`` bounds (a distant
server).  Keep-alive as HTTP/1.1 asks, unless ``--close``: then every
answer ends its connection, so every GET pays a new one (and a TLS
handshake), whatever the client's pool would keep.  A test peer for the benchmark only:
it reads request heads with ``StreamReader.readuntil`` and nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys

DOC = (
    b"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>feed</title>"
    b"<item><title>item</title><link>http://127.0.0.1/a</link></item></channel></rss>"
)


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: tuple[float, float], close: bool
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            etag = '"e' + path.rsplit("/", 1)[-1].removesuffix(".xml") + '"'
            if latency[1] > 0:
                await asyncio.sleep(random.uniform(*latency))
            end = b"Connection: close\r\n\r\n" if close else b"\r\n"
            if fields.get("if-none-match") == etag:
                writer.write(
                    b"HTTP/1.1 304 Not Modified\r\nETag: " + etag.encode() + b"\r\nContent-Length: 0\r\n" + end
                )
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: "
                    + etag.encode()
                    + b"\r\nContent-Length: "
                    + str(len(DOC)).encode()
                    + b"\r\n"
                    + end
                    + DOC
                )
            await writer.drain()
            if close or fields.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, IndexError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(origins: int, tls: ssl.SSLContext | None, latency: tuple[float, float], close: bool) -> None:
    servers = [
        await asyncio.start_server(lambda r, w: handle(r, w, latency, close), "127.0.0.1", 0, ssl=tls, backlog=1024)
        for _ in range(origins)
    ]
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--origins", type=int, default=1)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--latency", nargs=2, type=float, default=(0.0, 0.0))
    parser.add_argument("--close", action="store_true", help="close every connection after one answer")
    args = parser.parse_args(argv)
    tls = None
    if args.tls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*args.tls)
    asyncio.run(serve(args.origins, tls, tuple(args.latency), args.close))
    return 0


if __name__ == "__main__":
    sys.exit(main())
