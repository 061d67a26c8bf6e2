"""LightGBM backbone: one gradient-boosted regressor per head on the flat feature row (DESIGN section 3).

Shared names map to LightGBM as ``max_steps -> n_estimators``, ``learning_rate``, ``hidden_size -> num_leaves``
and ``random_seed -> seed``; ``batch_size`` has no effect. Deterministic: ``deterministic=True``,
``force_col_wise=True`` and a fixed ``num_threads``. NaN are handled natively; ``symbol_code`` is a column.
The heads share one binned ``lgb.Dataset`` (binning does not depend on the label; it took a fifth of a fit when
each head binned the same rows again); each head is a ``lgb.Booster`` trained on it with its own label.
"""

from __future__ import annotations

from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from quantmm_assets.models.flat_base import FlatBackbone
from quantmm_assets.models.protocol import COMMON_DEFAULTS

LGBM_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "hidden_size": 31,
    "learning_rate": 0.05,
    "max_steps": 200,
    "num_threads": 1,
    "min_child_samples": 50,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


class LightGBMBackbone(FlatBackbone):
    """Gradient-boosted trees, one booster per head with shared settings and one binned dataset."""

    name: ClassVar[str] = "lightgbm"
    defaults: ClassVar[dict[str, Any]] = LGBM_DEFAULTS

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.max_steps) < 1 or int(self.hidden_size) < 2 or not float(self.learning_rate) > 0:
            raise ValueError(
                f"lightgbm: needs max_steps >= 1, hidden_size (num_leaves) >= 2, learning_rate > 0; got "
                f"{self.max_steps}, {self.hidden_size}, {self.learning_rate}"
            )

    def _train_params(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.hidden_size),
            "min_child_samples": int(self.min_child_samples),
            "subsample": float(self.subsample),
            "subsample_freq": 1 if float(self.subsample) < 1 else 0,
            "colsample_bytree": float(self.colsample_bytree),
            "reg_lambda": float(self.reg_lambda),
            "seed": int(self.random_seed),
            "num_threads": int(self.num_threads),
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    def _fit_regressor(self, x: np.ndarray, symbol_code: np.ndarray, y: np.ndarray) -> list[lgb.Booster]:
        params = self._train_params()
        dataset = lgb.Dataset(_design(x, symbol_code), label=y[:, 0], params=params, free_raw_data=False)
        heads = []
        for k in range(y.shape[1]):
            dataset.set_label(y[:, k])
            heads.append(lgb.train(params, dataset, num_boost_round=int(self.max_steps)))
        return heads

    def _predict_regressor(self, model: list[lgb.Booster], x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
        design = _design(x, symbol_code)
        return np.column_stack([head.predict(design) for head in model])


def _design(x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
    return np.column_stack([x.astype(np.float64), symbol_code.astype(np.float64)])
