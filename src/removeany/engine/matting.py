"""Full-resolution alpha refinement: turn a coarse, low-resolution mask into a matte.

Pure numpy/OpenCV, no model. The segmentation network sees the photo at 320x320; upscaling
its output gives blurry, blocky edges that ignore the photo. Here the coarse probability map
is refined with the photo itself as guide:

1. ``fast_guided_filter`` (He et al., "Fast Guided Filter", 2015): the local linear model
   ``alpha = a . I + b`` is fitted on a subsampled copy, then the coefficients are upsampled and
   applied to the full-resolution photo. Cost and memory are dominated by the small copy.
2. A trimap from the coarse mask: confident foreground / background stay put; only the
   uncertain band around the edge takes the guided value.

The full-resolution step streams over horizontal strips, so a 24-megapixel photo never holds
more than a few full-size float planes at once (see ``refine_alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

__all__ = [
    "RefineConfig",
    "box_filter",
    "fast_guided_filter",
    "guided_coefficients",
    "refine_alpha",
    "resize_plane",
    "trimap_from_alpha",
]


@dataclass(frozen=True)
class RefineConfig:
    """Knobs of ``refine_alpha``. Radii are fractions of the image's shorter side."""

    radius_frac: float = 0.008
    eps: float = 1e-4
    work_pixels: int = 640 * 640
    band_frac: float = 0.02
    low: float = 0.08
    high: float = 0.92
    sharpen: float = 1.5
    strip_rows: int = 512


def box_filter(x: F32, r: int) -> F32:
    """Mean over a (2r+1)^2 window of each channel, edges handled by reflection."""
    k = 2 * r + 1
    out = cv2.boxFilter(x, cv2.CV_32F, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, dtype=np.float32)


def resize_plane(x: NDArray[np.generic], width: int, height: int) -> F32:
    """Resize a 2-D or HxWxC float plane; area when shrinking, bilinear when growing."""
    src = np.ascontiguousarray(x, dtype=np.float32)
    shrink = width < src.shape[1] and height < src.shape[0]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out = cv2.resize(src, (width, height), interpolation=interp)
    return np.asarray(out, dtype=np.float32)


def guided_coefficients(guide: F32, src: F32, r: int, eps: float) -> F32:
    """Coefficients (a_r, a_g, a_b, b) of the colour guided filter, box-averaged, HxWx4.

    ``guide`` is HxWx3 in [0, 1]; ``src`` HxW. Solves the 3x3 system per pixel in closed form.
    """
    h, w = src.shape
    mean_i = box_filter(np.ascontiguousarray(guide), r)
    mean_p = box_filter(src, r)
    cov_ip = np.empty((h, w, 3), np.float32)
    for c in range(3):
        cov_ip[..., c] = box_filter(guide[..., c] * src, r) - mean_i[..., c] * mean_p
    # symmetric covariance of the guide + eps * I
    var = {}
    for c1, c2 in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
        v = box_filter(guide[..., c1] * guide[..., c2], r) - mean_i[..., c1] * mean_i[..., c2]
        if c1 == c2:
            v = v + np.float32(eps)
        var[(c1, c2)] = v
    rr, rg, rb = var[(0, 0)], var[(0, 1)], var[(0, 2)]
    gg, gb, bb = var[(1, 1)], var[(1, 2)], var[(2, 2)]
    # inverse by cofactors
    i_rr = gg * bb - gb * gb
    i_rg = gb * rb - rg * bb
    i_rb = rg * gb - gg * rb
    i_gg = rr * bb - rb * rb
    i_gb = rb * rg - rr * gb
    i_bb = rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    det = np.where(np.abs(det) < 1e-12, np.float32(1e-12), det)
    cr, cg, cb = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a_r = (i_rr * cr + i_rg * cg + i_rb * cb) / det
    a_g = (i_rg * cr + i_gg * cg + i_gb * cb) / det
    a_b = (i_rb * cr + i_gb * cg + i_bb * cb) / det
    b = mean_p - a_r * mean_i[..., 0] - a_g * mean_i[..., 1] - a_b * mean_i[..., 2]
    return box_filter(np.stack([a_r, a_g, a_b, b], axis=-1).astype(np.float32, copy=False), r)


