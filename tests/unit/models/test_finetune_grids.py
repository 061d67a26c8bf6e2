"""The fine-tune attempts' keys and grids (models.finetune)."""

import pytest

from quantmm_assets.models.finetune import MAX_ATTEMPTS, all_keys, attempt_key, grid_for_key, parse_key
from quantmm_assets.models.grids import grid_for
from quantmm_assets.models.registry import BACKBONES


def test_every_backbone_has_at_most_two_attempts_whose_grids_build_valid_backbones():
    assert MAX_ATTEMPTS == 2 and len(all_keys()) == 3 * len(BACKBONES)
    for key in all_keys():
        backbone, attempt = parse_key(key)
        grid = grid_for_key(key, seed=3)
        assert grid and all(g["random_seed"] == 3 for g in grid)
        for params in grid:
            BACKBONES[backbone](**params)  # unknown parameters raise
        if attempt == 0:
            assert grid == grid_for(backbone, None, 3)
        else:
            assert grid != grid_for(backbone, None, 3)  # an attempt tries something else


def test_keys_round_trip_and_bad_ones_are_refused():
    assert attempt_key("lightgbm", 1) == "lightgbm~ft1" and parse_key("lightgbm~ft2") == ("lightgbm", 2)
    assert parse_key("ridge") == ("ridge", 0)
    with pytest.raises(ValueError, match="attempts are 1..2"):
        parse_key("ridge~ft3")
    with pytest.raises(ValueError, match="unknown backbone"):
        attempt_key("xgboost", 1)


def test_overrides_reach_the_attempts():
    (grid,) = grid_for_key("tsmixer~ft1", {"max_steps": 60})
    assert grid["max_steps"] == 60 and grid["input_size"] == 48 and grid["text_l2"] == 10.0
