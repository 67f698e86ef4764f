"""Script entry point: ``python benchmarks/cutout/run.py --pipeline NAME --data DIR``."""

import sys
from pathlib import Path

_repo = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_repo), str(_repo / "src")]

from benchmarks.cutout.core import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
