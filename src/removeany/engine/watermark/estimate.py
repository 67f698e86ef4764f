"""Estimate a visible watermark's opacity (alpha) and colour (W) from the pixels.

The model is the alpha blend ``J = (1 - alpha) * I + alpha * W``. Near the watermark the
original ``I`` is approximated by a background ``B`` inpainted from the surrounding pixels, so
``J - B ~= alpha * (W - B)`` gives a per-pixel alpha once ``W`` is known.

* Single image: one layer per polarity (light marks over the image, dark marks or drop
  shadows), each with one colour and one opacity; the opacity is refined by minimising the
  total variation of the restored pixels (a wrong opacity leaves or inverts the glyph edges).
* Batch (images sharing a watermark at the same place): per-pixel regression across images,
  ``J_k = beta * B_k + c`` with ``alpha = 1 - beta`` and ``alpha * W = c`` (Dekel et al.,
  CVPR 2017, in spirit: the watermark is what all images have in common), then edge-aware
  smoothing with a guided filter.
* User masks: per connected component, one colour against the inpainted background
  (`component_estimate`), or from the mask's rim, where the pixels just inside the outline are
  read against those just outside, with the photo's texture between them taken out of the
  fit (`rim_estimate`); a loosely brushed mask is first narrowed to the mark's footprint
  (`mark_footprint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from removeany.engine.watermark._ops import (
    F32,
    Bool,
    bbox,
    dilate,
    erode,
    guided_filter,
    inpaint,
    luma,
    sobel_xy,
    stack_median,
)

Polarity = Literal["light", "dark"]
# Pixel positions as (rows, columns), for fancy indexing.
Pixels = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]

MIN_OPACITY = 0.06
STROKE_FRACTION = 0.045
MAX_OPACITY = 0.95
GUIDE_RADIUS = 2
GUIDE_EPS = 1e-4
SNAP_HIGH = 0.85
SNAP_LOW = 0.1
TV_STEPS = 9
ICM_ITERS = 3
REFINE_ROUNDS = 2
PAIR_ROUNDS = 1
SPARSITY = 2.0
SUPPORT_GROW = 2
TIGHTEN_ROUNDS = 1
MIN_GAIN = 0.02
MIN_GAIN_JOINT = 0.003
OUTLIER_MADS = 6.0
RING_MADS = 3.0
SMOOTH_SINGLE = 20.0
ICM_MAX_IMAGES = 8
ICM_CHUNK = 32768
TEXTURE_EVIDENCE = True
# Texture test for transparency: ring width, a ring flatter than this (median |high-pass|)
# says nothing, and the interior/ring texture ratio that reads as opaque, plus its span to 1.
TEXTURE_RING = 6
TEXTURE_FLAT = 1.5
TEXTURE_OPAQUE = 0.1
TEXTURE_SPAN = 0.3
TEXTURE_SLACK = 0.25
# The evidence of a layer whose ground is flat, inside the letters and around them: nothing of
# the photo could show through, so transparency cannot be told apart from opacity.
FLAT_EVIDENCE = 0.5


@dataclass
class LayerInfo:
    """One constant-colour layer that was found and peeled off."""

    polarity: str
    opacity: float
    color: tuple[float, float, float]
    evidence: float  # 0..1: the background shows through (semi-transparent overlay)
    gain: float  # relative drop of edge energy when the layer is removed
    flat: bool = False  # the evidence is FLAT_EVIDENCE: the ground was too flat to tell


@dataclass
class Estimate:
    """The watermark as one alpha blend: J = (1 - alpha) I + alpha * color."""

    alpha: F32  # HxW in [0, MAX_OPACITY]
    color: F32  # HxWx3 in [0, 255]
    support: Bool  # where the mark may be (alpha is zero elsewhere)
    layers: list[LayerInfo]
    # opacities of layers left out as too opaque to be an overlay (see ``max_layer_opacity``)
    opaque: list[float] = field(default_factory=list)


def stroke_size(shape: tuple[int, int]) -> int:
    """Structuring-element size that covers the strokes of typical watermark lettering."""
    return int(max(9, round(min(shape) * STROKE_FRACTION)) | 1)


def stroke_response(gray: F32, polarity: Polarity, ksize: int) -> F32:
    """Top-hat (light) or black-hat (dark) response: thin structures brighter/darker."""
    # Large elements are square (separable) so that big images stay cheap.
    shape = cv2.MORPH_ELLIPSE if ksize <= 25 else cv2.MORPH_RECT
    k = cv2.getStructuringElement(shape, (ksize, ksize))
    if polarity == "light":
        out = gray - cv2.morphologyEx(gray, cv2.MORPH_OPEN, k)
    else:
        out = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, k) - gray
    return np.asarray(out, np.float32)


def otsu_threshold(values: F32, floor: float) -> float:
    if values.size == 0:
        return floor
    v = np.clip(values, 0, 255).astype(np.uint8).reshape(-1, 1)
    t, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return max(float(t), floor)


def stroke_candidates(
    resp: F32, region: Bool, floor: float = 3.0, min_area: int = 4, *, otsu: bool = True
) -> Bool:
    vals = resp[region]
    t = otsu_threshold(vals, floor) if otsu else floor
    cand = (resp > t) & region
    if not cand.any():
        return cand
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return np.asarray(keep[labels], bool)


def _peak(values: F32) -> float | None:
    v = values[(values > 0.05) & (values < 1.0)]
    if v.size < 10:
        return None
    hist, edges = np.histogram(v, bins=60, range=(0.05, 1.0))
    smooth = np.convolve(hist.astype(np.float64), np.array([1, 2, 3, 2, 1], float), "same")
    # the lettering's interior dominates the upper part; ignore the noise floor near 0
    i = int(np.argmax(smooth * np.linspace(0.6, 1.4, smooth.size)))
    return float((edges[i] + edges[i + 1]) / 2)


def _transparency_evidence(j: F32, b: F32, core: Bool) -> float | None:
    """0..1: how well J inside the lettering follows the background (slope > 0, correlated);
    None where the background is flat."""
    if int(core.sum()) < 12:
        return 0.0
    jj = luma(j)[core].astype(np.float64)
    bb = luma(b)[core].astype(np.float64)
    sb = bb.std()
    if sb < 4.0:
        return None
    r = float(np.corrcoef(jj, bb)[0, 1])
    return float(np.clip(r, 0.0, 1.0))


def _texture_evidence(j: F32, core: Bool, sup: Bool, opacity: float) -> float | None:
    """0..1: the photo's fine texture shows through the lettering, scaled by 1 - alpha as a
    blend scales it (opaque lettering is flat inside; no mark at all leaves it unscaled).
    Compares high-pass energy in the strokes' interior with the ring around the mark; None
    where the ring itself is flat."""
    inner = erode(core, 1)
    ring = dilate(sup, TEXTURE_RING) & ~dilate(sup, 2)
    if int(inner.sum()) < 30 or int(ring.sum()) < 30:
        return 0.0
    y = luma(j)
    hp = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    s_ring = float(np.median(np.abs(hp[ring])))
    if s_ring < TEXTURE_FLAT:
        return None
    ratio = float(np.median(np.abs(hp[inner]))) / s_ring
    if ratio > (1.0 - opacity) + TEXTURE_SLACK:
        return 0.0  # as much texture as around it: not attenuated by an overlay
    return float(np.clip((ratio - TEXTURE_OPAQUE) / TEXTURE_SPAN, 0.0, 1.0))


def _core_fit(js: F32, bs: F32, a: F32, core: Bool) -> tuple[float, F32] | None:
    """Regress J = beta * B + c over the core pixels of all images (beta shared)."""
    if int(core.sum()) < 12:
        return None
    jj = js[:, core].reshape(-1, 3).astype(np.float64)
    bb = bs[:, core].reshape(-1, 3).astype(np.float64)
    jc = jj - jj.mean(axis=0)
    bc = bb - bb.mean(axis=0)
    den = float(np.sum(bc * bc))
    if den < 16.0**2 * bb.shape[0]:
        return None  # the background barely varies: opacity and colour are confounded
    beta = float(np.sum(jc * bc) / den)
    opacity = 1.0 - beta
    if not (MIN_OPACITY <= opacity <= MAX_OPACITY):
        return None
    col = (jj.mean(axis=0) - beta * bb.mean(axis=0)) / opacity
    return opacity, np.clip(col, 0, 255).astype(np.float32)


class _PooledAlpha:
    """Per-pixel alpha for a known colour, pooled over all images and channels.

    Made once per set of pixels and called for many trial colours: the sums over images and
    channels that do not depend on the colour are kept, leaving two small products per call.
    """

    def __init__(self, js: F32, bs: F32) -> None:
        self._k = js.shape[0]
        jj = js.astype(np.float64)
        bb = bs.astype(np.float64)
        diff = jj - bb
        self._sum_diff = diff.sum(axis=0)
        self._diff_dot_b = (diff * bb).sum(axis=(0, 2))
        self._sum_b = bb.sum(axis=0)
        self._b_dot_b = (bb * bb).sum(axis=(0, 2))

    def __call__(self, col: F32) -> tuple[F32, Bool]:
        """(alpha, observed): alpha of ``J = (1 - a) B + a W`` per pixel, and where W differs
        enough from B for it to mean anything."""
        c = col.astype(np.float64)
        num = self._sum_diff @ c - self._diff_dot_b
        # sum over images and channels of |W - B|^2
        den = self._k * float(c @ c) - 2.0 * (self._sum_b @ c) + self._b_dot_b
        alpha = np.asarray(num / np.maximum(den, 1.0), np.float32)
        return alpha, np.asarray(den > self._k * 15.0**2, bool)


def _compact(
    flat: npt.NDArray[np.intp], size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """``np.unique(flat, return_inverse=True)`` for indices below ``size``, without sorting."""
    mark = np.zeros(size, bool)
    mark[flat] = True
    uniq = np.flatnonzero(mark)
    pos = np.zeros(size, np.intp)
    pos[uniq] = np.arange(uniq.size)
    return uniq, pos[flat]


def _tv_stack(imgs: F32, band: Bool) -> float:
    y = imgs[..., 0] * 0.299 + imgs[..., 1] * 0.587 + imgs[..., 2] * 0.114
    gx = np.abs(np.diff(y, axis=2, append=y[:, :, -1:]))
    gy = np.abs(np.diff(y, axis=1, append=y[:, -1:, :]))
    return float((gx + gy)[:, band].sum())


def _refine_tv(
    js: F32, bs: F32, cand: Bool, core: Bool, opacity: float, col: F32, steps: int = TV_STEPS
) -> tuple[float, F32]:
    """Search the opacity (colour tied to it) whose restoration leaves the fewest edges."""
    h, w = cand.shape
    ys, xs = np.nonzero(dilate(cand, 1))
    if ys.size == 0:
        return opacity, col
    # Restored values are needed at the band pixels and at their right and lower neighbours.
    pts_y = np.concatenate([ys, ys, np.minimum(ys + 1, h - 1)])
    pts_x = np.concatenate([xs, np.minimum(xs + 1, w - 1), xs])
    flat = pts_y * w + pts_x
    uniq, inv = _compact(flat, h * w)
    uy, ux = uniq // w, uniq % w
    ju = js[:, uy, ux]
    bu = bs[:, uy, ux]
    cu = cand[uy, ux]
    n = ys.size
    core_j = js[:, core].reshape(-1, 3).astype(np.float64).mean(axis=0)
    core_b = bs[:, core].reshape(-1, 3).astype(np.float64).mean(axis=0)
    alpha_for = _PooledAlpha(ju, bu)
    # One contiguous plane per channel: the restoration below then runs along pixels.
    planes = [np.ascontiguousarray(ju[..., ch]) for ch in range(3)]
    best = (float("inf"), opacity, col)
    for f in np.linspace(0.6, 1.4, steps):
        op = float(np.clip(opacity * f, MIN_OPACITY, MAX_OPACITY))
        # the unbiased colour for this opacity: mean of (J - (1 - a) B) / a over the core
        c = np.asarray(np.clip((core_j - (1.0 - op) * core_b) / op, 0, 255), np.float32)
        a, _ = alpha_for(c)
        sm = np.clip(a / op, 0.0, 1.0)
        sm[~cu] = 0.0
        al = sm * op
        keep = 1.0 - np.minimum(al, 0.95)
        rest = [np.clip((plane - al * c[ch]) / keep, 0, 255) for ch, plane in enumerate(planes)]
        y = rest[0] * 0.299 + rest[1] * 0.587 + rest[2] * 0.114
        yp = y[:, inv]
        tv = float(
            np.abs(yp[:, :n] - yp[:, n : 2 * n]).sum() + np.abs(yp[:, :n] - yp[:, 2 * n :]).sum()
        )
        if tv < best[0]:
            best = (tv, op, c)
    return best[1], best[2]


def refine_alpha(
    js: F32,
    color: F32,
    alpha: F32,
    support: Bool,
    *,
    offsets: F32 | None = None,
    iters: int = ICM_ITERS,
    smooth: float = 0.0,
    max_images: int = ICM_MAX_IMAGES,
    max_alpha: float = MAX_OPACITY,
    below: tuple[F32, F32] | None = None,
    sparsity: float = SPARSITY,
) -> F32:
    """Refine per-pixel alpha so that the restored images are as smooth as natural images are.

    Iterated conditional modes on a checkerboard: each support pixel tries alpha values near
    its current one and keeps the one whose restored colours, in every image at once, differ
    least (L1) from the restored 4-neighbours. Texture under the mark differs from image to
    image while the mark's edges are the same in all, so with several images this recovers
    the mark's exact shape, anti-aliasing included.
    """
    if offsets is None:
        offsets = np.linspace(-0.1, 0.1, 11).astype(np.float32)
    ks = js[:max_images]
    k, h, w, _ = ks.shape
    a = alpha.astype(np.float32).copy()
    ys, xs = np.nonzero(support)
    if ys.size == 0:
        return a
    # One checkerboard colour after the other, each a contiguous run: slices instead of masks.
    parity = (ys + xs) % 2
    order = np.argsort(parity, kind="stable")
    ys, xs = ys[order], xs[order]
    even = int((parity == 0).sum())
    runs = ((0, even), (even, int(ys.size)))
    nbrs = [
        (np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1))
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))
    ]
    nbr_flat = np.stack([ny * w + nx for ny, nx in nbrs])
    at = ys * w + xs
    # Restored values are only ever needed at the support's 4-neighbours: keep those alone.
    uniq, inv = _compact(nbr_flat.ravel(), h * w)
    inv = inv.reshape(4, ys.size)
    # Channel-major layout (images x channels x pixels): the per-candidate work below then
    # runs along pixels, numpy's fast contiguous inner loops, not along 3 channels.
    flat_js = ks.reshape(k, h * w, 3)
    ku = np.ascontiguousarray(flat_js[:, uniq].transpose(0, 2, 1))
    jx_all = np.ascontiguousarray(flat_js[:, at].transpose(0, 2, 1))
    cu, wx_all = _at_pixels(color, h * w, uniq), _at_pixels(color, h * w, at)
    if below is not None:
        b_a = np.minimum(below[0], MAX_OPACITY).astype(np.float32).reshape(-1)
        bau, bax_all = b_a[uniq], b_a[at]
        bcu, bcx_all = _at_pixels(below[1], h * w, uniq), _at_pixels(below[1], h * w, at)
    a_flat = a.reshape(-1)
    # Where each support pixel sits in the sorted order (-1 elsewhere), to pass a change on
    # to the neighbours that must look again.
    slot = np.full(h * w, -1, np.intp)
    slot[at] = np.arange(ys.size)
    nbr_slot = slot[nbr_flat]
    # A pixel is looked at again only if it moved, or a neighbour did, since it last chose:
    # otherwise it would try the same candidates against the same neighbours and keep its
    # value. Most of a mark settles in the first sweep, so later sweeps are cheap.
    dirty = np.ones(ys.size, bool)
    prior = sparsity * (12.0 * k)

    def choose(sel: npt.NDArray[np.intp], restored: F32) -> F32:
        """The best of the candidate alphas for the support pixels ``sel``."""
        cur = a_flat[at[sel]]
        jx = np.take(jx_all, sel, axis=2)
        wx = np.take(wx_all, sel, axis=1) if color.ndim > 1 else wx_all
        # the four neighbours' restored values: images x channels x 4 x N
        n_i = np.take(restored, inv[:, sel], axis=2)
        n_a = a_flat[nbr_flat[:, sel]]
        if below is not None:
            bax = bax_all[sel]
            bcx = np.take(bcx_all, sel, axis=1) if below[1].ndim > 1 else bcx_all
        buf = np.empty(n_i.shape, np.float32)
        rows = buf.reshape(-1, sel.size)
        best = np.full(cur.shape, np.inf, np.float32)
        best_a: F32 = cur.copy()
        for d in (*offsets, None):
            # None: try "no mark here" outright
            v = np.zeros_like(cur) if d is None else np.clip(cur + d, 0.0, max_alpha)
            ix = (jx - v * wx) / (1.0 - v)
            if below is not None:
                ix = (ix - bax * bcx) / (1.0 - bax)
            np.subtract(ix[:, :, None, :], n_i, out=buf)
            np.abs(buf, out=buf)
            e = rows.sum(axis=0)
            # In J's units: otherwise the division by (1 - alpha) would favour low alpha
            e *= 1.0 - v
            # A little prior towards "no mark here", scaled like the data term.
            e += prior * v
            if smooth:
                e += smooth * np.abs(v - n_a).sum(axis=0)
            better = e < best
            best[better] = e[better]
            best_a[better] = v[better]
        return best_a

    for _ in range(iters):
        for lo, hi in runs:
            sel = lo + np.flatnonzero(dirty[lo:hi])
            if sel.size == 0:
                continue
            au = a_flat[uniq]
            restored = (ku - au * cu) / (1.0 - au)
            if below is not None:
                restored = (restored - bau * bcu) / (1.0 - bau)
            restored = np.asarray(restored, np.float32)
            # In pieces small enough to stay in the cache through all the candidates.
            step = max(1, ICM_CHUNK // k)
            for c0 in range(0, sel.size, step):
                part = sel[c0 : c0 + step]
                cur = a_flat[at[part]]
                best_a = choose(part, restored)
                a_flat[at[part]] = best_a
                moved = best_a != cur
                dirty[part] = moved
                touched = nbr_slot[:, part[moved]].ravel()
                dirty[touched[touched >= 0]] = True
    return a


def _at_pixels(color: F32, size: int, at: npt.NDArray[np.intp]) -> F32:
    """A colour (3,) or a colour per pixel (HxWx3) at the flat pixel indices ``at``, as
    channels x pixels; a single colour as 3 x 1, to broadcast."""
    if color.ndim == 1:
        return np.asarray(color, np.float32).reshape(3, 1)
    return np.ascontiguousarray(color.reshape(size, 3)[at].T, np.float32)


def lsq_color(js: F32, bs: F32, alpha: F32, fallback: F32) -> F32:
    """Least-squares constant colour given per-pixel alpha: J - (1 - a) B = a W."""
    m = alpha > 0.15
    if int(m.sum()) < 12:
        return fallback
    aa = alpha[m][None, :, None].astype(np.float64)
    jj = js[:, m].astype(np.float64)
    bb = bs[:, m].astype(np.float64)
    num = (aa * (jj - (1.0 - aa) * bb)).sum(axis=(0, 1))
    den = float((aa * aa).sum()) * js.shape[0]
    return np.asarray(np.clip(num / den, 0, 255), np.float32)


def fit_layer(
    js: F32,
    bs: F32,
    cand: Bool,
    polarity: Polarity,
    *,
    init_color: F32 | None = None,
    tv_steps: int = TV_STEPS,
) -> tuple[F32, float, F32, float] | None:
    """Fit one constant-colour layer to K images given their backgrounds.

    Returns (alpha HxW, opacity, colour, peakiness) or None when there is no such layer.
    """
    col = (
        init_color.astype(np.float32)
        if init_color is not None
        else np.full(3, 255.0 if polarity == "light" else 0.0, np.float32)
    )
    # Work on the candidate pixels only (K x N x 3): far cheaper than whole boxes.
    ys, xs = np.nonzero(cand)
    jf = np.ascontiguousarray(js[:, ys, xs])
    bf = np.ascontiguousarray(bs[:, ys, xs])
    pooled_alpha = _PooledAlpha(jf, bf)
    opacity = 0.0
    for _ in range(3):
        a, obs = pooled_alpha(col)
        peak = _peak(a[obs])
        if peak is None:
            return None
        opacity = peak
        core = obs & (np.abs(a - opacity) < 0.2 * opacity + 0.03)
        fit = _core_fit(jf, bf, a, core)
        if fit is None:
            break
        _, col_fit = fit
        if polarity == "light" and float(luma(col_fit[None, None, :])[0, 0]) < 100:
            break
        if polarity == "dark" and float(luma(col_fit[None, None, :])[0, 0]) > 155:
            break
        col = col_fit
    a, obs = pooled_alpha(col)
    peak = _peak(a[obs])
    if peak is None:
        return None
    opacity = peak
    core = obs & (np.abs(a - opacity) < 0.2 * opacity + 0.03)
    if int(core.sum()) >= 12:
        core_map = np.zeros(cand.shape, bool)
        core_map[ys, xs] = core
        opacity, col = _refine_tv(js, bs, cand, core_map, opacity, col, tv_steps)
        a, obs = pooled_alpha(col)
    near = np.abs(a[obs] - opacity) < 0.2 * opacity + 0.03
    peakiness = float(near.mean()) if near.size else 0.0
    a_map = np.zeros(cand.shape, np.float32)
    a_map[ys, xs] = a
    return a_map, opacity, col, peakiness


def over(top_alpha: F32, top_color: F32, alpha: F32, color: F32) -> tuple[F32, F32]:
    """Two blends as one, ``top`` laid over the other: ``J = (1 - a1) ((1 - a2) I + a2 W2) +
    a1 W1``; colours HxWx3, or one colour per blend."""
    a1, a2 = top_alpha[..., None], alpha[..., None]
    combined = 1.0 - (1.0 - a1) * (1.0 - a2)
    premult = a1 * top_color + (1.0 - a1) * a2 * color
    mixed = np.where(combined > 0, premult / np.maximum(combined, 1e-4), 0.0)
    return combined[..., 0].astype(np.float32), mixed.astype(np.float32)


def _peel(js: F32, alpha: F32, color: F32) -> F32:
    a = np.minimum(alpha, MAX_OPACITY)[None, ..., None]
    return np.asarray((js - a * color) / (1.0 - a), np.float32)


def _refine_pair(
    js: F32,
    bs: F32,
    found: list[tuple[str, F32, F32, Bool, float]],
    smooth: float,
    rounds: int = PAIR_ROUNDS,
    iters: int = ICM_ITERS,
) -> list[tuple[str, F32, F32, Bool, float]]:
    """Refine two stacked layers (e.g. lettering over its drop shadow) against each other."""
    (p0, a0, c0, s0, o0), (p1, a1, c1, s1, o1) = found
    for _ in range(rounds):
        a0 = refine_alpha(
            js,
            c0,
            a0,
            s0,
            smooth=smooth,
            below=(a1, c1),
            iters=iters,
            max_alpha=min(MAX_OPACITY, o0 * 1.1 + 0.02),
        )
        base = (1.0 - np.minimum(a1, MAX_OPACITY))[None, ..., None] * bs + a1[None, ..., None] * c1
        new0 = lsq_color(js, base.astype(np.float32), a0, c0)
        if _color_ok(new0, p0):
            c0 = new0
        top = _peel(js, a0, c0)
        a1 = refine_alpha(
            top,
            c1,
            a1,
            s1,
            smooth=smooth,
            iters=iters,
            max_alpha=min(MAX_OPACITY, o1 * 1.1 + 0.02),
        )
        new1 = lsq_color(top, bs, a1, c1)
        if _color_ok(new1, p1):
            c1 = new1
    return [(p0, a0, c0, s0, o0), (p1, a1, c1, s1, o1)]


def _candidates(gray: F32, region: Bool, ksize: int) -> Bool:
    """Thin light or dark structures (lettering strokes, rings) in K images (KxHxW)."""
    cand = np.zeros(region.shape, bool)
    k = gray.shape[0]
    pol: Polarity
    for pol in ("light", "dark"):
        resps = [stroke_response(g, pol, ksize) for g in gray]
        resp = np.asarray(resps[0] if k == 1 else stack_median(resps), np.float32)
        floor = 2.0 if k > 1 else 3.0
        ref = dilate(region, ksize) & ~region
        if int(ref.sum()) >= 50:
            # A region that was pointed at (detection box, user mask): compare with its ring.
            vals = resp[ref]
            med = float(np.median(vals))
            mad = float(np.median(np.abs(vals - med)))
            t = max(floor, med + RING_MADS * 1.4826 * mad)
            cand |= stroke_candidates(resp, region, floor=t, otsu=False)
        else:
            cand |= stroke_candidates(resp, _focus(resp, region, ksize), floor=floor)
    if k > 1:
        # Edges shared by every image (median gradient, as Dekel et al.) mark logos and fills.
        grads = [sobel_xy(g) for g in gray]
        gx = stack_median([d[0] for d in grads])
        gy = stack_median([d[1] for d in grads])
        gmag = np.hypot(gx, gy).astype(np.float32)
        foc = _focus(gmag, region, ksize)
        cand |= (gmag > otsu_threshold(gmag[foc], 8.0)) & foc
    return cand


def _focus(resp: F32, region: Bool, ksize: int) -> Bool:
    """Within a large region, keep the neighbourhood of clear outliers of ``resp`` only."""
    vals = resp[region]
    if vals.size == 0:
        return region
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) + 1e-3
    strong = (resp > med + OUTLIER_MADS * 1.4826 * mad) & region
    if not strong.any():
        return strong
    return dilate(strong, ksize // 2) & region


def _energy(js: F32, band: Bool) -> float:
    return float(_tv_stack(js, band)) / max(int(js.shape[0]), 1)


def _color_ok(col: F32, polarity: str) -> bool:
    y = float(col[0] * 0.299 + col[1] * 0.587 + col[2] * 0.114)
    return y >= 96.0 if polarity == "light" else y <= 160.0


def estimate(
    images: F32,
    region: Bool | None = None,
    *,
    ksize: int | None = None,
    min_gain: float = MIN_GAIN,
    max_layer_opacity: float | None = None,
) -> Estimate:
    """Estimate the watermark shared by K images (KxHxWx3; K=1 for a single image).

    ``region`` limits where the mark is looked for (detection boxes or the user's mask).
    A layer reaching ``max_layer_opacity`` is left out (and listed in ``Estimate.opaque``):
    paint, not an overlay, though a translucent layer beside it may still be one.
    """
    k, h, w, _ = images.shape
    if ksize is None:
        ksize = stroke_size((h, w))
    if region is None:
        region = np.ones((h, w), bool)
    alpha = np.zeros((h, w), np.float32)
    color = np.zeros((h, w, 3), np.float32)
    empty = Estimate(alpha, color, np.zeros((h, w), bool), [])
    box = bbox(region, ksize + 4, (h, w))
    if box is None:
        return empty
    js = np.ascontiguousarray(images[:, box[0], box[1]], dtype=np.float32)
    reg = region[box]
    gray = np.stack([luma(im) for im in js])
    cand = _candidates(gray, reg, ksize)
    sup = dilate(cand, SUPPORT_GROW) & dilate(reg, 1)
    if int(sup.sum()) < 12:
        return empty
    bs = np.stack([inpaint(js[i], sup, 3) for i in range(k)])
    guide = luma(stack_median(js).astype(np.float32) if k > 1 else js[0]) / 255.0
    smooth = SMOOTH_SINGLE if k == 1 else 0.0
    # One image has far less to go on than several: fewer, cheaper refinement passes.
    rounds = REFINE_ROUNDS if k > 1 else 1
    icm_iters = ICM_ITERS if k > 1 else 2
    tv_steps = TV_STEPS if k > 1 else 7
    first: dict[str, tuple[F32, float, F32, float]] = {}
    cur = js.copy()
    alpha_l = np.zeros(sup.shape, np.float32)
    col_l = np.zeros((*sup.shape, 3), np.float32)
    infos: list[LayerInfo] = []
    opaque: list[float] = []
    found: list[tuple[str, F32, F32, Bool, float]] = []
    fits: list[tuple[float, Polarity]] = []
    for pol in ("light", "dark"):
        fit = fit_layer(cur, bs, sup, pol, tv_steps=tv_steps)
        if fit is not None:
            first[pol] = fit
            fits.append((float(np.clip(fit[0][sup], 0, None).sum()), pol))
    # The mark brightens (light) or darkens (dark) its region against the ring around it.
    ring = dilate(sup, max(3, ksize // 2)) & ~dilate(sup, 1)
    if ring.any():
        contrast = float(np.mean(gray[:, sup]) - np.mean(gray[:, ring]))
        fits.sort(key=lambda t: 0 if (t[1] == "light") == (contrast > 0) else 1)
    else:
        fits.sort(key=lambda t: -t[0])
    for n, (_, pol) in enumerate(fits):
        # the first layer was fitted above; later ones are fitted on what is left
        fit = first[pol] if n == 0 else fit_layer(cur, bs, sup, pol, tv_steps=tv_steps)
        if fit is None:
            continue
        a, op, col, _peaky = fit
        if not _color_ok(col, pol) or op >= MAX_OPACITY - 0.01:
            continue  # no colour that fits, or opaque: not an overlay we can undo
        s_map = np.clip(a / op, 0.0, 1.2)
        s_map[~sup] = 0.0
        s_map = np.clip(guided_filter(guide, s_map, GUIDE_RADIUS, GUIDE_EPS), 0.0, 1.0)
        s_map[s_map > SNAP_HIGH] = 1.0
        s_map[s_map < SNAP_LOW] = 0.0
        s_map[~sup] = 0.0
        al = (s_map * op).astype(np.float32)
        sup_l = dilate(al > 0, 1) & sup
        if not sup_l.any():
            continue
        for _ in range(rounds):
            al = refine_alpha(
                cur,
                col,
                al,
                sup_l,
                smooth=smooth,
                iters=icm_iters,
                max_alpha=min(MAX_OPACITY, op * 1.1 + 0.02),
            )
            new_col = lsq_color(cur, bs, al, col)
            if _color_ok(new_col, pol):
                col = new_col
        al[al < 0.01] = 0.0
        peeled = np.clip(
            (cur - al[None, ..., None] * col)
            / (1.0 - np.minimum(al, MAX_OPACITY)[None, ..., None]),
            0,
            255,
        ).astype(np.float32)
        band = dilate(sup_l, 1)
        e0 = _energy(cur, band)
        e1 = _energy(peeled, band)
        gain = (e0 - e1) / max(e0, 1e-6)
        if gain < (min_gain if k == 1 else MIN_GAIN_JOINT):
            continue
        if max_layer_opacity is not None and float(al.max()) >= max_layer_opacity:
            opaque.append(float(al.max()))
            continue
        core = al > 0.7 * float(al.max())
        tests = [_transparency_evidence(cur[0], bs[0], core)]
        if TEXTURE_EVIDENCE:
            tests.append(_texture_evidence(cur[0], core, sup_l, op))
        told = [t for t in tests if t is not None]
        # A flat ground says FLAT_EVIDENCE, unless another test saw more.
        flat = None in tests and max(told, default=0.0) <= FLAT_EVIDENCE
        evidence = FLAT_EVIDENCE if flat else max(told)
        cur = peeled
        found.append((pol, al, col, sup_l, op))
        c3 = (float(col[0]), float(col[1]), float(col[2]))
        infos.append(LayerInfo(pol, float(al.max()), c3, evidence, float(gain), flat))
    for _ in range(TIGHTEN_ROUNDS if found and k > 1 else 0):
        # Re-inpaint the backgrounds over only where the mark turned out to be, then refine.
        total = np.zeros(sup.shape, np.float32)
        for _, al, _, _, _ in found:
            total = np.asarray(1.0 - (1.0 - total) * (1.0 - al), np.float32)
        tight = dilate(total > 0.02, SUPPORT_GROW) & sup
        if not tight.any():
            break
        bs = np.stack([inpaint(js[i], tight, 3) for i in range(k)])
        if len(found) == 1:
            pol, al, col, sup_l, op = found[0]
            sup_l = sup_l & tight
            for _ in range(2):
                new_col = lsq_color(js, bs, al, col)
                if _color_ok(new_col, pol):
                    col = new_col
                al = refine_alpha(
                    js,
                    col,
                    al,
                    sup_l,
                    smooth=smooth,
                    max_alpha=min(MAX_OPACITY, op * 1.1 + 0.02),
                )
            found = [(pol, al, col, sup_l, op)]
    if len(found) == 2:
        found = _refine_pair(js, bs, found, smooth, rounds if k > 1 else 1, icm_iters)
        for info, (_, al, col, _, _) in zip(infos, found, strict=True):
            info.opacity = float(al.max())
            info.color = (float(col[0]), float(col[1]), float(col[2]))
    for _, al, col, _, _ in found:
        # each layer lies below the ones before it
        alpha_l, col_l = over(alpha_l, col_l, al, col)
    alpha[box] = np.minimum(alpha_l, MAX_OPACITY)
    color[box] = col_l
    support = np.zeros((h, w), bool)
    support[box] = sup
    return Estimate(alpha, color, support, infos, opaque)


# User masks: components closer than this (px) share one colour estimate.
COMPONENT_MERGE = 3
COMPONENT_ITERS = 8
# Pixels above this fraction of a component's stroke opacity are snapped to it.
COMPONENT_SNAP = 0.6


# The background the per-component estimates fit against: the region grown by a pixel,
# inpainted on a box AROUND_PAD px larger (Telea reads only a few pixels past the mask).
AROUND_PAD = 10


def around_region(image: F32, region: Bool) -> F32:
    """``image`` with ``region`` (grown by a pixel) inpainted from around it: the photo the
    per-component estimates (`component_estimate`, `rim_estimate`) take to lie under a
    user's mask, computed once for both."""
    box = bbox(region, AROUND_PAD, region.shape)
    if box is None:
        return image
    out = image.copy()
    out[box] = inpaint(image[box], dilate(region[box], 1), 3)
    return out


def _grouped(
    labels: npt.NDArray[np.generic], n: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The order that groups ``labels`` (of pixels listed row-major) by label, keeping each
    group row-major, and where labels 1 .. n - 1 start in it (plus the end): one sort instead
    of a full-box test per component, which was most of the time for a tiled mark's
    hundreds of components."""
    order = np.argsort(labels, kind="stable")
    return order, np.searchsorted(labels[order], np.arange(1, n + 1))


def component_estimate(image: F32, region: Bool, back: F32) -> tuple[F32, F32, F32]:
    """Per connected component of ``region``: one constant colour W and per-pixel alpha.

    The background B (``back``, from `around_region`) is inpainted from around the region; W
    is the colour that best explains the component's pixels as ``J = (1 - a) B + a W``
    (alternating least squares: alpha by projection given W, then W by least squares given
    alpha). Returns (alpha, colour HxWx3, the same alpha with each component's stroke
    interior snapped to its typical opacity).
    """
    h, w = region.shape
    alpha = np.zeros((h, w), np.float32)
    color = np.zeros((h, w, 3), np.float32)
    snapped = np.zeros((h, w), np.float32)
    box = bbox(region, COMPONENT_MERGE + 4, (h, w))
    if box is None:
        return alpha, color, snapped
    img, reg = image[box], region[box]
    under = back[box]
    core = erode(reg, 1)
    n, lab = cv2.connectedComponents(dilate(reg, COMPONENT_MERGE).astype(np.uint8), connectivity=8)
    a_box, c_box, s_box = alpha[box], color[box], snapped[box]
    wts = np.array([0.299, 0.587, 0.114])
    ys, xs = np.nonzero(reg)
    order, starts = _grouped(lab[ys, xs], n)
    for c in range(1, n):
        at = order[starts[c - 1] : starts[c]]
        if at.size < 4:
            continue
        m = (ys[at], xs[at])
        jj = img[m].astype(np.float64)
        bb = under[m].astype(np.float64)
        d = jj - bb
        col = np.full(3, 255.0 if float((d @ wts).mean()) > 0 else 0.0)
        for _ in range(COMPONENT_ITERS):
            a = np.clip(_projected_alpha(jj, bb, col), 0.0, MAX_OPACITY)
            sel = a > 0.05
            if int(sel.sum()) < 3:
                break
            aa = a[sel][:, None]
            col = np.clip(
                (aa * (jj[sel] - (1.0 - aa) * bb[sel])).sum(0) / float((aa * aa).sum()), 0, 255
            )
        a = np.clip(_projected_alpha(jj, bb, col), 0.0, MAX_OPACITY)
        a_box[m] = a
        c_box[m] = col
        s = a.copy()
        inner = a[core[m]]
        if inner.size >= 10:
            top = inner[inner > 0.5 * np.percentile(inner, 95)]
            if top.size >= 5:
                op = float(np.median(top))
                s[a > COMPONENT_SNAP * op] = op
        s_box[m] = s
    return alpha, color, snapped


# User masks traced close around the mark: pixels this deep inside a component (px) are read
# against the unmarked pixels just outside its outline.
RIM_DEPTH = 2.0
# ... up to this much deeper, so each is paired with an outside pixel close enough to share
# its texture.
RIM_BAND = 1.5
RIM_MIN_PAIRS = 8
# Reweighting rounds of the rim fit: a pair's residual beyond the MAD scale counts as if it
# were at that scale (the photo's own edges crossing the outline are outliers).
RIM_ROUNDS = 3
# A component holding less than this share of the mask's rim pairs takes the fit over the
# whole outline (one mark is mostly one colour, and a letter's own fit is noisy: traced masks
# on 132 tuning marks 25.28 -> 25.50 dB against a fit per component); a larger one (a logo's
# ring beside its word) keeps its own. A share, not a count, so a letter of a 24 MP photo's
# mark is pooled as on a small one.
RIM_OWN_SHARE = 0.4
# A loosely brushed mask: its footprint starts where the layer estimate put more than
# FOOTPRINT_ALPHA, then FOOTPRINT_ROUNDS times takes the pixels that reach FOOTPRINT_SHARE of
# the opacity its rim shows.
FOOTPRINT_ALPHA = 0.02
FOOTPRINT_ROUNDS = 2
FOOTPRINT_SHARE = 0.3


def rim_estimate(
    image: F32,
    region: Bool,
    back: F32,
    *,
    own_share: float | None = None,
    deattenuated: bool = True,
) -> tuple[F32, F32]:
    """The mark's colour W and peak opacity from the rim of ``region``, then alpha per pixel.
    Returns (alpha HxW, colour HxWx3).

    A pixel just inside the outline and the unmarked one just outside it show nearly the same
    photo, so across the rim ``J_in = (1 - a) J_out + a W``: a line through many pairs, fitted
    robustly, gives the opacity and colour even where the photo under it is textured (an
    inpainted background, which `component_estimate` fits against, smooths that texture
    away and biases its colour). The line is fitted over the whole mask's rim, and per
    connected component only where a component holds ``own_share`` (default RIM_OWN_SHARE)
    of the rim's pairs; ``deattenuated`` takes the photo's texture out of its slope
    (`_rim_fit`). Alpha per pixel is then the projection of ``J - B`` on ``W - B``, capped at
    the rim's opacity, so thin fringes and gaps between strokes keep their lower opacity.
    """
    h, w = region.shape
    alpha = np.zeros((h, w), np.float32)
    color = np.zeros((h, w, 3), np.float32)
    pad = COMPONENT_MERGE + int(RIM_DEPTH + RIM_BAND) + 4
    box = bbox(region, pad, (h, w))
    if box is None:
        return alpha, color
    img, reg = image[box].astype(np.float64), region[box]
    rim_in, rim_out, rim_beyond = _rim_pairs(reg)
    under = back[box].astype(np.float64)
    n, lab = cv2.connectedComponents(dilate(reg, COMPONENT_MERGE).astype(np.uint8), connectivity=8)
    a_box, c_box = alpha[box], color[box]
    ys, xs = np.nonzero(reg)
    px_order, px_starts = _grouped(lab[ys, xs], n)
    rim_order, rim_starts = _grouped(lab[rim_in], n)
    share = RIM_OWN_SHARE if own_share is None else own_share
    whole = None
    if len(rim_in[0]) >= RIM_MIN_PAIRS:
        whole = _rim_fit(img, rim_in, rim_out, rim_beyond if deattenuated else None)
    for c in range(1, n):
        on = rim_order[rim_starts[c - 1] : rim_starts[c]]
        fit = whole
        if on.size >= max(RIM_MIN_PAIRS, share * len(rim_in[0])):
            fit = _rim_fit(
                img,
                _subset(rim_in, on),
                _subset(rim_out, on),
                _subset(rim_beyond, on) if deattenuated else None,
            )
        if fit is None:
            continue
        peak, col = fit
        at = px_order[px_starts[c - 1] : px_starts[c]]
        m = (ys[at], xs[at])
        a_box[m] = np.clip(_projected_alpha(img[m], under[m], col), 0.0, peak)
        c_box[m] = col
    return alpha, color


def rim_opacity(image: F32, region: Bool, *, deattenuated: bool = False) -> float:
    """The opacity one rim fit over all of ``region``'s outline finds (0 when none): a mask
    traced close around a mark has the mark just inside its outline; a loosely brushed one
    has the photo on both sides, and the plain fit reads some of its texture as opacity
    (``deattenuated`` takes it out: 132 tuning brushes above 0.45 opacity 15 % -> 5 %)."""
    box = bbox(region, 2 * int(RIM_DEPTH + RIM_BAND) + 4, region.shape)
    if box is None:
        return 0.0
    img = image[box].astype(np.float64)
    rim_in, rim_out, rim_beyond = _rim_pairs(region[box])
    if len(rim_in[0]) < RIM_MIN_PAIRS:
        return 0.0
    fit = _rim_fit(img, rim_in, rim_out, rim_beyond if deattenuated else None)
    return 0.0 if fit is None else fit[0]


def mark_footprint(image: F32, region: Bool) -> Bool:
    """Where inside a loosely brushed ``region`` the mark itself is.

    Starts from the layer estimate's find, then alternates: the rim of the current footprint
    gives the mark's colour and opacity (`rim_estimate`), and the footprint becomes the
    pixels whose projection on that colour reaches FOOTPRINT_SHARE of that opacity, grown by
    a pixel for the antialiased outline. Empty when nothing is found."""
    found = estimate(image[None], region, max_layer_opacity=None)
    foot = dilate(found.alpha > FOOTPRINT_ALPHA, 1) & region
    box = bbox(region, 4, region.shape)
    if box is None or not foot.any():
        return foot
    img = image[box].astype(np.float64)
    back = inpaint(image[box], region[box], 3).astype(np.float64)
    for _ in range(FOOTPRINT_ROUNDS):
        alpha, color = rim_estimate(
            image[box],
            foot[box],
            around_region(image[box], foot[box]),
            # A footprint's pieces may be texture rather than one mark, and FOOTPRINT_SHARE
            # was set against the plain fit's opacity (with the texture taken out of it,
            # brushes over 132 tuning marks: 41 -> 43 photos made worse).
            own_share=0.0,
            deattenuated=False,
        )
        on = alpha > 0
        if not on.any():
            break
        weight = alpha[on][:, None].astype(np.float64)
        col = (color[on] * weight).sum(0) / weight.sum()
        peak = float(np.percentile(alpha[on], 90))
        share = _projected_alpha(img, back, col) > FOOTPRINT_SHARE * peak
        foot = np.zeros_like(region)
        foot[box] = dilate(share, 1) & region[box]
    return foot


def _rim_pairs(region: Bool) -> tuple[Pixels, Pixels, Pixels]:
    """Pixels RIM_DEPTH to RIM_DEPTH + RIM_BAND px inside ``region`` (rows, columns), for
    each the pixel outside it that it is read against (the nearest one, stepped one pixel
    further out where that is still outside, away from the mark's antialiased fringe), and
    the pixel as far again beyond that one, where that is outside the region too (rows -1
    where it is not): `_rim_fit` reads the photo's texture between the last two."""
    h, w = region.shape
    inside = region.astype(np.uint8)
    # Each pixel's distance to, and the index of, the nearest pixel outside the region.
    depth, nearest = cv2.distanceTransformWithLabels(
        inside, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    out_y, out_x = np.nonzero(inside == 0)
    ys, xs = np.nonzero(region & (depth >= RIM_DEPTH) & (depth <= RIM_DEPTH + RIM_BAND))
    if len(out_y) == 0:
        return (ys[:0], xs[:0]), (ys[:0], xs[:0]), (ys[:0], xs[:0])
    k = nearest[ys, xs] - 1
    oy, ox = out_y[k], out_x[k]
    dy, dx = oy - ys, ox - xs
    norm = np.maximum(np.hypot(dy, dx), 1e-6)
    fy = np.clip(np.round(oy + dy / norm), 0, h - 1).astype(np.intp)
    fx = np.clip(np.round(ox + dx / norm), 0, w - 1).astype(np.intp)
    free = ~region[fy, fx]
    py, px = np.where(free, fy, oy), np.where(free, fx, ox)
    reach = np.hypot(py - ys, px - xs) / norm
    by = np.round(py + dy * reach).astype(np.intp)
    bx = np.round(px + dx * reach).astype(np.intp)
    clear = (by >= 0) & (by < h) & (bx >= 0) & (bx < w)
    clear[clear] = ~region[by[clear], bx[clear]]
    return (ys, xs), (py, px), (np.where(clear, by, -1), np.where(clear, bx, -1))


def _texture(img: npt.NDArray[np.float64], outer: Pixels, beyond: Pixels) -> float | None:
    """Variance (robust, per channel value) of the difference between each rim pair's
    outside pixel and the pixel as far again beyond it: how much two pixels that far apart
    differ in this photo. None without enough such pairs."""
    clear = beyond[0] >= 0
    if int(clear.sum()) < RIM_MIN_PAIRS:
        return None
    diff = img[beyond[0][clear], beyond[1][clear]] - img[outer[0][clear], outer[1][clear]]
    scale = 1.4826 * float(np.median(np.abs(diff))) + 1e-3
    weight = 1.0 / np.maximum(np.abs(diff) / scale, 1.0)
    return float((weight * diff * diff).sum() / weight.sum())


def _subset(pixels: Pixels, at: npt.NDArray[np.intp]) -> Pixels:
    return pixels[0][at], pixels[1][at]


def _projected_alpha(
    pixels: npt.NDArray[np.float64], back: npt.NDArray[np.float64], color: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Alpha that best explains ``pixels = (1 - a) back + a color`` pixel by pixel."""
    toward = np.asarray(color, np.float64) - back
    return np.asarray(
        ((pixels - back) * toward).sum(-1) / np.maximum((toward * toward).sum(-1), 1.0),
        np.float64,
    )


def _rim_fit(
    img: npt.NDArray[np.float64],
    inside: Pixels,
    outside: Pixels,
    beyond: Pixels | None = None,
) -> tuple[float, F32] | None:
    """(opacity, colour) of ``inner = (1 - a) outer + a W`` over the paired pixels of ``img``
    (`_rim_pairs`): one slope shared by the channels, one offset per channel.

    The outside pixel only stands in for the photo under the inside one, a few pixels away,
    and their difference (texture) flattens a least-squares slope, which overstates the
    opacity (tuning marks: 0.45-0.66 fitted for 0.31-0.53). Given the pixels ``beyond``, the
    texture between pixels as far apart (`_texture`) is taken out of the slope (errors in
    variables)."""
    inner, outer = img[inside], img[outside]
    texture = None if beyond is None else _texture(img, outside, beyond)
    design = np.zeros((inner.size, 4))
    design[:, 0] = outer.reshape(-1)
    for ch in range(3):
        design[ch::3, 1 + ch] = 1.0
    target = inner.reshape(-1)
    weight = np.ones(target.size)
    used = weight
    coef = np.zeros(4)
    for _ in range(RIM_ROUNDS + 1):
        solved = np.linalg.lstsq(design * weight[:, None], target * weight, rcond=None)[0]
        coef = np.asarray(solved, np.float64)
        used = weight
        resid = np.abs(target - design @ coef)
        scale = 1.4826 * float(np.median(resid)) + 1e-3
        weight = 1.0 / np.maximum(resid / scale, 1.0)
    offset = coef[1:]
    slope = float(coef[0])
    if texture is not None:
        # Least squares on weighted rows: each pair counts with its weight squared.
        counts = (used * used).reshape(-1, 3)
        fitted = slope
        slope = _deattenuated(inner, outer, texture, counts, slope)
        offset = offset + (fitted - slope) * (counts * outer).sum(0) / counts.sum(0)
    peak = 1.0 - float(np.clip(slope, 1.0 - MAX_OPACITY, 1.0))
    if peak < MIN_OPACITY:
        return None
    return peak, np.clip(offset / peak, 0.0, 255.0).astype(np.float32)


def _deattenuated(
    inner: npt.NDArray[np.float64],
    outer: npt.NDArray[np.float64],
    texture: float,
    weight: npt.NDArray[np.float64],
    slope: float,
) -> float:
    """The rim slope with the texture between paired pixels taken out: for a stationary
    photo, cov(inner, outer) = (1 - a) (var - texture / 2), where ``texture`` is the
    variance of the difference of two pixels as far apart."""
    mean_in = (weight * inner).sum(0) / weight.sum(0)
    mean_out = (weight * outer).sum(0) / weight.sum(0)
    cov = float((weight * (inner - mean_in) * (outer - mean_out)).sum())
    var = float((weight * (outer - mean_out) ** 2).sum())
    if var <= 0.0:
        return slope
    # At most halve the variance: beyond that the photo is all texture at this scale.
    return cov / max(var - 0.5 * texture * float(weight.sum()), 0.5 * var)
