"""Score background-removal pipelines on folders of ``IMAGE`` + ``STEM.alpha.png`` pairs.

Each pipeline runs in its own child process so that its peak RSS is its own. The table lists
mean IoU (alpha >= 0.5), mean alpha MAE, mean SAD and gradient error (thousands), seconds per
image (model load excluded, measured after one warm-up image) and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks.cutout.metrics import all_metrics
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_PIPELINES = ["u2netp-plain", "rembg", "engine"]


def find_pairs(data: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for p in sorted(data.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.endswith(".alpha.png"):
            continue
        gt = p.with_name(p.stem + ".alpha.png")
        if gt.exists():
            pairs.append((p, gt))
    return pairs


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_alpha(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_in_process(name: str, data: Path, limit: int | None, save: Path | None) -> dict[str, Any]:
    from benchmarks.cutout.pipelines import get_pipeline

    pairs = find_pairs(data)[:limit]
    fn = get_pipeline(name)
    # warm-up (model load, allocator) on the first image; not timed
    fn(load_rgb(pairs[0][0]))
    rows = []
    total = 0.0
    for img_path, gt_path in pairs:
        rgb = load_rgb(img_path)
        t0 = time.perf_counter()
        pred = fn(rgb)
        dt = time.perf_counter() - t0
        total += dt
        gt = load_alpha(gt_path)
        if pred.shape != gt.shape:
            raise RuntimeError(f"{name}: {img_path.name}: shape {pred.shape} != {gt.shape}")
        m = all_metrics(np.clip(pred, 0, 1).astype(np.float32), gt)
        m["sec"] = dt
        m["name"] = img_path.stem  # type: ignore[assignment]
        rows.append(m)
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            Image.fromarray((np.clip(pred, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
                save / f"{img_path.stem}.png"
            )
    return summarise(name, rows, total, peak_rss_mb())


def summarise(name: str, rows: list[dict[str, Any]], total: float, rss: float) -> dict[str, Any]:
    n = len(rows)
    return {
        "pipeline": name,
        "n": n,
        "iou": float(np.mean([r["iou"] for r in rows])),
        "mae": float(np.mean([r["mae"] for r in rows])),
        "sad": float(np.mean([r["sad"] for r in rows])),
        "grad": float(np.mean([r["grad"] for r in rows])),
        "sec_per_image": total / max(n, 1),
        "peak_rss_mb": rss,
        "per_image": rows,
    }


def run_rembg(data: Path, limit: int | None, venv: Path, model_dir: Path) -> dict[str, Any]:
    """Real rembg 2.0.x (its own venv) with u2netp, scored like any pipeline."""
    pairs = find_pairs(data)[:limit]
    script = Path(__file__).with_name("rembg_child.py")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(str(p) for p, _ in pairs))
        env = dict(os.environ, U2NET_HOME=str(model_dir))
        out = subprocess.run(
            [str(venv / "bin" / "python"), str(script), str(listing), tmp],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        rows = []
        for (img_path, gt_path), dt in zip(pairs, info["times"], strict=True):
            pred = load_alpha(Path(tmp) / f"{img_path.stem}.png")
            m = all_metrics(pred, load_alpha(gt_path))
            m["sec"] = dt
            m["name"] = img_path.stem  # type: ignore[assignment]
            rows.append(m)
    return summarise(f"rembg {info['version']}", rows, sum(info["times"]), info["peak_rss_mb"])


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "rembg":
        return run_rembg(args.data, args.limit, args.rembg_venv, args.rembg_model_dir)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_json = Path(f.name)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.cutout",
        "--pipeline",
        name,
        "--data",
        str(args.data),
        "--child-json",
        str(out_json),
    ]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.save:
        cmd += ["--save", str(args.save)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")])
    subprocess.run(cmd, check=True, cwd=REPO, env=env)
    result: dict[str, Any] = json.loads(out_json.read_text())
    out_json.unlink()
    return result


def print_table(data: Path, results: list[dict[str, Any]]) -> None:
    print(f"\n{data}  ({results[0]['n']} images)")
    head = f"{'pipeline':<22}{'IoU':>7}{'MAE':>8}{'SAD':>8}{'Grad':>8}{'s/img':>8}{'RSS MB':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['pipeline']:<22}{r['iou']:>7.3f}{r['mae']:>8.4f}{r['sad']:>8.2f}"
            f"{r['grad']:>8.2f}{r['sec_per_image']:>8.3f}{r['peak_rss_mb']:>8.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cutout", description=__doc__)
    ap.add_argument(
        "--data",
        type=Path,
        action="append",
        help="folder of IMAGE + STEM.alpha.png pairs (repeatable); "
        "default: shared/eval/object and shared/eval/portrait",
    )
    ap.add_argument(
        "--pipeline",
        action="append",
        help=f"pipeline name (repeatable); default: {' '.join(DEFAULT_PIPELINES)}",
    )
    ap.add_argument("--list", action="store_true", help="list pipelines and exit")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    ap.add_argument("--save", type=Path, default=None, help="write predicted alphas here")
    ap.add_argument("--json", type=Path, default=None, help="write all results as JSON")
    ap.add_argument("--per-image", action="store_true", help="print per-image IoU/MAE")
    ap.add_argument(
        "--rembg-venv", type=Path, default=Path(os.environ.get("REMBG_VENV", "/tmp/rembg-venv"))
    )
    ap.add_argument(
        "--rembg-model-dir",
        type=Path,
        default=Path(os.environ.get("U2NET_HOME", str(Path.home() / ".u2net"))),
    )
    ap.add_argument("--child-json", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.list:
        from benchmarks.cutout.pipelines import PIPELINES

        for k, (_, doc) in PIPELINES.items():
            print(f"{k:<22}{doc}")
        print(f"{'rembg':<22}real rembg (separate venv, --rembg-venv) with u2netp")
        return 0

    if args.child_json is not None:
        res = run_in_process(args.pipeline[0], args.data[0], args.limit, args.save)
        args.child_json.write_text(json.dumps(res))
        return 0

    datas = args.data or [REPO.parent / "shared/eval/object", REPO.parent / "shared/eval/portrait"]
    datas = [d if d.exists() else Path("/work/shared/eval") / d.name for d in datas]
    names = args.pipeline or DEFAULT_PIPELINES
    everything = []
    for data in datas:
        results = []
        for name in names:
            if name == "rembg" and not (args.rembg_venv / "bin" / "python").exists():
                print(f"skipping rembg: no venv at {args.rembg_venv}", file=sys.stderr)
                continue
            res = run_child(name, argparse.Namespace(**{**vars(args), "data": data}))
            results.append(res)
            if args.per_image:
                for r in res["per_image"]:
                    print(f"  {name:<18}{r['name']:<36} IoU {r['iou']:.3f} MAE {r['mae']:.4f}")
        print_table(data, results)
        everything.append({"data": str(data), "results": results})
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    return 0
