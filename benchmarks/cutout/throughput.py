"""End-to-end throughput: ``rembg p -m u2netp IN OUT`` vs ``removeany remove-background IN -o
OUT`` on the same folder.

``python -m benchmarks.cutout.throughput [--data DIR] [--rembg-venv DIR] [--model NAME]``. Both
commands read every photo, cut it out and write an RGBA PNG; wall time includes process start
and model load, as a user of either command would see it. Runs each side twice, alternating,
and keeps the faster run of each (the machine may be shared).
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
    ap.add_argument("--model", help="removeany's --model (default: its cutout model)")
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
            "removeany": [sys.executable, "-m", "removeany", "remove-background"]
            + (["--model", args.model] if args.model else []),
        }
        best: dict[str, float] = {}
        refused: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                out = Path(tempfile.mkdtemp(dir=tmp))
                target = ["-o", str(out)] if name == "removeany" else [str(out)]
                t0 = time.perf_counter()
                run = subprocess.run([*cmd, str(src), *target], env=env, capture_output=True,
                                     text=True, check=False)  # fmt: skip
                dt = time.perf_counter() - t0
                # removeany refuses a photo with no subject (rembg writes an empty cut-out).
                refused[name] = run.stderr.count("unknown_foreground")
                written = len(list(out.glob("*.png")))
                if run.returncode not in (0, 1) or written + refused[name] != len(pairs):
                    raise SystemExit(f"{name} wrote {written} of {len(pairs)}: {run.stderr}")
                best[name] = min(dt, best.get(name, dt))
    n = len(pairs)
    print(f"{args.data} ({n} photos), best of {args.repeat}, {os.cpu_count()} cores")
    for name, dt in best.items():
        note = f"   ({refused[name]} refused: no subject)" if refused[name] else ""
        print(f"  {name:<20} {dt:7.1f} s   {n / dt:5.2f} photos/s{note}")
    ratio = best["rembg p -m u2netp"] / best["removeany"]
    print(f"  speed-up: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
