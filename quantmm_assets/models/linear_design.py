"""The fitted Ridge pipeline as one affine map in numpy: the same numbers without sklearn's per-call checks.

The pipeline (``ridge.py``) is: median imputation with a missing indicator per feature that had NaN in train,
standardization of those columns, a one-hot of ``symbol_code`` (unknown codes: all zeros), and ``Ridge``. Every step
is affine given the fitted statistics, so ``predict(x) = design(x) @ coef.T + intercept`` with ``design`` built from
the imputer's statistics, the scaler's mean and scale and the encoder's categories. A one-row prediction through
sklearn spends milliseconds in input validation; this map spends microseconds (serving predicts one row per request).

:func:`affine_of` builds the map and checks it against the pipeline on the rows at hand; a pipeline it does not
recognise, or a mismatch beyond floating-point rounding, gives None (the caller keeps the sklearn path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RTOL, ATOL = 1e-9, 1e-12


@dataclass(frozen=True)
class AffineRidge:
    """``y = standardized design @ coef.T + intercept`` of a fitted imputer/scaler/one-hot/Ridge pipeline."""

    fill: np.ndarray  # (f,) the imputer's medians
    indicator: np.ndarray  # (k,) the features with a missing indicator
    mean: np.ndarray  # (f + k,)
    scale: np.ndarray  # (f + k,)
    categories: np.ndarray  # symbol codes of the one-hot
    coef: np.ndarray  # (targets, f + k + c)
    intercept: np.ndarray  # (targets,)

    def predict(self, x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
        """Return (n, targets) predictions of the rows ``x`` (n, f) of symbols ``symbol_code`` (n,)."""
        x = np.asarray(x, dtype=np.float64)
        missing = np.isnan(x)
        filled = np.where(missing, self.fill, x)
        numeric = np.concatenate([filled, missing[:, self.indicator].astype(np.float64)], axis=1)
        numeric = (numeric - self.mean) / self.scale
        onehot = (np.asarray(symbol_code, dtype=np.float64)[:, None] == self.categories[None, :]).astype(np.float64)
        return np.concatenate([numeric, onehot], axis=1) @ self.coef.T + self.intercept


def affine_of(pipeline, x: np.ndarray, symbol_code: np.ndarray, design: np.ndarray) -> AffineRidge | None:
    """The pipeline as an :class:`AffineRidge` when it is the one ``ridge.py`` fits and the map reproduces it on
    ``design`` (the pipeline's own input for these rows); else None."""
    try:
        transformer = pipeline.named_steps["design"]
        ridge = pipeline.named_steps["ridge"]
        numeric = transformer.named_transformers_["num"]
        imputer, scaler = numeric.steps[0][1], numeric.steps[1][1]
        encoder = transformer.named_transformers_["sym"]
        indicator = imputer.indicator_.features_ if imputer.indicator_ is not None else np.zeros(0, dtype=np.int64)
        scale = scaler.scale_ if scaler.scale_ is not None else np.ones_like(scaler.mean_)
        affine = AffineRidge(
            fill=np.asarray(imputer.statistics_, dtype=np.float64),
            indicator=np.asarray(indicator, dtype=np.int64),
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=np.asarray(scale, dtype=np.float64),
            categories=np.asarray(encoder.categories_[0], dtype=np.float64),
            coef=np.atleast_2d(np.asarray(ridge.coef_, dtype=np.float64)),
            intercept=np.atleast_1d(np.asarray(ridge.intercept_, dtype=np.float64)),
        )
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    try:
        fast = affine.predict(x, symbol_code)
        slow = np.asarray(pipeline.predict(design)).reshape(len(x), -1)
    except ValueError:
        return None
    return affine if fast.shape == slow.shape and np.allclose(fast, slow, rtol=RTOL, atol=ATOL) else None
