"""ID photo geometry, DPI and halo against the published rule, on real photos.

    PYTHONPATH=src python benchmarks/idphoto.py [--skimage-wheel PATH]

Every photo goes through the service the API and the web workspace run
(``jobs.processors.run("id_photo", ...)``, PNG), so the DPI is read back from the encoded
file. The geometry is measured on the result, independently of the engine's own arithmetic:
the result is registered onto the photo (SIFT matches, RANSAC similarity), and points marked
by hand on the photo (crown = top of the hair, chin, eye centres) are carried into the result.
The crown is also read off the result's pixels (the first row, in a band around the face's
centre, that is not the background colour).

Halo: the photo is rendered on blue and on red. Both are ``alpha * F + (1 - alpha) * colour``,
so the two give alpha and the edge colour F the result shows; the halo is the mean distance
(0-255) between F on the edge band (0.1 < alpha < 0.9) and the person's own colour just inside
(a normalised blur of the opaque pixels): the old background left on the edge raises it.

The rule (docs/id-photos.md): head, crown to chin, 58-69 % of the photo's height; crown 6-10 %
below the top; eye line 30-50 % from the top; face centred within 3 % of the width; eyes level
within 2 degrees; 300 dpi in the file.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from removeany.engine.errors import ImageError
from removeany.engine.models import default_model_dir
from removeany.jobs import processors

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
HEAD_SHARE = (0.58, 0.69)
CROWN_SHARE = (0.06, 0.10)
EYE_SHARE = (0.30, 0.50)
CENTRE_TOLERANCE = 0.03
ROLL_TOLERANCE = 2.0

Point = tuple[float, float]


@dataclass(frozen=True)
class Marked:
    """Points marked by hand on the photo, in its pixels."""

    crown: Point
    chin: Point
    right_eye: Point  # the subject's right eye: the left one in the picture
    left_eye: Point


# Frontal faces with the whole head and shoulders in the frame.
MARKED: dict[str, Marked] = {
    "skimage/astronaut": Marked((225, 15), (226, 180), (199, 102), (246, 103)),
}
# The other photos: each must give a clear refusal or a measurable photo.
OTHERS = [
    "clean/cbsd68_302008",  # head tilted ~29 degrees, black hair on black
    "clean/kodak_kodim04",  # hat cut off by the top edge, chin near the bottom edge
    "clean/mcmaster_06",  # chin on the bottom edge
    "clean/kodak_kodim01",  # no face
    *[f"portrait/{p.name.removesuffix('.alpha.png')}"
      for p in sorted((EVAL / "portrait").glob("*.alpha.png"))],
]  # fmt: skip


def load(name: str, skimage_wheel: Path | None) -> Image.Image:
    group, stem = name.split("/")
    if group == "skimage":
        if skimage_wheel is None:
            raise SystemExit("--skimage-wheel: scikit-image's wheel (pip download scikit-image)")
        with zipfile.ZipFile(skimage_wheel) as wheel:
            return Image.open(io.BytesIO(wheel.read(f"skimage/data/{stem}.png"))).convert("RGB")
    for suffix in (".png", ".jpg"):
        path = EVAL / group / f"{stem}{suffix}"
        if path.exists():
            with Image.open(path) as im:
                return im.convert("RGB")
    raise FileNotFoundError(name)


def render(image: Image.Image, size: str, background: str, model_dir: Path) -> tuple[bytes, float]:
    start = time.perf_counter()
    out = processors.run(
        "id_photo", image, {"size": size, "background": background, "format": "png"}, model_dir
    )
    return out.data, time.perf_counter() - start


def similarity(photo: Image.Image, result: Image.Image) -> NDArray[np.float64] | None:
    """2x3 matrix taking photo pixels to result pixels, or None when they do not register."""
    sift = cv2.SIFT_create()
    a = np.asarray(photo.convert("L"))
    b = np.asarray(result.convert("L"))
    ka, da = sift.detectAndCompute(a, None)
    kb, db = sift.detectAndCompute(b, None)
    if da is None or db is None:
        return None
    pairs = cv2.BFMatcher().knnMatch(da, db, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < 0.75 * n.distance]
    if len(good) < 8:
        return None
    src = np.float32([ka[m.queryIdx].pt for m in good])
    dst = np.float32([kb[m.trainIdx].pt for m in good])
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, ransacReprojThreshold=2.0)
    if matrix is None or int(inliers.sum()) < 8:
        return None
    return np.asarray(matrix, np.float64)


def carry(matrix: NDArray[np.float64], p: Point) -> Point:
    x, y = matrix @ np.array([p[0], p[1], 1.0])
    return float(x), float(y)


def crown_row(result: NDArray[np.uint8], colour: tuple[int, int, int], cx: float) -> int | None:
    """First row, in a band 10 % of the width around ``cx``, that is not the background."""
    w = result.shape[1]
    x0, x1 = max(0, int(cx - 0.05 * w)), min(w, int(cx + 0.05 * w) + 1)
    band = result[:, x0:x1].astype(np.int32)
    differs = np.abs(band - np.asarray(colour)).max(axis=2) > 40
    rows = np.nonzero(differs.mean(axis=1) > 0.3)[0]
    return int(rows[0]) if rows.size else None


def halo(blue: NDArray[np.uint8], red: NDArray[np.uint8]) -> float:
    """Mean distance of the edge colour from the person's own colour just inside (0-255)."""
    c1 = np.array([67, 142, 219], np.float32)
    c2 = np.array([255, 0, 0], np.float32)
    o1, o2 = blue.astype(np.float32), red.astype(np.float32)
    d = c1 - c2
    transparency = np.clip(((o1 - o2) @ d) / float(d @ d), 0.0, 1.0)
    alpha = 1.0 - transparency
    safe = np.maximum(alpha, 1e-3)[..., None]
    colour = (o1 - transparency[..., None] * c1) / safe
    opaque = (alpha > 0.98).astype(np.float32)
    weight = cv2.blur(opaque, (13, 13))
    inside = cv2.blur(o1 * opaque[..., None], (13, 13)) / np.maximum(weight, 1e-6)[..., None]
    band = (alpha > 0.1) & (alpha < 0.9) & (weight > 0.05)
    if not band.any():
        return 0.0
    return float(np.linalg.norm(colour[band] - inside[band], axis=1).mean())


