"""Output options: colours, margins, crops, size budgets and the foreground box."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pytest
from PIL import Image

from removeany.engine.compose import (
    CSS_COLORS,
    CropMargin,
    Length,
    color_alpha_zip,
    compose_result,
    foreground_box,
    parse_bg_color,
    parse_crop_margin,
    parse_options,
)
from removeany.engine.errors import ImageError, OptionError
from removeany.engine.io import encode_image

from ._colour import convert, srgb_profile, wide_gamut_profile
from ._eval import load_pair, photo_path


def _subject(size: tuple[int, int] = (400, 300), box: tuple[int, int, int, int] = (100, 50, 80, 60)
             ) -> Image.Image:  # fmt: skip
    """Transparent canvas with an opaque red rectangle at (left, top, width, height)."""
    image = Image.new("RGBA", size, (0, 0, 255, 0))
    left, top, width, height = box
    image.paste((255, 0, 0, 255), (left, top, left + width, top + height))
    return image


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("81d4fa", (0x81, 0xD4, 0xFA, 255)),
        ("#81d4fa", (0x81, 0xD4, 0xFA, 255)),
        ("#fff", (255, 255, 255, 255)),
        ("81d4fa80", (0x81, 0xD4, 0xFA, 0x80)),
        ("fff8", (255, 255, 255, 0x88)),
        ("#0f08", (0, 255, 0, 0x88)),
        ("White", (255, 255, 255, 255)),
        ("orange", (255, 165, 0, 255)),
        ("LightBlue", (0xAD, 0xD8, 0xE6, 255)),
        ("rebeccapurple", (0x66, 0x33, 0x99, 255)),
        ("transparent", (0, 0, 0, 0)),
    ],
)
def test_bg_color_parsing(value: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_bg_color(value) == expected


@pytest.mark.parametrize("value", ["81d4f", "#ggg", "chartreuse-ish", "12345678901", "rgb(1,2,3)"])
def test_bad_bg_color_is_invalid_bg_color(value: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_bg_color(value)
    assert caught.value.code == "invalid_bg_color"
    assert isinstance(caught.value, ValueError)


def test_css_names_are_the_whole_table() -> None:
    assert len(CSS_COLORS) == 148 + 1  # CSS Color 4's named colours and `transparent`
    assert CSS_COLORS["darkgrey"] == CSS_COLORS["darkgray"] == (0xA9, 0xA9, 0xA9, 255)


def px(value: float) -> Length:
    return Length(value, relative=False)


def pct(value: float) -> Length:
    return Length(value, relative=True)


def test_crop_margin_parsing() -> None:
    assert parse_crop_margin(30) == CropMargin(px(30), px(30), px(30), px(30))
    assert parse_crop_margin("30px") == parse_crop_margin("30 px") == parse_crop_margin(30)
    assert parse_crop_margin("10%") == CropMargin(pct(10), pct(10), pct(10), pct(10))
    # CSS order: top/bottom then left/right; or top, right, bottom, left.
    assert parse_crop_margin("10px 5%") == CropMargin(px(10), pct(5), px(10), pct(5))
    assert parse_crop_margin("1px 2px 3px 4px") == CropMargin(px(1), px(2), px(3), px(4))
    assert parse_crop_margin("1, 2, 3, 4") == parse_crop_margin("1px 2px 3px 4px")
    assert parse_crop_margin("10px 20%").pixels(200, 100) == (10, 40, 10, 40)
    for bad in ("-5", "10em", "501px", "51%", "1px 2px 3px", "1 2 3 4 5", "10px 60%", ""):
        with pytest.raises(OptionError) as caught:
            parse_crop_margin(bad)
        assert caught.value.code == "invalid_crop_margin"


def test_unknown_size_is_refused() -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(size="huge")
    assert caught.value.code == "invalid_size"


def test_bg_color_fills_transparent_pixels() -> None:
    result = compose_result(_subject(), parse_options(bg_color="81d4fa")).image
    assert result.mode == "RGB" and result.size == (400, 300)
    assert result.getpixel((0, 0)) == (0x81, 0xD4, 0xFA)
    assert result.getpixel((120, 70)) == (255, 0, 0)


def test_crop_with_pixel_margin_pads_transparently_past_the_edge() -> None:
    image = _subject(box=(5, 50, 80, 60))
    result = compose_result(image, parse_options(crop=True, crop_margin="20px")).image
    assert result.size == (80 + 40, 60 + 40)
    alpha = np.asarray(result.getchannel("A"))
    assert alpha[20:80, 20:100].min() == 255  # the subject, intact
    assert alpha[:, :15].max() == 0  # margin beyond the left edge is transparent


def test_crop_with_relative_margin() -> None:
    result = compose_result(_subject(), parse_options(crop=True, crop_margin="10%")).image
    assert result.size == (80 + 2 * 8, 60 + 2 * 6)


def test_crop_with_a_margin_per_side() -> None:
    composed = compose_result(_subject(), parse_options(crop=True, crop_margin="1px 2px 3px 4px"))
    assert composed.image.size == (80 + 2 + 4, 60 + 1 + 3)
    assert composed.foreground == (4, 1, 80, 60)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"size": "preview"},
        {"crop": True, "crop_margin": "10% 20px"},
        {"scale": "50%", "position": "0% 100%"},
        {"roi": "0% 0% 50% 100%", "size": "preview"},
    ],
)
def test_the_foreground_is_where_the_subject_is_in_the_result(options: dict[str, Any]) -> None:
    subject = _subject().resize((1200, 900), Image.Resampling.NEAREST)
    transparent = compose_result(subject, parse_options(**options))
    actual = foreground_box(np.asarray(transparent.image.getchannel("A")))
    assert np.abs(np.subtract(transparent.foreground, actual)).max() <= 1
    # An opaque background, a shadow or a matte leave the subject where it was.
    for extra in ({"bg_color": "white"}, {"add_shadow": True}, {"channels": "alpha"}):
        assert compose_result(subject, parse_options(**options, **extra)).foreground == (
            transparent.foreground
        )


def test_preview_fits_quarter_megapixel_keeping_aspect() -> None:
    with Image.open(photo_path("object", "alphamatting_GT05")) as im:
        photo = im.convert("RGBA")
    for image in (photo, photo.resize((4000, 3000))):
        result = compose_result(image, parse_options(size="preview")).image
        assert result.width * result.height <= 250_000
        assert result.width * result.height > 240_000
        assert abs(result.width / result.height - image.width / image.height) < 0.01
    assert compose_result(photo, parse_options(size="full")).image.size == photo.size


def test_alpha_channel_output() -> None:
    result = compose_result(_subject(), parse_options(channels="alpha", bg_color="white")).image
    assert result.mode == "L"
    assert result.getpixel((120, 70)) == 255 and result.getpixel((0, 0)) == 0


def test_foreground_box_for_uint8_and_float_alpha() -> None:
    alpha = np.asarray(_subject().getchannel("A"))
    assert foreground_box(alpha) == (100, 50, 80, 60)
    assert foreground_box((alpha / 255).astype(np.float32)) == (100, 50, 80, 60)
    assert foreground_box(np.zeros((10, 10), np.uint8)) == (0, 0, 0, 0)


def test_roi_clears_everything_outside_the_region() -> None:
    image = _subject(box=(100, 50, 80, 60))
    image.paste((0, 255, 0, 255), (300, 200, 340, 240))  # a second object, outside the roi
    result = compose_result(image, parse_options(roi="0% 0% 50% 100%")).image
    alpha = np.asarray(result.getchannel("A"))
    assert alpha[60:100, 110:170].min() == 255
    assert alpha[:, 200:].max() == 0
    assert foreground_box(alpha) == (100, 50, 80, 60)


@pytest.mark.parametrize("roi", ["50% 0% 100% 100%", "500px 400px 600px 500px"])
def test_a_roi_without_the_subject_is_a_photo_without_one(roi: str) -> None:
    """Beside the subject or past the photo's edge, a region keeps nothing: refused as
    `unknown_foreground` (a job that fails costs nothing), never a blank result."""
    with pytest.raises(ImageError) as refused:
        compose_result(_subject(box=(100, 50, 80, 60)), parse_options(roi=roi))
    assert refused.value.code == "unknown_foreground"
    assert "400x300 photo" in refused.value.message


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0 0 100", "invalid_roi"),
        ("10% 10% 5% 50%", "invalid_roi"),
        ("0% 0% 150% 100%", "invalid_roi"),
        ("a b c d", "invalid_roi"),
    ],
)
def test_bad_regions_are_refused(value: str, code: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(roi=value)
    assert caught.value.code == code


def test_scale_centres_the_subject_and_fills_the_share_asked() -> None:
    result = compose_result(_subject(), parse_options(scale="50%")).image
    left, top, width, height = foreground_box(np.asarray(result.getchannel("A")))
    # 80x60 on 400x300: the limiting side is height (60/300), so 50% means 150 px tall.
    assert (width, height) == (200, 150)
    assert abs(left + width / 2 - 200) <= 1 and abs(top + height / 2 - 150) <= 1
    assert result.size == (400, 300)


def test_position_moves_the_subject_like_css_background_position() -> None:
    result = compose_result(_subject(), parse_options(position="100% 0%")).image
    assert foreground_box(np.asarray(result.getchannel("A"))) == (320, 0, 80, 60)
    bottom_left = compose_result(
        _subject(), parse_options(scale="original", position="0% 100%")
    ).image
    assert foreground_box(np.asarray(bottom_left.getchannel("A"))) == (0, 240, 80, 60)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("scale", "5%", "invalid_scale"),
        ("scale", "half", "invalid_scale"),
        ("position", "left", "invalid_position"),
        ("position", "120% 0%", "invalid_position"),
    ],
)
def test_bad_scale_and_position_are_refused(field: str, value: str, code: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_options(**{field: value})
    assert caught.value.code == code


def test_shadow_darkens_below_the_subject_only() -> None:
    plain = compose_result(_subject(), parse_options(bg_color="white")).image
    shaded = compose_result(_subject(), parse_options(bg_color="white", add_shadow=True)).image
    below = np.asarray(shaded)[111:114, 110:170].astype(int)  # just under the subject's edge
    assert below.mean() < np.asarray(plain)[111:114, 110:170].mean() - 10
    far = np.asarray(shaded)[250:, :50]
    assert far.min() == 255, "the shadow must stay near the subject"
    subject = np.asarray(shaded)[60:100, 110:170]
    assert (subject == [255, 0, 0]).all(), "the subject is drawn over its shadow"


def test_background_image_covers_the_result() -> None:
    backdrop = Image.open(photo_path("object", "alphamatting_GT01")).convert("RGB")
    result = compose_result(_subject(), parse_options(), bg_image=backdrop).image
    assert result.mode == "RGB" and result.size == (400, 300)
    pixels = np.asarray(result)
    assert (pixels[60:100, 110:170] == [255, 0, 0]).all()
    corner = pixels[:40, :40].reshape(-1, 3)
    assert corner.std(axis=0).max() > 2, "the backdrop photo shows outside the subject"


def test_zip_holds_colour_jpeg_and_alpha_png() -> None:
    data = color_alpha_zip(_subject())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
        color = Image.open(io.BytesIO(archive.read("color.jpg")))
        alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert color.mode == "RGB" and alpha.mode == "L"
    assert color.size == alpha.size == (400, 300)
    assert foreground_box(np.asarray(alpha)) == (100, 50, 80, 60)


def _tagged_cutout() -> tuple[Image.Image, np.ndarray]:
    """A real photo cut out along its true alpha, tagged with a wide-gamut profile (its
    pixel values mean other colours than the same values in sRGB); and where it is opaque."""
    photo, subject = load_pair("object", "alphamatting_GT05")
    photo = photo.resize((photo.width // 2, photo.height // 2))
    opaque = np.asarray(Image.fromarray(subject).resize(photo.size)) > 0
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(opaque, 255, 0).astype(np.uint8)))
    rgba.info["icc_profile"] = wide_gamut_profile()
    return rgba, opaque


@pytest.mark.parametrize(
    "options",
    [{}, {"bg_color": "336699"}, {"add_shadow": True}, {"scale": "60%"}, {"crop": True},
     {"bg_color": "81d4fa77", "size": "preview"}],
    ids=["plain", "colour", "shadow", "scale", "crop", "translucent colour"],
)  # fmt: skip
def test_a_tagged_photo_keeps_its_profile_and_colours(options: dict[str, Any]) -> None:
    """The subject's pixels are in its profile's colours, so the result carries the profile
    (a background colour, a shadow or scale dropped it, and the subject's colours shifted
    for everyone who looked); a colour put behind it is the colour asked for, sRGB as in
    CSS, converted into the photo's colours."""
    rgba, opaque = _tagged_cutout()
    result = compose_result(rgba, parse_options(**options)).image
    assert result.info.get("icc_profile") == wide_gamut_profile()
    if options in ({}, {"bg_color": "336699"}, {"add_shadow": True}):
        inside = opaque & np.roll(opaque, 8, 0)  # clear of the shadow's offset
        assert (np.asarray(result)[inside][:, :3] == np.asarray(rgba)[inside][:, :3]).all()
    if "bg_color" in options:
        seen = np.asarray(convert(result, wide_gamut_profile(), srgb_profile()))
        corner = seen[:4, :4].reshape(-1, 3).astype(int)
        if options["bg_color"] == "336699":
            assert np.abs(corner - (0x33, 0x66, 0x99)).max() <= 1
        wrong = np.asarray(result)[:4, :4, :3].reshape(-1, 3).astype(int)
        assert np.abs(wrong - corner).max() >= 10  # the plain values would have been off


