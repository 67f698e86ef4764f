"""Visible-watermark removal that restores the pixels underneath.

Most visible watermarks are alpha blends ``J = (1 - a) I + a W``; where ``a < 1`` the original
is still in the pixels, so we estimate ``a`` and ``W`` and invert the blend, and inpaint only
where ``a`` is close to 1. Batches that share a watermark are estimated jointly.

    from removeany.engine.watermark import remove_watermark, remove_watermark_batch
    clean = remove_watermark(pil_image)                   # detect, estimate, restore
    clean = remove_watermark(pil_image, mask=user_mask)   # the user's mask overrides detection
    found = detect_mask(pil_image, load_text_detector())  # where it is, nothing restored
    cleans = remove_watermark_batch([im1, im2, im3])      # joint estimate when they share one
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from removeany.engine.watermark._ops import (
    F32,
    Bool,
    bbox,
    dilate,
    grad_energy,
    grad_map,
    inpaint,
    luma,
    stack_median,
)
from removeany.engine.watermark.detect import (
    CARRIES_MARK,
    LATTICE_PEAK,
    SUGGEST_MIN_SIDE,
    TEXT_DETECTOR,
    Shift,
    TextDetector,
    TextRegion,
    boxes_to_mask,
    fill_holes,
    is_tiled,
    lattice,
    load_text_detector,
    mark_agreement,
    mark_lattice,
    median_gradient,
    photos_alike,
    shared_mark_region,
    text_regions,
)
from removeany.engine.watermark.estimate import (
    MAX_OPACITY,
    MIN_OPACITY,
    SMOOTH_SINGLE,
    Estimate,
    LayerInfo,
    around_region,
    component_estimate,
    estimate,
    mark_footprint,
    over,
    refine_alpha,
    rim_estimate,
    rim_opacity,
    stroke_size,
)
from removeany.engine.watermark.joint import shared_blend, shared_color, shared_opacity
from removeany.engine.watermark.net import MARK_NET, load_mark_net
from removeany.engine.watermark.restore import guard, unblend

Box = tuple[int, int, int, int]
ImageLike = TypeVar("ImageLike", Image.Image, npt.NDArray[np.uint8])

# The weights watermark removal runs on; `removeany models fetch` installs them.
WATERMARK_MODELS = (TEXT_DETECTOR, MARK_NET)
# Below this many same-sized images a batch is processed image by image.
MIN_JOINT = 3
# At most this many images feed the joint estimate (memory and time stay bounded).
MAX_JOINT = 12
# Fewer marked pixels than this in a shared region is no shared mark.
MIN_JOINT_PIXELS = 12
# The joint estimate is made on the box around the shared mark's region, at full size up to
# this side squared in pixels (reduced beyond, the estimate scaled back up).
JOINT_MAX_SIDE = 640
# Longest side at which the photos of a batch are searched for their shared mark (larger
# photos are reduced first; the estimate is applied at full size).
JOINT_WORK_SIDE = 1280
# Longest side at which a single image is searched and its mark estimated; a larger image is
# worked on as a reduced copy and the estimate, scaled back up, is applied at full size.
SINGLE_MAX_SIDE = 800
# A mark is estimated at full size (thin strokes scaled down and back up lose their shape)
# when the box around it holds no more pixels than the reduced copy of a square photo would;
# a larger one, such as a tiled mark's, on the reduced copy as above.
FULL_SIZE_PIXELS = SINGLE_MAX_SIDE * SINGLE_MAX_SIDE
# ICM passes that sharpen the scaled-up opacity against the full-size pixels (0: none).
FULL_REFINE_ITERS = 1
# Judge a reduced-size estimate at the reduced size (True) or after scaling it up (False).
GUARD_AT_WORK_SIZE = False
# A region the batch found itself is vouched for like a user's mask (its mark may be estimated
# pixel by pixel where no layer fits it) when its edges agree with the photos' own this well
# (median over the photos of `mark_agreement`: 0.79-0.99 for 34 of 40 tuning batches' marks,
# at most 0.72 in the regions found in unmarked batches).
VOUCHING_AGREEMENT = 0.8
# A mark estimated from several photos is inverted up to a higher opacity before the
# restoration is blended towards inpainting (one photo's estimate: restore.BLEND_FROM_ALPHA
# and INPAINT_ALPHA; 40 tuning batches, marks the user gave: 30.48 -> 30.69 dB).
JOINT_BLEND_FROM = 0.8
JOINT_INPAINT_AT = 0.95
# Look for the shared mark's text on the batch's median image first.
MEDIAN_DETECTION = True
# Look for edges every image shares (median gradient): finds logos and faint marks too.
GRADIENT_DETECTION = True
# When the opacity network's region covers this share of the shared edges, the two together
# are the mark (no text search on the median image); otherwise text found there is added.
NET_EXPLAINS_EDGES = 0.5
# ... unless the shared edges span this much of the photo's height and width: a tiled mark,
# which its edges find whole (hole-filled), and whose pattern the network's tight strokes cut
# into pieces.
TILED_SPAN = 0.8
# Where the two are the mark, so are the holes they enclose that cover at least this share
# of the photo: a logo's ring holds a faint disc, whose inside has no edges for either to
# find (a letter's counter is far smaller, and left out: filled, the photo in it blurred the
# estimate of CJK handles).
HOLE_SHARE = 0.005
# A found region copied along a tiled mark's lattice is grown by this many pixels; at most
# this many copies (the tiled marks found in part put 25-81 in the photo).
LATTICE_SLACK = 2
LATTICE_COPIES = 400
# A single photo's mark is looked for on the lattice of a tiled mark (`detect.mark_lattice`)
# when what was found and removed covers at least this share of the photo; the found pixels,
# grown by TILE_GROW, are what is copied along it.
TILE_MIN_SHARE = 0.003
TILE_GROW = 1
# Evidence of transparency (0..1) a detected text region needs before it is treated as a
# watermark: placed where watermarks go (corner, edge, centre, tiled) or anywhere else.
_ANY_EVIDENCE = 0.5
_INNER_EVIDENCE = 0.6
# A single line of text in a corner, at least CREDIT_LINE_ASPECT times as wide as it is high,
# is a credit or a handle: it is estimated on its own and needs only this evidence. Thin
# letters at 0.7 opacity show little of the photo (evidence 0.07-0.47 on the tuning photos;
# 0.5 restored 15 of 33 such lines, 0.3 19, 0.15 20, as 0 does); signs, labels and unmarked
# photos were changed no more often (benchmarks/watermark/README.md, round 24).
CREDIT_LINE_EVIDENCE = 0.15
CREDIT_LINE_ASPECT = 3.0
# Guard for detected marks: edges must drop by this fraction, the brightness gap to the
# surroundings must shrink to this ratio, and a kept patch must change this many pixels.
GUARD_GAIN = 0.1
GUARD_GAP_RATIO = 0.7
GUARD_MIN_PIXELS = 40
# ... and, in textured surroundings, keep at least this fraction of their fine texture.
GUARD_TEXTURE = 0.25
# Guard for user masks: the gap to the surroundings must not stay as large as it was.
USER_GAP_RATIO = 0.9
# User masks: also estimate one colour per connected component and keep, patch by patch,
# the restoration with the fewest edges; that estimate is inpainted above this opacity.
USER_COMPONENTS = True
COMPONENT_INPAINT = 0.85
# ... and replaces the joint estimate's patch only when it has this fraction fewer edges.
COMPONENT_MARGIN = 0.1
# ... and leaves no larger colour gap to its surroundings (grey levels of slack).
COMPONENT_GAP_SLACK = 1.0
# The rim estimate (`rim_estimate`) restores the photo's texture under the mark, so it leaves
# more edges than a smoother candidate: a patch takes it when it stands out from its
# surroundings by at most RIM_GAP_RATIO of the chosen candidate's gap, with at most
# RIM_EDGE_SLACK times its edges.
RIM_GAP_RATIO = 0.9
RIM_EDGE_SLACK = 1.5
# ... and far more readily on a mask traced close around the mark, whose rim is the mark's
# own: one whose rim shows at least TRACED_RIM_OPACITY once the photo's texture is taken out
# of the fit (`rim_opacity(deattenuated=True)`: 55 % of 132 tuning marks' true regions, 5 %
# of brushes). Traced masks on those marks: 25.14 -> 25.50 dB, photos made worse 11 -> 9.
TRACED_RIM_GAP_RATIO = 3.0
TRACED_RIM_EDGE_SLACK = 5.0
TRACED_RIM_OPACITY = 0.45
# ... unless its pieces fill this much of their boxes: a box drawn around a mark (boxes, or a
# rectangle painted as a mask) can show the mark at its edge, but most of it is the photo.
BOX_FILL = 0.9
# A user mask whose outline's rim shows less opacity than this was brushed loosely around
# the mark (a traced one shows the mark's own: 0.33 or more for nine in ten tuning marks).
LOOSE_RIM_OPACITY = 0.3
# How the joint (batch) path judges a patch: "edges" (its total variation must not rise),
# "mark" (the mark's own edges must be gone) or "either" (see restore.guard).
JOINT_GUARD = "either"
# ... and a patch of a mark the user pointed at may also raise its total variation this much
# (see restore.guard's ``tv_slack``).
USER_TV_SLACK = 1.5
# A detected layer fainter than this is too weak to be sure it is a watermark.
MIN_DETECTED_OPACITY = 0.15
# ... and one this opaque is text that belongs to the photo (a sign, a label): nothing of the
# photo shows through it, and a corner is no proof it was added. Users mark it to remove it.
MAX_DETECTED_OPACITY = 0.85
# ... but a credit line's thin light letters at 0.7 were estimated up to 0.88 opaque (3 of the
# 33 tuning lines): such a light layer may be this opaque (0.92 and 0.95 restored the same
# tuning lines; an opaque line is still kept, its estimate too faint once its photo is taken
# out).
CREDIT_LINE_OPACITY = 0.92


@dataclass(frozen=True)
class Scrutiny:
    """What a found region's estimate must show to be removed as a watermark."""

    min_evidence: float  # of transparency (estimate.LayerInfo.evidence)
    max_opacity: float  # more opaque layers are text of the photo's own


