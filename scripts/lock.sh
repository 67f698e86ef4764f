#!/usr/bin/env bash
# Refresh constraints.txt, the exact versions scripts/bootstrap.sh installs: resolve
# pyproject.toml (the package with its dev extra, its build backend, and pip) afresh in a new
# temporary virtualenv and pin every package of that resolution. It resolves from PyPI alone,
# ignoring this machine's pip configuration (local mirrors, find-links, caps), so the pins are
# ones a clean clone anywhere can install. Upgrading dependencies = run this, `make test`, commit.
# Usage: scripts/lock.sh   (PYTHON=python3.x to resolve for another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="$(scripts/find-python.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python_bin" -m venv "$work/venv"
pip=(env PIP_CONFIG_FILE=/dev/null "$work/venv/bin/python" -m pip --isolated)
"${pip[@]}" install --quiet --upgrade pip
mapfile -t build_requires < <("$work/venv/bin/python" -c \
  'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")')
"${pip[@]}" install --quiet --dry-run --ignore-installed --report "$work/resolved.json" \
  pip "${build_requires[@]}" -e ".[dev]"

"$work/venv/bin/python" - "$work/resolved.json" > "$work/constraints.txt" <<'PY'
import json
import platform
import re
import sys

report = json.load(open(sys.argv[1]))
pins = sorted(
    (re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(), item["metadata"]["version"])
    for item in report["install"]
    if not item["is_direct"]  # the project itself, installed from this checkout
)
print(f"""\
# Exact versions of everything `pip install -e ".[dev]"` installs, plus pip and the build backend.
# scripts/bootstrap.sh installs with it (pip --constraint and --build-constraint), so every install
# gets the versions CI tested. Written by scripts/lock.sh (resolved from PyPI with CPython
# {platform.python_version()} on {platform.system()} {platform.machine()}); do not edit by hand.""")
for name, version in pins:
    print(f"{name}=={version}")
PY
mv "$work/constraints.txt" constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pins; now run make test and commit it."
