"""Pipeline steps measured on the way to the shipped pipeline (kept for the record).

Each builds on the engine's own pieces so the table shows what one step buys:
``+flip`` (horizontal-flip test-time augmentation), ``+refine`` (guided-filter refinement at
full resolution instead of bicubic upscaling), ``+crop`` (second pass on the subject crop),
``+grabcut`` (colour-model region growing seeded by the mask; measured and dropped: it
lowers IoU), ``sq384`` (model run at 384x384 with a dynamic-shape copy; not shipped).
"""

from __future__ import annotations

import cv2
import numpy as np
from benchmarks.cutout.pipelines import pipeline
from numpy.typing import NDArray
from PIL import Image

from removeany.engine import matting
from removeany.engine.background import postprocess_alpha, preprocess, run_model
from removeany.engine.models import get_model, load_session

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]


def _low(rgb: U8, flip: bool = False) -> F32:
    spec = get_model("u2netp")
    session = load_session("u2netp")
    x = preprocess(Image.fromarray(rgb), spec)
    p = postprocess_alpha(run_model(session, x))
    if flip:
        q = postprocess_alpha(run_model(session, np.ascontiguousarray(x[..., ::-1])))
        p = (p + q[:, ::-1]) / 2
    return p


def _up(p: F32, rgb: U8) -> F32:
    h, w = rgb.shape[:2]
    return np.clip(cv2.resize(p, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def _grabcut(rgb: U8, p: F32, side: int = 400, iters: int = 4) -> F32:
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    ps = cv2.resize(p, (sw, sh), interpolation=cv2.INTER_AREA)
    mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    mask[ps >= 0.5] = cv2.GC_PR_FGD
    k = np.ones((5, 5), np.uint8)
    mask[cv2.erode((ps >= 0.9).astype(np.uint8), k) > 0] = cv2.GC_FGD
    if not (mask != cv2.GC_PR_BGD).any():
        return p
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(img, mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
    return 0.5 * cv2.resize(ps, (320, 320)) + 0.5 * cv2.resize(fg, (320, 320))


@pipeline("+flip", "engine model pass + horizontal-flip TTA, bicubic upscale")
def flip(rgb: U8) -> F32:
    return _up(_low(rgb, flip=True), rgb)


@pipeline("+refine", "engine model pass + guided-filter refinement (matting.refine_alpha)")
def refine(rgb: U8) -> F32:
    return matting.refine_alpha(rgb, _low(rgb))


@pipeline("+flip+refine", "flip TTA + guided-filter refinement")
def flip_refine(rgb: U8) -> F32:
    return matting.refine_alpha(rgb, _low(rgb, flip=True))


@pipeline("+grabcut", "model pass + GrabCut region growing (dropped)")
def grabcut(rgb: U8) -> F32:
    return _up(_grabcut(rgb, _up(_low(rgb), rgb)), rgb)
