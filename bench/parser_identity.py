"""Does the fast parser read feeds exactly as feedparser does?

    .venv/bin/python -m bench.parser_identity [--show 5]

For every file of shared/corpus/feeds and shared/corpus/feedparser, the
entries feedbot makes (keys, title, link, date, text) are compared between
the fast path (fastfeedparser, for the documents it takes) and feedparser
alone.  Prints how many documents took the fast path, how many of those
gave identical entries, and the differences.  tests/test_parse_extract.py
asserts zero differences.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.pages import corpus_dir
from bot.errors import ParseError
from bot.parse import _fast, parse_feed


def documents(root: Path) -> Iterator[Path]:
    for folder in ("feeds", "feedparser"):
        yield from sorted(p for p in (root / folder).rglob("*") if p.is_file())


def compare(root: Path) -> tuple[int, int, list[str]]:
    fast_docs = 0
    identical = 0
    differences: list[str] = []
    for path in documents(root):
        data = path.read_bytes()
        if _fast(data) is None:
            continue
        fast_docs += 1
        try:
            a = parse_feed(data, "https://example.org/feed.xml", {}, fast=True).entries
        except ParseError as exc:
            a = (str(exc),)  # type: ignore[assignment]
        try:
            b = parse_feed(data, "https://example.org/feed.xml", {}, fast=False).entries
        except ParseError as exc:
            b = (str(exc),)  # type: ignore[assignment]
        if a == b:
            identical += 1
        else:
            first = next(
                (f"{x!r:.200} != {y!r:.200}" for x, y in zip(a, b, strict=False) if x != y),
                f"{len(a)} entries != {len(b)}",
            )
            differences.append(f"{path.relative_to(root)}: {first}")
    return fast_docs, identical, differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=10)
    args = parser.parse_args(argv)
    root = corpus_dir()
    total = sum(1 for _ in documents(root))
    fast_docs, identical, differences = compare(root)
    print(
        f"{total} documents; {fast_docs} took the fast path; {identical} identical to feedparser; "
        f"{len(differences)} different"
    )
    for line in differences[: args.show]:
        print("  " + line)
    return 0 if not differences else 1


if __name__ == "__main__":
    sys.exit(main())
