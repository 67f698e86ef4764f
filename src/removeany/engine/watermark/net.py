"""A learned opacity map of visible watermarks: where a photo carries an alpha-blended mark.

A small U-Net of our own (``training/watermark``), trained on synthetic marks over
wallpaper photos from Debian packages, reads an RGB photo and returns per pixel the mark's
opacity and colour. Alone it still sees marks in texture where there are none, so it is used
where that cannot hurt: a batch's shared mark is where the *median* opacity over the photos
is high, since a mark the photos share sits in the same place in each, and a false find does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from removeany.engine.models import (
    BundledFile,
    ModelSpec,
    cpu_session,
    default_model_dir,
    model_path,
    verify_model,
)
from removeany.engine.watermark._ops import F32, Bool, dilate, stack_median

MARK_NET = ModelSpec(
    name="markalpha",
    filename="markalpha.onnx",
    sha256="d8c25f344406489598e78777bec84cdc99a0787bdcee1eeb72b4837179e7a55e",
    input_size=(256, 256),  # its training crops; it runs at any size (multiples of 16)
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    source=BundledFile("engine/watermark/markalpha.onnx"),
)
# Sides the network needs: four stride-2 stages.
MULTIPLE = 16
# Longest side a photo is read at (larger ones are reduced; the map is scaled back up).
NET_MAX_SIDE = 800
# A batch's shared mark: median opacity above SHARED_OPACITY, in components whose peak reaches
# SHARED_PEAK and that cover at least SHARED_MIN_PIXELS (at the photos' size), grown by
# SHARED_GROW pixels so the estimate sees the mark's soft edge and shadow.
SHARED_OPACITY = 0.1
SHARED_PEAK = 0.2
SHARED_MIN_PIXELS = 20
SHARED_GROW = 4


class MarkNet:
    """The opacity network on ONNX Runtime's CPU provider."""

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        verify_model(MARK_NET, path)
        self._session: Any = cpu_session(path, threads)

    def opacity(self, image: F32) -> F32:
        """The mark's opacity (HxW, 0..1) in an RGB image (HxWx3, 0..255), read with its long
        side at most NET_MAX_SIDE."""
        h, w = image.shape[:2]
        scale = min(1.0, NET_MAX_SIDE / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.float32)
        sh, sw = small.shape[:2]
        padded = np.pad(
            np.asarray(small, np.float32) / 255.0,
            ((0, -sh % MULTIPLE), (0, -sw % MULTIPLE), (0, 0)),
            mode="reflect",
        )
        out = self._session.run(None, {"image": padded.transpose(2, 0, 1)[None]})[0]
        alpha = np.ascontiguousarray(out[0, 0, :sh, :sw], np.float32)
        if scale < 1.0:
            alpha = np.asarray(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR))
        return alpha

    def shared_region(self, stack: F32) -> Bool:
        """Where the photos of a stack (KxHxWx3) share a mark: the median of their opacity."""
        median = stack_median([self.opacity(im) for im in stack])
        found = (median > SHARED_OPACITY).astype(np.uint8)
        n, components, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
        labels = np.asarray(components, np.intp)
        peak = np.zeros(n, np.float32)
        np.maximum.at(peak, labels.ravel(), median.ravel())
        keep = (peak >= SHARED_PEAK) & (stats[:, cv2.CC_STAT_AREA] >= SHARED_MIN_PIXELS)
        keep[0] = False
        return dilate(keep[labels], SHARED_GROW)


_CACHE: dict[str, MarkNet] = {}


def load_mark_net(model_dir: Path | None = None) -> MarkNet | None:
    """The installed opacity network, or None when it is not installed."""
    path = model_path(MARK_NET, model_dir or default_model_dir())
    key = str(path.resolve())
    if key not in _CACHE:
        if not path.is_file():
            return None
        _CACHE[key] = MarkNet(path)
    return _CACHE[key]
