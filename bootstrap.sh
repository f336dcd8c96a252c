#!/usr/bin/env bash
# Set up feedbot in ./.venv on a fresh Debian machine and run it.
#
#   bash bootstrap.sh run    set up, then `feedbot run` on ./config.toml
#   bash bootstrap.sh test   set up with the test tools, then run the whole test suite
#
# Installs what is missing: Python's venv module (and, for the tests,
# openssl, the PostgreSQL server, and Node.js with the platforms' parsers
# that the rendering tests ask) with apt-get and npm, as root or with sudo; a virtual environment; and
# the pinned dependencies from pyproject.toml.  Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-}"
case "$mode" in
  run|test) ;;
  *) echo "usage: bash bootstrap.sh run|test" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq python3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "feedbot needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # Debian splits venv and ensurepip out of the python3 package.
  as_root apt-get update -qq
  as_root apt-get install -y -qq python3-venv
fi

if [ "$mode" = test ] && ! command -v openssl >/dev/null 2>&1; then
  # tests/test_http.py makes a throwaway certificate to test HTTPS.
  as_root apt-get update -qq
  as_root apt-get install -y -qq openssl
fi
if [ "$mode" = test ] && ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  # The state's contract suite and the multi-instance tests start their own
  # PostgreSQL server (bot/pgserver.py: initdb and pg_ctl in a temporary folder).
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

if [ "$mode" = test ]; then
  # The platforms' own parsers, the oracles of tests/test_render_oracles.py
  # (mfm-js, discord-markdown-parser, markdown-it, slack-markdown,
  # twitter-text), pinned in tests/oracles/package-lock.json.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  if [ ! -d tests/oracles/node_modules ] || [ tests/oracles/package-lock.json -nt tests/oracles/node_modules ]; then
    (cd tests/oracles && npm ci --silent --no-audit --no-fund)
    touch tests/oracles/node_modules
  fi
  export FEEDBOT_REQUIRE_ORACLES=1  # the oracle tests fail, not skip, without them
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras=""
[ "$mode" = test ] && extras="[test]"
stamp=".venv/.installed-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
  touch "$stamp"
fi

if [ "$mode" = run ]; then
  exec .venv/bin/feedbot --config "${FEEDBOT_CONFIG:-config.toml}" run
fi
exec .venv/bin/python -m pytest "${@:2}"
