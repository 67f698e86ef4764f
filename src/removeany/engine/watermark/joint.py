"""A batch's shared mark, pixel by pixel, from the photos themselves.

Photos that share a mark, ``J_k = (1 - a) I_k + a W``, differ only in ``I_k``. Centred over
the photos, ``J_k - mean(J) = (1 - a) (I_k - mean(I))``: the mark's colour drops out, and the
photos' spread at a pixel is scaled by ``1 - a``. Between two neighbours, the log of that
spread changes by the change in ``log(1 - a)`` plus the photos' own texture, which has no
preferred sign. Integrated from the region's edge, where ``a = 0``, those changes give the
opacity. Where the photos share no edge (the median over them of a neighbour difference is
small) the mark has none either, so the opacity is held level there; this is what keeps the
texture from accumulating over a large fill.

With the opacity known, each restored photo is ``J_k / (1 - a) - c``. Between neighbours,
``c`` changes by what every photo's ``J_k / (1 - a)`` changes by (their median), since the
photos' own changes differ; integrated the same way it gives the premultiplied colour
``a W = (1 - a) c``.

Unlike the layer estimate (``estimate.py``), nothing here inpaints a background, so a large
logo, a filled disc or a mark of several colours is estimated as well as thin lettering.
Both integrations are weighted least squares, solved by conjugate gradients.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from removeany.engine.watermark._ops import F32, Bool, bbox

F64 = npt.NDArray[np.float64]
Pair = tuple[tuple[slice, slice], tuple[slice, slice]]

# Summed over the channels, a median neighbour difference of this many levels is surely the
# mark's own edge; below it the opacity step is scaled down in proportion.
MARK_EDGE = 24.0
# Added to the photos' spread (levels) so flat, saturated pixels do not divide by zero.
SPREAD_FLOOR = 1.0
CG_ITERS = 100
CG_TOL = 1e-5
# Pixels around the region (outside it, so of known opacity 0) the integrations start from.
RING = 2
# Keeps the solve well posed where the photos say nothing (tiny pull towards "no mark").
RIDGE = 1e-4


def _neighbours(h: int, w: int) -> list[Pair]:
    """(pixel, right neighbour) and (pixel, neighbour below), as slice pairs."""
    return [
        ((slice(None), slice(0, w - 1)), (slice(None), slice(1, w))),
        ((slice(0, h - 1), slice(None)), (slice(1, h), slice(None))),
    ]


def integrate(steps: list[F64], weights: list[F64], free: Bool, start: F64 | None = None) -> F64:
    """The field x (zero where not ``free``) whose neighbour differences ``x_p - x_q`` best
    match ``steps`` in weighted least squares; one entry per ``_neighbours`` direction,
    HxW or HxWxC. ``start`` (same shape as x) is a first guess: conjugate gradients from a
    good guess need far fewer iterations."""
    h, w = free.shape
    pairs = _neighbours(h, w)
    tail = steps[0].shape[2:]
    keep = free.reshape(free.shape + (1,) * len(tail)).astype(np.float64)

    def spread_back(ys: list[F64], out: F64) -> F64:
        out.fill(0.0)
        for (p, q), y in zip(pairs, ys, strict=True):
            out[p] += y
            out[q] -= y
        out *= keep
        return out

    diffs = [np.empty(wt.shape[:2] + tail) for wt in weights]

    def normal(x: F64, out: F64) -> F64:
        for (p, q), wt, d in zip(pairs, weights, diffs, strict=True):
            np.subtract(x[p], x[q], out=d)
            d *= wt
        spread_back(diffs, out)
        out += RIDGE * x * keep
        return out

    x = np.zeros((h, w, *tail)) if start is None else start * keep
    r = spread_back([wt * s for wt, s in zip(weights, steps, strict=True)], np.empty_like(x))
    stop = CG_TOL * CG_TOL * float((r * r).sum())
    nd = np.empty_like(x)
    r -= normal(x, nd)
    d = r.copy()
    rr = float((r * r).sum())
    for _ in range(CG_ITERS):
        if rr <= stop or rr == 0.0:
            break
        normal(d, nd)
        step = rr / max(float((d * nd).sum()), 1e-30)
        x += step * d
        r -= step * nd
        rr_next = float((r * r).sum())
        d *= rr_next / rr
        d += r
        rr = rr_next
    return x


def _log_clear(js: F32, free: Bool, start: F64 | None) -> F64:
    """log(1 - a) over a box of the photos (KxHxWx3), zero where not ``free``."""
    pairs = _neighbours(*free.shape)
    mean = js.mean(axis=0)
    spread = np.zeros(free.shape)
    for im in js:
        spread += ((im - mean) ** 2).sum(axis=-1)
    log_spread = np.log(np.sqrt(spread / (3 * len(js))) + SPREAD_FLOOR)
    shared = [np.median(js[:, p[0], p[1]] - js[:, q[0], q[1]], axis=0) for p, q in pairs]
    edge = [np.clip(np.abs(s).sum(axis=-1) / MARK_EDGE, 0.0, 1.0) for s in shared]
    steps = [(log_spread[p] - log_spread[q]) * e for (p, q), e in zip(pairs, edge, strict=True)]
    ones = [np.ones(s.shape) for s in steps]
    return np.minimum(integrate(steps, ones, free, start), 0.0)  # a >= 0


def shared_opacity(stack: F32, region: Bool, *, max_opacity: float) -> F32:
    """Opacity (HxW) of the mark the photos of ``stack`` (KxHxWx3, 0..255, K >= 2) share
    inside ``region``; zero outside it."""
    alpha = np.zeros(region.shape, np.float32)
    box = bbox(region, RING, region.shape)  # plus unmarked pixels to integrate from
    if box is None:
        return alpha
    log_clear = _log_clear(np.asarray(stack[:, box[0], box[1]], np.float32), region[box], None)
    alpha[box] = 1.0 - np.clip(np.exp(log_clear), 1.0 - max_opacity, 1.0)
    return alpha


def shared_blend(
    stack: F32, region: Bool, *, max_opacity: float, start: F32 | None = None
) -> tuple[F32, F32]:
    """Opacity (HxW) and colour (HxWx3, 0..255) of the mark the photos of ``stack``
    (KxHxWx3, 0..255, K >= 2) share inside ``region``; zero opacity outside it. ``start`` is
    an opacity found before (`shared_opacity` over a larger region) to begin from."""
    alpha = np.zeros(region.shape, np.float32)
    color = np.zeros((*region.shape, 3), np.float32)
    box = bbox(region, RING, region.shape)  # plus unmarked pixels to integrate from
    if box is None:
        return alpha, color
    js = stack[:, box[0], box[1]].astype(np.float32)
    free = region[box]
    guess = None
    if start is not None:
        guess = np.log(np.clip(1.0 - start[box].astype(np.float64), 1.0 - max_opacity, 1.0))
    clear = np.clip(np.exp(_log_clear(js, free, guess)), 1.0 - max_opacity, 1.0)
    a = (1.0 - clear) * free
    alpha[box] = a
    color[box] = _color_in_box(js, clear, free)
    return alpha, color


def shared_color(stack: F32, alpha: F32, region: Bool, *, start: F32 | None = None) -> F32:
    """Colour (HxWx3, 0..255) of the mark of opacity ``alpha`` (HxW) that the photos of
    ``stack`` (KxHxWx3, K >= 2) share inside ``region``: the second half of `shared_blend`,
    for an opacity found some other way (a batch's final opacity, after its layers and the
    per-pixel rest are combined; the watermark benchmark's ceiling uses the true one).
    ``start`` is a colour found before (HxWx3) to begin from."""
    color = np.zeros((*region.shape, 3), np.float32)
    box = bbox(region, RING, region.shape)
    if box is None:
        return color
    js = stack[:, box[0], box[1]].astype(np.float32)
    free = region[box]
    clear = np.where(free, 1.0 - alpha[box].astype(np.float64), 1.0)
    guess = None
    if start is not None:
        # The integrated quantity is the colour premultiplied and divided by 1 - a.
        guess = (1.0 - clear)[..., None] * start[box].astype(np.float64) / clear[..., None]
    color[box] = _color_in_box(js, clear, free, guess)
    return color


def _color_in_box(js: F32, clear: F64, free: Bool, start: F64 | None = None) -> F32:
    """The mark's colour over a box of the photos (KxHxWx3; ``js`` is divided in place) whose
    opacity is ``1 - clear``, by integrating the median step of ``J_k / (1 - a)``."""
    pairs = _neighbours(*free.shape)
    unscaled = js
    unscaled /= clear[None, ..., None].astype(np.float32)
    offsets = [
        np.median(unscaled[:, p[0], p[1]] - unscaled[:, q[0], q[1]], axis=0) for p, q in pairs
    ]
    offset = integrate(offsets, [np.ones(o.shape[:2])[..., None] for o in offsets], free, start)
    a = (1.0 - clear) * free
    premult = offset * clear[..., None]
    return np.asarray(
        np.where(a[..., None] > 1e-3, premult / np.maximum(a, 1e-3)[..., None], 0.0), np.float32
    )
