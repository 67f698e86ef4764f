"""Portrait cutout and ID photos.

``cutout_portrait`` segments the person in two passes: the salient-object model on the whole
photo finds the subject, then runs again on a square crop around it, which gives people that
fill a small part of the frame several times the effective resolution. The result is refined
against the photo at full resolution (``matting.refine_alpha``).

``id_photo`` finds the face with MediaPipe's BlazeFace short-range detector (a ``.tflite``
file that ships inside the ``mediapipe`` wheel, run by ``ai-edge-litert``), measures the eyes
and chin on crops around it and the top of the head on the person's alpha, and lays the photo
on a standard-size canvas by the published rule (docs/id-photos.md), eyes level, on a flat
colour, with the edge colours estimated afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from removeany.engine import matting
from removeany.engine.background import (
    apply_alpha,
    ensure_foreground,
    preprocess,
    run_model,
)
from removeany.engine.errors import ImageError, ModelError, OptionError
from removeany.engine.io import to_srgb
from removeany.engine.models import (
    get_model,
    load_session,
    model_path,
    verify_model_file,
)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

IdSize = Literal["1inch", "2inch"]
IdBackground = Literal["white", "blue", "red"]

# 300 dpi: 1 inch photo 25 x 35 mm, 2 inch photo 35 x 49 mm.
ID_SIZES: dict[str, tuple[int, int]] = {"1inch": (295, 413), "2inch": (413, 579)}
ID_BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "blue": (67, 142, 219),
    "red": (255, 0, 0),
}
FACE_MODEL = "blazeface-short"
# People are cut out with U2-Net full in int8: on the portrait set IoU 0.835 and MAE 0.018
# against 0.826 and 0.019 in float and 0.745 and 0.042 with u2netp (benchmarks/cutout), about
# 2.3x faster than in float, in half the memory.
PORTRAIT_MODEL = "u2net-int8"
# The ID photo rule (docs/id-photos.md, after the Chinese passport photo guidance: head
# 28-33 mm of 48, its top 3-5 mm below the edge; "the head takes 2/3 of the photo"): the head,
# top of the hair to chin, as a share of the height, and the gap above it.
HEAD_HEIGHT_SHARE = 0.64
CROWN_MARGIN_SHARE = 0.08
ID_DPI = 300
# Enlarging a face more than this blurs it (at 300 dpi the photo would print at under 150).
MAX_ENLARGEMENT = 2.0
# Another face at least this share of the subject's width is another person in the photo.
OTHER_FACE_SHARE = 0.4
# BlazeFace again on square crops this many face sizes wide, for the eyes and the chin.
FACE_CROP_SHARES = (1.6, 2.0, 2.6)
# Passes over the crops turned level by the roll found so far: the second one starts from a
# nearly level face and reads the last degrees the first leaves (a 29-degree tilt was left
# at 3.1 degrees after one).
LEVEL_PASSES = 2
# How far above the eyes, in face sizes, the top of the head is looked for.
CROWN_SEARCH = 3.0
# The person meeting the photo's edge over this share of the ID photo's width is a cut.
EDGE_CONTACT_SHARE = 0.02

__all__ = [
    "ID_BACKGROUNDS",
    "ID_SIZES",
    "FaceBox",
    "FacePose",
    "cutout_portrait",
    "detect_faces",
    "estimate_foreground",
    "face_pose",
    "id_photo",
    "predict_portrait_alpha",
]


@dataclass(frozen=True)
class FaceBox:
    """A face in pixel coordinates of the photo; ``score`` in [0, 1]; the eyes are the
    subject's (the right eye is on the left of the picture)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    right_eye: tuple[float, float]
    left_eye: tuple[float, float]

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


# --------------------------------------------------------------------------- segmentation


def _model_probability(
    rgb: U8, model: str, model_dir: Path | None, providers: Sequence[str] | None
) -> F32:
    """Model-resolution foreground probability of an RGB array."""
    spec = get_model(model)
    session = load_session(model, model_dir, providers)
    tensor = preprocess(Image.fromarray(rgb), spec)
    return np.clip(run_model(session, tensor, logits=spec.logits), 0.0, 1.0)


