"""TLS contexts, made when a run first needs one (issue 27).

Building a verifying context loads a CA store: ~50 ms each on this kind of
machine.  A poll of plain-HTTP feeds needs none, so none is built for it:

- ``context()`` is the one context of every TLS connection feedbot makes
  (httpx's ``create_ssl_context()``: the same CA store and settings as
  always), built on the first HTTPS request (``bot.transport``) and kept
  for the process.
- aiohttp builds two default contexts when ``aiohttp.connector`` is
  imported (the system's CA store, twice), for connections given no
  context of their own.  feedbot gives every TLS connection its own
  (``bot.transport`` passes ``context()`` with each HTTPS request), so
  ``defer_aiohttp_defaults`` (installed by ``bot/__init__.py``, before
  anything imports aiohttp) lets that module import without loading a CA
  store into them.  A connection that used aiohttp's verifying default
  would then trust no certificate at all: it fails closed, never open.
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

_AIOHTTP_CONNECTOR = "aiohttp.connector"


@functools.lru_cache(maxsize=1)
def context() -> ssl.SSLContext:
    """The context of every HTTPS connection: built once per process, on first use."""
    import httpx

    return httpx.create_ssl_context()


@contextmanager
def _no_default_verify_paths() -> Iterator[None]:
    """``SSLContext.set_default_verify_paths`` (what loads the system's CA
    store into a default context) does nothing, for the time of one import."""
    import ssl

    own = ssl.SSLContext.__dict__.get("set_default_verify_paths")

    def skipped(self: ssl.SSLContext) -> None:
        return None

    ssl.SSLContext.set_default_verify_paths = skipped  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del ssl.SSLContext.set_default_verify_paths
        else:
            ssl.SSLContext.set_default_verify_paths = own  # type: ignore[method-assign]


class _ConnectorLoader(importlib.machinery.SourceFileLoader):
    """aiohttp.connector's own loader, executing the module without loading CA stores."""

    def exec_module(self, module: ModuleType) -> None:
        with _no_default_verify_paths():
            super().exec_module(module)


class _ConnectorFinder:
    """A meta-path finder for ``aiohttp.connector`` alone."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if name != _AIOHTTP_CONNECTOR:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        loader = spec.loader if spec is not None else None
        # Only the plain source (or cached bytecode) loader is wrapped: any
        # other way of loading the module is left as it is.
        if spec is not None and type(loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _ConnectorLoader(loader.name, loader.path)
        return spec


def defer_aiohttp_defaults() -> None:
    """Install the finder (once; nothing if aiohttp is imported already)."""
    if _AIOHTTP_CONNECTOR in sys.modules:
        return
    if not any(isinstance(f, type) and f is _ConnectorFinder for f in sys.meta_path):
        sys.meta_path.insert(0, _ConnectorFinder)