def test_a_matte_carries_no_colour_profile() -> None:
    rgba, _ = _tagged_cutout()
    matte = compose_result(rgba, parse_options(channels="alpha")).image
    with Image.open(io.BytesIO(encode_image(matte, "png"))) as out:
        assert out.mode == "L" and "icc_profile" not in out.info


def test_a_background_photo_is_shown_in_its_own_colours() -> None:
    """A backdrop in sRGB behind a tagged subject is converted into the subject's colours
    (it was pasted as it was, then tagged with nothing), and a tagged backdrop behind an
    untagged subject into sRGB."""
    rgba, opaque = _tagged_cutout()
    backdrop = (
        Image.open(photo_path("object", "alphamatting_GT01")).convert("RGB").resize(rgba.size)
    )
    result = compose_result(rgba, parse_options(), bg_image=backdrop).image
    assert result.info.get("icc_profile") == wide_gamut_profile()
    seen = np.asarray(convert(result, wide_gamut_profile(), srgb_profile())).astype(int)
    behind = ~opaque
    assert np.abs(seen[behind] - np.asarray(backdrop).astype(int)[behind]).mean() < 1.0
    assert np.abs(seen[behind] - np.asarray(backdrop).astype(int)[behind]).max() <= 3
    untagged = rgba.copy()
    untagged.info = {}
    tagged_backdrop = backdrop.copy()
    tagged_backdrop.info["icc_profile"] = wide_gamut_profile()
    result = compose_result(untagged, parse_options(), bg_image=tagged_backdrop).image
    assert "icc_profile" not in result.info
    expected = np.asarray(convert(backdrop, wide_gamut_profile(), srgb_profile())).astype(int)
    assert np.abs(np.asarray(result).astype(int)[behind] - expected[behind]).max() <= 1


