"""Portrait cutout and ID photos on real photographs with the real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from removeany.engine import predict_alpha
from removeany.engine.errors import ImageError, OptionError
from removeany.engine.models import fetch_model, get_model
from removeany.engine.portrait import (
    ID_BACKGROUNDS,
    ID_SIZES,
    cutout_portrait,
    detect_faces,
    id_photo,
    predict_portrait_alpha,
)

from ._eval import iou, load_pair, peak_rss_mb, require_eval_dir


@pytest.fixture(scope="module")
def face_model_dir(model_dir: Path) -> Path:
    fetch_model(get_model("blazeface-short"), model_dir)
    return model_dir


def _clean(name: str) -> Image.Image:
    path = require_eval_dir() / "clean" / f"{name}.png"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with Image.open(path) as im:
        return im.convert("RGB")


def test_portrait_path_beats_plain_model_on_people(model_dir: Path) -> None:
    """Mean IoU over the portrait set: the portrait path (U2-Net full in int8, crop pass,
    refined) against the object path (u2netp in int8, one 320px pass, refined): 0.835 vs 0.732
    and MAE 0.018 vs 0.040 when written."""
    names = sorted(p.name.removesuffix(".alpha.png")
                   for p in (require_eval_dir() / "portrait").glob("*.alpha.png"))  # fmt: skip
    assert len(names) >= 5
    plain, ours, mae_plain, mae_ours = [], [], [], []
    for name in names:
        image, truth = load_pair("portrait", name)
        a0 = predict_alpha(image, model_dir=model_dir)
        a1 = predict_portrait_alpha(image, model_dir=model_dir)
        assert a1.shape == truth.shape and a1.dtype == np.float32
        plain.append(iou(a0 >= 0.5, truth))
        ours.append(iou(a1 >= 0.5, truth))
        mae_plain.append(float(np.abs(a0 - truth).mean()))
        mae_ours.append(float(np.abs(a1 - truth).mean()))
    assert float(np.mean(ours)) >= 0.81
    assert float(np.mean(ours)) >= float(np.mean(plain)) + 0.05
    assert float(np.mean(mae_ours)) <= 0.025


def test_cutout_portrait_is_rgba_with_soft_edges(model_dir: Path) -> None:
    image, truth = load_pair("portrait", "davis16_parkour_00050")
    cut = cutout_portrait(image, model_dir=model_dir)
    assert cut.mode == "RGBA" and cut.size == image.size
    alpha = np.asarray(cut.getchannel("A"))
    assert iou(alpha >= 128, truth) >= 0.85
    assert len(np.unique(alpha)) > 50


def test_detects_the_face_in_a_portrait_and_none_in_a_landscape(face_model_dir: Path) -> None:
    faces = detect_faces(_clean("kodak_kodim04"), model_dir=face_model_dir)
    assert len(faces) == 1
    f = faces[0]
    # the woman's face: centre of the 500x500 frame, eyes near y=200, chin near y=400
    assert 180 < (f.x0 + f.x1) / 2 < 320 and 200 < (f.y0 + f.y1) / 2 < 330
    assert 150 < f.width < 400
    assert detect_faces(_clean("kodak_kodim01"), model_dir=face_model_dir) == []


@pytest.mark.parametrize("size", sorted(ID_SIZES))
@pytest.mark.parametrize("background", sorted(ID_BACKGROUNDS))
def test_id_photo_size_background_and_centred_head(
    size: str, background: str, face_model_dir: Path
) -> None:
    photo = id_photo(_clean("kodak_kodim04"), size, background, model_dir=face_model_dir)
    assert photo.mode == "RGB" and photo.size == ID_SIZES[size]
    w, h = photo.size
    pixels = np.asarray(photo).astype(int)
    colour = np.asarray(ID_BACKGROUNDS[background])
    # the top corners are background, flat colour
    for corner in (pixels[2, 2], pixels[2, w - 3]):
        assert np.abs(corner - colour).max() <= 3
    # the face is found again in the result, horizontally centred, in the upper-middle
    faces = detect_faces(photo, model_dir=face_model_dir)
    assert faces
    f = max(faces, key=lambda b: b.width)
    assert abs((f.x0 + f.x1) / 2 - w / 2) < 0.08 * w
    assert 0.25 * h < (f.y0 + f.y1) / 2 < 0.65 * h


def test_id_photo_rejects_bad_options_and_faceless_photos(face_model_dir: Path) -> None:
    with pytest.raises(OptionError):
        id_photo(_clean("kodak_kodim04"), "3inch", "white", model_dir=face_model_dir)
    with pytest.raises(OptionError):
        id_photo(_clean("kodak_kodim04"), "1inch", "green", model_dir=face_model_dir)
    with pytest.raises(ImageError):
        id_photo(_clean("kodak_kodim01"), "1inch", "white", model_dir=face_model_dir)


def test_24_megapixel_portrait_under_1_2_gb(model_dir: Path) -> None:
    """U2-Net full is 10x u2netp's size even in int8: a 6000x4000 portrait still peaks under
    1.2 GB (its session runs without onnxruntime's memory arena, which held ~330 MB between
    runs in float)."""
    photo = require_eval_dir() / "portrait" / "davis16_breakdance_00008.jpg"
    code = f"""
        import numpy as np
        from pathlib import Path
        from PIL import Image
        from removeany.engine.portrait import cutout_portrait
        with Image.open({str(photo)!r}) as im:
            big = im.convert("RGB").resize((6000, 4000), Image.Resampling.BILINEAR)
        out = cutout_portrait(big, model_dir=Path({str(model_dir)!r}))
        alpha = np.asarray(out.getchannel("A"))
        assert out.size == (6000, 4000) and 0.02 < float((alpha >= 128).mean()) < 0.6
        """
    peak_mb = peak_rss_mb(code)
    assert peak_mb < 1200, peak_mb
