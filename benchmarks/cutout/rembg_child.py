"""Runs inside rembg's own venv: ``python rembg_child.py LIST OUTDIR``; prints JSON timings."""

import json
import resource
import sys
import time
from pathlib import Path

import rembg
from PIL import Image

paths = Path(sys.argv[1]).read_text().split("\n")
out = Path(sys.argv[2])
session = rembg.new_session("u2netp")
with Image.open(paths[0]) as im:
    rembg.remove(im, session=session)  # warm-up
times = []
for p in paths:
    with Image.open(p) as im:
        im.load()
        t0 = time.perf_counter()
        res = rembg.remove(im, session=session)
        times.append(time.perf_counter() - t0)
    res.getchannel("A").save(out / f"{Path(p).stem}.png")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"times": times, "peak_rss_mb": rss, "version": rembg.__version__}))
