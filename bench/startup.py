"""Start-up of `feedbot poll`: this tree beside an earlier commit and rss2email, in one run.

    .venv/bin/python -m bench.startup [--feeds 200] [--against REV] [--runs 3] [--write BENCHMARKS.md]

Issue 27: a one-shot `feedbot poll` of unchanged feeds spent most of its
CPU before its first request (imports, TLS contexts for plain-HTTP feeds),
and a changed cycle started workers that imported the parsing stack again.
This bench measures what that costs, side by side on one loopback farm
(bench/farm.py, its own process):

- ``after``: `python -m bot poll` of this tree;
- ``before``: the same of commit ``--against`` (default: the commit before
  issue 27's work), exported by `git archive` into a temporary folder: no
  switch in the product picks the old behaviour;
- rss2email 3.14 (`r2e run --no-send`, bench/.venv-r2e, as bench/run.py),
  if it is installed or can be.

feedbot runs as installed (``installed_python``: no editable install's
hook, which the development environment adds to every process).  Each tool
has its own state.  Cycles: the first (all new), then steady
(all 304) and changed (10% of the feeds gained an item) ``--runs`` times
each, the tools alternating within each round so that the machine's drift
hits them alike; medians.  Wall and CPU per process tree (workers
included, bench.run.timed).  Then ``-X importtime`` of one steady poll of
each tree: the modules imported and their summed self time.  Bytecode is
compiled for both trees first (a checkout run with PYTHONDONTWRITEBYTECODE
would otherwise compile every module on every run).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import urllib.request
import venv
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from bench.report import splice
from bench.run import r2e_config, r2e_ready, start_farm, timed

ROOT = Path(__file__).resolve().parent.parent
BEFORE_ISSUE_27 = "1855b9a"  # the last commit before issue 27's start-up work


def export(rev: str, into: Path) -> Path:
    """``bot/`` of commit ``rev``, in ``into`` (a tree to put on PYTHONPATH)."""
    data = subprocess.run(["git", "archive", rev, "bot"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def installed_python(folder: Path) -> str:
    """A Python laid out as `pip install /opt/feedbot` leaves it (README):
    a virtual environment whose packages are importable, and no editable
    install's hook.  The development environment's hook (its ``.pth`` and
    finder module, made by `pip install -e`) costs every process of it about
    25 ms before the first import, which no user's `feedbot` pays; rss2email
    runs from a regular install too.  Its packages are the development
    environment's own, added by a path line (whose folder's ``.pth`` files
    are not run)."""
    venv.create(folder, with_pip=False)
    packages = sysconfig.get_paths()["purelib"]
    made = subprocess.run(
        [str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(made) / "packages.pth").write_text(packages + "\n", encoding="utf-8")
    return str(folder / "bin" / "python")


def config(folder: Path, base: str, feeds: int) -> Path:
    """As bench/run.py's: bodies off, every item taken on the first poll."""
    folder.mkdir(parents=True, exist_ok=True)
    text = '[poll]\nfirst_poll = "all"\nmax_age = "none"\nhost_spacing = "0s"\nconcurrency = 16\n'
    text += "".join(f'[[feeds]]\nname = "f{n}"\nurl = "{base}/feed/{n}.xml"\nbody = "none"\n' for n in range(feeds))
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def importtime(python: str, tree: Path, cfg: Path, env: dict[str, str]) -> tuple[int, float]:
    """Modules imported by one `feedbot poll` and their summed self time (ms)."""
    r = subprocess.run(
        [python, "-X", "importtime", "-m", "bot", "--config", str(cfg), "poll"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(tree)},
        cwd=cfg.parent,
    )
    lines = r.stderr.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("import time:") and "self [us]" not in line]
    return len(rows), sum(int(row[0].split(":")[1]) for row in rows) / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", default=BEFORE_ISSUE_27, help="the commit to compare with")
    parser.add_argument("--no-r2e", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBOT_") and k != "STATE_DIRECTORY"}
    r2e = None if args.no_r2e else r2e_ready()
    results: dict[str, dict[str, list[tuple[float, float, str]]]] = {}
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="feedbot-startup-") as tmp:
        folder = Path(tmp)
        # `python -m bot` looks in its working folder first: not in a checkout's.
        os.chdir(folder)
        trees = {"before": export(args.against, folder / "before"), "after": ROOT}
        for tree in trees.values():
            compileall.compile_dir(tree / "bot", quiet=1)
        python = installed_python(folder / "venv")
        farm, base = start_farm(args.feeds, args.items, 1)
        try:
            commands: dict[str, tuple[list[str], dict[str, str]]] = {}
            configs: dict[str, Path] = {}
            for name, tree in trees.items():
                configs[name] = config(folder / name / "run", base, args.feeds)
                commands[name] = (
                    [python, "-m", "bot", "--config", str(configs[name]), "poll"],
                    {**env, "PYTHONPATH": str(tree)},
                )
            if r2e is not None:
                (folder / "r2e").mkdir()
                cfg, data = r2e_config(folder / "r2e", base, args.feeds)
                commands["rss2email"] = ([str(r2e), "-c", str(cfg), "-d", str(data), "run", "--no-send"], env)
            results = {name: {"first": [], "steady": [], "changed": []} for name in commands}

            def cycle(kind: str) -> None:
                for name, (cmd, cmd_env) in commands.items():
                    results[name][kind].append(timed(cmd, cmd_env))

            cycle("first")
            for _ in range(args.runs):
                cycle("steady")
                urllib.request.urlopen(f"{base}/_change?share=0.1").read()
                cycle("changed")
            imports = {name: importtime(python, tree, configs[name], env) for name, tree in trees.items()}
        finally:
            farm.terminate()
            os.chdir(here)

    for name, kinds in results.items():  # every run, to judge the medians by
        for kind, runs in kinds.items():
            print(f"{name} {kind}: " + ", ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in runs), file=sys.stderr)

    def med(name: str, kind: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name][kind])

    new = results["after"]["changed"][-1][2].count("new=1")
    lines = [
        f"`python -m bench.startup` on {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}: `feedbot poll` of"
        f" {args.feeds} feeds × {args.items} items on loopback (plain HTTP), as installed (no editable-install"
        " hook), this tree (after) beside commit"
        f" `{args.against}` (before)" + (" and rss2email 3.14" if r2e else "") + ", the tools alternating in each"
        f" round; medians of {args.runs} (the first cycle: one run). Wall and CPU of the whole process tree"
        f" (workers included). Changed: 10% of the feeds gained an item ({new} new).",
        "",
        "| cycle | before: wall, CPU | after: wall, CPU | after ÷ before (wall, CPU) |"
        + (" rss2email: wall, CPU | after ÷ rss2email (wall, CPU) |" if r2e else ""),
        "|---|---|---|---|" + ("---|---|" if r2e else ""),
    ]
    for kind, label in (("first", "first (all new)"), ("steady", "steady (all 304)"), ("changed", "changed")):
        b, a = (med("before", kind, 0), med("before", kind, 1)), (med("after", kind, 0), med("after", kind, 1))
        row = (
            f"| {label} | {b[0]:.2f} s, {b[1]:.2f} s | {a[0]:.2f} s, {a[1]:.2f} s"
            f" | {a[0] / b[0]:.2f}, {a[1] / b[1]:.2f} |"
        )
        if r2e:
            r = (med("rss2email", kind, 0), med("rss2email", kind, 1))
            row += f" {r[0]:.2f} s, {r[1]:.2f} s | {a[0] / r[0]:.2f}, {a[1] / r[1]:.2f} |"
        lines.append(row)
    if r2e:
        # The tools alternate within each round: a ratio per round cancels the
        # machine's drift between rounds, which the medians above keep.
        per_round = []
        for kind in ("steady", "changed"):
            ratios = [a[0] / r[0] for a, r in zip(results["after"][kind], results["rss2email"][kind], strict=True)]
            per_round.append(f"{kind} {statistics.median(ratios):.2f} (from {min(ratios):.2f} to {max(ratios):.2f})")
        lines += ["", "after ÷ rss2email, wall, round by round (median, range): " + "; ".join(per_round) + "."]
    (nb, tb), (na, ta) = imports["before"], imports["after"]
    lines += [
        "",
        f"`python -X importtime -m bot poll` (steady cycle): before {nb} modules, {tb:.0f} ms of self time;"
        f" after {na} modules, {ta:.0f} ms ({ta / tb:.2f}×; importtime's own overhead inflates both alike).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        splice(args.write, "startup", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
