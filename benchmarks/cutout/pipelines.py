"""Pipelines the benchmark can score: name -> (fn(rgb uint8 HxWx3) -> alpha float32 HxW, doc)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Pipeline = Callable[[NDArray[np.uint8]], NDArray[np.float32]]
PIPELINES: dict[str, tuple[Pipeline, str]] = {}


def pipeline(name: str, doc: str) -> Callable[[Pipeline], Pipeline]:
    def deco(fn: Pipeline) -> Pipeline:
        PIPELINES[name] = (fn, doc)
        return fn

    return deco


def get_pipeline(name: str) -> Pipeline:
    try:
        return PIPELINES[name][0]
    except KeyError:
        raise SystemExit(f"unknown pipeline {name!r}; try --list") from None


def _u2netp_path() -> Path:
    env = os.environ.get("REMOVEANY_U2NETP")
    if env:
        return Path(env)
    from removeany.engine import models

    return models.fetch_model(models.get_model("u2netp"))


@cache
def _session():  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    return ort.InferenceSession(str(_u2netp_path()), providers=["CPUExecutionProvider"])


@pipeline("u2netp-plain", "rembg-equivalent: LANCZOS 320, u2netp, min-max stretch, LANCZOS up")
def u2netp_plain(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    im = Image.fromarray(rgb)
    x = np.asarray(im.resize((320, 320), Image.Resampling.LANCZOS), np.float32)
    x = x / max(float(x.max()), 1e-6)
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32
    )
    s = _session()
    pred = s.run(None, {s.get_inputs()[0].name: x.transpose(2, 0, 1)[None].astype(np.float32)})
    p = pred[0][0, 0]
    p = (p - p.min()) / max(float(p.max() - p.min()), 1e-6)
    m = Image.fromarray((p * 255).astype(np.uint8)).resize(im.size, Image.Resampling.LANCZOS)
    return np.asarray(m, np.float32) / 255.0


@pipeline("engine", "removeany.engine.background.predict_alpha as shipped")
def engine(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    from removeany.engine.background import predict_alpha

    return np.asarray(predict_alpha(Image.fromarray(rgb)), np.float32)


@pipeline("portrait", "removeany.engine.portrait.predict_portrait_alpha (crop pass + refine)")
def portrait(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    from removeany.engine.portrait import predict_portrait_alpha

    return predict_portrait_alpha(Image.fromarray(rgb))


@pipeline("engine-u2net", "predict_alpha with U2-Net full (the `u2net` model) instead of u2netp")
def engine_u2net(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    from removeany.engine.background import predict_alpha

    return np.asarray(predict_alpha(Image.fromarray(rgb), model="u2net"), np.float32)


@pipeline("portrait-u2net", "predict_portrait_alpha with U2-Net full (crop pass + refine)")
def portrait_u2net(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    from removeany.engine.portrait import predict_portrait_alpha

    return predict_portrait_alpha(Image.fromarray(rgb), model="u2net")


from benchmarks.cutout import variants  # noqa: E402, F401  (registers the step pipelines)
