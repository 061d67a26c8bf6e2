"""Heads every backbone shares after its own fit: the confidence calibration and the meta-aggregator.

``signal_confidence`` maps ``|expected_return| -> P(sign right)``, fitted on out-of-sample rows of the train window:
``"platt"`` (the default) is a logistic regression on ``|er| / std(|er|)``, smooth and never exactly 0 or 1;
``"isotonic"`` is monotone but step-wise and prone to 0 / 1 at the extremes. The meta-aggregator of
``multi_model_meta`` is one ``LinearRegression`` per horizon on the ``expected_return`` of every horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

Calibrator = tuple[float, Any] | None


def fit_calibrators(er: np.ndarray, y: np.ndarray, have: np.ndarray, method: str) -> list[Calibrator]:
    """Per horizon, ``(scale, model)`` of ``|er| / scale -> 1{sign(er) * y > 0}``; None (confidence 0.5) when
    there are fewer than 10 rows or only one outcome."""
    out: list[Calibrator] = []
    for j in range(er.shape[1]):
        ok = have[:, j] & np.isfinite(y[:, j])
        hit = (np.sign(er[ok, j]) * y[ok, j] > 0).astype(np.int64)
        if ok.sum() < 10 or len(np.unique(hit)) < 2:
            out.append(None)
            continue
        mag = np.abs(er[ok, j])
        scale = float(mag.std()) or 1.0
        if method == "isotonic":
            model: Any = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            model.fit(mag / scale, hit.astype(np.float64))
        else:
            model = LogisticRegression().fit((mag / scale)[:, None], hit)
        out.append((scale, model))
    return out


def confidence(cal: Calibrator, er: np.ndarray) -> np.ndarray:
    """Return the calibrated P(sign right) of predictions ``er`` (0.5 without a calibrator)."""
    if cal is None:
        return np.full(len(er), 0.5)
    scale, model = cal
    mag = np.abs(er) / scale
    p = model.predict(mag) if isinstance(model, IsotonicRegression) else model.predict_proba(mag[:, None])[:, 1]
    return np.clip(p, 0.0, 1.0)


def confidences(calibrators: list[Calibrator], er: np.ndarray) -> np.ndarray:
    """Return the (n, H) confidence of the (n, H) predictions ``er``, one calibrator per horizon."""
    if not calibrators:
        return np.zeros_like(er)
    return np.column_stack([confidence(cal, er[:, j]) for j, cal in enumerate(calibrators)])


def apply_meta(meta: list[Any] | None, er: np.ndarray) -> np.ndarray:
    """Apply the meta-aggregator (identity when not fitted, and for a horizon without one)."""
    if meta is None:
        return er
    return np.column_stack([m.predict(er) if m is not None else er[:, j] for j, m in enumerate(meta)])
