"""The flat base: the machinery Ridge and LightGBM share on the flat feature row (DESIGN section 3).

A subclass gives ``_fit_regressor`` / ``_predict_regressor``; the protocol is
:class:`quantmm_assets.models.protocol.Backbone`. Heads per horizon: ``expected_return`` (on ``ret``),
``vol_forecast`` (on ``rv``, fitted as ``log rv`` and exponentiated, i.e. a median-type forecast) and
``signal_confidence`` (:mod:`quantmm_assets.models.calibration`, fitted on the out-of-fold predictions of the
inner splits). Text enters through :mod:`quantmm_assets.models.fusion` (``fusion_mode="residual_gate"``) when the
data carries text.

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
import threading
from abc import abstractmethod
from collections import OrderedDict
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from quantmm_assets.models.calibration import apply_meta, confidences, fit_calibrators
from quantmm_assets.models.data import ModelData, base_and_text_columns
from quantmm_assets.models.fusion import ResidualGate, fit_residual_gate
from quantmm_assets.models.protocol import (
    CALIBRATIONS,
    FUSION_MODES,
    LOG_RV_FLOOR,
    MODES,
    Backbone,
    Predictions,
    Splits,
    checked_splits,
    predictions,
)

# Fitted base regressors by content (backbone, settings, rows): the ``no_text`` ablation's base is the ``full``
# base (the base never sees text), so a walk-forward fits each fold's bases once for both variants.
_BASE_FITS: OrderedDict[str, Any] = OrderedDict()
_BASE_FITS_SIZE = 32
_BASE_FITS_LOCK = threading.Lock()


def forget_base_fits() -> None:
    """Drop every remembered base fit (a test of fitting itself, e.g. its determinism, starts from none)."""
    with _BASE_FITS_LOCK:
        _BASE_FITS.clear()


def _fit_key(backbone: Backbone, *arrays: np.ndarray) -> str:
    digest = hashlib.blake2b(repr((type(backbone).__name__, sorted(backbone.get_params().items()))).encode())
    for a in arrays:
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


class FlatBackbone(Backbone):
    """A regressor on the flat feature row; subclasses give ``name``, ``defaults`` and the regressor hooks."""

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
            out.append((cols, self._shared_fit(x, data.symbol_code[sel], y[rows][:, cols])))
        return out

    def _shared_fit(self, x: np.ndarray, symbol_code: np.ndarray, y: np.ndarray) -> Any:
        """:meth:`_fit_regressor`, or the regressor already fitted by this backbone with these settings on these
        exact rows (fitting is deterministic, so it is the same fit)."""
        key = _fit_key(self, x, symbol_code, y)
        with _BASE_FITS_LOCK:
            if key in _BASE_FITS:
                _BASE_FITS.move_to_end(key)
                return _BASE_FITS[key]
        model = self._fit_regressor(x, symbol_code, y)
        with _BASE_FITS_LOCK:
            _BASE_FITS[key] = model
            while len(_BASE_FITS) > _BASE_FITS_SIZE:
                _BASE_FITS.popitem(last=False)
        return model

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

    # -- protocol -----------------------------------------------------------------------------------------
    def fit(self, data: ModelData, train_idx: np.ndarray, inner_splits: Splits) -> FlatBackbone:
        """Fit the base heads on ``train_idx``, then meta / fusion / calibration on the inner out-of-fold rows.

        ``train_idx`` and the inner ``(train, validation)`` arrays are row indices into ``data``; the inner ones
        must lie inside ``train_idx``. Everything fitted (scalers, projection, calibration) sees train rows only.
        The fusion stage is fitted when ``fusion_mode="residual_gate"`` and the data carries text.
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
        er_oof = apply_meta(self.meta_, np.nan_to_num(oof[:, :n_h]))
        self.fusion_: ResidualGate | None = None
        contrib = np.zeros_like(er_oof)
        if data.has_text and self.fusion_mode == "residual_gate" and len(oof_idx):
            self.fusion_, contrib = fit_residual_gate(
                data, train_idx, oof_idx, y_oof - er_oof, val_folds, int(self.text_dim), float(self.gate_l2)
            )
        self.calibrators_ = fit_calibrators(er_oof + contrib, y_oof, np.isfinite(oof[:, :n_h]), self.calibration)
        self.n_train_ = len(train_idx)
        return self

    def predict(self, data: ModelData, idx: np.ndarray) -> dict[str, Predictions]:
        """Return ``{horizon: Predictions}`` for rows ``idx`` of ``data``."""
        idx = self._predict_rows(data, idx, "base_")
        n_h = len(self.horizons_)
        raw = self._predict_base(self.base_, data, idx)
        y_base = apply_meta(self.meta_, raw[:, :n_h])
        gate, delta = np.zeros_like(y_base), np.zeros_like(y_base)
        if self.fusion_ is not None:
            gate, delta = self.fusion_.apply(data, idx)
        contrib = gate * delta
        degraded = ~data.text_mask[idx] if self.fusion_ is not None else np.ones(len(idx), bool)
        conf = confidences(self.calibrators_, y_base + contrib)
        return predictions(self.horizons_, y_base, np.exp(raw[:, n_h:]), conf, gate, contrib, degraded)
