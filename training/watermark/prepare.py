"""Gather the training photos and fonts: Debian wallpaper packages and the fonts installed here.

    python training/watermark/prepare.py OUT_DIR [--textures]   # OUT_DIR/photos, OUT_DIR/fonts

Photos are the packages' wallpapers (landscapes, plants, animals, macro shots, and abstract
artwork too), reduced to 1280 px on the long side. ``--textures`` adds the sample photos of
OpenCV's documentation and scikit-image's wheel: fur, foliage, gravel, brick, graffiti and
scene text, the fine texture a mark detector must not mistake for a mark (the second round in
README.md; the shipped network was trained without them). Nothing of the evaluation set
(``../shared/eval``) is used: it stays for measuring.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
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
# Photographs among the samples of ``opencv-doc`` (``examples/...``) and ``scikit-image``
# (``skimage/data/...``); the rest are charts, digits, drawings and microscopy.
TEXTURE_PACKAGE = "opencv-doc"
TEXTURE_WHEEL = "scikit-image==0.25.2"
TEXTURE_PHOTOS = (
    "alphamat/input_images/plant.jpg",
    "data/aloeL.jpg",
    "data/baboon.jpg",
    "data/basketball1.png",
    "data/board.jpg",
    "data/box_in_scene.png",
    "data/building.jpg",
    "data/chicky_512.png",
    "data/fruits.jpg",
    "data/graf1.png",
    "data/graf3.png",
    "data/leuvenA.jpg",
    "data/messi5.jpg",
    "data/pic2.png",
    "data/rubberwhale1.png",
    "data/smarties.png",
    "data/squirrel_cls.jpg",
    "data/starry_night.jpg",
    "dnn_superres/butterfly.png",
    "reg/home.png",
    "ximgproc/stanford.png",
    *(f"text/scenetext0{n}.jpg" for n in range(1, 7)),
    "skimage/data/astronaut.png",
    "skimage/data/brick.png",
    "skimage/data/camera.png",
    "skimage/data/chelsea.png",
    "skimage/data/coffee.png",
    "skimage/data/grass.png",
    "skimage/data/gravel.png",
    "skimage/data/hubble_deep_field.jpg",
    "skimage/data/motorcycle_left.png",
    "skimage/data/rocket.jpg",
)
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


def main(out: Path, textures_too: bool) -> int:
    photos, fonts = out / "photos", out / "fonts"
    photos.mkdir(parents=True, exist_ok=True)
    fonts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wallpapers, textures = Path(tmp) / "x", Path(tmp) / "t"
        extra = [TEXTURE_PACKAGE] if textures_too else []
        subprocess.run(["apt-get", "download", *PACKAGES, *extra], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            into = textures if deb.name.startswith(TEXTURE_PACKAGE) else wallpapers
            subprocess.run(["dpkg", "-x", str(deb), str(into)], check=True)
        if textures_too:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, TEXTURE_WHEEL],
                check=True,
            )
            with zipfile.ZipFile(next(Path(tmp).glob("scikit_image-*.whl"))) as wheel:
                names = [n for n in wheel.namelist() if n in TEXTURE_PHOTOS]
                wheel.extractall(textures, names)
        found = sorted(p for p in wallpapers.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        found = [p for p in found if p.stem not in SKIP]
        found += sorted(
            p for p in textures.rglob("*") if any(str(p).endswith(t) for t in TEXTURE_PHOTOS)
        )
        for n, path in enumerate(found):
            with Image.open(path) as im:
                rgb = im.convert("RGB")
            rgb.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
            rgb.save(photos / f"{n:03d}_{path.stem}.jpg", quality=92)
    for font in FONTS:
        shutil.copy(font, fonts)
    print(f"{len(list(photos.glob('*.jpg')))} photos, {len(FONTS)} fonts in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), "--textures" in sys.argv[2:]))