def subject_box(prob: F32, threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of pixels at or above ``threshold``; None when empty."""
    ys, xs = np.nonzero(prob >= threshold)
    if xs.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def predict_portrait_alpha(
    image: Image.Image,
    *,
    model: str = PORTRAIT_MODEL,
    model_dir: Path | None = None,
    providers: Sequence[str] | None = None,
    margin: float = 0.25,
    max_crop_share: float = 0.6,
    refine: matting.RefineConfig | None = None,
) -> F32:
    """Person alpha, float32 HxW in [0, 1] at full resolution (two passes, then refined).

    The second pass runs only when the square crop around the subject (plus ``margin`` of its
    size on each side) covers at most ``max_crop_share`` of the photo: otherwise the first
    pass already saw the subject at about the model's resolution.
    """
    rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    cfg = refine or matting.RefineConfig()
    scale = min(1.0, float(np.sqrt(cfg.work_pixels / float(h * w))))
    ww, wh = max(1, round(w * scale)), max(1, round(h * scale))
    small = (
        rgb
        if scale == 1.0
        else np.asarray(cv2.resize(rgb, (ww, wh), interpolation=cv2.INTER_AREA), np.uint8)
    )
    prob = matting.resize_plane(_model_probability(small, model, model_dir, providers), ww, wh)
    box = subject_box(prob)
    if box is not None:
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        cx0, cx1 = int(max(0.0, cx - side / 2)), int(min(float(ww), cx + side / 2))
        cy0, cy1 = int(max(0.0, cy - side / 2)), int(min(float(wh), cy + side / 2))
        if (cx1 - cx0) * (cy1 - cy0) <= max_crop_share * ww * wh and min(cx1 - cx0, cy1 - cy0) > 8:
            # crop the full-resolution photo so the model sees every pixel it can use
            fx0, fx1 = int(cx0 / scale), min(w, int(np.ceil(cx1 / scale)))
            fy0, fy1 = int(cy0 / scale), min(h, int(np.ceil(cy1 / scale)))
            crop_prob = _model_probability(rgb[fy0:fy1, fx0:fx1], model, model_dir, providers)
            prob[cy0:cy1, cx0:cx1] = matting.resize_plane(crop_prob, cx1 - cx0, cy1 - cy0)
    return matting.refine_alpha(rgb, prob, cfg)


def cutout_portrait(
    image: Image.Image,
    *,
    model: str = PORTRAIT_MODEL,
    model_dir: Path | None = None,
    providers: Sequence[str] | None = None,
) -> Image.Image:
    """Cut the person out: RGBA, same size as ``image``, alpha at full resolution.

    Raises ``ImageError("unknown_foreground")`` when no subject is found.
    """
    alpha = predict_portrait_alpha(image, model=model, model_dir=model_dir, providers=providers)
    ensure_foreground(alpha)
    return apply_alpha(image, alpha)


# --------------------------------------------------------------------------- face detection

_interpreters: dict[Path, Any] = {}
_interp_lock = threading.Lock()


def _interpreter(name: str, model_dir: Path | None) -> tuple[Any, threading.Lock]:
    """A shared TFLite interpreter for a verified model file, and the lock to use it."""
    spec = get_model(name)
    path = model_path(spec, model_dir)
    verify_model_file(path, spec.sha256)
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ModelError(
            "MediaPipe models need the `ai-edge-litert` package; install removeany's dependencies."
        ) from exc
    with _interp_lock:
        interp = _interpreters.get(path)
        if interp is None:
            # Without the default XNNPACK delegate, which announces itself on the process's
            # stderr ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU."), where the
            # commands write only progress and errors; a 128x128 detector needs no delegate.
            interp = Interpreter(
                model_path=str(path),
                num_threads=1,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            interp.allocate_tensors()
            _interpreters[path] = interp
    return interp, _interp_lock


def _blazeface_anchors() -> F32:
    """SSD anchors of the short-range BlazeFace model: 896 (cx, cy) in [0, 1]."""
    anchors: list[tuple[float, float]] = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = 128 // stride
        for y in range(n):
            for x in range(n):
                anchors.extend([((x + 0.5) / n, (y + 0.5) / n)] * per_cell)
    return np.asarray(anchors, np.float32)


_ANCHORS = _blazeface_anchors()


@dataclass(frozen=True)
class _Detection:
    """One BlazeFace answer on its 128x128 input, in input pixels: box (x0, y0, x1, y1) and the
    six keypoints (the subject's right eye, left eye, nose tip, mouth, right ear, left ear)."""

    box: tuple[float, float, float, float]
    keypoints: F32
    score: float


def _detect(square: U8, model_dir: Path | None, min_score: float) -> list[_Detection]:
    """BlazeFace on a 128x128 RGB input, best first, overlapping answers not merged."""
    x = square.astype(np.float32) / 127.5 - 1.0
    interp, lock = _interpreter(FACE_MODEL, model_dir)
    with lock:
        interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
        interp.invoke()
        outs = {o["name"]: interp.get_tensor(o["index"]) for o in interp.get_output_details()}
    reg, cls = _split_outputs(outs)
    scores = 1.0 / (1.0 + np.exp(-np.clip(cls, -80.0, 80.0)))
    keep = np.nonzero(scores >= min_score)[0]
    found: list[_Detection] = []
    for i in keep[np.argsort(-scores[keep])]:
        cx = reg[i, 0] + _ANCHORS[i, 0] * 128.0
        cy = reg[i, 1] + _ANCHORS[i, 1] * 128.0
        bw, bh = reg[i, 2], reg[i, 3]
        points = reg[i, 4:16].reshape(6, 2) + _ANCHORS[i] * 128.0
        box = (float(cx - bw / 2), float(cy - bh / 2), float(cx + bw / 2), float(cy + bh / 2))
        found.append(_Detection(box, points.astype(np.float32), float(scores[i])))
    return found


def detect_faces(
    image: Image.Image,
    *,
    model_dir: Path | None = None,
    min_score: float = 0.6,
    iou_merge: float = 0.3,
) -> list[FaceBox]:
    """Faces in ``image``, best first (BlazeFace short range: faces within about 2 m)."""
    rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    side = max(h, w)
    # letterbox to a square so the face keeps its shape
    square = np.zeros((side, side, 3), np.uint8)
    oy, ox = (side - h) // 2, (side - w) // 2
    square[oy : oy + h, ox : ox + w] = rgb
    small = np.asarray(cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA), np.uint8)
    k = side / 128.0
    boxes: list[FaceBox] = []
    for found in _detect(small, model_dir, min_score):
        x0, y0, x1, y1 = found.box
        eyes = found.keypoints[:2] * k - np.array([ox, oy], np.float32)
        box = FaceBox(
            x0 * k - ox,
            y0 * k - oy,
            x1 * k - ox,
            y1 * k - oy,
            found.score,
            (float(eyes[0, 0]), float(eyes[0, 1])),
            (float(eyes[1, 0]), float(eyes[1, 1])),
        )
        if all(_box_iou(box, b) < iou_merge for b in boxes):
            boxes.append(box)
    return boxes


def _split_outputs(outs: dict[str, Any]) -> tuple[F32, F32]:
    reg: F32 | None = None
    cls: F32 | None = None
    for arr in outs.values():
        a = np.asarray(arr, np.float32)
        if a.shape[-1] == 16:
            reg = a.reshape(-1, 16)
        elif a.shape[-1] == 1:
            cls = a.reshape(-1)
    if reg is None or cls is None:
        raise ModelError("The face detector's outputs are not BlazeFace's; refetch the models.")
    return reg, cls


def _box_iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- face pose


@dataclass(frozen=True)
class FacePose:
    """A face measured closely, in photo pixels: the midpoint between the eyes, the eye line's
    angle (radians, positive when the subject's left eye is lower in the picture), and the
    chin's distance below the eye line along the face's own vertical."""

    eyes: tuple[float, float]
    roll: float
    chin: float


def _rotation(angle: float) -> F64:
    c, s = float(np.cos(angle)), float(np.sin(angle))
    return np.array([[c, -s], [s, c]], np.float64)


def face_pose(rgb: U8, face: FaceBox, model_dir: Path | None = None) -> FacePose:
    """Eyes, roll and chin of ``face`` from BlazeFace run again on crops around it.

    On the whole photo a face may be a few dozen of the detector's 128 input pixels, and its
    eyes come back several pixels off (8 degrees of roll on scikit-image's upright astronaut).
    Crops at three sizes around the face, then the same crops turned level, are averaged: the
    levelled crops give the eye line and the box's lower edge, which is the chin.
    """
    size = max(face.width, face.height)
    centre = np.array([(face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2], np.float64)
    eyes = np.array([face.right_eye, face.left_eye], np.float64)
    roll = _eye_roll(eyes)
    chin = face.y1 - float(eyes[:, 1].mean())
    for levelled in (False, *[True] * LEVEL_PASSES):
        angle = roll if levelled else 0.0
        rotate = _rotation(angle)
        readings: list[tuple[F64, F64, float]] = []
        for share in FACE_CROP_SHARES:
            side = share * size
            k = side / 128.0
            # crop pixels -> photo pixels
            matrix = np.empty((2, 3), np.float64)
            matrix[:, :2] = rotate * k
            matrix[:, 2] = centre - matrix[:, :2] @ np.array([64.0, 64.0])
            crop = _warp_crop(rgb, matrix, k)
            best = _nearest_centre(_detect(crop, model_dir, 0.5))
            if best is None:
                continue
            to_photo = best.keypoints[:2].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
            x0, y0, x1, y1 = best.box
            box_centre = matrix[:, :2] @ np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + matrix[:, 2]
            below = (y1 - float(best.keypoints[:2, 1].mean())) * k
            readings.append((to_photo, box_centre, below))
        if not readings:
            break
        eyes = np.mean([r[0] for r in readings], axis=0)
        centre = np.mean([r[1] for r in readings], axis=0)
        roll = _eye_roll(eyes)
        if levelled:
            chin = float(np.mean([r[2] for r in readings]))
    mid = eyes.mean(axis=0)
    return FacePose((float(mid[0]), float(mid[1])), roll, chin)


def _eye_roll(eyes: F64) -> float:
    dx, dy = eyes[1] - eyes[0]
    return float(np.arctan2(dy, dx))


def _warp_crop(rgb: U8, matrix: F64, k: float) -> U8:
    """The 128x128 crop ``matrix`` describes; a photo shrunk more than 2x is first reduced
    with an area filter, so the detector does not see aliasing."""
    if k <= 2.0:
        inverse = cv2.invertAffineTransform(matrix)
        return np.asarray(
            cv2.warpAffine(rgb, inverse, (128, 128), flags=cv2.INTER_LINEAR), np.uint8
        )
    # reduce the crop's bounding box first, then warp from the reduced copy
    corners = np.array([[0, 0, 1], [128, 0, 1], [0, 128, 1], [128, 128, 1]], np.float64) @ matrix.T
    h, w = rgb.shape[:2]
    x0, y0 = (max(0, int(v)) for v in corners.min(axis=0))
    x1, y1 = min(w, int(corners[:, 0].max()) + 1), min(h, int(corners[:, 1].max()) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((128, 128, 3), np.uint8)
    f = 2.0 / k
    part = cv2.resize(rgb[y0:y1, x0:x1], None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    local *= f
    inverse = cv2.invertAffineTransform(local)
    return np.asarray(cv2.warpAffine(part, inverse, (128, 128), flags=cv2.INTER_LINEAR), np.uint8)


def _nearest_centre(found: list[_Detection]) -> _Detection | None:
    """The detection whose box centre is nearest the crop's centre: the face the crop is on."""
    if not found:
        return None
    return min(
        found,
        key=lambda d: abs((d.box[0] + d.box[2]) / 2 - 64) + abs((d.box[1] + d.box[3]) / 2 - 64),
    )


# --------------------------------------------------------------------------- ID photo


def id_photo(
    image: Image.Image,
    size: IdSize | str = "1inch",
    background: IdBackground | str = "white",
    *,
    model: str = PORTRAIT_MODEL,
    model_dir: Path | None = None,
    providers: Sequence[str] | None = None,
) -> Image.Image:
    """A standard ID photo: RGB in sRGB (converted from the photo's colour profile), 295x413
    (1 inch) or 413x579 (2 inch), 300 dpi in ``info["dpi"]`` (``engine.io.encode_image``
    writes it to the file).

    The rule (docs/id-photos.md): the head, top of the hair to chin, is 64 % of the height
    (58-69 % allowed), its top 8 % below the upper edge (6-10 %), the eyes level and their
    midpoint on the vertical centre line; the background is a flat colour, the person's edge
    colours are estimated afresh so the old background does not show around the hair.
    Refuses, with ``ImageError``: ``no_face``, ``several_faces``, ``face_cut_off`` (the head
    or the shoulders reach the photo's edge inside the frame), ``face_too_small`` (it would
    need more than 2x enlarging) and ``unknown_foreground`` (the person cannot be separated).
    """
    if size not in ID_SIZES:
        raise OptionError("invalid_size", f"ID photo size must be one of {sorted(ID_SIZES)}.")
    if background not in ID_BACKGROUNDS:
        raise OptionError(
            "invalid_background", f"ID photo background must be one of {sorted(ID_BACKGROUNDS)}."
        )
    out_w, out_h = ID_SIZES[size]
    # The background is an sRGB value: the person is put in sRGB too, from the photo's profile.
    image = to_srgb(image)
    faces = detect_faces(image, model_dir=model_dir)
    if not faces:
        raise ImageError(
            "no_face",
            "No face was found. Upload a well-lit photo of one person facing the camera.",
            local="No face was found. Use a well-lit photo of one person facing the camera.",
        )
    face = max(faces, key=lambda f: f.width * f.height)
    if any(f is not face and f.width >= OTHER_FACE_SHARE * face.width for f in faces):
        raise ImageError(
            "several_faces",
            "The photo shows more than one face. Upload a photo of one person alone.",
            local="The photo shows more than one face. Use a photo of one person alone.",
        )
    rgb = np.asarray(image.convert("RGB"))
    pose = face_pose(rgb, face, model_dir)
    alpha = predict_portrait_alpha(image, model=model, model_dir=model_dir, providers=providers)
    crown = _crown_height(alpha, pose, max(face.width, face.height))
    head = crown + pose.chin
    scale = out_h * HEAD_HEIGHT_SHARE / head  # ID photo pixels per photo pixel
    if scale > MAX_ENLARGEMENT:
        need = int(np.ceil(out_h * HEAD_HEIGHT_SHARE / MAX_ENLARGEMENT))
        pixels = int(head)
        raise ImageError(
            "face_too_small",
            f"The face is too small for a sharp {size} ID photo: the head, top of the hair to "
            f"chin, is {pixels} pixels high and needs at least {need}. Upload a closer or "
            "larger photo.",
            local=f"The face is too small for a sharp {size} ID photo: the head, top of the "
            f"hair to chin, is {pixels} pixels high and needs at least {need}. Use a closer "
            "or larger photo.",
        )
    matrix = np.empty((2, 3), np.float64)
    matrix[:, :2] = _rotation(-pose.roll) * scale
    eye_row = out_h * CROWN_MARGIN_SHARE + crown * scale
    matrix[:, 2] = np.array([out_w / 2.0, eye_row]) - matrix[:, :2] @ np.array(pose.eyes)
    colour_layer, alpha_layer, inside = _place(rgb, alpha, matrix, scale, (out_w, out_h))
    if _cut_by_edge(alpha_layer, inside):
        raise ImageError(
            "face_cut_off",
            "The head or shoulders are cut off by the edge of the photo. Upload a photo with "
            "space above the head and the shoulders in the frame.",
            local="The head or shoulders are cut off by the edge of the photo. Use a photo "
            "with space above the head and the shoulders in the frame.",
        )
    foreground = estimate_foreground(colour_layer, alpha_layer)
    colour = np.asarray(ID_BACKGROUNDS[background], np.float32) / 255.0
    a = alpha_layer[..., None]
    out = foreground * a + colour * (1.0 - a)
    photo = Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    photo.info["dpi"] = (ID_DPI, ID_DPI)
    return photo


def _crown_height(alpha: F32, pose: FacePose, face_size: float) -> float:
    """How far the top of the head (hair included) is above the eye line, in photo pixels.

    The person's alpha is turned level with the eyes and read in a band 40 % of the face's
    width wide around its centre, from the eye line up; ``face_cut_off`` when the head runs
    into the photo's edge before it ends.
    """
    k = 128.0 / face_size  # frame pixels per photo pixel
    band, height = 51, int(CROWN_SEARCH * 128)
    to_photo = np.empty((2, 3), np.float64)
    to_photo[:, :2] = _rotation(pose.roll) / k
    to_photo[:, 2] = np.array(pose.eyes) - to_photo[:, :2] @ np.array([band / 2.0, height - 1.0])
    size = (band, height)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    frame = cv2.warpAffine(alpha, to_photo, size, flags=flags, borderValue=0.0)
    inside = cv2.warpAffine(
        np.ones_like(alpha), to_photo, size, flags=flags, borderMode=cv2.BORDER_CONSTANT
    )
    person = frame >= 0.5
    if float(person[-1].mean()) < 0.5:
        raise ImageError(
            "unknown_foreground",
            "The person could not be told apart from the background. Upload a photo taken "
            "against a plain wall.",
            local="The person could not be told apart from the background. Use a photo taken "
            "against a plain wall.",
        )
    tops: list[int] = []
    for column in range(band):
        gaps = np.nonzero(~person[:, column])[0]
        top = int(gaps[-1]) + 1 if gaps.size else 0
        # the head ends at the photo's edge, or is still going at the top of the search
        if top == 0 or float(inside[top - 1, column]) < 0.99:
            raise ImageError(
                "face_cut_off",
                "The top of the head is cut off by the edge of the photo. Upload a photo with "
                "space above the head.",
                local="The top of the head is cut off by the edge of the photo. Use a photo "
                "with space above the head.",
            )
        tops.append(top)
    return (height - 1 - float(np.percentile(tops, 10))) / k


def _place(
    rgb: U8, alpha: F32, matrix: F64, scale: float, size: tuple[int, int]
) -> tuple[F32, F32, F32]:
    """The photo's colours (0-1), its alpha, and how much of each pixel the photo covers, on
    the ID photo. Only the part of the photo the frame shows is read; it is shrunk with an
    area filter first when the ID photo is smaller, then turned and placed in one step."""
    out_w, out_h = size
    h, w = alpha.shape
    corners = np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    seen = corners @ inverse[:, :2].T + inverse[:, 2]
    x0 = int(np.clip(np.floor(seen[:, 0].min()) - 2, 0, w))
    y0 = int(np.clip(np.floor(seen[:, 1].min()) - 2, 0, h))
    x1 = int(np.clip(np.ceil(seen[:, 0].max()) + 3, 0, w))
    y1 = int(np.clip(np.ceil(seen[:, 1].max()) + 3, 0, h))
    empty = np.zeros((out_h, out_w), np.float32)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((out_h, out_w, 3), np.float32), empty, empty
    colours = rgb[y0:y1, x0:x1].astype(np.float32) / 255.0
    plane = alpha[y0:y1, x0:x1]
    f = min(1.0, scale)
    if f < 1.0:
        dsize = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
        colours = np.asarray(cv2.resize(colours, dsize, interpolation=cv2.INTER_AREA), np.float32)
        plane = np.asarray(cv2.resize(plane, dsize, interpolation=cv2.INTER_AREA), np.float32)
        fx, fy = dsize[0] / (x1 - x0), dsize[1] / (y1 - y0)
    else:
        fx = fy = 1.0
    local = matrix.copy()
    local[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    local[:, 0] /= fx
    local[:, 1] /= fy
    flags = cv2.INTER_LINEAR
    colour_layer = cv2.warpAffine(
        colours, local, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    alpha_layer = cv2.warpAffine(plane, local, size, flags=flags, borderValue=0.0)
    inside = cv2.warpAffine(np.ones_like(plane), local, size, flags=flags, borderValue=0.0)
    return (
        np.asarray(colour_layer, np.float32),
        np.clip(np.asarray(alpha_layer, np.float32), 0.0, 1.0),
        np.asarray(inside, np.float32),
    )


def _cut_by_edge(alpha: F32, inside: F32) -> bool:
    """Whether the person meets the photo's edge inside the frame (a straight cut through the
    hair or the shoulders that the flat background would show)."""
    outside = (inside < 0.5).astype(np.uint8)
    if not outside.any():
        return False
    near = cv2.dilate(outside, np.ones((5, 5), np.uint8)).astype(bool)
    touching = int(np.count_nonzero(near & (alpha >= 0.5)))
    return bool(touching >= EDGE_CONTACT_SHARE * alpha.shape[1])


def estimate_foreground(colours: F32, alpha: F32) -> F32:
    """The person's own colour at each pixel, for compositing on a new background.

    A photo's edge pixels mix the person with the old background; laid on a flat colour they
    show a fringe of it around hair and shoulders. Blur fusion (Forte and Pitié, "Approximate
    Fast Foreground Colour Estimation", ICIP 2021), a coarse pass then a fine one, takes the
    old background out where the alpha says it is mixed in.
    """
    a = alpha[..., None]
    fg, bg = colours, colours
    radius = max(8, colours.shape[0] // 10)
    for r in (radius, 3):
        fg, bg = _blur_fusion(colours, fg, bg, a, r)
    return np.clip(fg, 0.0, 1.0)


def _blur_fusion(image: F32, fg: F32, bg: F32, a: F32, r: int) -> tuple[F32, F32]:
    eps = np.float32(1e-5)
    blurred_a = matting.box_filter(a[..., 0], r)[..., None]
    blurred_fg = matting.box_filter(fg * a, r) / (blurred_a + eps)
    blurred_bg = matting.box_filter(bg * (1.0 - a), r) / (1.0 - blurred_a + eps)
    fg = blurred_fg + a * (image - a * blurred_fg - (1.0 - a) * blurred_bg)
    return np.clip(fg, 0.0, 1.0).astype(np.float32), blurred_bg.astype(np.float32)
