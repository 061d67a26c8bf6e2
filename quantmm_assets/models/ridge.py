"""Ridge backbone: sklearn ``Ridge`` on the flat feature row (DESIGN section 3).

Inside the fitted pipeline (train rows only): NaN -> train median plus a missing indicator per feature that has
NaN in train, standardization, and a one-hot of ``symbol_code``. Closed form: ``hidden_size``,
``learning_rate``, ``max_steps`` and ``batch_size`` are accepted (shared names) but have no effect.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from quantmm_assets.models.flat_base import FlatBackbone
from quantmm_assets.models.linear_design import affine_of
from quantmm_assets.models.protocol import COMMON_DEFAULTS


class RidgeBackbone(FlatBackbone):
    """Multi-output Ridge regression on standardized flat features (``alpha`` = L2 strength)."""

    name: ClassVar[str] = "ridge"
    defaults: ClassVar[dict[str, Any]] = {**COMMON_DEFAULTS, "alpha": 10.0}

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.alpha) > 0:
            raise ValueError(f"ridge: alpha must be > 0, got {self.alpha}")

    def _fit_regressor(self, x: np.ndarray, symbol_code: np.ndarray, y: np.ndarray) -> Pipeline:
        f = x.shape[1]
        numeric = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
        )
        design = ColumnTransformer(
            [
                ("num", numeric, list(range(f))),
                ("sym", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [f]),
            ]
        )
        model = Pipeline([("design", design), ("ridge", Ridge(alpha=float(self.alpha)))])
        return model.fit(_design(x, symbol_code), y)

    def _predict_regressor(self, model: Pipeline, x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
        """The pipeline's prediction; through its affine map (``linear_design.py``) once that reproduced it."""
        fast = getattr(model, "quantmm_affine_", None)
        if fast is not None:
            return fast.predict(x, symbol_code)
        design = _design(x, symbol_code)
        if not hasattr(model, "quantmm_affine_"):  # first call: build the map, checked on these rows
            model.quantmm_affine_ = affine_of(model, x, symbol_code, design)
        return np.asarray(model.predict(design)).reshape(len(x), -1)


def _design(x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
    return np.column_stack([x.astype(np.float64), symbol_code.astype(np.float64)])
