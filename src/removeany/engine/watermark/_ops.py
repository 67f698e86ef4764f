"""Small numeric helpers shared by detection, estimation and restoration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, cast

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
Bool = npt.NDArray[np.bool_]


def luma(img: F32) -> F32:
    """Rec.601 luminance of an HxWx3 float image."""
    out = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return np.asarray(out, np.float32)


def to_u8(img: npt.NDArray[np.floating] | F32) -> U8:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


FloatArray = TypeVar("FloatArray", bound=npt.NDArray[np.floating])


def stack_median(stack: Sequence[FloatArray] | FloatArray) -> FloatArray:
    """The median over the first axis of a small float stack (a batch's photos, or maps of
    them: at most a dozen), equal to ``np.median(stack, axis=0)``. Sorted by compare and swap
    (odd-even transposition) instead of partitioned along a strided axis: several times
    faster for a few large arrays."""
    values = [np.array(x, copy=True) for x in stack]
    k = len(values)
    for sweep in range(k):
        for i in range(sweep % 2, k - 1, 2):
            low = np.minimum(values[i], values[i + 1])
            np.maximum(values[i], values[i + 1], out=values[i + 1])
            values[i] = low
    middle = values[k // 2]
    if k % 2 == 0:
        middle = (values[k // 2 - 1] + middle) / 2
    return cast(FloatArray, middle)


def ellipse(size: int) -> U8:
    size = max(1, int(size))
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), np.uint8)


def dilate(mask: Bool, radius: int) -> Bool:
    if radius <= 0:
        return mask.copy()
    out = cv2.dilate(mask.astype(np.uint8), ellipse(2 * radius + 1))
    return np.asarray(out, bool)


def erode(mask: Bool, radius: int) -> Bool:
    if radius <= 0:
        return mask.copy()
    out = cv2.erode(mask.astype(np.uint8), ellipse(2 * radius + 1))
    return np.asarray(out, bool)


def inpaint(img: F32, mask: Bool, radius: int = 3, *, method: str = "telea") -> F32:
    """OpenCV inpainting of ``mask`` pixels of a float HxWx3 image (0..255).

    Worked on the mask's box: OpenCV reads no pixel further than ``radius`` + 2 from the
    mask, so the box padded by twice that gives the same pixels as the whole image, at a
    fraction of the cost when the mask is small."""
    box = bbox(mask, 2 * radius + 4, mask.shape)
    res = img.copy()
    if box is None:
        return res
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    part = mask[box]
    out = cv2.inpaint(to_u8(img[box]), part.astype(np.uint8), radius, flag)
    res[box][part] = out[part].astype(np.float32)
    return res


def box_blur(x: F32, radius: int) -> F32:
    k = 2 * radius + 1
    return np.asarray(cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT), np.float32)


def guided_filter(guide: F32, src: F32, radius: int, eps: float) -> F32:
    """Grey-guide guided filter (He et al.), edge-preserving smoothing of ``src``."""
    mean_i = box_blur(guide, radius)
    mean_p = box_blur(src, radius)
    corr_ip = box_blur(guide * src, radius)
    var_i = box_blur(guide * guide, radius) - mean_i * mean_i
    a = np.asarray((corr_ip - mean_i * mean_p) / (var_i + eps), np.float32)
    b = np.asarray(mean_p - a * mean_i, np.float32)
    out = box_blur(a, radius) * guide + box_blur(b, radius)
    return np.asarray(out, np.float32)


def bbox(mask: Bool, pad: int, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = shape
    y0 = max(int(rows[0]) - pad, 0)
    y1 = min(int(rows[-1]) + pad + 1, h)
    x0 = max(int(cols[0]) - pad, 0)
    x1 = min(int(cols[-1]) + pad + 1, w)
    return slice(y0, y1), slice(x0, x1)


def sobel_xy(img: F32) -> tuple[F32, F32]:
    """3x3 Sobel gradients (x, y) of a plane, or of an HxWx3 image's luminance."""
    y = np.ascontiguousarray(luma(img) if img.ndim == 3 else img, np.float32)
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(gx, np.float32), np.asarray(gy, np.float32)


def grad_map(img: F32) -> F32:
    """Per-pixel absolute luminance gradient (forward differences, x plus y)."""
    y = luma(img) if img.ndim == 3 else img
    gx = np.abs(np.diff(y, axis=1, append=y[:, -1:]))
    gy = np.abs(np.diff(y, axis=0, append=y[-1:, :]))
    return np.asarray(gx + gy, np.float32)


def grad_energy(img: F32, mask: Bool) -> float:
    """Sum of absolute luminance gradients over ``mask`` (a total-variation measure)."""
    return float(grad_map(img)[mask].sum())
