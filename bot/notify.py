"""The sd_notify protocol, with the standard library.

systemd (``Type=notify``) hands the service a datagram socket in
``$NOTIFY_SOCKET``; the service writes newline-separated ``KEY=value``
assignments to it: ``READY=1`` when it is up, ``STATUS=…`` for ``systemctl
status``, ``WATCHDOG=1`` to prove the loop is alive, ``RELOADING=1`` with
``MONOTONIC_USEC=…`` around a reload, ``STOPPING=1`` on the way out.  The
protocol is a few lines (sd_notify(3)); the PyPI wrappers are unmaintained.

Without ``$NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: a NUL byte then the name.
        self.address: str | None = ("\0" + address[1:]) if address.startswith("@") else (address or None)
        self.watchdog_seconds = self._watchdog(env)

    @staticmethod
    def _watchdog(env: Mapping[str, str]) -> float | None:
        """The watchdog interval, when it is meant for this process."""
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one notification; False if there is no socket or it failed."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError:
            return False  # systemd gone or not listening: nothing to do about it
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def reloading(self) -> bool:
        # systemd ≥ 253 wants the monotonic time of the reload with it.
        return self.send(RELOADING="1", MONOTONIC_USEC=str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000))

    def stopping(self) -> bool:
        return self.send(STOPPING="1", STATUS="stopping")
