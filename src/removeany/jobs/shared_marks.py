"""Watermark batches: the mark a batch's photos share, estimated once per worker process.

Photos from one source usually carry one watermark in one place, and estimating it from
several of them (`engine.watermark.estimate_shared_mark`) restores far more of the picture
than one photo alone can. A worker estimates it from the batch's first MAX_JOINT originals of
the item's size (the same ones on every worker, so every worker arrives at the same estimate)
and keeps it in memory for that batch's next items. Nothing derived from the photos is
written anywhere, and an estimate not used for IDLE_SECONDS is forgotten.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from removeany.engine.errors import ImageError, OptionError
from removeany.engine.io import decode_image
from removeany.engine.watermark import (
    MAX_JOINT,
    MIN_JOINT,
    SharedMark,
    estimate_shared_mark,
    load_text_detector,
    shared_mark_work_copy,
)
from removeany.infra.storage import Storage
from removeany.jobs import processors
from removeany.jobs import repository as repo

if TYPE_CHECKING:
    from removeany.context import Context

# Batches (and sizes) whose estimate a worker keeps at once, and for how long unused.
CACHE_SIZE = 16
IDLE_SECONDS = 15 * 60

_Key = tuple[str, int, int]
_cache: OrderedDict[_Key, tuple[SharedMark | None, float]] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[_Key, threading.Lock] = {}


def for_item(
    ctx: Context,
    files: Storage,
    batch_id: str,
    size: tuple[int, int],
    options: dict[str, Any],
) -> SharedMark | None:
    """The mark shared by the batch's photos of this `size` (width, height), or None when
    fewer than MIN_JOINT of them exist or they share none (each photo is then treated alone).
    Concurrent items of one batch wait for one estimate instead of each making their own.
    The originals are read through `files` (the worker's, which waits out an outage)."""
    key = (batch_id, *size)
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            _forget_old()
            entry = _cache.get(key)
            if entry is not None:
                _cache[key] = (entry[0], time.monotonic())
                _cache.move_to_end(key)
                return entry[0]
        mark = _estimate(ctx, files, batch_id, size, options)
        with _cache_lock:
            _cache[key] = (mark, time.monotonic())
            _forget_old()
        return mark


def _forget_old() -> None:
    """Drop idle and surplus estimates (and their locks). Called with _cache_lock held."""
    cutoff = time.monotonic() - IDLE_SECONDS
    for key in [k for k, (_, used) in _cache.items() if used < cutoff]:
        del _cache[key]
        _key_locks.pop(key, None)
    while len(_cache) > CACHE_SIZE:
        key, _ = _cache.popitem(last=False)
        _key_locks.pop(key, None)


def _estimate(
    ctx: Context, files: Storage, batch_id: str, size: tuple[int, int], options: dict[str, Any]
) -> SharedMark | None:
    width, height = size
    with ctx.db.transaction() as session:
        keys = repo.batch_input_keys(session, batch_id, width, height, MAX_JOINT)
    if len(keys) < MIN_JOINT:
        return None
    photos: list[npt.NDArray[np.float32]] = []
    for key in keys:
        if not files.exists(key):
            continue  # deleted by its owner meanwhile
        try:
            photo = decode_image(
                files.get(key),
                max_bytes=ctx.settings.max_upload_bytes,
                max_pixels=ctx.settings.max_upload_pixels,
            )
        except ImageError:
            continue
        # Reduced as it is read (twelve 24-megapixel photos would not fit in memory), the way
        # the engine reduces them, so a batch's estimate is the one the benchmark measures.
        photos.append(shared_mark_work_copy(photo))
        photo.close()
    boxes = [(x, y, x + w, y + h) for x, y, w, h in options.get("boxes") or []]
    return estimate_shared_mark(
        photos,
        shape=(height, width),
        mask=_user_mask(options, size),
        boxes=boxes or None,
        detector=load_text_detector(ctx.model_dir),
        model_dir=ctx.model_dir,
    )


def _user_mask(options: dict[str, Any], size: tuple[int, int]) -> npt.NDArray[np.bool_] | None:
    """The batch's mask where it was painted on a photo of this size; other sizes go without."""
    encoded = options.get("mask_png")
    if encoded is None:
        return None
    try:
        return processors.decode_mask(encoded, size)
    except OptionError:
        return None
