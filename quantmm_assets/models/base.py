"""The backbone protocol (DESIGN section 3, CONVENTIONS section 3) and the shared flat-model machinery.

A backbone's ``__init__`` stores parameters only (each as an attribute of the same name); ``fit`` learns
attributes ending in ``_`` and returns ``self``. Heads per horizon: ``expected_return`` (on ``ret``),
``vol_forecast`` (on ``rv``, fitted as ``log rv`` and exponentiated, i.e. a median-type forecast) and
``signal_confidence`` (``|expected_return| -> P(sign right)`` fitted on the out-of-fold predictions of the
inner splits: ``calibration="platt"``, a logistic regression on ``|er| / std(|er|)``, the default, smooth and
never exactly 0 or 1; or ``"isotonic"``, monotone but step-wise and prone to 0 / 1 at the extremes).
Text enters through :mod:`quantmm_assets.models.fusion` (``fusion_mode="residual_gate"``).

Modes for flat backbones:

- ``single_model_multihead`` (default): one model on the rows whose labels are complete for *every* horizon,
  one design matrix and one set of settings; its outputs are the ``ret`` and ``log rv`` heads of every horizon
  (a multi-output Ridge; for LightGBM one booster per head, same rows and settings).
- ``multi_model_meta``: one model per horizon, each on its own complete rows, then a linear meta-aggregator per
  horizon (``LinearRegression`` of ``ret_h`` on the out-of-fold ``expected_return`` of *all* horizons), so each
  horizon can borrow the others' signal. Without inner splits the meta-aggregator is the identity.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LinearRegression, LogisticRegression

from quantmm_assets.models.data import ModelData, base_and_text_columns
from quantmm_assets.models.fusion import ResidualGate, fit_residual_gate

MODES = ("single_model_multihead", "multi_model_meta")
FUSION_MODES = ("residual_gate", "none")
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
CALIBRATIONS = ("platt", "isotonic")
LOG_RV_FLOOR = 1e-8


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


def checked_splits(
    name: str, train_idx: np.ndarray, inner_splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
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

    # -- hooks -------------------------------------------------------------------------------------------
    @abstractmethod
    def _fit_regressor(self, x: np.ndarray, symbol_code: np.ndarray, y: np.ndarray) -> Any:
        """Fit and return a regressor of ``y`` (m, k) on raw flat features ``x`` (m, f), NaN allowed in ``x``."""

    @abstractmethod
    def _predict_regressor(self, model: Any, x: np.ndarray, symbol_code: np.ndarray) -> np.ndarray:
        """Return the (m, k) predictions of a model from :meth:`_fit_regressor`."""

    def _check_params(self) -> None:
        """Raise ValueError for parameter values out of range."""
        if self.mode not in MODES:
            raise ValueError(f"{self.name}: mode must be one of {MODES}, got {self.mode!r}")
        if self.fusion_mode not in FUSION_MODES:
            raise ValueError(f"{self.name}: fusion_mode must be one of {FUSION_MODES}, got {self.fusion_mode!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"{self.name}: calibration must be one of {CALIBRATIONS}, got {self.calibration!r}")
        if not 16 <= int(self.text_dim) <= 64:
            raise ValueError(f"{self.name}: text_dim must be in 16..64, got {self.text_dim}")
        if self.input_size != 1:
            raise ValueError(f"{self.name}: a flat backbone reads one row, input_size must be 1, got {self.input_size}")

    # -- base model (all heads, no text) ------------------------------------------------------------------
    def _targets(self, data: ModelData, idx: np.ndarray) -> np.ndarray:
        """Return the (m, 2H) targets ``[ret_h..., log rv_h...]``, NaN where the label is not complete."""
        ok = data.label_ok[idx] & np.isfinite(data.ret[idx]) & np.isfinite(data.rv[idx])
        y = np.hstack([data.ret[idx], np.log(np.maximum(data.rv[idx], LOG_RV_FLOOR))])
        return np.where(np.hstack([ok, ok]), y, np.nan)

    def _fit_base(self, data: ModelData, idx: np.ndarray) -> list[tuple[list[int], Any]]:
        """Fit the base model on rows ``idx``: a list of (target columns, regressor)."""
        y = self._targets(data, idx)
        n_h = len(data.horizons)
        groups = [list(range(2 * n_h))] if self.mode == MODES[0] else [[j, n_h + j] for j in range(n_h)]
        out = []
        for cols in groups:
            rows = np.isfinite(y[:, cols]).all(axis=1)
            if rows.sum() < 2:
                raise ValueError(f"{self.name}: fewer than 2 train rows with complete labels for targets {cols}")
            sel = idx[rows]
            x = data.x[np.ix_(sel, self._base_columns(data))]
            out.append((cols, self._fit_regressor(x, data.symbol_code[sel], y[rows][:, cols])))
        return out

    def _predict_base(self, base: list[tuple[list[int], Any]], data: ModelData, idx: np.ndarray) -> np.ndarray:
        """Return the (m, 2H) base predictions ``[ret_h..., log rv_h...]``."""
        out = np.full((len(idx), 2 * len(data.horizons)), np.nan)
        x = data.x[np.ix_(idx, self._base_columns(data))]
        for cols, model in base:
            out[:, cols] = self._predict_regressor(model, x, data.symbol_code[idx])
        return out

    @staticmethod
    def _base_columns(data: ModelData) -> list[int]:
        """Return the columns of y_base: every flat feature but the text ones (those feed the fusion stage)."""
        return base_and_text_columns(data.feature_names)[0]

    def _meta(self, er: np.ndarray) -> np.ndarray:
        """Apply the meta-aggregator (identity in ``single_model_multihead`` or when not fitted)."""
        if self.meta_ is None:
            return er
        return np.column_stack([m.predict(er) if m is not None else er[:, j] for j, m in enumerate(self.meta_)])

    # -- protocol -----------------------------------------------------------------------------------------
    def fit(
        self,
        data: ModelData,
        train_idx: np.ndarray,
        inner_splits: list[tuple[np.ndarray, np.ndarray]],
        use_text: bool = True,
    ) -> Backbone:
        """Fit the base heads on ``train_idx``, then meta / fusion / calibration on the inner out-of-fold rows.

        ``train_idx`` and the inner ``(train, validation)`` arrays are row indices into ``data``; the inner ones
        must lie inside ``train_idx``. Everything fitted (scalers, projection, calibration) sees train rows only.
        """
        self._check_params()
        train_idx, splits = checked_splits(self.name, train_idx, inner_splits)
        n_h = len(data.horizons)
        self.horizons_ = data.horizons
        self.feature_names_ = data.feature_names
        self.latent_dim_ = data.latent_dim
        self.meta_ = None
        oof_idx = np.unique(np.concatenate([b for _, b in splits])) if splits else np.zeros(0, np.int64)
        oof = np.full((len(oof_idx), 2 * n_h), np.nan)
        val_folds = []
        for a, b in splits:
            inner = self._fit_base(data, a)
            pos = np.searchsorted(oof_idx, b)
            oof[pos] = self._predict_base(inner, data, b)
            val_folds.append(pos)
        self.base_ = self._fit_base(data, train_idx)
        y_oof = self._targets(data, oof_idx)[:, :n_h]
        if self.mode == MODES[1] and len(oof_idx):
            er_in = np.nan_to_num(oof[:, :n_h])
            meta = []
            for j in range(n_h):
                ok = np.isfinite(y_oof[:, j]) & np.isfinite(oof[:, :n_h]).all(axis=1)
                meta.append(LinearRegression().fit(er_in[ok], y_oof[ok, j]) if ok.sum() > n_h + 1 else None)
            self.meta_ = meta
        er_oof = self._meta(np.nan_to_num(oof[:, :n_h]))
        self.fusion_: ResidualGate | None = None
        contrib = np.zeros_like(er_oof)
        if use_text and self.fusion_mode == "residual_gate" and len(oof_idx):
            self.fusion_, contrib = fit_residual_gate(
                data, train_idx, oof_idx, y_oof - er_oof, val_folds, int(self.text_dim), float(self.gate_l2)
            )
        self.calibrators_ = self._fit_calibrators(er_oof + contrib, y_oof, np.isfinite(oof[:, :n_h]))
        self.n_train_ = len(train_idx)
        return self

    def _fit_calibrators(self, er: np.ndarray, y: np.ndarray, have: np.ndarray) -> list[tuple[float, Any] | None]:
        """Per horizon, ``(scale, model)`` of ``|er| / scale -> 1{sign(er) * y > 0}``; None (confidence 0.5) when
        there are fewer than 10 out-of-fold rows or only one outcome."""
        out: list[tuple[float, Any] | None] = []
        for j in range(er.shape[1]):
            ok = have[:, j] & np.isfinite(y[:, j])
            hit = (np.sign(er[ok, j]) * y[ok, j] > 0).astype(np.int64)
            if ok.sum() < 10 or len(np.unique(hit)) < 2:
                out.append(None)
                continue
            mag = np.abs(er[ok, j])
            scale = float(mag.std()) or 1.0
            if self.calibration == "isotonic":
                model: Any = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
                model.fit(mag / scale, hit.astype(np.float64))
            else:
                model = LogisticRegression().fit((mag / scale)[:, None], hit)
            out.append((scale, model))
        return out

    def _confidence(self, j: int, er: np.ndarray) -> np.ndarray:
        """Return the calibrated P(sign right) of horizon ``j`` for predictions ``er``."""
        cal = self.calibrators_[j]
        if cal is None:
            return np.full(len(er), 0.5)
        scale, model = cal
        mag = np.abs(er) / scale
        p = model.predict(mag) if isinstance(model, IsotonicRegression) else model.predict_proba(mag[:, None])[:, 1]
        return np.clip(p, 0.0, 1.0)

    def predict(self, data: ModelData, idx: np.ndarray) -> dict[str, Predictions]:
        """Return ``{horizon: Predictions}`` for rows ``idx`` of ``data``."""
        if not hasattr(self, "base_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        if data.horizons != self.horizons_ or data.feature_names != self.feature_names_:
            raise ValueError(f"{self.name}: data horizons / features differ from the ones the model was fitted on")
        idx = np.asarray(idx, dtype=np.int64)
        n_h = len(self.horizons_)
        raw = self._predict_base(self.base_, data, idx)
        y_base = self._meta(raw[:, :n_h])
        vol = np.exp(raw[:, n_h:])
        gate, delta = np.zeros_like(y_base), np.zeros_like(y_base)
        if self.fusion_ is not None:
            gate, delta = self.fusion_.apply(data, idx)
        contrib = gate * delta
        er = y_base + contrib
        degraded = ~data.text_mask[idx] if self.fusion_ is not None else np.ones(len(idx), bool)
        out = {}
        for j, h in enumerate(self.horizons_):
            conf = self._confidence(j, er[:, j])
            out[h] = Predictions(
                expected_return=er[:, j],
                vol_forecast=vol[:, j],
                signal_confidence=conf,
                y_base=y_base[:, j],
                gate=gate[:, j],
                text_contribution=contrib[:, j],
                degraded=degraded.copy(),
            )
        return out
