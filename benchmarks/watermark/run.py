"""Watermark-removal benchmark on synthetic watermarks over real clean photos.

    .venv/bin/python benchmarks/watermark/run.py --split test          # held-out figures
    .venv/bin/python benchmarks/watermark/run.py --split tune --limit 12

Photos: ``$REMOVEANY_EVAL_DIR/clean`` (default ``<repo>/../shared/eval``), sorted by name; the
first third is the tuning split, the rest the held-out test split. Each photo gets one
watermark from ``synth.py`` (kinds cycle text, cjk, tiled, logo; seeded by file name).

Tracks:
  single  one watermarked image at a time.
  batch   groups of BATCH images (same orientation, centre-cropped to one size) sharing one
          watermark at the same position.

Methods: ``input`` (untouched), ``telea`` (OpenCV Telea inpainting with the perfect mask),
``ours`` (detection + estimation + restoration), ``ours+mask`` (ours given the true mask),
``ours+brush`` (given the true mask grown by BRUSH_MARGIN px, as a user's brush paints it),
and on the batch track ``ours-batch`` (joint estimate, no mask), ``batch+mask`` and
``batch+brush``.

Also: ``scene`` (opaque text that belongs to the photo must survive), ``clean`` (photos with
no mark at all, single and in batches, must come back untouched) and ``styles`` (every photo
under each of a few marks as people commonly put them on photos, ``synth.COMMON_STYLES``).
``--jpeg Q`` hands every method its photo saved as a JPEG of quality Q, as photos are shared.

Metrics: PSNR and SSIM over the whole image and over the watermark region (alpha > 0.01),
images made worse (whole-image PSNR below the input's), images returned unchanged, seconds
per image.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

import io  # noqa: E402

from synth import (  # noqa: E402
    COMMON_STYLES,
    KINDS,
    Watermark,
    cjk_font_available,
    make_common_mark,
    make_watermark,
)

from removeany.engine.watermark import (  # noqa: E402
    WatermarkResult,
    load_mark_net,
    load_text_detector,
    restore,
    restore_batch,
)
from removeany.engine.watermark._ops import dilate  # noqa: E402

BATCH = 6
# Added to a batch's first photo's seed to draw the mark the batch shares.
BATCH_SEED = 7
# --batch-marks: marks drawn on each batch group in turn (1: one mark, of the group's kind).
BATCH_MARKS = 1
# --per-image: print one line per image and method (PSNR before -> after, WORSE flagged).
PER_IMAGE = False
LONG_SIDE = 0
# --jpeg: quality of the JPEG every method's photo is saved as first (0: handed over as is).
JPEG_QUALITY = 0
# How far past the mark a user's brush strays (px, at the photo's size).
BRUSH_MARGIN = 6


def eval_dir() -> Path:
    return Path(os.environ.get("REMOVEANY_EVAL_DIR", str(REPO.parent / "shared" / "eval")))


def split_files(split: str) -> list[Path]:
    files = sorted(p for p in (eval_dir() / "clean").iterdir() if p.suffix in (".png", ".jpg"))
    third = len(files) // 3
    if split == "tune":
        return files[:third]
    if split == "test":
        return files[third:]
    return files


def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    if region is not None:
        d = d[region]
    mse = float(np.mean(d * d)) if d.size else 0.0
    return 99.0 if mse < 1e-10 else 10 * np.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def g(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def telea(j: np.ndarray, wm: Watermark) -> np.ndarray:
    m = cv2.dilate(wm.region().astype(np.uint8), np.ones((3, 3), np.uint8))
    return np.asarray(cv2.inpaint(j, m, 3, cv2.INPAINT_TELEA))


def delivered(image: np.ndarray) -> np.ndarray:
    """The photo as a method receives it: saved as a JPEG of JPEG_QUALITY first, if set."""
    if not JPEG_QUALITY:
        return image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(buf).convert("RGB"))


class Table:
    def __init__(self, kinds: tuple[str, ...] = KINDS) -> None:
        self.kinds = kinds
        self.rows: dict[str, list[dict[str, float]]] = defaultdict(list)

    def add(
        self,
        method: str,
        kind: str,
        clean: np.ndarray,
        j: np.ndarray,
        out: np.ndarray,
        wm: Watermark,
        secs: float,
        name: str = "",
    ) -> None:
        reg = wm.region()
        sm = ssim_map(clean, out)
        if PER_IMAGE:
            p_in, p_out = psnr(clean, j), psnr(clean, out)
            flag = "  WORSE" if p_out < p_in - 1e-6 else ""
            print(
                f"  {method:<11}{kind:<6}{name:<24} PSNR {p_in:6.2f} -> {p_out:6.2f}  "
                f"region {psnr(clean, j, reg):6.2f} -> {psnr(clean, out, reg):6.2f}  "
                f"{secs:6.3f}s{flag}"
            )
        self.rows[method].append(
            {
                "kind": float(self.kinds.index(kind)),
                "psnr": psnr(clean, out),
                "psnr_r": psnr(clean, out, reg),
                "ssim": float(sm.mean()),
                "ssim_r": float(sm[reg].mean()) if reg.any() else 1.0,
                "worse": float(psnr(clean, out) < psnr(clean, j) - 1e-6),
                "same": float(np.array_equal(out, j)),
                "secs": secs,
            }
        )

    def print(self, title: str) -> None:
        print(f"\n== {title} ==")
        head = f"{'method':<11}{'n':>4}{'PSNR':>7}{'PSNR-reg':>9}{'SSIM':>7}{'SSIM-reg':>9}"
        head += f"{'worse':>6}{'same':>5}{'s/img':>7}  " + " ".join(f"{k:>6}" for k in self.kinds)
        print(head + "   (region PSNR by kind)")
        for m, rs in self.rows.items():
            a = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
            by = []
            for ki in range(len(self.kinds)):
                v = [r["psnr_r"] for r in rs if r["kind"] == ki]
                by.append(f"{np.mean(v):6.2f}" if v else "     -")
            print(
                f"{m:<11}{len(rs):>4}{a['psnr']:7.2f}{a['psnr_r']:9.2f}{a['ssim']:7.4f}"
                f"{a['ssim_r']:9.4f}{int(sum(r['worse'] for r in rs)):>6}"
                f"{int(sum(r['same'] for r in rs)):>5}{a['secs']:7.3f}  " + " ".join(by)
            )


def load(p: Path, long_side: int | None = None) -> np.ndarray:
    """The photo at ``p``, scaled (bicubic) to ``long_side`` (default LONG_SIDE; 0: as is)."""
    side = LONG_SIDE if long_side is None else long_side
    im = Image.open(p).convert("RGB")
    if side:
        scale = side / max(im.size)
        im = im.resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC
        )
    return np.asarray(im)


def brushed(wm: Watermark) -> np.ndarray:
    """The mark's region as a user paints it: grown by BRUSH_MARGIN px all round, which also
    fills the gaps between letters."""
    return dilate(wm.region(), BRUSH_MARGIN)


def box_around(wm: Watermark) -> tuple[int, int, int, int]:
    """The one box (x0, y0, x1, y1) a user draws around the whole mark."""
    ys, xs = np.nonzero(wm.region())
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def run_single(files: list[Path], methods: set[str]) -> Table:
    det = load_text_detector()
    if det is None:
        print("warning: text detector not installed; 'ours' detects nothing", file=sys.stderr)
    tab = Table()
    for i, p in enumerate(files):
        clean = load(p)
        kind = KINDS[i % len(KINDS)]
        wm = make_watermark(np.random.default_rng(seed_of(p.name)), *clean.shape[:2], kind)
        j = delivered(wm.apply(clean))
        fns: dict[str, Callable[[np.ndarray, Watermark], np.ndarray]] = {
            "input": lambda j, wm: j,
            "telea": telea,
            "ours": lambda j, wm: restore(j, detector=det).image,
            "ours+mask": lambda j, wm: restore(j, mask=wm.region()).image,
            "ours+brush": lambda j, wm: restore(j, mask=brushed(wm)).image,
            "ours+box": lambda j, wm: restore(j, boxes=[box_around(wm)]).image,
        }
        for m, fn in fns.items():
            if m not in methods:
                continue
            t = time.perf_counter()
            out = fn(j, wm)
            tab.add(m, kind, clean, j, out, wm, time.perf_counter() - t, p.name)
    return tab


def run_scene(files: list[Path]) -> None:
    """Opaque text that belongs to the photo (signs, labels; synth kind ``scene``) must come
    through detection untouched: the photo with its text is the reference."""
    det = load_text_detector()
    changed, psnrs, secs = [], [], 0.0
    for p in files:
        clean = load(p)
        label = make_watermark(
            np.random.default_rng(seed_of(p.name) + 11), *clean.shape[:2], "scene"
        )
        photo = delivered(label.apply(clean))
        t = time.perf_counter()
        out = restore(photo, detector=det).image
        secs += time.perf_counter() - t
        score = psnr(photo, out)
        psnrs.append(score)
        if score < 60.0:
            changed.append((p.name, label.text, score))
    print(f"\n== scene text (must survive), {len(files)} photos ==")
    print(
        f"changed {len(changed)} of {len(files)}; mean PSNR against the photo "
        f"{float(np.mean(np.minimum(psnrs, 99.0))):.2f} dB (99 = untouched); "
        f"{secs / max(len(files), 1):.3f} s/img"
    )
    for name, text, score in changed:
        print(f"  changed: {name} {text!r} PSNR {score:.2f}")


# The clean track's two ways through: a group of photos in, one result per photo out.
Restorer = Callable[[list[np.ndarray]], list[WatermarkResult]]


def run_clean(files: list[Path]) -> None:
    """Photos that carry no mark at all must come back untouched: each one through the
    automatic single path, and each batch group (as on the batch track, unmarked) through the
    automatic batch path. A photo counts as changed below 60 dB against itself."""
    det = load_text_detector()
    tracks: list[tuple[str, list[list[np.ndarray]], Restorer]] = [
        ("single", [[delivered(load(p))] for p in files], lambda g: [restore(g[0], detector=det)]),
        (
            "batch",
            [[delivered(c) for c in marked_batch(g, "text")[0]] for g in batch_groups(files)],
            lambda g: restore_batch(g, detector=det),
        ),
    ]
    for title, groups, restore_group in tracks:
        scores, secs = [], 0.0
        for group in groups:
            t = time.perf_counter()
            results = restore_group(group)
            secs += time.perf_counter() - t
            scores += [psnr(im, r.image) for im, r in zip(group, results, strict=True)]
        changed = [x for x in scores if x < 60.0]
        worst = f"{min(changed):.2f} dB" if changed else "-"
        print(
            f"\n== no mark ({title}, must stay untouched), {len(scores)} photos ==\n"
            f"changed {len(changed)} of {len(scores)}; worst {worst}; "
            f"{secs / max(len(scores), 1):.3f} s/img"
        )


def run_styles(files: list[Path], methods: set[str]) -> Table:
    """Every photo under each mark of COMMON_STYLES, automatic (``ours``) and with the user's
    mask (``ours+mask``)."""
    det = load_text_detector()
    styles = tuple(COMMON_STYLES)
    tab = Table(styles)
    for p in files:
        clean = load(p)
        for style in styles:
            wm = make_common_mark(style, *clean.shape[:2])
            j = delivered(wm.apply(clean))
            fns: dict[str, Callable[[], np.ndarray]] = {
                "input": lambda j=j: j,
                "ours": lambda j=j: restore(j, detector=det).image,
                "ours+mask": lambda j=j, wm=wm: restore(j, mask=wm.region()).image,
            }
            for m, fn in fns.items():
                if m not in methods:
                    continue
                t = time.perf_counter()
                out = fn()
                tab.add(m, style, clean, j, out, wm, time.perf_counter() - t, p.name)
    return tab


def _landscape(path: Path) -> bool:
    with Image.open(path) as im:
        return im.size[0] >= im.size[1]


def batch_groups(files: list[Path]) -> list[list[Path]]:
    land = [p for p in files if _landscape(p)]
    port = [p for p in files if p not in land]
    groups: list[list[Path]] = []
    for pool in (land, port):
        for k in range(0, len(pool) - BATCH + 1, BATCH):
            groups.append(pool[k : k + BATCH])
    return groups


def marked_batch(
    group: list[Path], kind: str, seed: int = BATCH_SEED
) -> tuple[list[np.ndarray], Watermark]:
    """A batch's photos centre-cropped to one size, and the mark of ``kind`` they share (drawn
    with the first photo's seed plus ``seed``)."""
    imgs = [load(p) for p in group]
    h = min(im.shape[0] for im in imgs)
    w = min(im.shape[1] for im in imgs)
    cleans = [
        im[
            (im.shape[0] - h) // 2 : (im.shape[0] - h) // 2 + h,
            (im.shape[1] - w) // 2 : (im.shape[1] - w) // 2 + w,
        ].copy()
        for im in imgs
    ]
    rng = np.random.default_rng(seed_of(group[0].name) + seed)
    return cleans, make_watermark(rng, h, w, kind)


