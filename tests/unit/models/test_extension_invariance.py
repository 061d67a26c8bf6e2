"""Adding data must not move earlier results: the folds both ranges share give identical out-of-sample predictions."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from synthetic_models import SYMBOL_NAMES, synthetic_model_data

from quantmm_assets.models.experiment import walk_forward

SHORT, LONG = 120, 135  # the longer range adds a test window; SHORT is the fusion honesty world (built once a run)
PARAMS = {
    "lightgbm": {"max_steps": 60, "hidden_size": 7, "min_child_samples": 100, "random_seed": 3},
    "tsmixer": {"max_steps": 40, "hidden_size": 16, "ff_dim": 16, "input_size": 8, "eval_every": 20, "random_seed": 3},
}


# TSMixer's no_text retrain is its full fit's y_base bit for bit (test_torch_backbones), compared here in "full"
VARIANTS = {"lightgbm": ("full", "no_text"), "tsmixer": ("full",)}


@pytest.mark.parametrize("backbone", sorted(PARAMS))
def test_extending_the_range_keeps_earlier_folds(backbone: str) -> None:
    runs = {}
    for days in (SHORT, LONG):
        data, folds = synthetic_model_data(days)
        runs[days] = walk_forward(
            backbone, [PARAMS[backbone]], data, folds, SYMBOL_NAMES, VARIANTS[backbone], log=lambda _: None
        ).predictions
    shared = sorted(set(runs[SHORT]["fold"]) & set(runs[LONG]["fold"]))
    assert len(shared) == 2, (set(runs[SHORT]["fold"]), set(runs[LONG]["fold"]))
    assert set(runs[LONG]["fold"]) - set(runs[SHORT]["fold"]), "the longer range must add a fold"
    keys = ["variant", "fold", "symbol", "ts_event", "horizon"]
    for fold in shared:
        short = runs[SHORT].filter(pl.col("fold") == fold).sort(keys)
        long = runs[LONG].filter(pl.col("fold") == fold).sort(keys)
        assert short.height > 1000
        assert_frame_equal(short, long, check_exact=True)
