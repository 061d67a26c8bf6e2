"""The one composition root: every asset, check, job, schedule and resource (workspace.yaml names it)."""

from __future__ import annotations

import dagster as dg

from quantmm_assets.defs.active_models import CANDIDATE_ASSETS
from quantmm_assets.defs.feature_assets import FAMILY_ASSETS
from quantmm_assets.defs.matrix_assets import MATRIX_ASSETS
from quantmm_assets.defs.raw_assets import RAW_ASSETS
from quantmm_assets.defs.readiness import readiness_audit
from quantmm_assets.defs.report_assets import MODEL_ASSETS
from quantmm_assets.defs.text_assets import TEXT_ASSETS
from quantmm_jobs.feature_schedules import FEATURE_JOBS, FEATURE_SCHEDULES
from quantmm_jobs.finetune_sensor import candidates_sensor, finetune_sensor
from quantmm_jobs.model_jobs import MODEL_JOBS, MODEL_SCHEDULES
from quantmm_jobs.paper_jobs import PAPER_JOBS, PAPER_SCHEDULES
from quantmm_jobs.schedules import JOBS, SCHEDULES
from quantmm_jobs.sensors import MODEL_SENSORS
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings

ASSETS = [*RAW_ASSETS, readiness_audit, *FAMILY_ASSETS, *TEXT_ASSETS, *MATRIX_ASSETS, *MODEL_ASSETS, *CANDIDATE_ASSETS]


def build_definitions(source: str | None = None, bundle_dir: str | None = None) -> dg.Definitions:
    """Definitions with the environment's resources (or an explicit source, e.g. a bundle import)."""
    return dg.Definitions(
        assets=ASSETS,
        jobs=[*JOBS, *FEATURE_JOBS, *MODEL_JOBS, *PAPER_JOBS],
        schedules=[*SCHEDULES, *FEATURE_SCHEDULES, *MODEL_SCHEDULES, *PAPER_SCHEDULES],
        sensors=[*MODEL_SENSORS, finetune_sensor, candidates_sensor],
        resources=build_resources(get_settings(), source, bundle_dir),
    )


defs = build_definitions()