def measure(name: str, size: str, image: Image.Image, model_dir: Path) -> str:
    try:
        white, seconds = render(image, size, "white", model_dir)
    except ImageError as exc:
        return f"{name:34s} {size:5s} refused {exc.code}"
    result = Image.open(io.BytesIO(white))
    dpi = result.info.get("dpi")
    rgb = np.asarray(result.convert("RGB"))
    h, w = rgb.shape[:2]
    blue = np.asarray(Image.open(io.BytesIO(render(image, size, "blue", model_dir)[0])))
    red = np.asarray(Image.open(io.BytesIO(render(image, size, "red", model_dir)[0])))
    fields = [f"{name:34s} {size:5s} {seconds:5.2f}s", f"dpi {dpi}", f"halo {halo(blue, red):5.1f}"]
    marked = MARKED.get(name)
    matrix = similarity(image, result) if marked is not None else None
    if marked is not None and matrix is not None:
        crown, chin = carry(matrix, marked.crown), carry(matrix, marked.chin)
        r, left = carry(matrix, marked.right_eye), carry(matrix, marked.left_eye)
        head = (chin[1] - crown[1]) / h
        top = crown[1] / h
        eyes = (r[1] + left[1]) / 2 / h
        centre = ((r[0] + left[0]) / 2 - w / 2) / w
        roll = math.degrees(math.atan2(left[1] - r[1], left[0] - r[0]))
        seen = crown_row(rgb, (255, 255, 255), (r[0] + left[0]) / 2)

        def judge(value: float, low: float, high: float) -> str:
            return "ok" if low <= value <= high else "OUT"

        fields += [
            f"head {head:.3f} {judge(head, *HEAD_SHARE)}",
            f"crown {top:+.3f} {judge(top, *CROWN_SHARE)}"
            + (f" (pixels {seen / h:+.3f})" if seen is not None else " (pixels none)"),
            f"eyes {eyes:.3f} {judge(eyes, *EYE_SHARE)}",
            f"centre {centre:+.3f} {judge(abs(centre), 0, CENTRE_TOLERANCE)}",
            f"roll {roll:+.1f} {judge(abs(roll), 0, ROLL_TOLERANCE)}",
            f"bottom-centre person {bool(np.abs(rgb[-2, w // 2].astype(int) - 255).max() > 40)}",
        ]
    elif marked is not None:
        fields.append("did not register")
    return "  ".join(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skimage-wheel", type=Path)
    parser.add_argument("--model-dir", type=Path, default=default_model_dir())
    args = parser.parse_args()
    print(
        f"rule: head {HEAD_SHARE}, crown {CROWN_SHARE}, eyes {EYE_SHARE} of the height; "
        f"centre +-{CENTRE_TOLERANCE}; roll +-{ROLL_TOLERANCE} deg; 300 dpi",
        flush=True,
    )
    with tempfile.TemporaryDirectory():
        for name in [*MARKED, *OTHERS]:
            image = load(name, args.skimage_wheel)
            for size in ("1inch", "2inch"):
                print(measure(name, size, image, args.model_dir), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
