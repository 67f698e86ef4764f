"""Undo an estimated alpha blend, inpaint where too little of the original is left, and guard
against making anything worse."""

from __future__ import annotations

import cv2
import numpy as np

from removeany.engine.watermark._ops import (
    F32,
    Bool,
    bbox,
    dilate,
    grad_map,
    inpaint,
    luma,
    sobel_xy,
)

# Above this opacity the original is too attenuated to recover by division alone: the
# restored pixels are blended towards inpainting, fully inpainted at INPAINT_ALPHA.
BLEND_FROM_ALPHA = 0.6
INPAINT_ALPHA = 0.92
# Margin (px) around the mark that `unblend` works on: more than the inpainting's reach
# (its mask grown by 1 px, radius 3).
UNBLEND_PAD = 8
# Slack (grey levels) allowed when capping the opacity at what a pixel can hold.
FEASIBLE_TOL = 8.0
# Surroundings with less fine texture than this (median |high-pass| luma) are flat.
FLAT_TEXTURE = 2.0
# In textured surroundings a mark's patch has at least this much more fine structure. Bold
# lettering, whose flat insides count too, has less than thin strokes: a half-opaque white
# "SAMPLE ©" over carved wood and grass had 1.73 (7 Dec 2026; 1.8 before). 1.6 changed none
# of the benchmark's photos, scene signs or unmarked photos; 1.4 let a sign through.
MARK_TEXTURE = 1.6
# The mark's own edges in a patch (the image's gradient regressed on the gradient the blend
# would add): at least MARK_PRESENT of them in the input, and at most MARK_LEFT of that
# fraction left after restoring, and the patch is kept even if its photo has more texture.
MARK_PRESENT = 0.5
MARK_LEFT = 0.4
# Radius (px) over which that test takes the mark's colour at its outline from the colour
# around it (see `_mark_color_near`).
MARK_COLOR_SIGMA = 2.0
# A patch whose input has more than this fraction of its changed pixels clipped (a channel
# at 0 or 255) breaks the blend model: there, only the edge and mark tests can keep it.
MAX_CLIPPED = 0.7
# A patch with more than this fraction of its colour values at black or white where the mark
# is translucent is kept only if the mark's own edges were in it and are gone: a saturated
# value already holds the photo's (a blend reaches black or white only where photo and mark
# both do), and inverting the barely unsaturated ones around it only magnifies rounding.
MAX_SATURATED = 0.9


def unblend(
    image: F32,
    alpha: F32,
    color: F32,
    *,
    blend_from: float = BLEND_FROM_ALPHA,
    inpaint_at: float = INPAINT_ALPHA,
) -> F32:
    """Invert ``J = (1 - a) I + a W`` where a > 0; inpaint where a is close to 1.

    The opacity is first capped, pixel by pixel, at the most the pixel can hold: a light mark
    of opacity a cannot leave a pixel darker than a * W, nor a dark one a pixel brighter than
    a * W + (1 - a) * 255 (dark scene detail inside a light mark's box is not the mark).

    Worked out on the box around the mark only (with room for the inpainting to read its
    surroundings): a mark is a small part of most photos, and this runs once per candidate
    estimate."""
    out = np.clip(image, 0.0, 255.0).astype(np.float32)
    box = bbox(alpha > 0, UNBLEND_PAD, alpha.shape)
    if box is None:
        return out
    out[box] = _unblend_box(
        image[box],
        alpha[box],
        color[box] if color.ndim == image.ndim else color,
        blend_from=blend_from,
        inpaint_at=inpaint_at,
    )
    return out


def _unblend_box(
    image: F32, alpha: F32, color: F32, *, blend_from: float, inpaint_at: float
) -> F32:
    alpha = feasible_alpha(image, alpha, color)
    a = np.clip(alpha, 0.0, 0.98)[..., None]
    inv = (image - a * color) / (1.0 - a)
    inv = np.where(a > 0, inv, image)
    inv = np.clip(inv, 0.0, 255.0).astype(np.float32)
    heavy = alpha > blend_from
    if not heavy.any():
        return inv
    fill = inpaint(inv, dilate(alpha > inpaint_at, 1) | heavy, 3)
    wgt = np.clip((inpaint_at - alpha) / max(inpaint_at - blend_from, 1e-3), 0.0, 1.0)
    wgt = wgt[..., None]
    out = wgt * inv + (1.0 - wgt) * fill
    return np.asarray(out, np.float32)


