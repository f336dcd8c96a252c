"""The shipped unit: systemd-analyze verify is silent, security exposure ≤ 1.5."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "systemd" / "feedbot.service"


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return found


def test_verify_prints_nothing(tmp_path: Path) -> None:
    # The unit names the installed venv; point it at this one for the check.
    feedbot = Path(sys.executable).with_name("feedbot")
    if not feedbot.exists():
        pytest.skip("the feedbot console script is not installed next to this Python")
    unit = tmp_path / "feedbot.service"
    unit.write_text(UNIT.read_text().replace("/opt/feedbot/.venv/bin/feedbot", str(feedbot)))
    r = subprocess.run([_analyze(), "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_security_exposure_is_low() -> None:
    r = subprocess.run(
        [_analyze(), "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True, text=True
    )
    m = re.search(r"Overall exposure level for feedbot\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"\nsystemd-analyze security --offline=true: exposure {m.group(1)}")
    assert float(m.group(1)) <= 1.5


def test_every_directive_is_commented() -> None:
    lines = UNIT.read_text().splitlines()
    for n, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Za-z]+=", line) and not line.startswith(("Description=", "Documentation=")):
            above = lines[n - 1] if n else ""
            assert above.startswith("#") or re.match(r"^[A-Z][A-Za-z]+=", above), f"line {n + 1}: {line}"


def test_hardening_the_issue_asks_for() -> None:
    text = UNIT.read_text()
    for directive in (
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "DynamicUser=yes",
        "StateDirectory=",
        "ProtectSystem=strict",
        "ProtectHome=",
        "PrivateTmp=",
        "PrivateDevices=",
        "NoNewPrivileges=",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=",
        "LoadCredential=",
        "Restart=on-failure",
    ):
        assert directive in text, directive
