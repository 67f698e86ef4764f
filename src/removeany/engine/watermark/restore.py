"""Undo an estimated alpha blend, inpaint where too little of the original is left, and guard
against making anything worse."""

from __future__ import annotations

import cv2
import numpy as np

from removeany.engine.watermark._ops import F32, Bool, bbox, dilate, grad_energy, inpaint, luma

# Above this opacity the original is too attenuated to recover by division alone: the
# restored pixels are blended towards inpainting, fully inpainted at INPAINT_ALPHA.
BLEND_FROM_ALPHA = 0.6
INPAINT_ALPHA = 0.92
# Surroundings with less fine texture than this (median |high-pass| luma) are flat.
FLAT_TEXTURE = 2.0
# In textured surroundings a mark's patch has at least this much more fine structure.
MARK_TEXTURE = 1.8


def unblend(
    image: F32,
    alpha: F32,
    color: F32,
    *,
    blend_from: float = BLEND_FROM_ALPHA,
    inpaint_at: float = INPAINT_ALPHA,
) -> F32:
    """Invert ``J = (1 - a) I + a W`` where a > 0; inpaint where a is close to 1."""
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


def guard(
    before: F32,
    after: F32,
    changed: Bool,
    *,
    min_gain: float = 0.03,
    max_gap_ratio: float | None = None,
    min_pixels: int = 0,
    keep_texture: float | None = None,
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
    Returns the guarded image and the kept mask.
    """
    if not changed.any():
        return before.copy(), changed
    zone = dilate(changed, 2)
    n, labels = cv2.connectedComponents(zone.astype(np.uint8), connectivity=8)
    out = after.copy()
    kept = np.zeros(changed.shape, bool)
    for i in range(1, n):
        comp = labels == i
        tv_in = grad_energy(before, comp)
        tv_out = grad_energy(after, comp)
        ok = tv_out <= tv_in * (1.0 - min_gain) and int((comp & changed).sum()) >= min_pixels
        if ok and max_gap_ratio is not None:
            inner = comp & changed
            ring = dilate(comp, 3) & ~comp
            if inner.any() and ring.any():
                gap_in = float(np.linalg.norm(before[inner].mean(0) - before[ring].mean(0)))
                gap_out = float(np.linalg.norm(after[inner].mean(0) - after[ring].mean(0)))
                ok = gap_in > 2.0 and gap_out <= max_gap_ratio * gap_in
        if ok and keep_texture is not None:
            ok = _texture_kept(before, after, comp & changed, comp, keep_texture)
        if ok:
            kept |= comp
        else:
            out[comp] = before[comp]
    return out, kept


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