def run_batch(files: list[Path], methods: set[str]) -> Table:
    det = load_text_detector()
    tab = Table()
    batch_fns: dict[str, Callable[[list[np.ndarray], Watermark], list[WatermarkResult]]] = {
        "ours-batch": lambda js, wm: restore_batch(js, detector=det),
        "batch+brush": lambda js, wm: restore_batch(js, mask=brushed(wm)),
        "batch+mask": lambda js, wm: restore_batch(js, mask=wm.region()),
    }
    for gi, group in enumerate(batch_groups(files)):
        for m in range(BATCH_MARKS):
            # Mark m of a group: the kinds in turn from the group's own, each with a new seed
            # once all four were drawn (m = 0 is the track's one mark per group).
            kind = KINDS[(gi + m) % len(KINDS)]
            cleans, wm = marked_batch(group, kind, BATCH_SEED + 100 * (m // len(KINDS)))
            js = [delivered(wm.apply(c)) for c in cleans]
            if "input" in methods:
                for c, j in zip(cleans, js, strict=True):
                    tab.add("input", kind, c, j, j, wm, 0.0)
            if "telea" in methods:
                for c, j, p in zip(cleans, js, group, strict=True):
                    t = time.perf_counter()
                    out = telea(j, wm)
                    tab.add("telea", kind, c, j, out, wm, time.perf_counter() - t, p.name)
            if "ours" in methods:
                for c, j, p in zip(cleans, js, group, strict=True):
                    t = time.perf_counter()
                    out = restore(j, detector=det).image
                    tab.add("ours", kind, c, j, out, wm, time.perf_counter() - t, p.name)
            for method, restore_group in batch_fns.items():
                if method not in methods:
                    continue
                t = time.perf_counter()
                res = restore_group(js, wm)
                secs = (time.perf_counter() - t) / len(js)
                for c, j, r, p in zip(cleans, js, res, group, strict=True):
                    tab.add(method, kind, c, j, r.image, wm, secs, p.name)
    return tab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tune", "test", "all"), default="test")
    ap.add_argument(
        "--track",
        choices=("single", "batch", "scene", "clean", "styles", "both", "all"),
        default="both",
        help="both = single + batch; all adds the scene-text and no-mark (clean) tracks; "
        "styles: common marks (synth.COMMON_STYLES) on every photo",
    )
    ap.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    ap.add_argument(
        "--methods",
        default="input,telea,ours,ours+mask,ours+brush,ours+box,ours-batch,batch+mask,batch+brush",
        help="comma-separated subset",
    )
    ap.add_argument("--per-image", action="store_true", help="one line per image and method")
    ap.add_argument(
        "--batch-marks",
        type=int,
        default=1,
        help="batch track: restore each group under this many marks, one at a time (the kinds "
        "in turn, a new seed after every four): 8 gives 11 held-out groups x 4 kinds x 2 seeds",
    )
    ap.add_argument(
        "--long-side",
        type=int,
        default=0,
        help="scale each photo (bicubic) to this long side before marking it: real photos are "
        "larger than the 481-768 px evaluation set, e.g. 1200",
    )
    ap.add_argument(
        "--jpeg",
        type=int,
        default=0,
        help="hand every method its photo saved as a JPEG of this quality (e.g. 90), as photos "
        "are shared; 0: as is",
    )
    args = ap.parse_args()
    global PER_IMAGE, LONG_SIDE, BATCH_MARKS, JPEG_QUALITY
    PER_IMAGE = args.per_image
    BATCH_MARKS = args.batch_marks
    LONG_SIDE = args.long_side
    JPEG_QUALITY = args.jpeg
    files = split_files(args.split)
    if args.limit:
        files = files[: args.limit]
    methods = set(args.methods.split(","))
    print(
        f"eval dir {eval_dir()}, split {args.split}: {len(files)} photos"
        f"{f' scaled to {LONG_SIDE} px' if LONG_SIDE else ''}"
        f"{f', as JPEG quality {JPEG_QUALITY}' if JPEG_QUALITY else ''}; "
        f"CJK font {'yes' if cjk_font_available() else 'NO (cjk kind falls back to Latin)'}; "
        f"opacity network {'yes' if load_mark_net() else 'NO (batches: edges and text only)'}"
    )
    if args.track in ("single", "both", "all"):
        run_single(files, methods).print(f"single track, {args.split} split")
    if args.track in ("scene", "all"):
        run_scene(files)
    if args.track in ("clean", "all"):
        run_clean(files)
    if args.track == "styles":
        run_styles(files, methods).print(f"common styles, {args.split} split")
    if args.track in ("batch", "both", "all"):
        run_batch(files, methods).print(
            f"batch track ({BATCH} images share a watermark), {args.split} split"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