PLACED_TEXT = Scrutiny(_ANY_EVIDENCE, MAX_DETECTED_OPACITY)
CREDIT_LINE = Scrutiny(CREDIT_LINE_EVIDENCE, CREDIT_LINE_OPACITY)
OTHER_TEXT = Scrutiny(_INNER_EVIDENCE, MAX_DETECTED_OPACITY)
# A detected layer on a flat ground (nothing of the photo could show through it; its evidence
# is estimate.FLAT_EVIDENCE) is taken for a mark only in a neutral colour, its channels within
# this many grey levels of each other: text marks are white, grey or black, and vivid letters
# on a plain ground are a sign's or a label's paint. The first layers of the tuning marks were
# estimated 0-23 levels apart; the painted signs this keeps, 67-233.
NEUTRAL_SPREAD = 60.0
# The least share of a detected region that its accepted estimate may change. A mark's
# strokes fill a fair part of the boxes the detector grows around them; an estimate that
# changes a sliver of the region has fitted stray pixels, not the mark.
MIN_EXPLAINED_SHARE = 0.05


@dataclass
class WatermarkResult:
    """Restored RGB pixels plus what was found, for callers that want to show it."""

    image: npt.NDArray[np.uint8]
    mask: Bool  # pixels that were changed
    alpha: F32  # estimated watermark opacity per pixel
    notes: list[str] = field(default_factory=list)


def _to_rgb_array(image: Image.Image | npt.NDArray[np.uint8] | F32) -> tuple[F32, F32 | None]:
    """RGB float32 pixels and, if present, the alpha channel to carry through untouched."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = np.asarray(image.convert("RGBA"), np.float32)
            return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3]
        return np.asarray(image.convert("RGB"), np.float32), None
    arr = np.asarray(image)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2).astype(np.float32), None
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.ascontiguousarray(arr[..., :3], np.float32), arr[..., 3].astype(np.float32)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr.astype(np.float32), None
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")


def _from_rgb_array(
    rgb: npt.NDArray[np.uint8], extra: F32 | None, like: Image.Image | npt.NDArray[np.uint8]
) -> Image.Image | npt.NDArray[np.uint8]:
    if isinstance(like, Image.Image):
        if extra is not None:
            a = np.clip(np.rint(extra), 0, 255).astype(np.uint8)
            return Image.fromarray(np.dstack([rgb, a]), "RGBA")
        if like.mode == "L":
            return Image.fromarray(rgb, "RGB").convert("L")
        return Image.fromarray(rgb, "RGB")
    src = np.asarray(like)
    if src.ndim == 2:
        return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    if extra is not None:
        return np.dstack([rgb, np.clip(np.rint(extra), 0, 255).astype(np.uint8)])
    return rgb


def _user_region(
    mask: npt.NDArray[np.generic] | None, boxes: Sequence[Box] | None, shape: tuple[int, int]
) -> Bool | None:
    region: Bool | None = None
    if mask is not None:
        m = np.asarray(mask)
        if m.ndim == 3:
            m = m[..., 0] if m.shape[2] < 4 else m[..., 3]
        if m.shape != shape:
            raise ValueError(f"mask is {m.shape[1]}x{m.shape[0]}, image is {shape[1]}x{shape[0]}")
        region = m > (127 if m.dtype == np.uint8 else 0)
    if boxes:
        bm = boxes_to_mask(list(boxes), shape)
        region = bm if region is None else (region | bm)
    return region


def _to_u8(x: F32) -> npt.NDArray[np.uint8]:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def detect_regions(
    rgb: npt.NDArray[np.uint8], detector: TextDetector, *, min_side: int | None = None
) -> tuple[Bool, Bool]:
    """(likely watermark text, text that must prove itself transparent) masks; ``min_side``
    as in ``TextDetector.probability``."""
    h, w = rgb.shape[:2]
    regions = text_regions(detector.probability(rgb, min_side=min_side))
    likely = np.zeros((h, w), bool)
    doubtful = np.zeros((h, w), bool)
    tiled = is_tiled(regions, (h, w))
    for r in regions:
        if tiled or r.placement in ("corner", "edge", "center"):
            likely |= r.mask
        else:
            doubtful |= r.mask
    return likely, doubtful & ~likely


def _credit_line(r: TextRegion) -> bool:
    """A single line of text in a corner (at least CREDIT_LINE_ASPECT times as wide as it is
    high): where a photographer's credit or a handle goes."""
    x0, y0, x1, y1 = r.box
    return r.placement == "corner" and (x1 - x0) >= CREDIT_LINE_ASPECT * (y1 - y0)


