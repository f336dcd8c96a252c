"""The ``[state]`` and ``[metrics]`` tables, and what a database URL may
show of itself (its password never)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.config.reading import Reader
from bot.config.values import _keys, _nonempty_str
from bot.secrets import Secret


@dataclass(frozen=True)
class StateSettings:
    # PostgreSQL, shared by several instances ("postgresql://user@host/db");
    # None: SQLite in state_dir.  A credential when it holds a password.
    url: Secret | None = None


@dataclass(frozen=True)
class MetricsSettings:
    listen: tuple[str, int] | None = None  # Prometheus metrics on this address; None: none


def read_state(r: Reader, data: Any) -> StateSettings:
    t = r.table(data, "state", {"url", "url_file"})
    url = r.secret_value(t, "state", "url", "url_file", required=False)
    if url is not None and url.reveal():
        try:
            _database_url(url.reveal())
        except ValueError as exc:
            r.problem("state.url" if "url" in t else "state.url_file", str(exc))
            return StateSettings()
    return StateSettings(url=url)


def read_metrics(r: Reader, data: Any) -> MetricsSettings:
    t = r.table(data, "metrics", _keys(MetricsSettings))
    return MetricsSettings(listen=r.get(t, "listen", "metrics.listen", _listen, None))


LIBPQ_READS_OTHERWISE = (
    "is read one way by libpq (PostgreSQL's client library) and another by feedbot: an '@', '/', '?' or '#'"
    " in the user name or password must be written percent-encoded (percent-encode it: @ as %40, / as %2F,"
    " ? as %3F, # as %23), or the password left out of the URL and given in a file (~/.pgpass, PGPASSFILE;"
    " the whole URL can be a root-only url_file or a systemd credential)"
)


def database_url_problem(url: str) -> str | None:
    """Why libpq would read ``url``'s user part otherwise than feedbot, or None.

    libpq ends the user part at the first "@" (and looks no further than
    the first "/"); a URL reader at the last "@" of the authority, which
    ends at the first "/", "?" or "#".  With an unencoded "@" in the
    password, libpq took the rest of the password for the host name, then
    printed it and asked DNS about it (issue 24).  The message quotes
    nothing of the URL."""
    rest = url.split("://", 1)[-1]
    stop = re.search(r"[@/]", rest)
    libpq = rest[: stop.start()] if stop is not None and stop.group() == "@" else None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    ours = authority.rpartition("@")[0] if "@" in authority else None
    # A "/" in the password puts the rest of it, and the host, in the path.
    path = rest[len(authority) :].split("?", 1)[0]
    if libpq != ours or "@" in path:
        return LIBPQ_READS_OTHERWISE
    return None


def _database_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL (leave it out for SQLite in state_dir)")
    problem = database_url_problem(v)
    if problem is not None:
        raise ValueError(problem)
    from psycopg.conninfo import conninfo_to_dict  # libpq's own reading of it: here, not at every start-up

    try:
        conninfo_to_dict(v)
    except Exception as exc:  # libpq echoes the part it cannot read: the password out
        said = " ".join(str(exc).split())
        for secret in password_forms(v):
            said = said.replace(secret, "<password>")
        raise ValueError(f"is not a URL libpq can read ({said[:200]})") from None
    return v


def password_forms(url: str) -> list[str]:
    """The password of a database URL as it may appear in a message: raw
    and decoded, from the user part or a ``password=`` parameter."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        found.update(v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password" and v)
        raw = parts.netloc.rpartition("@")[0].partition(":")[2]
        if raw:
            found.add(raw)
    except ValueError:
        pass
    found |= {unquote(x) for x in found}
    return sorted((x for x in found if len(x) >= 3), key=len, reverse=True)


def database_shown(url: str) -> str:
    """A database URL fit to show: the password out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "postgresql://<unreadable URL>"
    user = f"{parts.username}@" if parts.username else ""
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}{query}"


def _listen(v: Any) -> tuple[str, int]:
    s = _nonempty_str(v)
    host, sep, port = s.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{s!r} is not "host:port" (e.g. "127.0.0.1:9464")')
    return host, int(port)