def fast_guided_filter(guide: U8 | F32, src: F32, r: int, eps: float, s: int = 1) -> F32:
    """Colour guided filter of ``src`` by ``guide`` (HxWx3, uint8 or float in [0, 1]).

    With ``s > 1`` the coefficients are computed on a copy subsampled by ``s`` and
    upsampled (the fast guided filter); ``r`` is in full-resolution pixels.
    """
    h, w = src.shape
    g = _as_unit_float(guide)
    if s > 1:
        lw, lh = max(1, w // s), max(1, h // s)
        coef = guided_coefficients(
            resize_plane(g, lw, lh), resize_plane(src, lw, lh), max(1, r // s), eps
        )
        coef = resize_plane(coef, w, h)
    else:
        coef = guided_coefficients(g, src, r, eps)
    return np.asarray(np.einsum("hwc,hwc->hw", coef[..., :3], g) + coef[..., 3], np.float32)


def trimap_from_alpha(alpha: F32, band: int, low: float = 0.08, high: float = 0.92) -> U8:
    """0 = background, 255 = foreground, 128 = unknown band of ``band`` px around the edge."""
    fg = np.asarray(alpha >= high, np.uint8)
    bg = np.asarray(alpha <= low, np.uint8)
    if band > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        fg = np.asarray(cv2.erode(fg, k), np.uint8)
        bg = np.asarray(cv2.erode(bg, k), np.uint8)
    tri = np.full(alpha.shape, 128, np.uint8)
    tri[fg > 0] = 255
    tri[bg > 0] = 0
    return tri


def _as_unit_float(img: U8 | F32) -> F32:
    if img.dtype == np.uint8:
        return np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(img, dtype=np.float32)


def refine_alpha(image: U8, coarse: F32, config: RefineConfig | None = None) -> F32:
    """Refine ``coarse`` (any resolution, values in [0, 1]) against ``image`` (HxWx3 uint8).

    Returns a float32 HxW alpha at the photo's full resolution. Memory: the guided-filter
    coefficients are fitted on a copy of at most ``work_pixels`` pixels; the full-resolution
    pass runs over strips of ``strip_rows`` rows, so peak extra memory is a few strips plus
    the output plane.
    """
    cfg = config or RefineConfig()
    h, w = image.shape[:2]
    scale = min(1.0, float(np.sqrt(cfg.work_pixels / float(h * w))))
    lw, lh = max(1, round(w * scale)), max(1, round(h * scale))
    small = _resize_u8(image, lw, lh)
    gs = _as_unit_float(small)
    ps = resize_plane(coarse, lw, lh)
    short = min(lw, lh)
    r = max(1, round(cfg.radius_frac * short))
    band = max(1, round(cfg.band_frac * short))
    coef = guided_coefficients(gs, ps, r, cfg.eps)
    tri = trimap_from_alpha(ps, band, cfg.low, cfg.high)
    # unknown-band weight, feathered so the seam between guided and coarse is invisible
    unknown = (tri == 128).astype(np.float32)
    weight = box_filter(unknown, max(1, r // 2))
    planes = np.concatenate([coef, ps[..., None], weight[..., None]], axis=-1)

    out = np.empty((h, w), np.float32)
    step = max(1, cfg.strip_rows)
    map_x = _source_coords(0, w, w, planes.shape[1])
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        chans = _upsample_rows(planes, y0, y1, h, map_x)
        a = chans[3]
        for c in range(3):
            a += chans[c] * image[y0:y1, :, c].astype(np.float32) * np.float32(1.0 / 255.0)
        wgt = chans[5]
        a = wgt * a + (1.0 - wgt) * chans[4]
        if cfg.sharpen != 1.0:
            a = (a - 0.5) * np.float32(cfg.sharpen) + 0.5
        np.clip(a, 0.0, 1.0, out=out[y0:y1])
    return out


def _resize_u8(image: U8, width: int, height: int) -> U8:
    if (width, height) == (image.shape[1], image.shape[0]):
        return image
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def _source_coords(start: int, stop: int, size: int, low: int) -> F32:
    """Low-resolution sample positions of full-resolution pixels (cv2.resize convention)."""
    pos = (np.arange(start, stop, dtype=np.float32) + 0.5) * np.float32(low / size) - 0.5
    return np.asarray(np.clip(pos, 0, low - 1), np.float32)


# cv2.remap refuses images with a side of SHRT_MAX (32767) pixels or more: a wide photo's
# strips are upsampled in pieces of at most this many columns.
_REMAP_COLUMNS = 16384


def _upsample_rows(planes: F32, y0: int, y1: int, h: int, map_x: F32) -> list[F32]:
    """Bilinear upsample of rows [y0, y1) of an h-row target, one plane per channel."""
    lh = planes.shape[0]
    ys = _source_coords(y0, y1, h, lh)
    lo = int(np.floor(ys[0]))
    hi = min(lh, int(np.floor(ys[-1])) + 2)
    map_y = np.ascontiguousarray(ys - np.float32(lo))
    pieces: list[list[F32]] = []
    for x0 in range(0, map_x.size, _REMAP_COLUMNS):
        xs = map_x[x0 : x0 + _REMAP_COLUMNS]
        left = int(np.floor(xs[0]))
        right = min(planes.shape[1], int(np.floor(xs[-1])) + 2)
        mx = np.broadcast_to((xs - np.float32(left))[None, :], (y1 - y0, xs.size))
        my = np.broadcast_to(map_y[:, None], (y1 - y0, xs.size))
        mx_c, my_c = np.ascontiguousarray(mx), np.ascontiguousarray(my)
        pieces.append(
            [
                np.asarray(
                    cv2.remap(
                        np.ascontiguousarray(planes[lo:hi, left:right, c]),
                        mx_c,
                        my_c,
                        cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE,
                    ),
                    np.float32,
                )
                for c in range(planes.shape[2])
            ]
        )
    if len(pieces) == 1:
        return pieces[0]
    return [
        np.ascontiguousarray(np.concatenate([piece[c] for piece in pieces], axis=1))
        for c in range(planes.shape[2])
    ]
