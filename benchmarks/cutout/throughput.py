"""End-to-end throughput: ``rembg p -m u2netp IN OUT`` vs the engine on the same folder.

``python -m benchmarks.cutout.throughput [--data DIR] [--rembg-venv DIR]``. Both sides read
every photo, cut it out and write an RGBA PNG; wall time includes process start and model
load, as a user of either command would see it. Runs each side twice, alternating, and keeps
the faster run of each (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cutout.core import REPO, find_pairs

ENGINE_LOOP = """
import sys
from pathlib import Path
from PIL import Image
from removeany.engine.background import apply_alpha, predict_alpha
from removeany.engine.io import encode_image
out = Path(sys.argv[2])
for p in sorted(Path(sys.argv[1]).iterdir()):
    with Image.open(p) as im:
        rgb = im.convert("RGB")
        # remove_background minus its empty-subject refusal: rembg writes every photo;
        # encoded as the product encodes results (engine.io: no metadata, PNG level 3)
        cutout = apply_alpha(rgb, predict_alpha(rgb))
        (out / (p.stem + ".png")).write_bytes(encode_image(cutout, "png"))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cutout.throughput")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/eval/object"))
    ap.add_argument("--rembg-venv", type=Path, default=Path("/tmp/rembg-venv"))
    ap.add_argument(
        "--rembg-model-dir",
        type=Path,
        default=Path(os.environ.get("U2NET_HOME", str(Path.home() / ".u2net"))),
    )
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        pairs = find_pairs(args.data)
        for img, _ in pairs:
            shutil.copy(img, src / img.name)
        env = dict(os.environ, U2NET_HOME=str(args.rembg_model_dir))
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
        cmds = {
            "rembg p -m u2netp": [str(args.rembg_venv / "bin" / "rembg"), "p", "-m", "u2netp"],
            "removeany engine": [sys.executable, "-c", ENGINE_LOOP],
        }
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                out = Path(tempfile.mkdtemp(dir=tmp))
                t0 = time.perf_counter()
                subprocess.run([*cmd, str(src), str(out)], check=True, env=env,
                               capture_output=True)  # fmt: skip
                dt = time.perf_counter() - t0
                if len(list(out.glob("*.png"))) != len(pairs):
                    raise SystemExit(f"{name} wrote {len(list(out.iterdir()))} of {len(pairs)}")
                best[name] = min(dt, best.get(name, dt))
    n = len(pairs)
    print(f"{args.data} ({n} photos), best of {args.repeat}, {os.cpu_count()} cores")
    for name, dt in best.items():
        print(f"  {name:<20} {dt:7.1f} s   {n / dt:5.2f} photos/s")
    ratio = best["rembg p -m u2netp"] / best["removeany engine"]
    print(f"  speed-up: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
