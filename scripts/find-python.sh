#!/usr/bin/env bash
# Print the Python that RemoveAny's virtualenvs are made with: $PYTHON if set, else the newest
# python3.x (3.11 or newer) on PATH. Shared by bootstrap.sh and lock.sh, so the constraints are
# resolved with the interpreter the installs use.
set -euo pipefail
if [ -n "${PYTHON:-}" ]; then
  echo "$PYTHON"; exit 0
fi
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "$candidate"; exit 0
  fi
done
echo "RemoveAny needs Python 3.11 or newer." >&2
exit 1
