"""``python -m bot`` is the ``feedbot`` command."""

from bot.cli import entry

if __name__ == "__main__":  # not when a worker process imports it (bot/workers.py)
    raise SystemExit(entry())
