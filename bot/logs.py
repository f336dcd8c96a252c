"""Logging set-up: one readable line per event, never a secret.

Under systemd (``JOURNAL_STREAM`` names our stderr) the journal adds its own
timestamps, so lines carry a ``<N>`` syslog priority prefix instead.

A log line quotes what servers and feeds wrote (links, titles, errors), so
control characters in a message are shown escaped (``\\n``, ``\\x1b``):
a newline in a link would otherwise start a journal record of its own, at a
priority of the feed's choosing, and an escape sequence would reach the
terminal of whoever reads the log.  A traceback keeps its lines, each with
the record's priority.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from bot.secrets import Scrubber
from bot.text import escape_controls

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _SafeFormatter(logging.Formatter):
    """The message escaped; a traceback's lines each prefixed by ``prefix``."""

    def __init__(self, fmt: str, datefmt: str | None = None, journal: bool = False) -> None:
        super().__init__(fmt, datefmt)
        self.journal = journal

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(_logfmt(record))
        if not self.journal:
            return text
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


# A ``key=%s`` placeholder of a log message: its value is quoted as logfmt
# quotes it when it holds a space, a quote or an equals sign, so that
# ``feed="例新聞 国際" status=ok`` reads as two fields, not three.
_DIRECTIVE = re.compile(r"%(?:\((?P<name>\w+)\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?(?P<conv>[diouxXeEfFgGcrsa%])")
_NEEDS_QUOTES = re.compile(r'[\s"=]|^$')


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def logfmt(value: str) -> str:
    """``value`` as a logfmt field value: quoted when it holds a space, a
    quote or an equals sign (or is empty)."""
    return _quoted(value) if _NEEDS_QUOTES.search(value) else value


def _logfmt(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose ``key=%s`` values are quoted where needed."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple) or not record.args:
        return record
    args, n, changed = list(record.args), 0, False
    for m in _DIRECTIVE.finditer(record.msg):
        if m.group("conv") == "%":
            continue
        if n >= len(args):
            return record  # not ours to judge: logging reports the mismatch
        after_key = record.msg[: m.start()].endswith("=") and record.msg[m.start() - 2 : m.start() - 1].isalnum()
        if m.group("conv") == "s" and after_key:
            text = str(args[n])
            field = logfmt(text)
            if field != text:
                args[n], changed = field, True
        n += 1
    if not changed:
        return record
    copy = logging.makeLogRecord(record.__dict__)
    copy.args = tuple(args)
    return copy


def _under_journal() -> bool:
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream or ":" not in stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    dev, _, ino = stream.partition(":")
    return f"{st.st_dev}" == dev and f"{st.st_ino}" == ino


def setup(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if _under_journal():
        handler.setFormatter(_SafeFormatter("%(name)s: %(message)s", journal=True))
    else:
        # ISO 8601 with the offset: host time, labelled (status and list
        # show the config's zone, named).
        handler.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # feedbot's own DEBUG (-v: every request, page and delivery) is not
    # every library's (asyncio's selector, psycopg's statements).
    root.setLevel(max(level, logging.INFO))
    logging.getLogger("feedbot").setLevel(level)
    # APScheduler and httpx are chatty at INFO (every request, every job run);
    # trafilatura logs a page it finds no text in as an ERROR, which for
    # feedbot is an item without a body, not a fault.
    for noisy in ("apscheduler", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for quiet in ("trafilatura", "htmldate", "courlan", "justext"):
        logging.getLogger(quiet).setLevel(logging.CRITICAL)


class _Redactor(logging.Filter):
    """Last line of defence: a secret that reached a log record anyway (an
    exception message quoting a URL, say) is replaced before output."""

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__()
        self.scrub = Scrubber(secrets)  # percent-encoded forms too

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        scrubbed = self.scrub(text)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        return True


def redact(secrets: dict[str, str]) -> None:
    """Replace each secret (key) with its shown form (value) in every log line."""
    secrets = {k: v for k, v in secrets.items() if k}
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _Redactor)]:
            handler.removeFilter(old)
        if secrets:
            handler.addFilter(_Redactor(secrets))
