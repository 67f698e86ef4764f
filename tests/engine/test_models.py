"""Model registry: install-time fetch, checksum refusal, custom models, cached sessions."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from removeany.engine.background import preprocess, run_model
from removeany.engine.errors import ModelError
from removeany.engine.models import (
    MODEL_FILE_MODE,
    U2NETP,
    U2NETP_INT8,
    Int8Recipe,
    available_models,
    fetch_model,
    load_session,
    register_custom_models,
)
from removeany.engine.quantize import quantize_int8
from tests.conftest import eval_image


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_default_model_is_fetched_and_verified(model_dir: Path) -> None:
    path = model_dir / U2NETP.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == U2NETP.sha256
    before = path.stat().st_mtime_ns
    path.chmod(0o600)  # as releases before 0644 left them
    assert fetch_model(U2NETP, model_dir) == path  # idempotent: nothing rewritten
    assert path.stat().st_mtime_ns == before
    assert path.stat().st_mode & 0o777 == MODEL_FILE_MODE
    assert "u2netp" in available_models()


def test_fetch_replaces_a_damaged_file(tmp_path: Path, model_dir: Path) -> None:
    target = tmp_path / U2NETP.filename
    shutil.copyfile(model_dir / U2NETP.filename, target)
    _flip_byte(target)
    assert fetch_model(U2NETP, tmp_path) == target
    assert hashlib.sha256(target.read_bytes()).hexdigest() == U2NETP.sha256
    # readable by the service's user, whoever fetched it
    assert target.stat().st_mode & 0o777 == MODEL_FILE_MODE == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [U2NETP.filename]  # no temp files left


def test_mismatched_weights_are_refused_with_a_clear_message(
    tmp_path: Path, model_dir: Path
) -> None:
    target = tmp_path / U2NETP.filename
    shutil.copyfile(model_dir / U2NETP.filename, target)
    _flip_byte(target)
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    with pytest.raises(ModelError) as caught:
        load_session("u2netp", tmp_path)
    message = caught.value.message
    assert str(target) in message
    assert U2NETP.sha256 in message and actual in message
    assert "removeany models fetch" in message


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"u2netp\.onnx is missing.*removeany models fetch"):
        load_session("u2netp", tmp_path)


def test_int8_model_is_checked_against_the_hash_recorded_at_install(
    tmp_path: Path, model_dir: Path
) -> None:
    recorded = (model_dir / f"{U2NETP_INT8.filename}.sha256").read_text().strip()
    path = model_dir / U2NETP_INT8.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    assert load_session("u2netp-int8", model_dir) is load_session("u2netp-int8", model_dir)

    for name in (U2NETP_INT8.filename, f"{U2NETP_INT8.filename}.sha256"):
        shutil.copyfile(model_dir / name, tmp_path / name)
    _flip_byte(tmp_path / U2NETP_INT8.filename)
    with pytest.raises(ModelError, match="does not match its expected checksum"):
        load_session("u2netp-int8", tmp_path)
    (tmp_path / f"{U2NETP_INT8.filename}.sha256").unlink()
    with pytest.raises(ModelError, match=r"u2netp-int8\.onnx is missing.*removeany models fetch"):
        load_session("u2netp-int8", tmp_path)


def _masks(model: Path, photos: list[Path]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    masks = []
    for photo in photos:
        with Image.open(photo) as image:
            masks.append(run_model(session, preprocess(image, U2NETP)) >= 0.5)
    return masks


def test_int8_quantisation_keeps_the_cutouts_only_with_its_float_nodes(
    tmp_path: Path, model_dir: Path
) -> None:
    """The recipe's calibration and float nodes matter: quantising every node loses subjects."""
    recipe = U2NETP_INT8.source
    assert isinstance(recipe, Int8Recipe)
    calibration = [eval_image("clean", name) for name in ("cbsd68_101085", "cbsd68_102061")]
    photos = [eval_image("object", f"alphamatting_GT0{i}") for i in range(1, 7)]
    reference = _masks(model_dir / U2NETP.filename, photos)
    agreement = {}
    for label, keep_float in (("recipe", recipe.keep_float), ("everything", ())):
        target = tmp_path / f"{label}.onnx"
        base = model_dir / U2NETP.filename
        quantize_int8(base, target, spec=U2NETP, photos=calibration, keep_float=keep_float)
        assert target.stat().st_size < base.stat().st_size / 2
        masks = _masks(target, photos)
        agreement[label] = [
            float((a & b).sum() / max((a | b).sum(), 1))
            for a, b in zip(masks, reference, strict=True)
        ]
    assert min(agreement["recipe"]) >= 0.93, agreement
    assert np.mean(agreement["everything"]) < np.mean(agreement["recipe"]) - 0.1, agreement


def test_unknown_model_name_lists_the_available_ones(model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"available models: .*u2netp"):
        load_session("no-such-model", model_dir)


def test_sessions_are_shared(model_dir: Path) -> None:
    first = load_session("u2netp", model_dir)
    assert load_session("u2netp", model_dir) is first
    assert "CPUExecutionProvider" in first.get_providers()


def _u2netp_entry(tmp_path: Path, model_dir: Path, name: str, **extra: object) -> dict[str, object]:
    """A custom-model entry for a copy of u2netp's real file in ``tmp_path``."""
    shutil.copyfile(model_dir / U2NETP.filename, tmp_path / "mine.onnx")
    entry: dict[str, object] = {"name": name, "file": "mine.onnx", "sha256": U2NETP.sha256}
    return {**entry, "input_size": [320, 320], **extra}


def test_custom_models_are_registered_and_verified(tmp_path: Path, model_dir: Path) -> None:
    entry = _u2netp_entry(tmp_path, model_dir, "custom-u2netp")
    (spec,) = register_custom_models([entry], tmp_path)
    assert spec.mean == U2NETP.mean and spec.input_size == (320, 320)
    assert "custom-u2netp" in available_models()
    assert load_session("custom-u2netp", tmp_path) is not None

    with pytest.raises(ModelError, match="does not match its expected checksum"):
        register_custom_models([{**entry, "name": "bad", "sha256": "0" * 64}], tmp_path)
    with pytest.raises(ModelError, match="missing"):
        register_custom_models([{**entry, "name": "gone", "file": "gone.onnx"}], tmp_path)
    with pytest.raises(ModelError, match="built-in"):
        register_custom_models([{**entry, "name": "u2netp"}], tmp_path)
    with pytest.raises(ModelError, match="input_size"):
        register_custom_models([{**entry, "name": "odd", "input_size": [320]}], tmp_path)
    assert "bad" not in available_models()


def test_a_logits_model_is_read_through_a_sigmoid(tmp_path: Path, model_dir: Path) -> None:
    """BiRefNet's export gives logits: with "output": "logits" the engine turns them into
    probabilities (shown here on u2netp's real output, read both ways)."""
    entry = _u2netp_entry(tmp_path, model_dir, "u2netp-logits", output="logits")
    (spec,) = register_custom_models([entry], tmp_path)
    assert spec.logits and not U2NETP.logits
    session = load_session("u2netp-logits", tmp_path)
    with Image.open(eval_image("object", "davis16_dog_00030")) as image:
        tensor = preprocess(image.convert("RGB"), spec)
    raw = run_model(session, tensor)
    read = run_model(session, tensor, logits=spec.logits)
    np.testing.assert_allclose(read, 1.0 / (1.0 + np.exp(-raw)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="'output' must be"):
        register_custom_models([{**entry, "name": "odd-output", "output": "mask"}], tmp_path)