def feasible_alpha(image: F32, alpha: F32, color: F32, tol: float = FEASIBLE_TOL) -> F32:
    """``alpha`` capped where the blend would need an original outside 0..255 (by ``tol``)."""
    on = alpha > 0
    if not on.any():
        return alpha
    j = image[on]
    w = (
        np.broadcast_to(color, image.shape)[on]
        if color.ndim > 1
        else np.broadcast_to(color, j.shape)
    )
    hi = 255.0 + tol
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(w > tol, (j + tol) / np.maximum(w - tol, 1e-6), np.inf)
        up = (hi - j) / np.maximum(hi - w, 1e-6)
    cap = np.minimum(low, up).min(axis=1)
    out = alpha.copy()
    out[on] = np.minimum(alpha[on], np.maximum(cap, 0.0))
    return out


def guard(
    before: F32,
    after: F32,
    changed: Bool,
    *,
    min_gain: float = 0.03,
    max_gap_ratio: float | None = None,
    min_pixels: int = 0,
    keep_texture: float | None = None,
    blend: tuple[F32, F32] | None = None,
    rule: str = "edges",
    tv_slack: float = 1.0,
) -> tuple[F32, Bool]:
    """Keep each changed patch only if it removed edges (total variation went down).

    A visible watermark adds edges; undoing it removes them. A patch whose restoration has as
    many or more edges than the input was not a watermark (or the estimate failed) and is
    reverted to the input pixels. With ``max_gap_ratio``, a patch must also close most of the
    brightness gap between the changed pixels and the pixels around them (a mark lightens or
    darkens what it covers; texture does not). With ``keep_texture``, a patch in textured
    surroundings must keep at least that fraction of their fine texture (restoring a mark
    reveals the photo's texture; smoothing a textured patch flat means it was no mark), and
    must have had clearly more fine structure than them (a mark adds its edges).
    With ``blend`` (the estimate's alpha and colour) and ``rule`` "mark" or "either", a patch
    may instead pass by the mark's own edges: present in the input and gone after (undoing
    a blend also brings back the photo's texture under it, which can add more edges than the
    mark's outline removes); there, a patch mostly saturated where the mark is
    translucent (``MAX_SATURATED``) passes by the mark's own edges alone.
    With ``tv_slack`` above 1 (a mark the user pointed at), a patch may also pass when its
    total variation rises by at most that factor and its input is not mostly clipped: an
    opacity estimated slightly off leaves faint edges of its own that neither test forgives,
    though the patch is far closer to the photo than the input was.
    The mark's-edges test reads the mark's colour at its outline from the opacity-weighted
    colour around it (`_mark_color_near`) rather than pixel by pixel, which lets it see a
    mark whose per-pixel colour is noisy there.
    Returns the guarded image and the kept mask.
    """
    if not changed.any():
        return before.copy(), changed
    zone = dilate(changed, 2)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(zone.astype(np.uint8), connectivity=8)
    out = after.copy()
    kept = np.zeros(changed.shape, bool)
    # Gradient maps once for the whole image; each patch is then judged on its own crop
    # (padded enough for its ring and texture box), never on full-image masks.
    g_before, g_after = grad_map(before), grad_map(after)
    h, w = changed.shape
    pad = 3 + 4 + 2
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        ys = slice(max(y - pad, 0), min(y + bh + pad, h))
        xs = slice(max(x - pad, 0), min(x + bw + pad, w))
        comp = labels[ys, xs] == i
        inner = comp & changed[ys, xs]
        b, a = before[ys, xs], after[ys, xs]
        tv_in = float(g_before[ys, xs][comp].sum())
        tv_out = float(g_after[ys, xs][comp].sum())
        ok = tv_out <= tv_in * (1.0 - min_gain) and int(inner.sum()) >= min_pixels
        if blend is not None and rule != "edges":
            color = _mark_color_near(blend[0][ys, xs], blend[1][ys, xs])
            removed = _mark_removed(b, a, blend[0][ys, xs], color, comp)
            ok = removed if rule == "mark" else (ok or removed)
            inverted = blend[0][ys, xs][inner] < BLEND_FROM_ALPHA  # restored by inversion alone
            saturated = _saturated(b[inner]) & inverted[:, None]
            if inner.any() and float(saturated.mean()) > MAX_SATURATED:
                ok = removed
        if not ok and tv_slack > 1.0 and tv_out <= tv_in * tv_slack and inner.any():
            ok = float(_saturated(b[inner]).any(axis=-1).mean()) <= MAX_CLIPPED
        if ok and max_gap_ratio is not None:
            ring = dilate(comp, 3) & ~comp
            if inner.any() and ring.any():
                gap_in = float(np.linalg.norm(b[inner].mean(0) - b[ring].mean(0)))
                gap_out = float(np.linalg.norm(a[inner].mean(0) - a[ring].mean(0)))
                ok = gap_in > 2.0 and gap_out <= max_gap_ratio * gap_in
        if ok and keep_texture is not None:
            ok = _texture_kept(b, a, inner, comp, keep_texture)
        if ok:
            kept[ys, xs] |= comp
        else:
            out[ys, xs][comp] = b[comp]
    return out, kept


