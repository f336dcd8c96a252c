"""Writing measured figures into a markdown page between two markers.

``splice(path, name, text)`` replaces what lies between
``<!-- NAME: begin -->`` and ``<!-- NAME: end -->`` in ``path`` (adding the
pair at the end if it is missing): the prose around the figures is written
by hand and survives a new run.
"""

from __future__ import annotations

from pathlib import Path


def splice(path: Path, name: str, text: str) -> None:
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin not in old or end not in old:
        old = old.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    before, rest = old.split(begin, 1)
    _, after = rest.split(end, 1)
    path.write_text(f"{before}{begin}\n{text}\n{end}{after}", encoding="utf-8")