def _found_groups(
    rgb: npt.NDArray[np.uint8], detector: TextDetector
) -> list[tuple[Bool, Scrutiny]]:
    """The detected text of a photo as regions to restore one after another, each with the
    Scrutiny its estimate must pass: the text placed like a watermark together, each credit
    line in a corner on its own (estimated together with scene text elsewhere, its estimate
    failed), and the rest together."""
    h, w = rgb.shape[:2]
    regions = text_regions(detector.probability(rgb))
    likely = np.zeros((h, w), bool)
    doubtful = np.zeros((h, w), bool)
    credits: list[Bool] = []
    tiled = is_tiled(regions, (h, w))
    for r in regions:
        if not tiled and _credit_line(r):
            credits.append(r.mask)
        elif tiled or r.placement in ("corner", "edge", "center"):
            likely |= r.mask
        else:
            doubtful |= r.mask
    lines = [(c, CREDIT_LINE) for c in credits]
    return [(likely, PLACED_TEXT), *lines, (doubtful & ~likely, OTHER_TEXT)]


def _working_copy(
    image: Image.Image | npt.NDArray[np.uint8], max_side: int | None
) -> Image.Image | npt.NDArray[np.uint8]:
    """``image`` reduced so its longest side is at most ``max_side`` (unchanged if it fits)."""
    if isinstance(image, Image.Image):
        w, h = image.size
    else:
        h, w = np.asarray(image).shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if isinstance(image, Image.Image):
        mode = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
        return image.convert(mode).resize(size, Image.Resampling.BOX)
    return np.asarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_AREA), np.uint8)


def detect_mask(
    image: Image.Image | npt.NDArray[np.uint8],
    detector: TextDetector,
    *,
    max_side: int | None = None,
) -> Bool:
    """Where the watermark is, without restoring anything: text placed like a watermark
    (corner, edge, centre, tiled), plus text elsewhere only when the photo shows through it.
    For an editor to show and a person to correct (the corrected mask goes back in as
    ``restore(image, mask=...)``), so the detector looks closer than the automatic removal
    does: it finds small and faint marks that removal would pass over, and opaque text too.

    With ``max_side`` a larger image is first reduced so that its longest side is
    ``max_side``, and the mask has the reduced size (scale it up to use it on the original).
    """
    rgb = _to_u8(_to_rgb_array(_working_copy(image, max_side))[0])
    # Looked at closer than the automatic removal does: a person confirms what is found.
    likely, doubtful = detect_regions(rgb, detector, min_side=SUGGEST_MIN_SIDE)
    if doubtful.any():
        est = estimate(rgb[None].astype(np.float32), doubtful)
        faint = all(x.opacity < MIN_DETECTED_OPACITY for x in est.layers)
        if est.layers and not faint and est.layers[0].evidence >= _INNER_EVIDENCE:
            likely |= doubtful
    return likely


def _reduce(img: F32, max_side: int) -> F32:
    """``img`` (HxW or HxWx3 float) reduced so that its longest side is ``max_side`` (or as
    it is)."""
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.float32)


def _enlarge_mask(mask: Bool, shape: tuple[int, int]) -> Bool:
    """``mask`` at ``shape`` (h, w), each pixel taking its nearest source pixel."""
    out = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.asarray(out > 0, bool)


