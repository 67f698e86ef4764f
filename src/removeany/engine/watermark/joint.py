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
Both integrations are least squares, solved by conjugate gradients over the neighbour pairs
that touch the region alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from removeany.engine.watermark._ops import F32, Bool, bbox, stack_median

F64 = npt.NDArray[np.float64]
Idx = npt.NDArray[np.intp]
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


@dataclass(frozen=True)
class _Graph:
    """The neighbour pairs of a box that touch its free pixels. Only those pairs enter the
    integrations, so a sparse region (a tiled mark's letters fill a tenth of their box) costs
    what its pixels cost, not what the box does. Free pixels are numbered 0..n-1; every
    other pixel is n, the one unknown held at zero."""

    free: Bool
    nodes: Idx  # flat box index of each free pixel
    first: Idx  # flat box index of each pair's first pixel (left or upper) ...
    second: Idx  # ... and of its second (right or lower)
    first_node: Idx  # the same pixels numbered as unknowns (n where not free)
    second_node: Idx

    @property
    def n(self) -> int:
        return len(self.nodes)

    def gather(self, flat: F32) -> tuple[F32, F32]:
        """``flat`` (..., H*W, ...) at every pair's first and second pixel."""
        return flat[:, self.first], flat[:, self.second]

    def expand(self, x: F64) -> F64:
        """Unknowns (n or n x C) laid out over the box, zero where not free."""
        out = np.zeros((self.free.size, *x.shape[1:]))
        out[self.nodes] = x
        return out.reshape(*self.free.shape, *x.shape[1:])

    def unknowns(self, field: F64) -> F64:
        """A box-shaped field (HxW or HxWxC) at the free pixels."""
        return field.reshape(self.free.size, *field.shape[2:])[self.nodes]


def _graph(free: Bool) -> _Graph:
    h, w = free.shape
    nodes = np.flatnonzero(free)
    number = np.full(h * w, len(nodes), np.intp)
    number[nodes] = np.arange(len(nodes))
    index = np.arange(h * w).reshape(h, w)
    firsts, seconds = [], []
    for p, q in _neighbours(h, w):
        touch = free[p] | free[q]
        firsts.append(index[p][touch])
        seconds.append(index[q][touch])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    return _Graph(free, nodes, first, second, number[first], number[second])


def integrate(graph: _Graph, steps: F64, start: F64 | None = None) -> F64:
    """The field x over ``graph``'s free pixels (zero elsewhere) whose neighbour differences
    ``x_p - x_q`` best match ``steps`` (one per pair, E or E x C) in least squares, laid out
    over the box. ``start`` (box-shaped) is a first guess: conjugate gradients from a good
    guess need far fewer iterations."""
    n = graph.n
    tail = steps.shape[1:]
    ip, iq = graph.first_node, graph.second_node

    def spread_back(y: F64) -> F64:
        out = np.empty((n + 1, *tail))
        for c in np.ndindex(*tail):
            col = (slice(None), *c)
            out[col] = np.bincount(ip, y[col], n + 1) - np.bincount(iq, y[col], n + 1)
        out[n] = 0.0
        return out

    def normal(x: F64) -> F64:
        out = spread_back(x[ip] - x[iq])
        out += RIDGE * x
        return out

    x = np.zeros((n + 1, *tail))
    if start is not None:
        x[:n] = graph.unknowns(start)
    r = spread_back(steps)
    stop = CG_TOL * CG_TOL * float((r * r).sum())
    r -= normal(x)
    d = r.copy()
    rr = float((r * r).sum())
    for _ in range(CG_ITERS):
        if rr <= stop or rr == 0.0:
            break
        nd = normal(d)
        step = rr / max(float((d * nd).sum()), 1e-30)
        x += step * d
        r -= step * nd
        rr_next = float((r * r).sum())
        d *= rr_next / rr
        d += r
        rr = rr_next
    return graph.expand(x[:n])


def _log_clear(js: F32, free: Bool, start: F64 | None) -> F64:
    """log(1 - a) over a box of the photos (KxHxWx3), zero where not ``free``."""
    graph = _graph(free)
    k = len(js)
    flat = js.reshape(k, free.size, 3)
    mean = flat.mean(axis=0)
    spread = np.zeros(free.size)
    for im in flat:
        spread += ((im - mean) ** 2).sum(axis=-1)
    log_spread = np.log(np.sqrt(spread / (3 * k)) + SPREAD_FLOOR)
    first, second = graph.gather(flat)
    shared = stack_median(first - second)
    edge = np.clip(np.abs(shared).sum(axis=-1) / MARK_EDGE, 0.0, 1.0)
    steps = (log_spread[graph.first] - log_spread[graph.second]) * edge
    return np.minimum(integrate(graph, steps, start), 0.0)  # a >= 0


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
    graph = _graph(free)
    unscaled = js
    unscaled /= clear[None, ..., None].astype(np.float32)
    first, second = graph.gather(unscaled.reshape(len(js), free.size, 3))
    offset = integrate(graph, stack_median(first - second).astype(np.float64), start)
    a = (1.0 - clear) * free
    premult = offset * clear[..., None]
    return np.asarray(
        np.where(a[..., None] > 1e-3, premult / np.maximum(a, 1e-3)[..., None], 0.0), np.float32
    )
