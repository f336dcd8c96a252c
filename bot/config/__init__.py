"""Reading ``config.toml`` into frozen objects.

The config is parsed once, when a command starts, and every problem found is
collected with its key path so that ``feedbot check`` can list them all at
once, each with its line in the file and the feed's name, the value it
refused and, for a misspelt key, the key meant
(``config.toml:12: feeds[2] ("NHK").url: not an http(s) URL: 'ftp://x'``).
Defaults live here and nowhere else.  Unknown keys are problems too: a
misspelt key silently ignored is a setting the user believes in but does
not have.

One module per table family, each with its records and their reading:

* ``feeds``: ``[[feeds]]``, ``[[topics]]``, ``[[labels]]``;
* ``webhooks``: the ``Webhook`` record (the kinds import it, and nothing
  of the reader);
* ``schedule``: ``[schedule]``, ``[poll]``, ``[digest]``;
* ``state``: ``[state]``, ``[metrics]`` and what a database URL may show;
* ``digests``: ``[[digests]]``, the digests an installation makes;
* ``record``: the ``Config`` record of the whole file;
* ``reader``: the entry points, and the ``[[webhooks]]`` tables, checked by
  their kinds;
* ``reading`` and ``values``: the walk of the data and the value checkers
  the families share.

This package re-exports the public names; its modules import one another,
never this package.
"""

from bot.config.digests import DigestSpec
from bot.config.feeds import (
    BODY_MODES,
    DEFAULT_HEADLINE,
    HEADLINE_FIELDS,
    Feed,
    LabelRule,
    Topic,
    feed_table_problems,
    feed_url_problem,
)
from bot.config.reader import config_from_data, load_config, parse_config, readable_config
from bot.config.record import Config
from bot.config.schedule import DEFAULT_USER_AGENT, DigestSettings, PollSettings, Schedule
from bot.config.state import (
    LIBPQ_READS_OTHERWISE,
    MetricsSettings,
    StateSettings,
    database_shown,
    database_url_problem,
    password_forms,
)
from bot.config.values import parse_duration
from bot.config.webhooks import Webhook

__all__ = [
    "BODY_MODES",
    "DEFAULT_HEADLINE",
    "DEFAULT_USER_AGENT",
    "HEADLINE_FIELDS",
    "LIBPQ_READS_OTHERWISE",
    "Config",
    "DigestSettings",
    "DigestSpec",
    "Feed",
    "LabelRule",
    "MetricsSettings",
    "PollSettings",
    "Schedule",
    "StateSettings",
    "Topic",
    "Webhook",
    "config_from_data",
    "database_shown",
    "database_url_problem",
    "feed_table_problems",
    "feed_url_problem",
    "load_config",
    "parse_config",
    "parse_duration",
    "password_forms",
    "readable_config",
]
