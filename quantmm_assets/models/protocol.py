"""The backbone protocol (DESIGN section 3, CONVENTIONS section 3): what every backbone is, flat or torch.

A backbone's ``__init__`` stores parameters only (each as an attribute of the same name, defaults filled in);
``fit(data, train_idx, inner_splits)`` learns attributes ending in ``_`` and returns ``self``; ``predict(data, idx)``
returns ``{horizon: Predictions}``; ``config_hash`` names the configuration. Whether text is used is read from the
data (:attr:`ModelData.has_text`: the ``no_text`` variant carries none), never passed beside it.

The machinery lives in the bases: :mod:`quantmm_assets.models.flat_base` (Ridge, LightGBM) and
:mod:`quantmm_assets.models.torch_base` (the window networks); both build their output with :func:`predictions`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from quantmm_assets.models.data import ModelData

MODES = ("single_model_multihead", "multi_model_meta")
FUSION_MODES = ("residual_gate", "none")
CALIBRATIONS = ("platt", "isotonic")
SHARED_PARAMS = ("input_size", "hidden_size", "learning_rate", "max_steps", "batch_size", "random_seed")
COMMON_DEFAULTS: dict[str, Any] = {
    "input_size": 1,
    "hidden_size": 0,
    "learning_rate": 0.0,
    "max_steps": 0,
    "batch_size": 0,
    "random_seed": 0,
    "mode": "single_model_multihead",
    "fusion_mode": "residual_gate",
    "text_dim": 32,
    "gate_l2": 1e-3,
    "calibration": "platt",
}
LOG_RV_FLOOR = 1e-8

Splits = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Predictions:
    """One horizon's predictions for ``n`` rows (all arrays of length ``n``)."""

    expected_return: np.ndarray
    vol_forecast: np.ndarray
    signal_confidence: np.ndarray  # calibrated P(sign(expected_return) == sign(ret)), in [0, 1]
    y_base: np.ndarray
    gate: np.ndarray  # in [0, 1]
    text_contribution: np.ndarray  # gate * delta
    degraded: np.ndarray  # True: no text contribution computed (no text in the row, or no text stage)


def predictions(
    horizons: tuple[str, ...],
    y_base: np.ndarray,
    vol_forecast: np.ndarray,
    confidence: np.ndarray,
    gate: np.ndarray,
    contribution: np.ndarray,
    degraded: np.ndarray,
) -> dict[str, Predictions]:
    """Return ``{horizon: Predictions}`` from (n, H) head arrays and the (n,) degraded mask.

    ``expected_return`` is ``y_base + contribution`` (so it equals ``y_base`` exactly where the contribution is 0).
    """
    er = y_base + contribution
    return {
        h: Predictions(
            expected_return=er[:, j],
            vol_forecast=vol_forecast[:, j],
            signal_confidence=confidence[:, j],
            y_base=y_base[:, j],
            gate=gate[:, j],
            text_contribution=contribution[:, j],
            degraded=degraded.copy(),
        )
        for j, h in enumerate(horizons)
    }


def checked_splits(name: str, train_idx: np.ndarray, inner_splits: Splits) -> tuple[np.ndarray, Splits]:
    """Return ``train_idx`` and the inner splits as sorted unique int64 arrays; raise when a split leaves train."""
    train_idx = np.unique(np.asarray(train_idx, dtype=np.int64))
    splits = [(np.unique(np.asarray(a, np.int64)), np.unique(np.asarray(b, np.int64))) for a, b in inner_splits]
    for i, (a, b) in enumerate(splits):
        if not (np.isin(a, train_idx).all() and np.isin(b, train_idx).all()):
            raise ValueError(f"{name}: inner split {i} has rows outside train_idx")
    return train_idx, splits


class Backbone(ABC):
    """Abstract backbone: params-only ``__init__``, ``fit -> self``, ``predict -> {horizon: Predictions}``."""

    name: ClassVar[str] = "backbone"
    defaults: ClassVar[dict[str, Any]] = COMMON_DEFAULTS

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameters {unknown}; known: {sorted(self.defaults)}")
        for key, default in self.defaults.items():
            setattr(self, key, params.get(key, default))

    def get_params(self) -> dict[str, Any]:
        """Return the parameters (every known name, defaults filled in)."""
        return {k: getattr(self, k) for k in self.defaults}

    def config_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of ``{"backbone": name, "params": params}`` as sorted JSON."""
        payload = json.dumps({"backbone": self.name, "params": self.get_params()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != self.defaults[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    @abstractmethod
    def fit(self, data: ModelData, train_idx: np.ndarray, inner_splits: Splits) -> Backbone:
        """Fit on rows ``train_idx`` of ``data`` (the inner ``(train, validation)`` splits lie inside it); return self.

        Everything fitted (scalers, projection, calibration) sees train rows only; the text stage is on when the
        parameters allow it and ``data.has_text``.
        """

    @abstractmethod
    def predict(self, data: ModelData, idx: np.ndarray) -> dict[str, Predictions]:
        """Return ``{horizon: Predictions}`` for rows ``idx`` of ``data``."""

    def _predict_rows(self, data: ModelData, idx: np.ndarray, fitted: str) -> np.ndarray:
        """Return ``idx`` as int64; raise when attribute ``fitted`` is not learned yet or ``data`` does not match."""
        if not hasattr(self, fitted):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        if data.horizons != self.horizons_ or data.feature_names != self.feature_names_:
            raise ValueError(f"{self.name}: data horizons / features differ from the ones the model was fitted on")
        return np.asarray(idx, dtype=np.int64)
