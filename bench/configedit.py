"""Config work on big subscription lists: OPML numbering, import, remove.

    .venv/bin/python -m bench.configedit [--sizes 2500,5000,10000,20000] [--write BENCHMARKS.md]

For each size N, the real CLI in a subprocess (its start-up included, as a
user waits for it), on a config with no feeds:

- ``opml import --dry-run`` of N outlines that all have one title (each
  name numbered " (2)", " (3)" …; issue 24: 4k/8k/16k took 2.2/7.0/20.8 s);
- ``opml import`` of N outlines with their own titles, written;
- ``remove`` of the feed in the middle of the N just written (issue 24:
  5k/10k/20k took 1.8/4.6/13.0 s).

The outlines are on 250 public IP addresses, so that no DNS lookup (which
an import makes once per host, to refuse addresses inside the network) is
in the figures.  Target (issue 24): 10,000 imported and one removed, each
under 2 s; seconds per 1,000 feeds about the same at every size (linear).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import splice

ROOT = Path(__file__).resolve().parent.parent


def opml(count: int, one_title: bool) -> bytes:
    outlines = "".join(
        f'<outline text="{"Same" if one_title else f"Feed {n}"}" type="rss"'
        f' xmlUrl="https://203.0.114.{n % 250 + 1}/feed/{n}.xml"/>'
        for n in range(count)
    )
    return f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>'.encode()


def timed(*args: str) -> float:
    started = time.perf_counter()
    r = subprocess.run([str(ROOT / ".venv/bin/feedbot"), *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if r.returncode != 0:
        raise SystemExit(f"feedbot {' '.join(args)} failed: {r.stderr[-500:]}")
    return elapsed


def measure(count: int, folder: Path) -> tuple[float, float, float]:
    config = folder / f"config{count}.toml"
    config.write_text("# bench.configedit\n", encoding="utf-8")
    same, own = folder / f"same{count}.opml", folder / f"own{count}.opml"
    same.write_bytes(opml(count, True))
    own.write_bytes(opml(count, False))
    numbering = timed("--config", str(config), "opml", "import", "--dry-run", str(same))
    imported = timed("--config", str(config), "opml", "import", str(own))
    removed = timed("--config", str(config), "remove", f"Feed {count // 2}")
    return numbering, imported, removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2500,5000,10000,20000", help="outline counts, comma-separated")
    parser.add_argument("--write", type=Path, help="rewrite the figures in this markdown page")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="feedbot-configedit-") as tmp:
        for count in sizes:
            rows.append((count, *measure(count, Path(tmp))))
    lines = [
        "`python -m bench.configedit`: wall seconds of the real CLI (start-up included) on a config with no feeds,"
        " and seconds per 1,000 feeds in brackets.",
        "",
        "| feeds | `opml import --dry-run`, one title | `opml import` | `remove` one of them |",
        "|---|---|---|---|",
    ]
    for count, numbering, imported, removed in rows:
        per = [f"{t:.2f} s ({t / count * 1000:.2f})" for t in (numbering, imported, removed)]
        lines.append(f"| {count:,} | " + " | ".join(per) + " |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        splice(args.write, "configedit", text)
    at = {count: (imported, removed) for count, _n, imported, removed in rows}
    if 10_000 in at:
        imported, removed = at[10_000]
        ok = max(imported, removed) < 2.0
        print(f"\n10,000 feeds: import {imported:.2f} s, remove {removed:.2f} s: {'ok' if ok else 'OVER'} (< 2 s)")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
