"""Find where a visible watermark is.

Text is found by the PP-OCR text detector (DB, ONNX, from the ``rapidocr`` wheel, fetched and
verified at install time; never downloaded here). A text region is kept as a *watermark*
candidate, not scene text, by these cues: it sits near a corner, an edge or the centre, it
repeats (tiling), or - decided later, when alpha is estimated - the background shows through
it (semi-transparency). In a batch, what every image shares at the same place is the
watermark (median gradient across images), which also finds logos without any text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from removeany.engine.models import (
    ModelSpec,
    WheelSource,
    cpu_session,
    default_model_dir,
    model_path,
    verify_model_file,
)
from removeany.engine.watermark._ops import F32, U8, Bool, luma, sobel_xy, stack_median

# PP-OCRv6 small text detector, shipped inside the rapidocr wheel on PyPI. Fetched and
# verified at install time by ``models.fetch_model``; never downloaded at run time.
TEXT_DETECTOR = ModelSpec(
    name="ppocr-det",
    filename="PP-OCRv6_det_small.onnx",
    sha256="090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    input_size=(736, 736),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    source=WheelSource("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx"),
)

_PROB_THRESH = 0.3
_BOX_THRESH = 0.5
_UNCLIP = 1.6
# Longest side the detector sees; watermark lettering is large enough at this scale.
DETECT_SIDE = 640
# Short side for the editor's suggestion (PP-OCR's own pipeline uses 736, rapidocr's
# limit_type "min"): small or faint lettering that scores near 0 at 320 px scores near 1
# here. It costs about 0.4 s more a photo, and the automatic path did not gain from it (its
# estimate fails on those marks; benchmarks/watermark/README.md, round 5).
SUGGEST_MIN_SIDE = 736
# The longest side the detector may reach.
DETECT_MAX_SIDE = 1600
LARGE_REGION = 0.2
# A "text line" whose grown mask covers more than this share of the photo is the detector
# reading texture (a striped fabric, a flower bed), not text: no line of a mark is that large.
TEXTURE_SHARE = 0.6


@dataclass(frozen=True)
class TextRegion:
    """One detected text line: its pixel mask (unclipped like DB does) and placement cues."""

    mask: Bool
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    placement: str  # "corner", "edge", "center" or "inner"


class TextDetector:
    """PP-OCR DB text detector on ONNX Runtime (CPU unless told otherwise)."""

    def __init__(self, model_path: Path, *, verify: bool = True, threads: int = 2) -> None:
        if verify:
            verify_model_file(model_path, TEXT_DETECTOR.sha256)
        self._session: Any = cpu_session(model_path, threads)
        self._input = self._session.get_inputs()[0].name

    def probability(
        self, image: U8, *, side: int = DETECT_SIDE, min_side: int | None = None
    ) -> F32:
        """Text probability map (HxW, 0..1) for an RGB uint8 image, seen with its long side
        at most ``side`` (short side at least 320), or with its short side at ``min_side``."""
        h, w = image.shape[:2]
        if min_side is not None:
            ratio = min(max(1.0, min_side / min(h, w)), DETECT_MAX_SIDE / max(h, w))
        else:
            ratio = side / max(h, w) if max(h, w) > side else 1.0
            if min(h, w) * ratio < 320:
                ratio = min(320 / min(h, w), DETECT_MAX_SIDE / max(h, w))
        rh = max(32, round(h * ratio / 32) * 32)
        rw = max(32, round(w * ratio / 32) * 32)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        x = cv2.resize(bgr, (rw, rh)).astype(np.float32) / 255.0
        x = (x - 0.5) / 0.5
        x = x.transpose(2, 0, 1)[None]
        out = self._session.run(None, {self._input: x})[0]
        prob = np.asarray(out[0, 0], np.float32)
        return np.asarray(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def default_detector_path(model_dir: Path | None = None) -> Path:
    """Where the text detector is installed (``model_dir`` or the engine's model directory)."""
    return model_path(TEXT_DETECTOR, model_dir or default_model_dir())


_CACHE: dict[str, TextDetector] = {}


def load_text_detector(model_dir: Path | None = None) -> TextDetector | None:
    """The installed text detector, or None when it is not installed."""
    path = default_detector_path(model_dir)
    key = str(path.resolve())
    if key in _CACHE:
        return _CACHE[key]
    if not path.is_file():
        return None
    det = TextDetector(path)
    _CACHE[key] = det
    return det


def _placement(x0: int, y0: int, x1: int, y1: int, h: int, w: int) -> str:
    if (x1 - x0) * (y1 - y0) > LARGE_REGION * h * w:
        return "inner"  # covers much of the picture: placement says nothing
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    near_x = x0 < 0.12 * w or x1 > 0.88 * w
    near_y = y0 < 0.12 * h or y1 > 0.88 * h
    if near_x and near_y:
        return "corner"
    if near_x or near_y:
        return "edge"
    if abs(cx - 0.5) < 0.2 and abs(cy - 0.5) < 0.2:
        return "center"
    return "inner"


def text_regions(prob: F32) -> list[TextRegion]:
    """DB post-processing: threshold, score each blob, grow it like DB's unclip."""
    h, w = prob.shape
    bitmap = np.asarray(
        cv2.dilate((prob > _PROB_THRESH).astype(np.uint8), np.ones((2, 2), np.uint8)), np.uint8
    )
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bitmap, connectivity=8)
    out: list[TextRegion] = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if min(bw, bh) < 3 or area < 12:
            continue
        comp = labels[y : y + bh, x : x + bw] == i
        score = float(prob[y : y + bh, x : x + bw][comp].mean())
        if score < _BOX_THRESH:
            continue
        pts = np.argwhere(comp)[:, ::-1].astype(np.float32)
        (_, _), (rw, rh), _ = cv2.minAreaRect(pts)
        rw, rh = max(rw, 1.0), max(rh, 1.0)
        dist = int(np.ceil(rw * rh * _UNCLIP / (2 * (rw + rh)))) + 2
        x0, y0 = max(x - dist, 0), max(y - dist, 0)
        x1, y1 = min(x + bw + dist, w), min(y + bh + dist, h)
        m = np.zeros((h, w), np.uint8)
        m[y : y + bh, x : x + bw] = comp.astype(np.uint8)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dist + 1, 2 * dist + 1))
        sub = cv2.dilate(m[y0:y1, x0:x1], k)
        if np.count_nonzero(sub) > TEXTURE_SHARE * h * w:
            continue
        full = np.zeros((h, w), bool)
        full[y0:y1, x0:x1] = sub > 0
        out.append(
            TextRegion(
                mask=full,
                score=score,
                box=(x0, y0, x1, y1),
                placement=_placement(x0, y0, x1, y1, h, w),
            )
        )
    return out