def _saturated(pixels: F32) -> Bool:
    """Which channels of pixels (Nx3) are at black or white."""
    return (pixels <= 0.5) | (pixels >= 254.5)


def _mark_removed(before: F32, after: F32, alpha: F32, color: F32, where: Bool) -> bool:
    """The blend adds ``grad(alpha) * (W - I)`` to the photo's own gradient: regress the
    input's and the result's luma gradients on it. About 1 where the mark is in the input, 0
    once it is gone; a photo without the mark scores about 0 before."""
    ax, ay = sobel_xy(alpha)
    band = where & (np.hypot(ax, ay) > 0.02)
    if int(band.sum()) < 10:
        return False
    diff = luma(color) - luma(after)
    ex, ey = ax * diff, ay * diff
    norm = float((ex * ex + ey * ey)[band].sum())
    if norm < 1e-6:
        return False

    def share(img: F32) -> float:
        gx, gy = sobel_xy(img)
        return float((gx * ex + gy * ey)[band].sum()) / norm

    present = share(before)
    return present >= MARK_PRESENT and abs(share(after)) <= MARK_LEFT * present


def _mark_color_near(alpha: F32, color: F32) -> F32:
    """The mark's colour around each pixel, weighted by its opacity (Gaussian, MARK_COLOR_SIGMA
    px). A colour estimated pixel by pixel is the premultiplied colour divided by the opacity:
    where the opacity is nearly zero, as on either side of the mark's outline, that quotient
    can run to thousands of grey levels and drown the edges the mark's-edges test looks for."""
    weight = cv2.GaussianBlur(alpha, (0, 0), MARK_COLOR_SIGMA)
    premult = cv2.GaussianBlur(color * alpha[..., None], (0, 0), MARK_COLOR_SIGMA)
    return np.asarray(premult / np.maximum(weight, 1e-6)[..., None], np.float32)


def _hp_level(img: F32, where: Bool) -> float:
    y = luma(img)
    hp = np.abs(y - cv2.GaussianBlur(y, (0, 0), 1.0))
    return float(np.median(hp[where]))


def _texture_kept(before: F32, after: F32, inner: Bool, comp: Bool, ratio: float) -> bool:
    ring = dilate(comp, 3) & ~comp
    if not inner.any() or int(ring.sum()) < 20:
        return True
    box = bbox(dilate(comp, 4), 2, comp.shape)
    if box is None:
        return True
    ring_b, inner_b = ring[box], inner[box]
    tex_ring = _hp_level(before[box], ring_b)
    if tex_ring < FLAT_TEXTURE:
        return True
    # A visible mark adds fine structure (its edges) to what it covers ...
    if _hp_level(before[box], inner_b) < MARK_TEXTURE * tex_ring:
        return False
    # ... and undoing it must not leave a patch flatter than its textured surroundings.
    return _hp_level(after[box], inner_b) >= ratio * tex_ring
