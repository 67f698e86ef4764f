"""Alpha-matte quality metrics (all inputs float32 in [0, 1], same shape)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]


def iou(pred: F32, gt: F32, threshold: float = 0.5) -> float:
    p = pred >= threshold
    g = gt >= threshold
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


def mae(pred: F32, gt: F32) -> float:
    return float(np.mean(np.abs(pred - gt)))


def sad(pred: F32, gt: F32) -> float:
    """Sum of absolute differences, in thousands (alphamatting.com convention)."""
    return float(np.sum(np.abs(pred - gt)) / 1000.0)


def _gauss_gradient(a: F32, sigma: float = 1.4) -> F32:
    ksize = int(2 * np.ceil(3 * sigma) + 1)
    sm = cv2.GaussianBlur(a, (ksize, ksize), sigma)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.asarray(np.sqrt(gx * gx + gy * gy), np.float32)


def gradient_error(pred: F32, gt: F32) -> float:
    """Sum of squared differences of Gaussian-smoothed gradient magnitudes, in thousands."""
    d = _gauss_gradient(pred) - _gauss_gradient(gt)
    return float(np.sum(d * d) / 1000.0)


def all_metrics(pred: F32, gt: F32) -> dict[str, float]:
    return {
        "iou": iou(pred, gt),
        "mae": mae(pred, gt),
        "sad": sad(pred, gt),
        "grad": gradient_error(pred, gt),
    }
