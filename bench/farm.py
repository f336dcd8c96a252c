"""A local feed farm: N feeds × M items of Japanese news on 127.0.0.1.

    python -m bench.farm --feeds 1000 --items 50 --port 0      (prints its port)

Run as its own process, so that its CPU is not counted as the bot's.  Each
feed is RSS 2.0 with an ETag and Last-Modified, answering conditional GETs
with 304; every item links to an article page.  ``GET /_change?share=0.1``
adds one item to that share of the feeds (seeded), changing their ETags.
Documents are rendered once per change, not per request.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from bot.loopback import Listener

WORDS = (
    "ロシア ウクライナ 首脳会談 大統領 外相 停戦 交渉 制裁 エネルギー 中国 米国 国連 安全保障 経済 物価 "
    "円安 株価 日銀 選挙 国会 災害 地震 台風 原発 輸出 半導体 自動車 医療 教育 環境 気候 観光"
).split()


class Farm:
    def __init__(self, feeds: int, items: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start = datetime(2025, 1, 21, tzinfo=UTC)
        self.items: list[list[tuple[int, datetime, str]]] = [
            [(n, self.start - timedelta(minutes=n * 7 + f), self.title()) for n in range(items)] for f in range(feeds)
        ]
        self.lock = threading.Lock()
        self.docs: dict[int, tuple[bytes, str, str]] = {}
        self.base = ""
        self.page_cache: dict[str, bytes] = {}

    def title(self) -> str:
        return "、".join(self.rng.choice(WORDS) for _ in range(3)) + "を巡る動き"

    def render(self, f: int) -> tuple[bytes, str, str]:
        parts = [f"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>ファーム{f}</title>"]
        for n, when, title in reversed(self.items[f][-50:]):
            link = f"{self.base}/a/{f}/{n}"
            parts.append(
                f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
                f"<pubDate>{format_datetime(when)}</pubDate>"
                f"<description>{escape(title)}について、関係者が明らかにした。詳しい内容は本文で伝えている。</description></item>"
            )
        parts.append("</channel></rss>")
        body = "".join(parts).encode()
        return body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"', format_datetime(self.items[f][-1][1], usegmt=True)

    def doc(self, f: int) -> tuple[bytes, str, str]:
        with self.lock:
            if f not in self.docs:
                self.docs[f] = self.render(f)
            return self.docs[f]

    def change(self, share: float) -> int:
        with self.lock:
            chosen = self.rng.sample(range(len(self.items)), round(len(self.items) * share))
            for f in chosen:
                last = self.items[f][-1]
                self.items[f].append((last[0] + 1, last[1] + timedelta(minutes=5), self.title()))
                self.docs.pop(f, None)
            return len(chosen)

    def page(self, path: str) -> bytes:
        cached = self.page_cache.get(path)
        if cached is None:
            seed = int(hashlib.sha1(path.encode()).hexdigest()[:8], 16)
            rng = random.Random(seed)
            paragraphs = "".join(
                "<p>" + "。".join("、".join(rng.choice(WORDS) for _ in range(6)) for _ in range(3)) + "。</p>"
                for _ in range(8)
            )
            nav = "".join(f"<li><a href='/n/{i}'>{rng.choice(WORDS)}</a></li>" for i in range(40))
            cached = (
                f"<html><head><meta charset='utf-8'><title>記事</title></head><body><header><nav><ul>{nav}</ul></nav>"
                f"</header><main><article><h1>見出し</h1>{paragraphs}</article><aside class='related'><ul>{nav}</ul>"
                f"</aside></main><footer>Copyright</footer></body></html>"
            ).encode()
            self.page_cache[path] = cached
        return cached


def serve(farm: Farm, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path.startswith("/feed/"):
                body, etag, modified = farm.doc(int(url.path[6:].removesuffix(".xml")))
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", {"ETag": etag, "Last-Modified": modified})
                    return
                self._send(
                    200,
                    body,
                    {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag, "Last-Modified": modified},
                )
            elif url.path.startswith("/a/"):
                self._send(200, farm.page(url.path), {"Content-Type": "text/html; charset=utf-8"})
            elif url.path == "/_change":
                share = float(parse_qs(url.query).get("share", ["0.1"])[0])
                self._send(200, str(farm.change(share)).encode(), {"Content-Type": "text/plain"})
            else:
                self._send(404, b"", {})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    # The tests' listener: a backlog of 1,024 (socketserver's 5 dropped the
    # SYNs of a client opening 16 connections at once, a second each).
    httpd = Listener(("127.0.0.1", port), Handler)
    farm.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--origins", type=int, default=1, help="listen on this many ports (origins to a client); all printed"
    )
    args = parser.parse_args(argv)
    farm = Farm(args.feeds, args.items, args.seed)
    httpd = serve(farm, args.port)
    extra = [serve(farm, 0) for _ in range(args.origins - 1)]
    for server in extra:
        threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
    print(" ".join(str(h.server_address[1]) for h in [httpd, *extra]), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
