"""Fixtures the engine's tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from removeany.engine.models import default_model_dir, fetch_model
from removeany.engine.watermark import TEXT_DETECTOR, TextDetector, load_text_detector


@pytest.fixture(scope="session")
def detector() -> TextDetector:
    """The installed text detector (fetched first if it is missing, verified by hash)."""
    target = Path(os.environ.get("REMOVEANY_MODEL_DIR", default_model_dir()))
    fetch_model(TEXT_DETECTOR, target)
    det = load_text_detector(target)
    assert det is not None
    return det
