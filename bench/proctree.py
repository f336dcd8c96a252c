"""A process and its descendants, from /proc: resident memory and CPU.

feedbot parses and extracts in worker processes (bot/workers.py) started
from a fork server: what the service costs is the sum over that tree, not
its main process alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_kb(pid: int) -> int:
    """VmRSS of one process, in KB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS")), "VmRSS: 0 kB")
    return int(line.split()[1])


def pss_kb(pid: int) -> int:
    """Proportional set size of one process, in KB (0 if it is gone): its
    private pages, and its share of the pages it shares with others (a
    worker forked from a fork server shares the modules that server
    imported; summing RSS counts them once per process)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    line = next((x for x in rollup.splitlines() if x.startswith("Pss:")), "Pss: 0 kB")
    return int(line.split()[1])


def tree_rss_kb(pid: int) -> int:
    return sum(rss_kb(p) for p in tree(pid))


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one live process (0 if it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of the live processes of the tree."""
    return sum(process_cpu(p) for p in tree(pid))


class CpuMeter:
    """CPU seconds of a process tree, processes that ended included: each
    process counts with the last CPU time seen of it (sample often)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seen: dict[int, float] = {}

    def total(self) -> float:
        for p in tree(self.pid):
            self.seen[p] = max(self.seen.get(p, 0.0), process_cpu(p))
        return sum(self.seen.values())