def test_the_zip_keeps_the_profile_on_the_colours_and_nothing_else() -> None:
    """color.jpg was written by Pillow from the cutout's own info: no profile (the subject's
    colours shifted) but the upload's JPEG comment; alpha.png got the RGB profile, which a
    grey PNG may not carry."""
    rgba, _ = _tagged_cutout()
    rgba.info["comment"] = b"shot at 12 Elm Street"
    with zipfile.ZipFile(io.BytesIO(color_alpha_zip(rgba))) as archive:
        color = Image.open(io.BytesIO(archive.read("color.jpg")))
        alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert color.info.get("icc_profile") == wide_gamut_profile()
    assert "comment" not in color.info
    assert "icc_profile" not in alpha.info


# ---------------------------------------------------------------- the largest result, in advance

_SUBJECTS = {
    "wide": (0, 100, 1000, 50),
    "middle": (300, 80, 200, 100),
    "one pixel": (500, 150, 1, 1),
    "a thin line": (0, 150, 1000, 1),
    "none": (0, 0, 0, 0),
}


@pytest.mark.parametrize("subject", list(_SUBJECTS))
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"size": "preview"},
        {"size": "preview", "crop": True},
        {"size": "preview", "crop": True, "crop_margin": "40px"},
        {"crop": True, "crop_margin": "10px 50% 30% 7px"},
        {"size": "preview", "crop": True, "crop_margin": "50%"},
        {"scale": "60%", "position": "0% 100%", "add_shadow": True},
        {"roi": "10% 10% 50% 90%", "channels": "alpha", "size": "preview"},
        {"bg_color": "white", "size": "preview", "crop": True, "crop_margin": "500px"},
    ],
)
def test_the_largest_result_is_known_before_the_model_runs(
    subject: str, options: dict[str, Any]
) -> None:
    """What a format's limit is checked against at submission: never smaller than what
    compose_result makes (exact without a crop, whose subject is not known yet)."""
    from removeany.engine.compose import largest_result

    parsed = parse_options(**options)
    canvas = _subject((1000, 300), _SUBJECTS[subject])
    try:
        made = compose_result(canvas, parsed).image.size
    except ImageError as refused:  # a roi that holds none of the subject makes no result
        assert parsed.roi is not None and refused.code == "unknown_foreground"
        return
    bound = largest_result(1000, 300, parsed)
    assert made[0] <= bound[0] and made[1] <= bound[1], (made, bound)
    if not parsed.crop:
        assert made == bound


