"""Evaluation photographs: where they are, how to load a pair, how to score a mask."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

EVAL_DIR = Path(
    os.environ.get("REMOVEANY_EVAL_DIR", Path(__file__).resolve().parents[3] / "shared" / "eval")
)


def require_eval_dir() -> Path:
    if not (EVAL_DIR / "object").is_dir():
        pytest.skip(f"evaluation images not found under {EVAL_DIR}; set REMOVEANY_EVAL_DIR")
    return EVAL_DIR


def photo_path(group: str, name: str) -> Path:
    for suffix in (".jpg", ".png"):
        path = require_eval_dir() / group / f"{name}{suffix}"
        if path.exists():
            return path
    pytest.skip(f"evaluation image {group}/{name} not found under {EVAL_DIR}")


def kodak_crops(n: int, size: int) -> list[NDArray[np.uint8]]:
    """The first ``n`` Kodak photos of the clean set, each centre-cropped to ``size`` square."""
    paths = sorted((EVAL_DIR / "clean").glob("kodak*")) if EVAL_DIR.is_dir() else []
    if len(paths) < n:
        pytest.skip(f"evaluation images not found under {EVAL_DIR}; set REMOVEANY_EVAL_DIR")
    crops = []
    for path in paths[:n]:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        y, x = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
        crops.append(np.ascontiguousarray(arr[y : y + size, x : x + size]))
    return crops


def psnr(
    a: NDArray[np.uint8], b: NDArray[np.uint8], region: NDArray[np.bool_] | None = None
) -> float:
    """PSNR in dB of ``b`` against ``a`` (within ``region``); 99 for identical pixels."""
    d = a.astype(np.float64) - b.astype(np.float64)
    if region is not None:
        d = d[region]
    mse = float(np.mean(d * d))
    return 99.0 if mse < 1e-10 else float(10 * np.log10(255.0**2 / mse))


def load_pair(group: str, name: str) -> tuple[Image.Image, NDArray[np.bool_]]:
    """An evaluation photo and its ground-truth foreground mask (alpha >= 128)."""
    photo = photo_path(group, name)
    with Image.open(photo) as im:
        image = im.convert("RGB")
    with Image.open(photo.with_name(f"{name}.alpha.png")) as gt:
        mask = np.asarray(gt.convert("L")) >= 128
    return image, mask


def all_pairs() -> list[tuple[str, str]]:
    """(group, name) of every object and portrait pair present."""
    root = require_eval_dir()
    return [
        (group, alpha.name.removesuffix(".alpha.png"))
        for group in ("object", "portrait")
        for alpha in sorted((root / group).glob("*.alpha.png"))
    ]


def iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float((a & b).sum() / max(int((a | b).sum()), 1))


def peak_rss_mb(code: str) -> float:
    """Run ``code`` in a fresh interpreter and return its peak resident memory in MB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec."""
    probe = (
        textwrap.dedent(code)
        + '\nprint(int([l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]'
        + ".split()[1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1]) / 1024
