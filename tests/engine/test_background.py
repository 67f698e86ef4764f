"""Background removal on real photographs with the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from removeany.engine import ImageError, predict_alpha, remove_background

from ._eval import all_pairs, iou, load_pair


@pytest.mark.parametrize(
    ("group", "name"),
    [("object", "alphamatting_GT05"), ("object", "davis16_dog_00030"),
     ("portrait", "davis16_parkour_00050")],
)  # fmt: skip
def test_cutout_matches_ground_truth(group: str, name: str, model_dir: Path) -> None:
    image, truth = load_pair(group, name)
    cutout = remove_background(image, model_dir=model_dir)
    assert cutout.mode == "RGBA" and cutout.size == image.size
    alpha = np.asarray(cutout.getchannel("A"))
    assert iou(alpha >= 128, truth) >= 0.6
    # Colour is untouched where the subject is; the alpha is soft, not a blown-up binary mask.
    rgb_in, rgb_out = np.asarray(image), np.asarray(cutout)[..., :3]
    assert np.array_equal(rgb_in[alpha == 255], rgb_out[alpha == 255])
    assert len(np.unique(alpha)) > 50


def test_mean_iou_over_all_evaluation_pairs(model_dir: Path) -> None:
    """A regression floor for the whole set (u2netp scored 0.78 when this was written)."""
    scores = []
    for group, name in all_pairs():
        image, truth = load_pair(group, name)
        scores.append(iou(predict_alpha(image, model_dir=model_dir) >= 0.5, truth))
    assert len(scores) >= 20
    assert float(np.mean(scores)) >= 0.7


def test_predict_alpha_is_full_resolution_probability(model_dir: Path) -> None:
    image, _ = load_pair("portrait", "davis16_breakdance_00042")
    alpha = predict_alpha(image, model_dir=model_dir)
    assert alpha.dtype == np.float32
    assert alpha.shape == (image.height, image.width)
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


@pytest.mark.parametrize("color", [(128, 128, 128), (255, 255, 255), (20, 90, 200)])
def test_flat_image_has_unknown_foreground(color: tuple[int, int, int], model_dir: Path) -> None:
    with pytest.raises(ImageError) as caught:
        remove_background(Image.new("RGB", (640, 480), color), model_dir=model_dir)
    assert caught.value.code == "unknown_foreground"
    assert "subject" in caught.value.message


def test_existing_transparency_is_kept(model_dir: Path) -> None:
    image, _ = load_pair("object", "alphamatting_GT05")
    rgba = image.convert("RGBA")
    half = image.width // 2
    rgba.paste((0, 0, 0, 0), (0, 0, half, image.height))
    alpha = np.asarray(remove_background(rgba, model_dir=model_dir).getchannel("A"))
    assert alpha[:, :half].max() == 0
    assert alpha[:, half:].max() == 255
