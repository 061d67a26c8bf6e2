"""Jobs of the model layer: training (the retraining sensors target it)."""

from __future__ import annotations

import dagster as dg

# The assets one training run materializes, in one place: the candidate assets join here (one edit).
TRAIN_ASSETS = ("trained_backbones", "backbone_report")

train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets(*TRAIN_ASSETS),
    description="Train one backbone (a trained_backbones partition) through the walk-forward protocol, then rank "
    "every materialized backbone in backbone_report. The retraining sensors request one run per backbone.",
    tags={"quantmm/layer": "models"},
)

MODEL_JOBS = [train_job]
