"""feedbot under a real systemd: a minimal Debian booted with systemd-nspawn.

    sudo .venv/bin/python -m tests.systemd_nspawn        (run by .ci/run)

Builds (once; cached under /var/cache/feedbot-nspawn) a minimal Debian with
debootstrap, copies it, installs feedbot there from this checkout (wheels
built on the host), installs the shipped unit, boots the copy with
systemd-nspawn (sharing the host's loopback), and checks:

1. `systemctl start feedbot` returns once READY=1 arrived: active (running);
2. a digest reaches a webhook receiver running on the host;
3. an edit of config.toml adding a feed is picked up without a restart;
4. a broken edit leaves it running on the old config (and says so in STATUS);
5. `systemctl reload feedbot` works;
6. a hung event loop (the test-only fault switch) is killed by the watchdog
   and restarted;
7. `journalctl -u feedbot` has the per-feed lines, with priorities;
8. `systemd-analyze verify` on the installed unit prints nothing;
9. switched to a PostgreSQL state on the host (a server of the test's own,
   password authentication, the URL with its password as a systemd
   credential): it runs, its heartbeat row is in the database, a digest
   goes out, and the password is in neither the journal nor the status.

It prints what it checked and ends with "nspawn: N passed, N failed".
Needs root, debootstrap and systemd-container (.ci/run installs them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.demo import SITE
from bot.loopback import Receiver, Server, SiteHandler
from bot.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/var/cache/feedbot-nspawn")
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,procps,ca-certificates"
MIRROR = "http://deb.debian.org/debian"
CONTAINER_PYTHON = "3.11.2"  # Debian 12's python3

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    results.append((name, ok, detail))
    print(f"{'ok ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def run(*cmd: str, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def rootfs() -> Path:
    """The cached minimal Debian (debootstrap), built on first use."""
    key = hashlib.sha256(f"bookworm {PACKAGES}".encode()).hexdigest()[:12]
    target = CACHE / f"rootfs-{key}"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"rootfs-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"building {target} with debootstrap (cached for later runs)…", flush=True)
    r = run("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(tmp), MIRROR, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"debootstrap failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    tmp.rename(target)
    return target


def wheels(folder: Path) -> None:
    """feedbot and its dependencies as wheels, fetched on the host for the
    container's Python (Debian 12 has 3.11.2: soupsieve 4 wants 3.11.5)."""
    pip = (sys.executable, "-m", "pip")
    r = run(*pip, "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT))
    if r.returncode != 0:
        raise SystemExit(f"pip wheel failed:\n{r.stderr[-3000:]}")
    (own,) = folder.glob("feedbot-*.whl")
    r = run(
        *pip, "download", "-q", "--only-binary=:all:", "--python-version", CONTAINER_PYTHON, "-d", str(folder), str(own)
    )
    if r.returncode != 0:
        raise SystemExit(f"pip download failed:\n{r.stderr[-3000:]}")


class Container:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def prepare(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the (not yet booted) tree."""
        return run("systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", str(self.root), *cmd)

    def boot(self) -> None:
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "--register=no", "--keep-unit", "--boot", "--console=pipe", "-D", str(self.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = run("pgrep", "-P", str(self.proc.pid)).stdout.split()
            if children:
                self.leader = int(children[0])
                state = self.sh("systemctl is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.5)
        raise SystemExit("the container did not boot within 120 s")

    def sh(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run(
            "nsenter",
            "-t",
            str(self.leader),
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "--",
            "/bin/sh",
            "-c",
            command,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.leader:
            self.sh("systemctl poweroff", timeout=30)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(what: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.5)
    return what()


CONFIG = """
timezone = "Asia/Tokyo"
[schedule]
poll_every = "1h"
digest_at = []
digest_every = "3s"
[poll]
first_poll = "all"
max_age = "none"
timeout = "5s"
host_spacing = "0s"
[digest]
default_topic = "ロシア"
[[feeds]]
name = "ロイター"
handle = "ReutersJapan"
url = "{base}/reuters/world.xml"
headline = "{{title}} {{link}} {{link}}"
{extra}
[[webhooks]]
kind = "discord"
name = "host-receiver"
url_file = "${{CREDENTIALS_DIRECTORY}}/discord-url"
"""
EXTRA_FEED = """
[[feeds]]
name = "J Sato"
handle = "j_sato"
url = "{base}/x/j_sato.xml"
headline = "{{title}}"
"""
DROP_IN = """[Service]
# Test only: a short watchdog, a quick restart, the fault switch, and the
# webhook URL as a credential.
WatchdogSec=4s
RestartSec=1s
Environment=FEEDBOT_FAULT_HANG_FILE=/etc/feedbot/hang
LoadCredential=discord-url:/etc/feedbot/discord-url
"""
# The state in PostgreSQL: the URL, with its password, as a credential.
PG_CONFIG = """
[state]
url_file = "${CREDENTIALS_DIRECTORY}/state-url"
"""
PG_DROP_IN = """[Service]
LoadCredential=state-url:/etc/feedbot/state-url
"""
PG_PASSWORD = "Pg-SECRET-4711"


def main() -> int:
    if os.geteuid() != 0:
        print("nspawn: needs root (systemd-nspawn, debootstrap)")
        return 1
    base_root = rootfs()
    site, rec = SiteHandler(SITE), Receiver()
    with (
        tempfile.TemporaryDirectory(prefix="feedbot-nspawn-", dir="/var/tmp") as tmp,
        Server(site) as feeds,
        Server(rec) as hook,
    ):
        site.base = feeds.base
        root = Path(tmp) / "root"
        run("cp", "-a", "--reflink=auto", str(base_root), str(root))
        # The minimal Debian has no /etc/hosts; Python's resolver wants one.
        (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        wheels(root / "opt/wheels")
        box = Container(root)
        r = box.prepare(
            "/bin/sh",
            "-c",
            "python3 -m venv /opt/feedbot/.venv && /opt/feedbot/.venv/bin/pip install"
            " -q --no-index --find-links /opt/wheels feedbot",
        )
        installed = r.returncode == 0
        if not check(
            "feedbot installed in the container from the checkout", installed, "" if installed else r.stderr[-500:]
        ):
            return finish()
        etc = root / "etc/feedbot"
        etc.mkdir(parents=True)
        config = etc / "config.toml"
        config.write_text(CONFIG.format(base=feeds.base, extra=""), encoding="utf-8")
        config.chmod(0o644)
        (etc / "discord-url").write_text(hook.base + "/api/webhooks/1/SECRET\n")
        (etc / "discord-url").chmod(0o600)
        unit_dir = root / "etc/systemd/system"
        shutil.copy(ROOT / "systemd/feedbot.service", unit_dir / "feedbot.service")
        (unit_dir / "feedbot.service.d").mkdir()
        (unit_dir / "feedbot.service.d/test.conf").write_text(DROP_IN)
        box.boot()
        try:
            exercise(box, config, feeds.base, rec)
        finally:
            box.stop()
    return finish()


def exercise(box: Container, config: Path, base: str, rec: Receiver) -> None:
    r = run("systemd-analyze", "security", "--offline=true", "--no-pager", str(ROOT / "systemd/feedbot.service"))
    exposure = next((line.split(": ")[-1] for line in r.stdout.splitlines() if "Overall exposure" in line), "99 ?")
    check("systemd-analyze security --offline=true: exposure 1.5 or less", float(exposure.split()[0]) <= 1.5, exposure)
    r = box.sh("systemd-analyze verify /etc/systemd/system/feedbot.service 2>&1")
    check("systemd-analyze verify on the installed unit prints nothing", r.stdout.strip() == "", r.stdout[-300:])
    started = time.monotonic()
    r = box.sh("systemctl start feedbot")
    active = box.sh("systemctl show -p ActiveState -p SubState -p StatusText feedbot").stdout
    check(
        "start returns after READY=1: active (running)",
        r.returncode == 0 and "SubState=running" in active,
        f"{time.monotonic() - started:.1f}s; {' '.join(active.split())}",
    )
    delivered = rec.wait_for(1, 60)
    detail = f"{len(rec.accepted)} message(s)"
    if not delivered:  # say why: the service's own account
        detail += "\n" + box.sh("journalctl -u feedbot --no-pager -o cat | tail -n 30").stdout
    check("a digest reaches the receiver on the host", delivered, detail)

    def journal(needle: str) -> bool:
        return needle in box.sh("journalctl -u feedbot --no-pager -o cat").stdout

    config.write_text(CONFIG.format(base=base, extra=EXTRA_FEED.format(base=base)), encoding="utf-8")
    check(
        "an edit adding a feed is picked up without a restart",
        wait_until(lambda: journal('feed="J Sato" status=ok new=1'), 60)
        and "NRestarts=0" in box.sh("systemctl show -p NRestarts feedbot").stdout,
    )
    config.write_text(CONFIG.format(base=base, extra="[[feeds]]\nname = 3\n"), encoding="utf-8")
    rejected = wait_until(lambda: journal("config rejected (the file changed)"), 60)
    status = box.sh("systemctl show -p StatusText -p SubState feedbot").stdout
    check(
        "a broken edit leaves it running on the old config",
        rejected and "SubState=running" in status and "config error" in status,
        " ".join(status.split()),
    )
    config.write_text(CONFIG.format(base=base, extra=EXTRA_FEED.format(base=base)), encoding="utf-8")
    wait_until(
        lambda: (
            journal("config reloaded (the file changed)")
            and "config error" not in box.sh("systemctl show -p StatusText feedbot").stdout
        ),
        60,
    )
    r = box.sh("systemctl reload feedbot")
    check(
        "systemctl reload works",
        r.returncode == 0 and wait_until(lambda: journal("config reloaded (SIGHUP)"), 30),
        r.stderr.strip(),
    )
    (config.parent / "hang").write_text("hang\n")
    hung = wait_until(
        lambda: (
            journal("Watchdog timeout") or "NRestarts=0" not in box.sh("systemctl show -p NRestarts feedbot").stdout
        ),
        60,
    )
    (config.parent / "hang").unlink()
    back = wait_until(
        lambda: (
            "SubState=running" in box.sh("systemctl show -p SubState feedbot").stdout
            and "NRestarts=0" not in box.sh("systemctl show -p NRestarts feedbot").stdout
        ),
        60,
    )
    restarts = box.sh("systemctl show -p NRestarts feedbot").stdout.strip()
    check("a hung loop is killed by the watchdog and restarted", hung and back, restarts)
    lines = [json.loads(x) for x in box.sh("journalctl -u feedbot --no-pager -o json").stdout.splitlines() if x]
    feed_lines = [(x.get("PRIORITY"), x.get("MESSAGE")) for x in lines if "feed=" in str(x.get("MESSAGE", ""))]
    info = [m for p, m in feed_lines if p == "6" and "status=ok" in str(m)]
    check(
        "journalctl shows per-feed lines with priorities",
        bool(info) and all(p for p, _ in feed_lines),
        f"{len(feed_lines)} feed lines; e.g. PRIORITY=6 {str(info[0])[:60] if info else ''}",
    )
    secret = box.sh("journalctl -u feedbot --no-pager -o cat | grep -c SECRET").stdout.strip()
    check("the webhook URL never reaches the journal", secret == "0", f"{secret} line(s)")
    box.sh("systemctl stop feedbot")
    stopped = box.sh("systemctl show -p ActiveState -p Result feedbot").stdout
    check("stops cleanly", "ActiveState=inactive" in stopped, " ".join(stopped.split()))
    on_postgres(box, config, base, rec)


def on_postgres(box: Container, config: Path, base: str, rec: Receiver) -> None:
    """The same unit, the state in a PostgreSQL server on the host."""
    pg = PgServer(passwords=True).start()
    try:
        url = pg.new_database(owner=("feedbot_app", PG_PASSWORD))
        etc = config.parent
        (etc / "state-url").write_text(url + "\n")
        (etc / "state-url").chmod(0o600)
        unit_dir = etc.parent / "systemd/system/feedbot.service.d"
        (unit_dir / "postgres.conf").write_text(PG_DROP_IN)
        config.write_text(CONFIG.format(base=base, extra="") + PG_CONFIG, encoding="utf-8")
        box.sh("systemctl daemon-reload")
        before = len(rec.accepted)
        r = box.sh("systemctl start feedbot")
        active = box.sh("systemctl show -p SubState -p StatusText feedbot").stdout
        rows = wait_until(lambda: bool(pg.sql(url, "SELECT id FROM instances")), 30)
        check(
            "on PostgreSQL (password as a credential): running, its heartbeat row in the database",
            r.returncode == 0 and "SubState=running" in active and rows,
            " ".join(active.split()) + (" " + r.stderr.strip() if r.returncode else ""),
        )
        sent = rec.wait_for(before + 1, 60)
        detail = f"{len(rec.accepted) - before} message(s)"
        if not sent:
            detail += "\n" + box.sh("journalctl -u feedbot --no-pager -o cat | tail -n 30").stdout
        check("on PostgreSQL: a digest reaches the receiver", sent, detail)
        shown = box.sh("journalctl -u feedbot --no-pager -o cat; systemctl status feedbot --no-pager").stdout
        check(
            "on PostgreSQL: the database named, its password nowhere in the journal or the status",
            f"127.0.0.1:{pg.port}" in shown and PG_PASSWORD not in shown,
            f"{shown.count(PG_PASSWORD)} occurrence(s)",
        )
        box.sh("systemctl stop feedbot")
    finally:
        pg.stop()


def finish() -> int:
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"nspawn: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