def test_a_format_too_small_for_the_result_is_refused_with_what_fits() -> None:
    from removeany.engine.compose import check_result_format
    from removeany.engine.errors import ImageError

    with pytest.raises(ImageError) as refused:
        check_result_format(16400, 40, parse_options(size="hd"), "webp")
    assert refused.value.code == "output_too_large"
    assert refused.value.message == (
        "A WebP result can be at most 16,383 pixels per side, and this one would be "
        "16400x40; choose PNG, or size 'preview'."
    )
    with pytest.raises(ImageError, match=r"color\.jpg can be at most 65,500") as zipped:
        check_result_format(65501, 2, parse_options(), "zip")
    assert zipped.value.message.endswith("; choose PNG.")  # no size makes a strip narrower
    check_result_format(16400, 40, parse_options(size="preview"), "webp")
    check_result_format(65501, 2, parse_options(), "png")
    check_result_format(65501, 2, parse_options(), "auto")  # auto writes PNG there


def test_encoding_past_a_format_limit_is_a_user_error_not_a_crash() -> None:
    """JPEG past 65500 pixels per side raised libjpeg's OSError ("broken data stream"),
    a job's processing_failed; the zip format's color.jpg too."""
    from removeany.engine.errors import ImageError

    wide = Image.new("RGBA", (65501, 2), (10, 20, 30, 255))
    for encode in (lambda: encode_image(wide, "jpg"), lambda: color_alpha_zip(wide)):
        with pytest.raises(ImageError) as refused:
            encode()
        assert refused.value.code == "output_too_large"
    with pytest.raises(ImageError, match="WebP result can be at most 16,383"):
        encode_image(Image.new("RGB", (16384, 1)), "webp")