def _reduce_mask(mask: Bool, size: tuple[int, int]) -> Bool:
    """A mask at a reduced ``(h, w)``: any covered part of a reduced pixel counts."""
    if mask.shape == size:
        return mask
    cover = cv2.resize(mask.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.asarray(cover > 0.0, bool)


def _enlarge(est: Estimate, shape: tuple[int, int]) -> Estimate:
    """An estimate made on a reduced copy, scaled up to ``shape`` (h, w)."""
    if est.alpha.shape == shape:
        return est
    h, w = shape
    alpha = np.asarray(cv2.resize(est.alpha, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    # Premultiplied colour interpolates like the blend itself (no dark fringe at the edges).
    prem = cv2.resize(est.color * est.alpha[..., None], (w, h), interpolation=cv2.INTER_LINEAR)
    color = np.where(
        alpha[..., None] > 1e-4, prem / np.maximum(alpha[..., None], 1e-4), 0.0
    ).astype(np.float32)
    support = cv2.resize(est.support.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    return Estimate(alpha, np.clip(color, 0.0, 255.0), support > 0, est.layers)


def _guarded(cur: F32, est: Estimate, *, user: bool) -> tuple[F32, Bool]:
    """Unblend ``est`` from ``cur`` and keep only the patches the guard accepts."""
    out = unblend(cur, est.alpha, est.color)
    if user:
        return guard(cur, out, est.alpha > 0, min_gain=0.0, max_gap_ratio=USER_GAP_RATIO)
    return guard(
        cur,
        out,
        est.alpha > 0,
        min_gain=GUARD_GAIN,
        max_gap_ratio=GUARD_GAP_RATIO,
        min_pixels=GUARD_MIN_PIXELS,
        keep_texture=GUARD_TEXTURE,
    )


def _enlarge_refined(cur: F32, est: Estimate, kept: Bool | None = None) -> Estimate:
    """A reduced-size estimate at full size, its opacity sharpened against the full pixels;
    ``kept`` limits it to the patches that were accepted."""
    h, w = cur.shape[:2]
    big = _enlarge(est, (h, w))
    a_full = big.alpha if kept is None else np.where(kept, big.alpha, 0.0).astype(np.float32)
    if FULL_REFINE_ITERS and (a_full > 0).any():
        top = max(x.opacity for x in est.layers)
        a_full = refine_alpha(
            cur[None],
            big.color,
            a_full,
            dilate(a_full > 0, 1),
            iters=FULL_REFINE_ITERS,
            smooth=SMOOTH_SINGLE,
            max_alpha=min(MAX_OPACITY, top * 1.1 + 0.02),
        )
    return Estimate(a_full, big.color, big.support, est.layers)


def _restore_region(
    cur: F32,
    region: Bool,
    *,
    scrutiny: Scrutiny | None,
    notes: list[str],
    full_size: bool = False,
) -> tuple[F32, Bool, F32]:
    """``region`` restored where its estimate passes ``scrutiny`` (None: the user marked it,
    so it is not tested, only guarded)."""
    user = scrutiny is None
    h, w = region.shape
    small = cur if full_size else _reduce(cur, SINGLE_MAX_SIDE)
    est = estimate(
        small[None],
        _reduce_mask(region, small.shape[:2]),
        max_layer_opacity=None if scrutiny is None else scrutiny.max_opacity,
    )
    nothing = cur, np.zeros((h, w), bool), np.zeros((h, w), np.float32)
    # Opaque layers are left out of the estimate; the text is kept unless a translucent
    # layer beside them shows the photo through it (a spurious opaque "shadow" used to veto a
    # well-estimated mark: tune photo 159008).
    if not user and est.opaque and (not est.layers or est.layers[0].evidence < _INNER_EVIDENCE):
        notes.append(
            f"text kept: opaque (opacity {max(est.opaque):.2f}), like a sign or a label; mark "
            "it to remove it anyway"
        )
        return nothing
    if not est.layers:
        return nothing
    if scrutiny is not None:
        faint = [x for x in est.layers if x.opacity < MIN_DETECTED_OPACITY]
        if faint and len(faint) == len(est.layers):
            notes.append("faint structure kept: too little opacity to be sure it is a watermark")
            return nothing
        first = est.layers[0]
        # Only light layers may pass MAX_DETECTED_OPACITY (under CREDIT_LINE_OPACITY): a dark
        # one that opaque was a photo's own shadow on tuning photo 119082.
        dark = [x.opacity for x in est.layers if x.polarity == "dark"]
        if dark and max(dark) > MAX_DETECTED_OPACITY:
            notes.append(
                f"text kept: dark and opaque (opacity {max(dark):.2f}), like print; mark it "
                "to remove it anyway"
            )
            return nothing
        if first.evidence < scrutiny.min_evidence:
            notes.append(
                f"text kept: looks opaque (scene text), transparency evidence {first.evidence:.2f}"
            )
            return nothing
        if first.flat and max(first.color) - min(first.color) > NEUTRAL_SPREAD:
            notes.append(
                "text kept: coloured letters on a plain ground, like a sign or a label; mark it "
                "to remove it anyway"
            )
            return nothing
    if small is cur:
        out, kept = _guarded(cur, est, user=user)
    elif GUARD_AT_WORK_SIZE:
        # Judged where the estimate was made (the guard's thresholds are set at that scale);
        # the accepted patches are then applied at full size.
        _, kept_small = _guarded(small, est, user=user)
        est = _enlarge_refined(cur, est, _enlarge_mask(kept_small, (h, w)))
        kept = est.alpha > 0
        out = unblend(cur, est.alpha, est.color)
    else:
        est = _enlarge_refined(cur, est)
        out, kept = _guarded(cur, est, user=user)
    changed = kept & (est.alpha > 0)
    if changed.any():
        for info in est.layers:
            notes.append(f"{info.polarity} layer removed, opacity {info.opacity:.2f}")
    else:
        notes.append("estimate rejected by the guard: restoring would not have removed the mark")
    return out, changed, np.where(changed, est.alpha, 0.0).astype(np.float32)


def _full_size_fits(region: Bool) -> bool:
    """Whether ``region`` is estimated at full size: the photo is larger than its reduced
    copy and the box around the region holds at most FULL_SIZE_PIXELS."""
    h, w = region.shape
    box = bbox(region, 0, (h, w))
    if box is None or max(h, w) <= SINGLE_MAX_SIDE:
        return False
    rows, cols = box
    return int(rows.stop - rows.start) * int(cols.stop - cols.start) <= FULL_SIZE_PIXELS


def _restore_user_region(cur: F32, region: Bool, notes: list[str]) -> tuple[F32, Bool, F32]:
    """The user's region estimated at full size where it fits, else (or when the guard
    refuses the full-size estimate) on the reduced copy."""
    if not _full_size_fits(region):
        return _restore_region(cur, region, scrutiny=None, notes=notes)
    tried: list[str] = []
    out = _restore_region(cur, region, scrutiny=None, notes=tried, full_size=True)
    if out[1].any():
        notes += tried
        return out
    return _restore_region(cur, region, scrutiny=None, notes=notes)


def _restore_found_region(
    cur: F32, region: Bool, scrutiny: Scrutiny, notes: list[str]
) -> tuple[F32, Bool, F32]:
    """A detected region: whether it is a watermark is judged on the reduced copy, where the
    evidence tests were set (judged at full size, twice as many scene labels were taken for
    marks); one that is, is then estimated at full size where it fits, unless the guard
    refuses that. A result that changes less than MIN_EXPLAINED_SHARE of the region is
    dropped."""
    said: list[str] = []
    out = _restore_region(cur, region, scrutiny=scrutiny, notes=said)
    if out[1].any() and _full_size_fits(region):
        tried: list[str] = []
        full = _restore_region(cur, region, scrutiny=scrutiny, notes=tried, full_size=True)
        if full[1].any():
            out, said = full, tried
    share = float(out[1].sum() / region.sum())
    if out[1].any() and share < MIN_EXPLAINED_SHARE:
        notes.append(
            f"text kept: the estimate would change {share:.1%} of it, too little to be its mark"
        )
        return cur, np.zeros_like(out[1]), np.zeros_like(out[2])
    notes += said
    return out


def _traced_mask(image: F32, user: Bool, notes: list[str]) -> tuple[Bool, bool]:
    """The user's mask, or where the mark is inside it when it was brushed loosely; and
    whether the mask was traced close around the mark (not brushed loosely).

    A loose brush puts photo on both sides of the mask's outline, and everything the
    estimates read there (the rim, the inpainted background, the edges) then describes the
    photo; restoring only the mark's footprint keeps the rest of the brushed pixels as they
    are. Found on the photo reduced as for the estimate."""
    h, w = user.shape
    small = _reduce(image, SINGLE_MAX_SIDE)
    mask = user if small is image else _reduce_mask(user, small.shape[:2])
    if rim_opacity(small, mask) >= LOOSE_RIM_OPACITY:
        traced = rim_opacity(small, mask, deattenuated=True) >= TRACED_RIM_OPACITY
        return user, traced and not _box_like(mask)
    foot = mark_footprint(small, mask)
    if small is not image:
        foot = _enlarge_mask(foot, (h, w)) & user
    if int(foot.sum()) < MIN_JOINT_PIXELS:
        return user, False
    notes.append(
        f"mask brushed loosely: restored where the mark is inside it "
        f"({100.0 * float(foot.sum()) / float(user.sum()):.0f} % of it)"
    )
    return foot, False


def _box_like(mask: Bool) -> bool:
    """Whether ``mask``'s pieces fill at least BOX_FILL of their bounding boxes."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = stats[1:, cv2.CC_STAT_WIDTH].astype(np.int64) * stats[1:, cv2.CC_STAT_HEIGHT]
    return n > 1 and int(stats[1:, cv2.CC_STAT_AREA].sum()) >= BOX_FILL * int(boxes.sum())


def _gap(img: F32, inner: Bool, ring: Bool) -> float:
    if not inner.any() or not ring.any():
        return 0.0
    return float(np.linalg.norm(img[inner].mean(0) - img[ring].mean(0)))


def _components_pass(
    src: F32, cur: F32, changed: Bool, alpha: F32, user: Bool, traced: bool, notes: list[str]
) -> tuple[F32, Bool, F32]:
    """Second estimates for a user mask, one colour per connected component (against an
    inpainted background) and from the mask's rim; each patch of the mask keeps whichever
    restoration leaves the fewest edges, or the rim's when it blends in better (far more
    readily when the mask was ``traced`` close around the mark)."""
    back = around_region(src, user)
    a_px, col, a_snap = component_estimate(src, user, back)
    a_rim, col_rim = rim_estimate(src, user, back)
    cands = [
        (cur, alpha),
        (
            unblend(
                src, a_px, col, blend_from=COMPONENT_INPAINT, inpaint_at=COMPONENT_INPAINT + 0.01
            ),
            a_px,
        ),
        (unblend(src, a_snap, col), a_snap),
        (unblend(src, a_rim, col_rim), a_rim),
    ]
    gap_ratio, edge_slack = RIM_GAP_RATIO, RIM_EDGE_SLACK
    if traced:
        gap_ratio, edge_slack = TRACED_RIM_GAP_RATIO, TRACED_RIM_EDGE_SLACK
    zone = dilate(user, 2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(zone.astype(np.uint8), connectivity=8)
    out, ch, al = cur.copy(), changed.copy(), alpha.copy()
    h, w = user.shape
    used = 0
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        # The patch's own box: its reference is the unmasked pixels near it inside that box
        # (gaps between and inside the strokes), where a wrong colour shows most.
        ys = slice(y, min(y + bh + 1, h))
        xs = slice(x, min(x + bw + 1, w))
        comp = labels[ys, xs] == i
        # Edges in every channel: a wrong colour leaves a tinted patch, not only a lighter one.
        energy = [
            sum(float(grad_map(c[ys, xs, ch_])[comp].sum()) for ch_ in range(3)) for c, _ in cands
        ]
        # ... and a patch must not stand out from its surroundings more than before.
        inner = comp & user[ys, xs]
        ring = dilate(comp, 3) & ~comp
        gaps = [_gap(c[ys, xs], inner, ring) for c, _ in cands]
        order = np.argsort(energy)
        k = next(
            (
                int(j)
                for j in order
                if j == 0
                or (
                    energy[j] <= (1.0 - COMPONENT_MARGIN) * energy[0]
                    and gaps[j] <= gaps[0] + COMPONENT_GAP_SLACK
                )
            ),
            0,
        )
        rim = len(cands) - 1
        if gaps[rim] <= gap_ratio * gaps[k] and energy[rim] <= edge_slack * energy[k]:
            k = rim
        if k == 0:
            continue
        used += 1
        img_k, a_k = cands[k]
        out[ys, xs][comp] = img_k[ys, xs][comp]
        al[ys, xs][comp] = a_k[ys, xs][comp]
        ch[ys, xs] |= comp & user[ys, xs]
    if used:
        notes.append(f"per-component estimate used in {used} of {n - 1} patches")
    return out, ch, al


def restore(
    image: Image.Image | npt.NDArray[np.uint8],
    *,
    mask: npt.NDArray[np.generic] | None = None,
    boxes: Sequence[Box] | None = None,
    detector: TextDetector | None = None,
    model_dir: Path | None = None,
) -> WatermarkResult:
    """Find and remove a watermark in one image; the full result with masks and notes."""
    rgb_f, _ = _to_rgb_array(image)
    h, w = rgb_f.shape[:2]
    notes: list[str] = []
    user = _user_region(mask, boxes, (h, w))
    cur = rgb_f.copy()
    changed = np.zeros((h, w), bool)
    alpha = np.zeros((h, w), np.float32)
    if user is not None:
        if user.any():
            user, traced = _traced_mask(rgb_f, user, notes)
            cur, changed, alpha = _restore_user_region(cur, dilate(user, 2), notes)
            if not changed.any():
                # Nothing semi-transparent found where the user pointed: fill it in.
                cur = inpaint(cur, user, 5)
                changed = user.copy()
                alpha = user.astype(np.float32)
                notes.append("user mask inpainted")
            if USER_COMPONENTS:
                cur, changed, alpha = _components_pass(
                    rgb_f, cur, changed, alpha, user, traced, notes
                )
        return WatermarkResult(_to_u8(cur), changed, alpha, notes)
    det = detector if detector is not None else load_text_detector(model_dir)
    if det is None:
        notes.append(f"text detector {TEXT_DETECTOR.filename} not installed; nothing detected")
        return WatermarkResult(_to_u8(cur), changed, alpha, notes)
    groups = _found_groups(_to_u8(_reduce(rgb_f, SINGLE_MAX_SIDE)), det)
    for region, scrutiny in groups:
        if not region.any():
            continue
        if region.shape != (h, w):
            region = _enlarge_mask(region, (h, w))
        cur, ch, al = _restore_found_region(cur, region, scrutiny, notes)
        changed |= ch
        alpha = np.maximum(alpha, al)
    if int(changed.sum()) >= TILE_MIN_SHARE * h * w:
        tiles = _tiles_of(rgb_f, cur, changed)
        if tiles is not None:
            cur, changed, alpha = _restore_tiles(rgb_f, tiles, (cur, changed, alpha), notes)
    return WatermarkResult(_to_u8(cur), changed, alpha, notes)


def _tiles_of(src: F32, cur: F32, changed: Bool) -> Bool | None:
    """Where a tiled mark, of which the text detector found some tiles (``changed``, removed
    from ``src`` to give ``cur``), lies whole: what was found copied along the lattice the
    removed mark repeats on in the photo; None when it does not repeat. The lattice is read
    on copies reduced to at most JOINT_MAX_SIDE, as a batch's is."""
    removed = np.where(changed, luma(src) - luma(cur), 0.0).astype(np.float32)
    shifts = mark_lattice(_reduce(removed, JOINT_MAX_SIDE), _reduce(luma(src), JOINT_MAX_SIDE))
    if shifts is None:
        return None
    scale = min(1.0, JOINT_MAX_SIDE / max(changed.shape))
    return _copied_along(dilate(changed, TILE_GROW), shifts, scale)


def _restore_tiles(
    src: F32, tiles: Bool, found: tuple[F32, Bool, F32], notes: list[str]
) -> tuple[F32, Bool, F32]:
    """``src`` restored over a tiled mark's whole region (``tiles``) as over a user's mask
    (its guard, its opacity up to MAX_OPACITY), where the tiles restored before (``found``:
    pixels, changed, opacity) did not reach: those stay as they were (estimated anew over
    the copies as well, the tuning photos' tiled marks scored 18.39 dB instead of 19.80)."""
    before, found_changed, found_alpha = found
    cur, changed, alpha = _restore_user_region(src, dilate(tiles, 2), [])
    added = changed & ~found_changed
    if not added.any():
        return found
    notes.append(
        f"tiled mark: the tiles found were completed along its lattice "
        f"({float(added.mean()):.1%} of the photo added)"
    )
    return (
        np.where(added[..., None], cur, before).astype(np.float32),
        found_changed | added,
        np.where(added, alpha, found_alpha).astype(np.float32),
    )


def as_original(rgb: npt.NDArray[np.uint8], original: Image.Image, *, grey: bool) -> Image.Image:
    """Restored pixels in the form of the decoded ``original`` they came from: its
    transparency, its colour profile and print resolution (``info``), and grey when the
    file was grey (the engine works in RGB, and a grey photo's restoration stays neutral)."""
    if original.mode == "RGBA":
        out = Image.fromarray(np.dstack([rgb, np.asarray(original.getchannel("A"))]), "RGBA")
    else:
        out = Image.fromarray(rgb, "RGB")
    if grey:
        out = out.convert("LA" if out.mode == "RGBA" else "L")
    for key in ("icc_profile", "dpi"):
        if key in original.info:
            out.info[key] = original.info[key]
    return out


def remove_watermark(
    image: ImageLike,
    *,
    mask: npt.NDArray[np.generic] | None = None,
    boxes: Sequence[Box] | None = None,
    detector: TextDetector | None = None,
    model_dir: Path | None = None,
) -> ImageLike:
    """Remove a visible watermark from one image; returns the same kind (PIL or array), size
    and channels. ``mask`` (HxW bool/uint8) or ``boxes`` [(x0, y0, x1, y1)] override detection."""
    res = restore(image, mask=mask, boxes=boxes, detector=detector, model_dir=model_dir)
    _, extra = _to_rgb_array(image)
    out = _from_rgb_array(res.image, extra, image)
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class SharedMark:
    """A watermark estimated jointly from several same-sized photos, ready to be removed from
    any photo of that size (also one that was not among the sources).

    Kept at the size it was estimated at (at most JOINT_MAX_SIDE), so it is small enough to
    cache or send between processes; `apply_shared_mark` scales it up to the photo."""

    shape: tuple[int, int]  # (height, width) of the photos it belongs to
    estimate: Estimate
    sources: int  # how many photos it was estimated from
    user_marked: bool = False  # the user's mask or boxes said where it is


def estimate_shared_mark(
    images: Sequence[Image.Image | npt.NDArray[np.uint8] | F32],
    *,
    shape: tuple[int, int] | None = None,
    mask: npt.NDArray[np.generic] | None = None,
    boxes: Sequence[Box] | None = None,
    detector: TextDetector | None = None,
    model_dir: Path | None = None,
) -> SharedMark | None:
    """The mark that same-sized ``images`` share, estimated from at most MAX_JOINT of them
    spread over the sequence; None when they are too few or share nothing. A user mask or
    boxes (at the photos' size) say where it is; otherwise it is found from the edges and the
    text the photos share.

    ``shape`` is the photos' (height, width) when ``images`` are copies reduced to save
    memory (`shared_mark_work_copy`, or `shared_mark_work_size`); by default it is the
    images' own size."""
    if len(images) < MIN_JOINT:
        return None
    step = -(-len(images) // MAX_JOINT)
    arrays = [_to_rgb_array(im)[0] for im in images[::step]]
    given = (arrays[0].shape[0], arrays[0].shape[1])
    if any(a.shape[:2] != given for a in arrays):
        raise ValueError("a shared mark is estimated from photos of one size")
    shape = shape or given
    work = shared_mark_work_size(shape)
    if given != work:
        arrays = [
            np.asarray(cv2.resize(a, work[::-1], interpolation=cv2.INTER_AREA), np.float32)
            for a in arrays
        ]
    stack = np.stack(arrays).astype(np.float32)
    del arrays
    user = _user_region(mask, boxes, shape) if _fits(mask, shape) else None
    if user is None and photos_alike(stack):
        # Shots of one scene share everything: only a user's mask says what the mark is.
        return None
    if user is not None:
        if work != shape:
            small = cv2.resize(user.astype(np.uint8), work[::-1], interpolation=cv2.INTER_AREA)
            user = np.asarray(small > 0)
        region: Bool | None = dilate(user, 2)
    else:
        region = _shared_region(stack, work, detector, model_dir)
    if region is None:
        # Nothing shared where a mark would show (edges, text, the network's find). Estimated
        # over the whole photos anyway, 4 of 6 unmarked photos in one held-out group took a
        # faint layer, and no marked tuning batch needed it.
        return None
    # Photos that do not carry the mark (a cover shot, another source) would only blur it.
    agreement = mark_agreement(stack, region)
    carriers = agreement >= CARRIES_MARK
    if int(carriers.sum()) < MIN_JOINT:
        return None
    stack = stack[carriers]
    vouched = user is not None or float(np.median(agreement)) >= VOUCHING_AGREEMENT
    est = _estimate_in_region(stack, region, vouched=vouched)
    if not est.layers:
        return None
    return SharedMark(shape, est, len(stack), user_marked=user is not None)


def shared_mark_work_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) at which photos of ``shape`` are searched for their shared mark: at
    most JOINT_WORK_SIDE on the long side, so twelve large photos fit in memory."""
    h, w = shape
    scale = min(1.0, JOINT_WORK_SIDE / max(h, w))
    return (max(1, round(h * scale)), max(1, round(w * scale))) if scale < 1.0 else shape


def shared_mark_work_copy(image: Image.Image | npt.NDArray[np.uint8]) -> F32:
    """``image`` as `estimate_shared_mark` works on it: RGB, reduced to
    `shared_mark_work_size` the way it reduces. A caller reading many large photos keeps
    these instead of the photos: the same estimate in a fraction of the memory."""
    rgb = _to_rgb_array(image)[0]
    shape = (rgb.shape[0], rgb.shape[1])
    work = shared_mark_work_size(shape)
    if work == shape:
        return rgb
    return np.asarray(cv2.resize(rgb, work[::-1], interpolation=cv2.INTER_AREA), np.float32)


def apply_shared_mark(
    image: Image.Image | npt.NDArray[np.uint8], mark: SharedMark
) -> WatermarkResult:
    """Remove ``mark`` from one photo of its size by inverting the blend, patch by patch where
    that does not make the photo worse (the same guard as the single-photo path)."""
    j, _ = _to_rgb_array(image)
    h, w = j.shape[:2]
    if (h, w) != mark.shape:
        raise ValueError(f"the mark belongs to {mark.shape[1]}x{mark.shape[0]} photos")
    alpha, color = mark.estimate.alpha, mark.estimate.color
    if alpha.shape != (h, w):
        # Scaled up (premultiplied colour), its opacity sharpened against this photo's pixels.
        full = _enlarge_refined(j, mark.estimate)
        alpha, color = full.alpha, full.color
    notes = [f"joint estimate from {mark.sources} images"]
    notes += [f"{x.polarity} layer removed, opacity {x.opacity:.2f}" for x in mark.estimate.layers]
    out, kept = guard(
        j,
        unblend(j, alpha, color, blend_from=JOINT_BLEND_FROM, inpaint_at=JOINT_INPAINT_AT),
        alpha > 0,
        min_gain=0.0,
        blend=(alpha, color),
        rule=JOINT_GUARD,
        tv_slack=USER_TV_SLACK if mark.user_marked else 1.0,
    )
    return WatermarkResult(_to_u8(out), kept & (alpha > 0), alpha, notes)


def restore_batch(
    images: Sequence[Image.Image | npt.NDArray[np.uint8]],
    *,
    mask: npt.NDArray[np.generic] | None = None,
    boxes: Sequence[Box] | None = None,
    detector: TextDetector | None = None,
    model_dir: Path | None = None,
) -> list[WatermarkResult]:
    """Remove a shared watermark from several images; same-sized groups are estimated jointly."""
    results: list[WatermarkResult | None] = [None] * len(images)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        size = im.size if isinstance(im, Image.Image) else np.asarray(im).shape[1::-1]
        groups.setdefault((size[1], size[0]), []).append(i)
    for shape, idx in groups.items():
        mark = None
        if len(idx) >= MIN_JOINT:
            mark = estimate_shared_mark(
                [images[i] for i in idx],
                mask=mask if _fits(mask, shape) else None,
                boxes=boxes,
                detector=detector,
                model_dir=model_dir,
            )
        for i in idx:
            if mark is not None:
                results[i] = apply_shared_mark(images[i], mark)
                continue
            res = restore(
                images[i],
                mask=mask if _fits(mask, shape) else None,
                boxes=boxes,
                detector=detector,
                model_dir=model_dir,
            )
            if len(idx) >= MIN_JOINT:
                res.notes.insert(0, "no shared watermark; processed on its own")
            results[i] = res
    return [r for r in results if r is not None]


def _shared_region(
    stack: F32,
    shape: tuple[int, int],
    detector: TextDetector | None,
    model_dir: Path | None,
) -> Bool | None:
    """Where the images of a batch share a mark (`_found_region`), completed along the
    lattice their shared edges repeat on, when they do: a tiled mark found in part. A region
    confined to part of the photos is copied whole (tuning group 0's dark tiled text: 36 % of
    it found, 99 % copied); one that spans them, whose text boxes are grown generously,
    takes in copies of the shared edges alone."""
    # Both the shared edges and their lattice are read at most at JOINT_MAX_SIDE.
    scale = min(1.0, JOINT_MAX_SIDE / max(shape))
    g = median_gradient(_reduced(stack, scale))
    edges = _shared_edges(g, shape) if GRADIENT_DETECTION else np.zeros(shape, bool)
    found = _found_region(stack, shape, edges, detector, model_dir)
    if found is None:
        return None
    if not _spans_photo(found):
        return _along_lattice(g, scale, found)
    return found | _along_lattice(g, scale, edges)


def _found_region(
    stack: F32,
    shape: tuple[int, int],
    edges: Bool,
    detector: TextDetector | None,
    model_dir: Path | None,
) -> Bool | None:
    """Where the images of a batch share a mark: their consistent ``edges``, text on the
    median image, and where the opacity network (if installed) sees a mark in all of them.

    When the network's region accounts for the shared edges and they are not a tiled mark,
    the mark is the two together: the network's find is tight, and the edges hold the letters
    it missed (a handle's last characters, a logo's word; taken alone, the network's find
    left a third of some tuning marks in place), with the large holes they enclose (a ring's
    disc). Otherwise text on the median image, grown generously, is added as well."""
    found = edges.copy()
    net = load_mark_net(model_dir)
    if net is not None:
        learned = net.shared_region(stack)
        if learned.any():
            explained = int((learned & edges).sum()) >= NET_EXPLAINS_EDGES * int(edges.sum())
            found |= learned
            if explained and not _spans_photo(edges):
                return _with_large_holes(found)
    if MEDIAN_DETECTION:
        det = detector if detector is not None else load_text_detector(model_dir)
        if det is not None:
            # On the median image the shared mark is crisp and the photos blur away.
            med = _to_u8(stack_median(stack))
            likely, doubtful = detect_regions(med, det)
            text = likely | doubtful
            if text.any():
                found |= dilate(text, max(2, min(shape) // 50))
    return found if found.any() else None


def _along_lattice(g: F32, scale: float, region: Bool) -> Bool:
    """``region`` copied along the lattice the photos' shared edges repeat on, when they do
    (a tiled mark, of which the region holds only some tiles); else as it is. ``g`` is the
    photos' median gradient at ``scale`` times their size."""
    strength, shifts = lattice(g)
    if strength < LATTICE_PEAK:
        return region
    copied = _copied_along(region, shifts, scale)
    return region if copied is None else copied


def _copied_along(region: Bool, shifts: tuple[Shift, Shift], scale: float) -> Bool | None:
    """``region`` copied along the lattice of two ``shifts`` (rows, columns, measured at
    ``scale`` times the region's size) and grown by LATTICE_SLACK; None when more than
    LATTICE_COPIES copies would land in it (a texture's lattice, not a mark's tiling)."""
    (ay, ax), (by, bx) = shifts
    h, w = region.shape
    reach = int(np.hypot(h, w) * scale / max(1.0, min(np.hypot(ay, ax), np.hypot(by, bx))))
    i, j = (k.ravel() for k in np.mgrid[-reach : reach + 1, -reach : reach + 1])
    ys = np.rint((i * ay + j * by) / scale).astype(int)
    xs = np.rint((i * ax + j * bx) / scale).astype(int)
    lands = (np.abs(ys) < h) & (np.abs(xs) < w)
    if int(lands.sum()) > LATTICE_COPIES:
        return None
    out = region.copy()
    for y, x in zip(ys[lands], xs[lands], strict=True):
        out[max(y, 0) : h + min(y, 0), max(x, 0) : w + min(x, 0)] |= region[
            max(-y, 0) : h + min(-y, 0), max(-x, 0) : w + min(-x, 0)
        ]
    return dilate(out, LATTICE_SLACK)  # the shifts are rounded to whole pixels


def _with_large_holes(region: Bool) -> Bool:
    """``region`` with the holes it encloses (closed up by a pixel first, as a ring's find
    has gaps) where they cover at least HOLE_SHARE of the photo."""
    closed = dilate(region, 1)
    holes = (fill_holes(closed) & ~closed).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    big = stats[:, cv2.CC_STAT_AREA] >= HOLE_SHARE * region.size
    big[0] = False
    return region | dilate(big[labels], 1)


def _spans_photo(region: Bool) -> bool:
    """``region`` reaches across TILED_SPAN of the photo's height and of its width."""
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if not len(rows):
        return False
    h, w = region.shape
    return bool(np.ptp(rows) >= TILED_SPAN * h and np.ptp(cols) >= TILED_SPAN * w)


def _shared_edges(g: F32, shape: tuple[int, int]) -> Bool:
    """Dense edges every image of the batch shares, from their median gradient ``g``
    (read on a copy reduced to at most JOINT_MAX_SIDE), at the photos' ``shape``."""
    reg = shared_mark_region(g, stroke_size(g.shape))
    if g.shape != shape:
        size = (shape[1], shape[0])
        reg = cv2.resize(reg.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return dilate(reg, 2)


def _reduced(stack: F32, scale: float) -> F32:
    """``stack`` as float32, scaled by ``scale`` when that is below 1."""
    if scale >= 1.0:
        return np.ascontiguousarray(stack, np.float32)
    _, h, w, _ = stack.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in stack])
    return small.astype(np.float32)


def _sharpened(stack: F32, est: Estimate) -> Estimate:
    """An estimate made on a reduced copy of ``stack``, scaled up to it with its opacity
    sharpened against all the photos."""
    big = _enlarge(est, (stack.shape[1], stack.shape[2]))
    top = max(x.opacity for x in est.layers)
    alpha = refine_alpha(
        stack,
        big.color,
        big.alpha,
        dilate(big.alpha > 0, 1),
        max_alpha=min(MAX_OPACITY, top * 1.1 + 0.02),
    )
    return Estimate(alpha, big.color, big.support, est.layers)


def _estimate_in_region(stack: F32, region: Bool, *, vouched: bool) -> Estimate:
    """Joint estimate inside a region, returned at the photos' size.

    Made on the region's box alone, at full resolution up to JOINT_MAX_SIDE squared pixels
    (reduced beyond), so thin strokes keep their shape while time and memory stay bounded.
    Layer by layer (``estimate``); what the layers leave behind (a logo's fill, a shadow, a
    second colour) is then estimated pixel by pixel. Where no layer fits, that per-pixel
    estimate stands alone only in a region that is ``vouched`` for (the user's, or one whose
    edges the photos agree on as a mark's): in any region the batch found itself it takes
    whatever the photos happen to share for a mark (unmarked batches: 30 of 96 photos
    changed instead of 10). In a vouched region the colour is then integrated again from
    the final opacity."""
    _, h, w, _ = stack.shape
    # The layer estimate reads this much around the region (its stroke size is the photo's).
    box = bbox(region, stroke_size((h, w)) + 4, (h, w))
    if box is None:
        return estimate(stack, region)
    ch, cw = region[box].shape
    scale = min(1.0, JOINT_MAX_SIDE / float(np.sqrt(ch * cw)))
    crop = _reduced(stack[:, box[0], box[1]], scale)
    reg = _enlarge_mask(region[box], crop.shape[1:3])
    layers = estimate(crop, reg, ksize=stroke_size((round(h * scale), round(w * scale))))
    alpha = np.zeros((h, w), np.float32)
    color = np.zeros((h, w, 3), np.float32)
    support = np.zeros((h, w), bool)
    if not layers.layers and not vouched:
        return Estimate(alpha, color, support, [])
    # Every layer peeled off exactly (no inpainting), so the rest is what they missed. Where
    # no layer was found (a coloured logo the layer fit misses) the rest is the whole mark.
    peeled = crop
    if layers.layers:
        peeled = np.stack(
            [unblend(im, layers.alpha, layers.color, blend_from=2.0, inpaint_at=3.0) for im in crop]
        )
    rest = _pixel_estimate(peeled, reg)
    del peeled
    found = layers
    if rest.layers and not layers.layers:
        found = rest
    elif rest.layers:
        both = over(layers.alpha, layers.color, rest.alpha, rest.color)
        found = Estimate(*both, layers.support | rest.support, layers.layers + rest.layers)
    if not found.layers:
        return Estimate(alpha, color, support, [])
    if vouched:
        # The colour integrated again from the final opacity (`joint.shared_color`): the
        # layers' and the rest's colours were each fitted to an opacity that has since
        # changed (40 tuning batches, marks the user gave: 29.57 -> 30.48 dB).
        marked = reg & (found.alpha > 0)
        found = Estimate(
            found.alpha,
            shared_color(crop, found.alpha, marked, start=found.color),
            found.support,
            found.layers,
        )
    del crop
    if scale < 1.0:
        found = _sharpened(stack[:, box[0], box[1]], found)
    alpha[box] = np.minimum(found.alpha, MAX_OPACITY)
    color[box] = found.color
    support[box] = found.support
    return Estimate(alpha, color, support, found.layers)


def _pixel_estimate(stack: F32, region: Bool) -> Estimate:
    """The shared mark inside ``region`` with an opacity and colour per pixel
    (``joint.shared_blend``), estimated again over where it came out (plus a margin), and
    summed up as one layer for the notes."""
    first = shared_opacity(stack, region, max_opacity=MAX_OPACITY)
    region = dilate(first >= MIN_OPACITY, 2) & region
    alpha, color = shared_blend(stack, region, max_opacity=MAX_OPACITY, start=first)
    marked = alpha >= MIN_OPACITY
    if int(marked.sum()) < MIN_JOINT_PIXELS:
        return Estimate(np.zeros_like(alpha), np.zeros_like(color), region, [])
    weight = alpha[marked][:, None]
    mean_color = np.clip((color[marked] * weight).sum(axis=0) / weight.sum(), 0.0, 255.0)
    under = stack_median(stack)[marked].mean(axis=0)
    lighter = float(luma(mean_color[None, None])[0, 0]) >= float(luma(under[None, None])[0, 0])
    before = sum(grad_energy(im, region) for im in stack)
    after = sum(grad_energy(unblend(im, alpha, color), region) for im in stack)
    info = LayerInfo(
        "light" if lighter else "dark",
        float(np.percentile(alpha[marked], 95)),
        (float(mean_color[0]), float(mean_color[1]), float(mean_color[2])),
        evidence=1.0,
        gain=(before - after) / max(before, 1e-6),
    )
    return Estimate(alpha, color, region, [info])


def _fits(mask: npt.NDArray[np.generic] | None, shape: tuple[int, int]) -> bool:
    return mask is None or np.asarray(mask).shape[:2] == shape


def remove_watermark_batch(
    images: Sequence[ImageLike],
    *,
    mask: npt.NDArray[np.generic] | None = None,
    boxes: Sequence[Box] | None = None,
    detector: TextDetector | None = None,
    model_dir: Path | None = None,
) -> list[ImageLike]:
    """Remove a watermark shared by ``images``; each output keeps its input's kind and size."""
    res = restore_batch(images, mask=mask, boxes=boxes, detector=detector, model_dir=model_dir)
    outs: list[ImageLike] = []
    for im, r in zip(images, res, strict=True):
        _, extra = _to_rgb_array(im)
        outs.append(_from_rgb_array(r.image, extra, im))  # type: ignore[arg-type]
    return outs


__all__ = [
    "MARK_NET",
    "TEXT_DETECTOR",
    "WATERMARK_MODELS",
    "SharedMark",
    "TextDetector",
    "WatermarkResult",
    "apply_shared_mark",
    "as_original",
    "detect_mask",
    "detect_regions",
    "estimate_shared_mark",
    "load_mark_net",
    "load_text_detector",
    "remove_watermark",
    "remove_watermark_batch",
    "restore",
    "restore_batch",
    "shared_mark_work_copy",
]
