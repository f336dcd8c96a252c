"""The one error hierarchy of feedbot.

    FeedbotError
    ├── ConfigError      the config file cannot be read or is invalid (exit 2)
    ├── FetchError       an HTTP fetch failed (feed, article page)
    ├── ParseError       a feed document could not be turned into entries
    ├── DiscoveryError   no feed found at an address given to ``feedbot add``
    ├── UsageError       a request the user can fix: a duplicate feed, a bad option (exit 2)
    ├── StateError       the state database cannot be opened or used
    │   └── LeaseLost    another instance took over the digest lease: stop quietly
    ├── DeliveryError    a webhook did not accept a message
    └── WorkerError      a parse or extraction was stopped at its limits

Expected failures carry a one-sentence message meant for the user; the CLI
prints it without a traceback.  Messages never contain a secret (webhook URLs
are shown redacted, see ``bot.secrets``).
"""

from __future__ import annotations

from typing import Literal

# Whose fault a permanent refusal is (``DeliveryError.refused``).
Refused = Literal["message", "webhook"]


class FeedbotError(Exception):
    """Base of every error feedbot raises on purpose."""


class ConfigError(FeedbotError):
    """The configuration is invalid; ``problems`` lists every one found."""

    def __init__(self, problems: list[str], source: str = "config", unreadable_secrets: int = 0) -> None:
        self.problems = list(problems)
        self.source = source
        self.unreadable_secrets = unreadable_secrets  # of the problems: a secret not readable here
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


class LeaseLost(StateError):
    """This instance lost the lease it built or delivered digests under
    (it was stopped, or cut off from the database, for longer than the
    lease): another instance holds it now.  Not a failure of anything: the
    work is the holder's; this one stops it, with a warning."""


class DeliveryError(FeedbotError):
    """A webhook did not accept a message."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        maybe_sent: bool = False,
        refused: Refused | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        # A refusal for good (not retryable): of this one message, which is
        # set aside while the queue goes on, or of the webhook itself (its
        # URL, token, rights or destination), which holds the whole queue.
        self.refused = refused
        # No complete answer within the delivery deadline: tried again by the
        # queue's backoff, not at once (a run costs one deadline at most).
        self.timed_out = timed_out
        self.retry_after = retry_after  # seconds the server asked us to wait
        # The request may have reached the platform and been posted (a
        # timeout, a connection broken mid-exchange, a 5xx): sending it again
        # may make a copy, and is counted.
        self.maybe_sent = maybe_sent


class WorkerError(FeedbotError):
    """A task in a worker process was stopped: over its CPU time, wall
    time or memory, or its worker died (``bot.workers``)."""


class Declined(FeedbotError):
    """Raised by a task's in-process variant (``Workers.run(inline=…)``)
    for an input it leaves to a worker: one that needs a parser or a
    detector the service's own process has not imported."""
