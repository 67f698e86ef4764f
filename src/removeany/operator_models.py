"""The operator's own models (REMOVEANY_CUSTOM_MODELS) and the model each cutout service runs
(REMOVEANY_CUTOUT_MODEL, REMOVEANY_PORTRAIT_MODEL): registered and checked once at start, by
the platform and by the offline commands alike."""

from __future__ import annotations

import json
from dataclasses import dataclass

from removeany.engine.background import DEFAULT_MODEL
from removeany.engine.errors import ModelError
from removeany.engine.models import default_model_dir, get_model, register_custom_models
from removeany.engine.portrait import PORTRAIT_MODEL
from removeany.infra.settings import Settings


@dataclass(frozen=True)
class ServiceModels:
    """Which registered model each cutout service runs: a built-in name or an operator's own."""

    cutout: str = DEFAULT_MODEL
    portrait: str = PORTRAIT_MODEL

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceModels:
        return cls(
            settings.cutout_model or DEFAULT_MODEL, settings.portrait_model or PORTRAIT_MODEL
        )

    @classmethod
    def run_by(cls, settings: Settings, *, runs_jobs: bool) -> list[tuple[str, str]]:
        """(setting, model name) for each model a process runs itself: a process that runs
        jobs both services' models; a web process without workers only the try-out's cutout
        model, and none when the try-out is off (REMOVEANY_TRIAL_PER_IP_PER_HOUR=0)."""
        models = cls.from_settings(settings)
        if runs_jobs:
            return [
                ("REMOVEANY_CUTOUT_MODEL", models.cutout),
                ("REMOVEANY_PORTRAIT_MODEL", models.portrait),
            ]
        if settings.trial_per_ip_per_hour == 0:
            return []
        return [("REMOVEANY_CUTOUT_MODEL", models.cutout)]


def register_operator_models(settings: Settings) -> None:
    """Register the operator's own models and check that the services' model names exist, so
    that a wrong hash or a typo stops the platform at start rather than failing every job."""
    if settings.custom_models is not None:
        try:
            entries = json.loads(settings.custom_models.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"REMOVEANY_CUSTOM_MODELS: cannot read {settings.custom_models} as JSON ({exc})."
            ) from exc
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ModelError(
                f"REMOVEANY_CUSTOM_MODELS: {settings.custom_models} must hold a JSON list of "
                "objects with name, file, sha256 and input_size."
            )
        register_custom_models(entries, settings.model_dir or default_model_dir())
    models = ServiceModels.from_settings(settings)
    for setting, name in (
        ("REMOVEANY_CUTOUT_MODEL", models.cutout),
        ("REMOVEANY_PORTRAIT_MODEL", models.portrait),
    ):
        try:
            get_model(name)
        except ModelError as exc:
            raise ModelError(f"{setting}: {exc.message}") from exc
