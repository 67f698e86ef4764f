"""Install-time download of the default model weights (the runtime never downloads).

Usage: python scripts/fetch_models.py [MODEL_DIR]   (default: $REMOVEANY_MODEL_DIR or the venv)
"""

from __future__ import annotations

import sys
from pathlib import Path

from removeany.engine.errors import ModelError
from removeany.engine.models import DEFAULT_MODELS, default_model_dir, fetch_model
from removeany.engine.watermark import WATERMARK_MODELS


def main(argv: list[str]) -> int:
    model_dir = Path(argv[0]) if argv else default_model_dir()
    for spec in (*DEFAULT_MODELS, *WATERMARK_MODELS):
        try:
            print(f"{spec.name}: {fetch_model(spec, model_dir)}")
        except ModelError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