def is_tiled(regions: list[TextRegion], shape: tuple[int, int]) -> bool:
    """Many similar text lines spread over the image: a tiled watermark."""
    if len(regions) < 4:
        return False
    heights = np.array([r.box[3] - r.box[1] for r in regions], float)
    similar = np.abs(heights - np.median(heights)) < 0.35 * np.median(heights)
    if similar.sum() < 4:
        return False
    h, w = shape
    cys = np.array([(r.box[1] + r.box[3]) / 2 / h for r in regions])[similar]
    cxs = np.array([(r.box[0] + r.box[2]) / 2 / w for r in regions])[similar]
    return bool(np.ptp(cys) > 0.4 and np.ptp(cxs) > 0.4)


def boxes_to_mask(boxes: list[tuple[int, int, int, int]], shape: tuple[int, int]) -> Bool:
    """User boxes (x0, y0, x1, y1), clipped to the image, as a mask."""
    h, w = shape
    m = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        xa, xb = sorted((max(0, min(int(x0), w)), max(0, min(int(x1), w))))
        ya, yb = sorted((max(0, min(int(y0), h)), max(0, min(int(y1), h))))
        m[ya:yb, xa:xb] = True
    return m


# Shared-mark detection in a batch (Dekel et al., CVPR 2017): the mark's edges have the same
# sign in every image, so the per-pixel median of the gradients keeps them while the photos'
# own edges (different in each image) cancel out. A pixel is a shared edge when its median
# gradient is an outlier (SHARED_MADS robust deviations) of the image's median gradients.
SHARED_MADS = 8.0
SHARED_FLOOR = 12.0
# Shared edges must be dense at the stroke scale (isolated coincidences are dropped).
SHARED_DENSITY = 0.08
SHARED_MIN_PIXELS = 30


