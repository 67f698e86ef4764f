"""Operator models: REMOVEANY_CUSTOM_MODELS registers an operator's own ONNX file by path and
hash, REMOVEANY_CUTOUT_MODEL / REMOVEANY_PORTRAIT_MODEL route the services to it, and a wrong
hash or an unknown name stops the platform at start with the reason."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image
from typer.testing import CliRunner

from removeany.app import create_app
from removeany.cli import app as cli_app
from removeany.context import build_context
from removeany.engine.background import remove_background
from removeany.engine.errors import ModelError
from removeany.engine.models import U2NET
from removeany.infra.settings import Settings
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user

# U2-Net full under an operator's name: a real, stronger model than the object path's u2netp,
# so the result shows which of the two ran.
OPERATOR_MODEL = "operator-u2net"


def _models_file(tmp_path: Path, model_dir: Path, sha256: str = U2NET.sha256) -> Path:
    path = tmp_path / "models.json"
    entry = {
        "name": OPERATOR_MODEL,
        "file": str(model_dir / U2NET.filename),
        "sha256": sha256,
        "input_size": [320, 320],
    }
    path.write_text(json.dumps([entry]), encoding="utf-8")
    return path


def _alpha(data: bytes) -> NDArray[np.int16]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.getchannel("A"), np.int16)


def _engine_alpha(photo: Path, model: str, model_dir: Path) -> NDArray[np.int16]:
    with Image.open(photo) as image:
        cut = remove_background(image, model=model, model_dir=model_dir)
    return np.asarray(cut.getchannel("A"), np.int16)


@pytest.fixture
def operator_client(
    settings: Settings, tmp_path: Path, model_dir: Path
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    configured = settings.model_copy(
        update={
            "custom_models": _models_file(tmp_path, model_dir),
            "cutout_model": OPERATOR_MODEL,
        }
    )
    ctx = build_context(configured)
    try:
        headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=5))}
        with TestClient(create_app(ctx)) as client:
            yield client, headers
    finally:
        ctx.close()


def test_the_cutout_service_runs_the_operators_model(
    operator_client: tuple[TestClient, dict[str, str]], model_dir: Path
) -> None:
    client, headers = operator_client
    photo = eval_image("object", "davis16_dog_00030")
    response = client.post(
        "/api/v1/jobs",
        headers=headers,
        data={"wait": "true", "service": "remove_background"},
        files={"file": ("dog.jpg", photo.read_bytes())},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "succeeded", job
    served = _alpha(client.get(job["result_url"], headers=headers).content)

    full = _engine_alpha(photo, "u2net", model_dir)
    small = _engine_alpha(photo, "u2netp", model_dir)
    assert served.shape == full.shape
    assert int(np.abs(served - full).max()) <= 1  # the operator's file is U2-Net full ...
    # ... not the default u2netp, whose cutout of this dog differs by more than a quarter of
    # the alpha range on 596 pixels
    assert int((np.abs(served - small) > 64).sum()) > 300


def test_offline_command_follows_the_settings(tmp_path: Path, model_dir: Path) -> None:
    photo = eval_image("object", "davis16_dog_00030")
    out = tmp_path / "dog.png"
    env = {
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_CUSTOM_MODELS": str(_models_file(tmp_path, model_dir)),
        "REMOVEANY_CUTOUT_MODEL": OPERATOR_MODEL,
    }
    result = CliRunner().invoke(cli_app, ["remove-background", str(photo), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    full = _engine_alpha(photo, "u2net", model_dir)
    assert int(np.abs(_alpha(out.read_bytes()) - full).max()) <= 1


def test_a_wrong_hash_stops_the_platform_at_start(
    settings: Settings, tmp_path: Path, model_dir: Path
) -> None:
    bad = _models_file(tmp_path, model_dir, sha256="0" * 64)
    with pytest.raises(ModelError, match="does not match its expected checksum"):
        build_context(settings.model_copy(update={"custom_models": bad}))

    env = {
        "REMOVEANY_DATA_DIR": str(tmp_path / "data"),
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_CUSTOM_MODELS": str(bad),
    }
    result = CliRunner().invoke(cli_app, ["serve"], env=env)
    assert result.exit_code == 2
    assert "error:" in result.stderr and "checksum" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_model_name_is_refused_with_the_setting_named(
    settings: Settings, tmp_path: Path, model_dir: Path
) -> None:
    with pytest.raises(ModelError, match="REMOVEANY_PORTRAIT_MODEL: Unknown model 'birefnet'"):
        build_context(settings.model_copy(update={"portrait_model": "birefnet"}))

    photo = eval_image("object", "davis16_dog_00030")
    env = {"REMOVEANY_MODEL_DIR": str(model_dir), "REMOVEANY_CUTOUT_MODEL": "birefnet"}
    result = CliRunner().invoke(
        cli_app, ["remove-background", str(photo), "-o", str(tmp_path / "x.png")], env=env
    )
    assert result.exit_code == 2
    assert "REMOVEANY_CUTOUT_MODEL: Unknown model 'birefnet'" in result.stderr
    assert not (tmp_path / "x.png").exists()

    notes = tmp_path / "models.json"
    notes.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=r"cannot read .* as JSON"):
        build_context(settings.model_copy(update={"custom_models": notes}))


def test_models_list_says_what_is_installed_and_what_runs_it(
    tmp_path: Path, model_dir: Path
) -> None:
    env = {
        "REMOVEANY_MODEL_DIR": str(model_dir),
        "REMOVEANY_CUSTOM_MODELS": str(_models_file(tmp_path, model_dir)),
        "REMOVEANY_CUTOUT_MODEL": OPERATOR_MODEL,
    }
    result = CliRunner().invoke(cli_app, ["models", "list"], env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert rows[OPERATOR_MODEL][1] == "ok" and "remove_background" in rows[OPERATOR_MODEL]
    assert rows["u2netp"][1] == "ok" and "remove_background" not in rows["u2netp"]
    assert "portrait," in rows["u2net-int8"] and rows["u2net-int8"][1] == "ok"

    # A model directory with a damaged u2netp and nothing else.
    damaged = tmp_path / "models"
    damaged.mkdir()
    (damaged / "u2netp.onnx").write_bytes((model_dir / "u2netp.onnx").read_bytes()[:4096])
    result = CliRunner().invoke(
        cli_app, ["models", "list"], env={"REMOVEANY_MODEL_DIR": str(damaged)}
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert rows["u2netp"][1] == "ALTERED"
    assert rows["u2net"][1] == "missing" and rows["ppocr-det"][1] == "missing"
    assert rows["u2netp-int8"][1] == "missing", "no recorded hash, no int8 model"
