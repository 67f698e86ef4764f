"""Small real photos for batch tests: evaluation images downscaled to about 320 px."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import EVAL_DIR

# Photos in which the model finds no subject once downscaled: they fail (correctly) as items.
NO_FOREGROUND_AT_320PX = frozenset({"davis16_drift-chicane_00026"})


def photo_paths(count: int) -> list[Path]:
    """Object and portrait photos (not their .alpha masks), cycling if more are wanted."""
    found = sorted(
        p
        for group in ("object", "portrait")
        for p in (EVAL_DIR / group).glob("*")
        if p.suffix in (".jpg", ".png")
        and not p.name.endswith(".alpha.png")
        and p.stem not in NO_FOREGROUND_AT_320PX
    )
    if not found:
        pytest.skip(f"evaluation photos not found under {EVAL_DIR}")
    return [found[i % len(found)] for i in range(count)]


def small_photo(path: Path, side: int = 320, fmt: str = "JPEG") -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, fmt, quality=90) if fmt == "JPEG" else im.save(buf, fmt)
        return buf.getvalue()


def plain_image(colour: tuple[int, int, int] = (10, 120, 10), side: int = 200) -> bytes:
    """A flat colour: the engine finds no foreground, so the item fails (and is refunded)."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def photo_zip(count: int, side: int = 320) -> tuple[bytes, list[str]]:
    """A ZIP of `count` photos spread over nested folders; returns it and its member paths."""
    members: dict[str, bytes] = {}
    for i, path in enumerate(photo_paths(count)):
        name = f"set{i % 3}/sub{i % 2}/{i:03d}-{path.stem}.jpg"
        members[name] = small_photo(path, side)
    return make_zip(members), list(members)
