"""The Ridge pipeline's affine map (models/linear_design.py) gives the pipeline's numbers, and is refused when not."""

from __future__ import annotations

import numpy as np
import pytest

from quantmm_assets.models.linear_design import affine_of
from quantmm_assets.models.ridge import RidgeBackbone, _design


def _fitted(rng: np.random.Generator):
    x = rng.normal(size=(400, 6))
    x[rng.random(400) < 0.2, 1] = np.nan  # feature 1 has NaN in train: it gets an indicator
    x[:, 4] = 3.0  # a constant feature: zero variance, scale 1
    codes = rng.integers(0, 3, 400)
    y = np.column_stack([x[:, 0] * 0.5 + codes * 0.1, np.nan_to_num(x[:, 1])]) + rng.normal(0, 0.01, (400, 2))
    model = RidgeBackbone(alpha=3.0)._fit_regressor(x, codes, y)
    return model


def test_the_affine_map_reproduces_the_pipeline_on_missing_values_and_unknown_symbols():
    rng = np.random.default_rng(5)
    model = _fitted(rng)
    x = rng.normal(size=(50, 6))
    x[::3, 1] = np.nan  # a feature with an indicator
    x[::4, 2] = np.nan  # a feature that had no NaN in train: imputed, no indicator
    codes = np.array([0, 1, 2, 7] * 12 + [0, 1])  # 7 was never seen: an all-zero one-hot
    affine = affine_of(model, x, codes, _design(x, codes))
    assert affine is not None and list(affine.indicator) == [1]
    expected = np.asarray(model.predict(_design(x, codes)))
    np.testing.assert_allclose(affine.predict(x, codes), expected, rtol=1e-12, atol=1e-14)
    one = affine.predict(x[5:6], codes[5:6])
    np.testing.assert_allclose(one, expected[5:6], rtol=1e-12, atol=1e-14)


def test_a_map_that_does_not_reproduce_the_pipeline_is_refused():
    rng = np.random.default_rng(6)
    model = _fitted(rng)
    x, codes = rng.normal(size=(10, 6)), np.zeros(10, dtype=int)
    affine = affine_of(model, x, codes, _design(x, codes))
    assert affine is not None
    other = affine_of(model, x, codes, _design(x, codes) + 1.0)  # the pipeline sees other rows than the map
    assert other is None
    assert affine_of(object(), x, codes, _design(x, codes)) is None  # not the pipeline ridge.py fits


def test_the_backbone_predicts_the_same_through_either_path():
    rng = np.random.default_rng(7)
    backbone = RidgeBackbone(alpha=3.0)
    model = _fitted(rng)
    x, codes = rng.normal(size=(30, 6)), rng.integers(0, 3, 30)
    slow = backbone._predict_regressor(model, x, codes)  # first call: builds and checks the map, sklearn answers
    assert model.quantmm_affine_ is not None
    fast = backbone._predict_regressor(model, x, codes)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-14)
    model.quantmm_affine_ = None  # a refused map keeps the sklearn path
    assert backbone._predict_regressor(model, x, codes) == pytest.approx(slow)
