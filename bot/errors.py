"""The one error hierarchy of feedbot.

    FeedbotError
    ├── ConfigError      the config file cannot be read or is invalid (exit 2)
    ├── FetchError       an HTTP fetch failed (feed, article page)
    ├── ParseError       a feed document could not be turned into entries
    ├── DiscoveryError   no feed found at an address given to ``feedbot add``
    ├── UsageError       a request the user can fix: a duplicate feed, a bad option (exit 2)
    ├── StateError       the SQLite state cannot be opened or used
    ├── DeliveryError    a webhook did not accept a message
    └── WorkerError      a parse or extraction was stopped at its limits

Expected failures carry a one-sentence message meant for the user; the CLI
prints it without a traceback.  Messages never contain a secret (webhook URLs
are shown redacted, see ``bot.secrets``).
"""

from __future__ import annotations


class FeedbotError(Exception):
    """Base of every error feedbot raises on purpose."""


class ConfigError(FeedbotError):
    """The configuration is invalid; ``problems`` lists every one found."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        head = f"{source}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  {p}" for p in self.problems))


class FetchError(FeedbotError):
    """An HTTP request failed: transport error, bad status, too large."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait (429, 503)


class ParseError(FeedbotError):
    """A feed document could not be parsed into entries."""


class DiscoveryError(FeedbotError):
    """No feed was found at (or linked from) an address a user gave."""


class UsageError(FeedbotError):
    """A request the user can fix (a duplicate feed, a bad option): exit 2."""


class StateError(FeedbotError):
    """The state database cannot be opened, is corrupt, or is locked."""


class DeliveryError(FeedbotError):
    """A webhook did not accept a message."""

    def __init__(
        self, message: str, status: int | None = None, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait


class WorkerError(FeedbotError):
    """A task in a worker process was stopped: over its CPU time, wall
    time or memory, or its worker died (``bot.workers``)."""
