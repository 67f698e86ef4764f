"""Where the user-marked batch path (``batch+mask``) loses: its estimate against the truth.

    .venv/bin/python benchmarks/watermark/ceiling.py --split tune [--long-side 1200]

Same batches and marks as ``run.py --track batch``. Each batch's mark is estimated once
(`estimate_shared_mark` with the true region as the user's mask), and the photos are restored
by inverting the blend, without the guard, with:

  estimate       the estimated opacity and colour (photos whose batch gave none are left out);
  true a, est W  the true opacity, the colour estimated from it (`joint.shared_color`);
  true a, one W  the true opacity and one colour for the whole mark, fitted to the photos
                 (least squares on the neighbour steps of the restored photos);
  true a, W      the true opacity and colour (what inverting the blend can do at best).

``shipped`` is `restore_batch` itself (estimate and guard). Region PSNR (dB) by kind.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
from synth import KINDS  # noqa: E402

from removeany.engine.watermark import estimate_shared_mark, restore_batch  # noqa: E402
from removeany.engine.watermark.joint import shared_color  # noqa: E402
from removeany.engine.watermark.restore import unblend  # noqa: E402

COLUMNS = ("shipped", "estimate", "true a, est W", "true a, one W", "true a, W")


def one_color(stack: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The single colour W that makes the restored photos ``(J - a W) / (1 - a)`` change
    least between neighbours, in least squares; only steps where the opacity changes
    depend on W."""
    u = 1.0 / (1.0 - alpha.astype(np.float64))
    b = alpha / (1.0 - alpha.astype(np.float64))
    js = stack.astype(np.float64)
    num, den = np.zeros(3), 0.0
    h, w = alpha.shape
    for p, q in (
        ((slice(None), slice(0, w - 1)), (slice(None), slice(1, w))),
        ((slice(0, h - 1), slice(None)), (slice(1, h), slice(None))),
    ):
        db = b[p] - b[q]
        on = np.abs(db) > 1e-4
        step = u[p][..., None] * js[:, p[0], p[1]] - u[q][..., None] * js[:, q[0], q[1]]
        num += (db[on][None, :, None] * step[:, on]).sum(axis=(0, 1))
        den += len(js) * float((db[on] ** 2).sum())
    return num / max(den, 1e-9)


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):6.2f}" if values else "     -"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("tune", "test", "all"), default="tune")
    ap.add_argument("--long-side", type=int, default=0)
    args = ap.parse_args()
    run.LONG_SIDE = args.long_side
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for gi, group in enumerate(run.batch_groups(run.split_files(args.split))):
        kind = KINDS[gi % len(KINDS)]
        cleans, wm = run.marked_batch(group, kind)
        js = [wm.apply(c) for c in cleans]
        region = wm.region()
        stack = np.stack(js).astype(np.float32)
        mark = estimate_shared_mark(js, mask=region)
        shipped = [r.image for r in restore_batch(js, mask=region)]
        blends: dict[str, tuple[np.ndarray, np.ndarray] | None] = {
            "estimate": None,
            "true a, est W": (wm.alpha, shared_color(stack, wm.alpha, wm.alpha > 0)),
            "true a, one W": (
                wm.alpha,
                np.broadcast_to(one_color(stack, wm.alpha), wm.color.shape).astype(np.float32),
            ),
            "true a, W": (wm.alpha, wm.color),
        }
        if mark is not None and mark.estimate.alpha.shape == wm.alpha.shape:
            blends["estimate"] = (mark.estimate.alpha, mark.estimate.color)
        for clean, j, out in zip(cleans, js, shipped, strict=True):
            scores["shipped"][kind].append(run.psnr(clean, out, region))
            for name, blend in blends.items():
                if blend is None:  # no estimate at the photos' size to invert
                    continue
                restored = np.clip(np.rint(unblend(j.astype(np.float32), *blend)), 0, 255)
                scores[name][kind].append(run.psnr(clean, restored, region))
    size = f", {args.long_side} px" if args.long_side else ""
    print(f"\n== batch+mask ceiling, {args.split} split{size}: region PSNR (dB) ==")
    print(f"{'':15s} {'all':>6s} " + " ".join(f"{k:>6s}" for k in KINDS))
    for name in COLUMNS:
        by_kind = scores[name]
        every = [x for v in by_kind.values() for x in v]
        cells = " ".join(_cell(by_kind[k]) for k in KINDS)
        print(f"{name:15s} {_cell(every)} {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
