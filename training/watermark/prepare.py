"""Gather the training photos and fonts: Debian wallpaper packages and the fonts installed here.

    python training/watermark/prepare.py OUT_DIR      # writes OUT_DIR/photos and OUT_DIR/fonts

Photos are the packages' wallpapers (landscapes, plants, animals, macro shots, and abstract
artwork too), reduced to 1280 px on the long side. Nothing of the evaluation set
(``../shared/eval``) is used: it stays for measuring.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGES = (
    "gnome-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "mate-backgrounds",
    "ukui-wallpapers",
)
# Too small to crop from, or the same photo again at another size.
SKIP = ("vnc-d", "vnc-l", "Elephants_3840x2160", "Elephants_5640x3172")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-ExtraLight.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Italic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


def main(out: Path) -> int:
    photos, fonts = out / "photos", out / "fonts"
    photos.mkdir(parents=True, exist_ok=True)
    fonts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        found = sorted(
            p for p in (Path(tmp) / "x").rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
        )
        for n, path in enumerate(p for p in found if p.stem not in SKIP):
            with Image.open(path) as im:
                rgb = im.convert("RGB")
            rgb.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
            rgb.save(photos / f"{n:03d}_{path.stem}.jpg", quality=92)
    for font in FONTS:
        shutil.copy(font, fonts)
    print(f"{len(list(photos.glob('*.jpg')))} photos, {len(FONTS)} fonts in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