def median_gradient(stack: F32) -> F32:
    """Per-pixel magnitude of the across-image median gradient (KxHxWx3 -> HxW, max over RGB)."""
    out = np.zeros(stack.shape[1:3], np.float32)
    for c in range(stack.shape[3]):
        grads = [sobel_xy(im[..., c]) for im in stack]
        gx = stack_median([g[0] for g in grads])
        gy = stack_median([g[1] for g in grads])
        out = np.maximum(out, np.hypot(gx, gy).astype(np.float32))
    return out


def fill_holes(mask: Bool) -> Bool:
    """Mask with every enclosed hole filled (a ring's inside, a letter's counter)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled > 0


def shared_mark_region(g: F32, stroke: int) -> Bool:
    """Where same-sized images share a mark, from their median gradient ``g``
    (`median_gradient`): dense consistent edges, closed over the stroke scale and
    hole-filled (so a logo's fill is included)."""
    med = float(np.median(g))
    mad = float(np.median(np.abs(g - med))) + 1e-3
    strong = g > max(SHARED_FLOOR, med + SHARED_MADS * 1.4826 * mad)
    if int(strong.sum()) < SHARED_MIN_PIXELS:
        return np.zeros(strong.shape, bool)
    k = max(3, stroke | 1)
    density = cv2.blur(strong.astype(np.float32), (k, k), borderType=cv2.BORDER_REFLECT)
    strong &= density > SHARED_DENSITY
    if int(strong.sum()) < SHARED_MIN_PIXELS:
        return np.zeros(strong.shape, bool)
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(strong.astype(np.uint8), cv2.MORPH_CLOSE, ker) > 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(SHARED_MIN_PIXELS, k * k // 2)
    return fill_holes(np.asarray(keep[labels], bool))


# A batch's shared edges repeat on a lattice (a tiled mark) when their autocorrelation peaks,
# at this share of its value at no shift, in two directions at least LATTICE_ANGLE apart.
# Tuning batches: tiled marks 0.21-0.76 (8 of 10 at 0.49 or more); text, CJK handles, logos
# and unmarked batches at most 0.27 (a line of text repeats along itself only).
LATTICE_PEAK = 0.4
LATTICE_ANGLE = np.radians(20.0)


Shift = tuple[float, float]


def lattice(g: F32) -> tuple[float, tuple[Shift, Shift]]:
    """How strongly a median-gradient map (HxW) repeats along two directions, and the two
    shifts (rows, columns) it repeats by: the normalised autocorrelation at its best peak in
    a second direction (0 when there is none). Shifts range up to half the map each way, and
    from a twentieth of its short side (a letter's own strokes are nearer)."""
    h, w = g.shape
    x = g.astype(np.float64) - float(g.mean())
    size = (2 * h, 2 * w)
    spectrum = np.fft.rfft2(x, s=size)
    corr = np.fft.fftshift(np.fft.irfft2(spectrum * np.conj(spectrum), s=size))
    overlap = np.fft.rfft2(np.ones((h, w)), s=size)
    count = np.fft.fftshift(np.fft.irfft2(overlap * np.conj(overlap), s=size))
    corr /= np.maximum(count, 1.0)
    if corr[h, w] <= 0.0:
        return 0.0, ((0.0, 0.0), (0.0, 0.0))
    corr /= corr[h, w]
    return _two_peaks(corr, max(8, min(h, w) // 20))[:2]


# A photo's mark found in part repeats on a lattice (a tiled mark) when the gradient of what
# was removed, shifted, meets the photo's own gradient (signed, so the photo's texture
# averages out) at this share of where it was removed, in two directions, when that peak
# stands this many standard deviations of the correlation above zero, and when the lattice
# closes: the sum or the difference of the two shifts, a shift of the lattice too, meets the
# photo at least MARK_LATTICE_CLOSURE of the second peak's value. Single photos of both
# splits, at native size and at 1200 px, where something was removed: the tiled marks the
# lattice completes close at 0.54-1.8 of their second peak, the three a looser rule made
# worse at 0.12-0.46, a painted sign at 0 (at 10.4 deviations); no other mark, scene text or
# unmarked photo reaches a peak of 0.2 at 11 deviations (benchmarks/watermark/README.md,
# round 20).
MARK_LATTICE_PEAK = 0.2
MARK_LATTICE_DEVIATIONS = 12.0
MARK_LATTICE_CLOSURE = 0.5
# A tiled mark's tiles lie farther apart than this share of the photo's short side (its
# letters are nearer: 0.04-0.06).
MARK_LATTICE_MIN_SHIFT = 0.1


def mark_lattice(removed: F32, photo: F32) -> tuple[Shift, Shift] | None:
    """The two shifts (rows, columns) along which a mark found in part of a photo repeats,
    or None: ``removed`` is what was taken out of the photo where the mark was found (luma,
    0 elsewhere), ``photo`` the photo's luma, both HxW."""
    h, w = photo.shape
    # Padded to sizes the FFT is fast at; the shifts (-h..h, -w..w) are then rolled into place.
    size = (cv2.getOptimalDFTSize(2 * h), cv2.getOptimalDFTSize(2 * w))
    spectrum = sum(
        np.fft.rfft2(p, s=size) * np.conj(np.fft.rfft2(t, s=size))
        for t, p in zip(sobel_xy(removed), sobel_xy(photo), strict=True)
    )
    corr = np.roll(np.fft.irfft2(spectrum, s=size), (h, w), axis=(0, 1))[: 2 * h, : 2 * w]
    corr = corr.astype(np.float64)
    if corr[h, w] <= 0.0:
        return None
    corr /= corr[h, w]
    strength, shifts, spread = _two_peaks(corr, max(8.0, MARK_LATTICE_MIN_SHIFT * min(h, w)))
    if strength < MARK_LATTICE_PEAK or strength < MARK_LATTICE_DEVIATIONS * spread:
        return None
    (ay, ax), (by, bx) = shifts
    closure = max(_near(corr, ay + by, ax + bx), _near(corr, ay - by, ax - bx))
    return shifts if closure >= MARK_LATTICE_CLOSURE * strength else None


def _near(corr: npt.NDArray[np.float64], dy: float, dx: float) -> float:
    """A correlation's (2Hx2W, no shift at its centre) highest value within a pixel of the
    shift (dy, dx); 0 beyond it."""
    h, w = corr.shape[0] // 2, corr.shape[1] // 2
    y, x = round(dy) + h, round(dx) + w
    if not (0 <= y < 2 * h and 0 <= x < 2 * w):
        return 0.0
    return float(corr[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].max())


def _two_peaks(
    corr: npt.NDArray[np.float64], min_shift: float
) -> tuple[float, tuple[Shift, Shift], float]:
    """In a correlation of two HxW maps (2Hx2W, no shift at its centre): the value of its best
    peak in a second direction at least LATTICE_ANGLE from its best one (0 when there is
    none), the two peaks' shifts, and the standard deviation of the correlation, over shifts
    of at least ``min_shift`` and under half the map each way."""
    none = 0.0, ((0.0, 0.0), (0.0, 0.0)), 0.0
    h, w = corr.shape[0] // 2, corr.shape[1] // 2
    # Read on the window of those shifts, with the margin a peak's neighbourhood needs.
    top, left = max(h - h // 2 - 2, 0), max(w - w // 2 - 2, 0)
    window = corr[top : 2 * h - top, left : 2 * w - left]
    dy, dx = np.mgrid[top - h : h - top, left - w : w - left]
    near = (np.hypot(dy, dx) >= min_shift) & (np.abs(dy) < h // 2)
    near &= np.abs(dx) < w // 2
    level = window.astype(np.float32)
    ys, xs = np.nonzero(near & (level == cv2.dilate(level, np.ones((5, 5), np.uint8))))
    if not len(ys):
        return none
    spread = float(window[near].std())
    ys, xs = ys + top, xs + left
    order = np.argsort(-corr[ys, xs])
    first = order[0]
    heading = np.arctan2(ys[first] - h, xs[first] - w)
    for i in order[1:]:
        turn = (np.arctan2(ys[i] - h, xs[i] - w) - heading + np.pi / 2) % np.pi - np.pi / 2
        if abs(turn) > LATTICE_ANGLE:
            along = _peak_at(corr, ys[first], xs[first], h, w)
            return float(corr[ys[i], xs[i]]), (along, _peak_at(corr, ys[i], xs[i], h, w)), spread
    return none


def _peak_at(corr: npt.NDArray[np.float64], y: int, x: int, h: int, w: int) -> Shift:
    """The shift of the autocorrelation peak at (y, x), to a fraction of a pixel (a parabola
    through it and its neighbours along each axis)."""

    def offset(before: float, at: float, after: float) -> float:
        curve = before - 2.0 * at + after
        return 0.0 if curve >= 0.0 else 0.5 * (before - after) / curve

    dy = offset(corr[y - 1, x], corr[y, x], corr[y + 1, x])
    dx = offset(corr[y, x - 1], corr[y, x], corr[y, x + 1])
    return float(y - h + dy), float(x - w + dx)


# An image carries a batch's shared mark when its own gradient at the strongest shared edges
# points the way the median gradient does (cosine similarity): marked photos score 0.5-1,
# photos without the mark about 0.
CARRIES_MARK = 0.4
# The strongest shared edges: this top fraction of median-gradient pixels (in the region).
AGREEMENT_TOP = 0.05


def mark_agreement(stack: F32, region: Bool) -> F32:
    """Per image of a KxHxWx3 stack, how well its edges agree with the edges all of them
    share (the median luma gradient), at the strongest shared edges within ``region``."""
    grads = [sobel_xy(im) for im in stack]
    gx, gy = np.stack([g[0] for g in grads]), np.stack([g[1] for g in grads])
    mx, my = stack_median(gx), stack_median(gy)
    mag = np.hypot(mx, my)
    where = region if region.any() else np.ones(mag.shape, bool)
    strong = where & (mag >= np.quantile(mag[where], 1.0 - AGREEMENT_TOP))
    if not strong.any():
        return np.zeros(len(stack), np.float32)
    sx, sy = gx[:, strong], gy[:, strong]
    dot = (sx * mx[strong] + sy * my[strong]).sum(axis=1)
    norm = np.sqrt((sx * sx + sy * sy).sum(axis=1) * float((mag[strong] ** 2).sum()))
    return np.asarray(dot / np.maximum(norm, 1e-6), np.float32)


# Photos whose coarse layout (luma at LAYOUT_SIDE px across, blurred) correlates this much,
# pair by pair (median), are shots of one scene: a burst, a bracketed series. Different
# photos sharing a mark score -0.2..0.2 whatever the mark; a hand-held burst of one photo 0.99.
ALIKE = 0.8
LAYOUT_SIDE = 48


def photos_alike(stack: F32) -> bool:
    """Whether a stack's photos (KxHxWx3) show one scene. Then everything in them is shared,
    the scene as much as a mark, and what they share does not say where the mark is: it must
    be found in each photo on its own (a user's mask still says where it is)."""
    h, w = stack.shape[1:3]
    size = (LAYOUT_SIDE, max(1, round(LAYOUT_SIDE * h / w)))
    layouts = []
    for im in stack:
        y = cv2.resize(luma(im), size, interpolation=cv2.INTER_AREA)
        y = cv2.GaussianBlur(y, (0, 0), 1.5)
        layouts.append((y - y.mean()) / (y.std() + 1e-6))
    pairs = [float((a * b).mean()) for i, a in enumerate(layouts) for b in layouts[i + 1 :]]
    return bool(pairs) and float(np.median(pairs)) >= ALIKE
