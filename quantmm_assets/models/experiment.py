"""One experiment protocol for every backbone (DESIGN section 3): nested tuning, walk-forward, ablations, refit.

Per walk-forward fold: the configuration is chosen on the purged k-fold *inside* the fold's train window (never on
its test window) from ``grid``; the chosen configuration is fitted on the whole train window (the inner splits feed
the fusion stage and the calibration) and predicts the test window. Each ablation variant is the same configuration
retrained on the variant's inputs (tuning happens once per fold, on ``full``). The result is one long frame of
out-of-sample predictions (:data:`quantmm_assets.core.evaluation.PREDICTION_SCHEMA`) and one record per fold.
After the walk-forward, :func:`refit_final` fits the configuration chosen most often on all complete data minus the
embargo: the model the registry receives.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from quantmm_assets.core.folds import INNER, TEST, TRAIN, VALIDATION, WALK_FORWARD, FoldSpec, assign_samples
from quantmm_assets.core.folds import refit_intervals as refit_folds
from quantmm_assets.models.data import ModelData
from quantmm_assets.models.protocol import Backbone, Predictions
from quantmm_assets.models.registry import BACKBONES
from quantmm_assets.models.variants import VARIANTS, variant_data

Log = Callable[[str], None]


@dataclass(frozen=True)
class FoldRows:
    """Row indices (into a :class:`ModelData`) of one fold: train, test and the inner (train, validation) pairs."""

    fold: int
    train: np.ndarray
    test: np.ndarray
    inner: list[tuple[np.ndarray, np.ndarray]]


@dataclass
class FoldRecord:
    """What happened in one fold: the configuration chosen, its inner scores and the fits' diagnostics."""

    fold: int
    params: dict[str, Any]
    n_configs: int
    inner_scores: list[float]
    fit_seconds: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_train: int = 0
    n_test: int = 0


@dataclass
class Experiment:
    """The walk-forward evidence of one backbone."""

    backbone: str
    predictions: pl.DataFrame
    folds: list[FoldRecord]

    @property
    def n_configs(self) -> int:
        return max((r.n_configs for r in self.folds), default=0)

    def chosen_params(self) -> dict[str, Any]:
        """Return the configuration chosen most often (ties: the newest fold's)."""
        counts = Counter(_key(r.params) for r in self.folds)
        best = max(counts.values())
        return next(r.params for r in reversed(self.folds) if counts[_key(r.params)] == best)

    def run_params(self) -> dict[str, Any]:
        """Return the params of the run: the chosen configuration (``model.<name>``, defaults filled in), the
        backbone, its config hash and how many configurations were tried."""
        model = BACKBONES[self.backbone](**self.chosen_params())
        return {
            **{f"model.{k}": v for k, v in model.get_params().items()},
            "backbone": self.backbone,
            "config_hash": model.config_hash(),
            "n_configs": self.n_configs,
        }

    def curves(self) -> list[tuple[int, dict[str, float]]]:
        """Return the step series of the run: fit seconds per variant (step = fold) and the ``full`` fits'
        validation losses (``fold<k>.val_loss``, step = training step)."""
        out: list[tuple[int, dict[str, float]]] = []
        for rec in self.folds:
            out.append((rec.fold, {f"fit_seconds.{v}": s for v, s in rec.fit_seconds.items()}))
            for step, loss in rec.diagnostics.get("full", {}).get("val_curve", []):
                out.append((int(step), {f"fold{rec.fold}.val_loss": loss}))
        return out

    def summary(self, metrics: pl.DataFrame) -> dict[str, Any]:
        """Return the run summary: configurations, the folds' choices and fits, and the ``full`` variant's mean
        Sharpe / rank IC / MAE per horizon from ``metrics`` (``fold_metrics`` of the predictions)."""
        full = metrics.filter(pl.col("variant") == "full")
        by_h = full.group_by("horizon").agg(pl.col("sharpe", "rank_ic", "mae").mean()).sort("horizon")
        return {
            "n_configs": self.n_configs,
            "chosen_params": self.chosen_params(),
            "folds": [
                {
                    "fold": r.fold,
                    "params": r.params,
                    "inner_scores": r.inner_scores,
                    "fit_seconds": r.fit_seconds,
                    "n_train": r.n_train,
                    "n_test": r.n_test,
                    "improved": r.diagnostics.get("full", {}).get("improved"),
                }
                for r in self.folds
            ],
            "full_by_horizon": by_h.to_dicts(),
        }


def _key(params: dict[str, Any]) -> str:
    return repr(sorted(params.items()))


def _times(data: ModelData) -> pl.Series:
    return pl.Series("t", data.t).cast(pl.Datetime("us", "UTC"))


def _rows(mask: pl.Series) -> np.ndarray:
    return np.flatnonzero(mask.to_numpy())


def fold_rows(data: ModelData, folds: pl.DataFrame) -> list[FoldRows]:
    """Return the rows of every fold in ``folds`` (walk-forward folds and the refit alike), in fold order."""
    ts = _times(data)
    out = []
    for f in sorted(folds["fold"].unique().to_list()):
        has_test = not folds.filter((pl.col("fold") == f) & (pl.col("role") == TEST)).is_empty()
        test = _rows(assign_samples(ts, folds, f, WALK_FORWARD, None, TEST)) if has_test else np.zeros(0, np.int64)
        inners = folds.filter((pl.col("fold") == f) & (pl.col("kind") == INNER))["inner"].unique().sort().to_list()
        inner = [
            (
                _rows(assign_samples(ts, folds, f, INNER, i, TRAIN)),
                _rows(assign_samples(ts, folds, f, INNER, i, VALIDATION)),
            )
            for i in inners
        ]
        out.append(FoldRows(f, _rows(assign_samples(ts, folds, f, WALK_FORWARD, None, TRAIN)), test, inner))
    return out


def inner_score(model: Backbone, data: ModelData, rows: np.ndarray) -> float:
    """Return the validation loss of a fitted model: mean over horizons of MSE / variance of ``ret`` (1 - R²)."""
    pred = model.predict(data, rows)
    losses = []
    for j, h in enumerate(data.horizons):
        ok = data.label_ok[rows, j] & np.isfinite(data.ret[rows, j])
        y = data.ret[rows, j][ok]
        if len(y) < 2 or not y.var() > 0:
            continue
        losses.append(float(np.mean((pred[h].expected_return[ok] - y) ** 2) / y.var()))
    return float(np.mean(losses)) if losses else float("nan")


def choose_config(
    cls: type[Backbone], grid: list[dict[str, Any]], data: ModelData, rows: FoldRows
) -> tuple[dict[str, Any], list[float]]:
    """Pick the configuration with the lowest mean inner-validation loss (one configuration: no fits)."""
    if len(grid) == 1:
        return dict(grid[0]), [float("nan")]
    scores = []
    for params in grid:
        per_split = [inner_score(cls(**params).fit(data, a, []), data, b) for a, b in rows.inner]
        finite = [s for s in per_split if np.isfinite(s)]
        scores.append(float(np.mean(finite)) if finite else float("inf"))
    return dict(grid[int(np.argmin(scores))]), scores


def prediction_frame(
    backbone: str,
    variant: str,
    fold: int,
    data: ModelData,
    rows: np.ndarray,
    pred: dict[str, Predictions],
    symbols: dict[int, str],
) -> pl.DataFrame:
    """Return the long out-of-sample frame of ``pred`` on ``rows``, one row per (row, horizon) with a label."""
    parts = []
    sym = np.array([symbols.get(int(c), str(c)) for c in data.symbol_code[rows]], dtype=object)
    ts = _times(data)[rows] if len(rows) else pl.Series("t", [], pl.Datetime("us", "UTC"))
    for j, h in enumerate(data.horizons):
        p = pred[h]
        ok = data.label_ok[rows, j] & np.isfinite(data.ret[rows, j])
        parts.append(
            pl.DataFrame(
                {
                    "backbone": backbone,
                    "variant": variant,
                    "fold": np.full(ok.sum(), fold, np.int64),
                    "symbol": sym[ok].tolist(),
                    "ts_event": ts.filter(pl.Series(ok)),
                    "horizon": h,
                    "expected_return": p.expected_return[ok],
                    "vol_forecast": p.vol_forecast[ok],
                    "signal_confidence": p.signal_confidence[ok],
                    "y_base": p.y_base[ok],
                    "gate": p.gate[ok],
                    "text_contribution": p.text_contribution[ok],
                    "degraded": p.degraded[ok],
                    "ret": data.ret[rows, j][ok],
                    "rv": data.rv[rows, j][ok],
                    "cost": data.cost[rows, j][ok],
                    "funding": data.funding[rows, j][ok],
                }
            )
        )
    return pl.concat(parts).with_columns(pl.col("fold").cast(pl.Int64))


def _diagnostics(model: Backbone) -> dict[str, Any]:
    keys = (
        "val_curve_",
        "train_curve_",
        "text_gain_curve_",
        "val_zero_loss_",
        "val_ret_skill_",
        "improved_",
        "steps_",
        "best_step_",
        "best_steps_",
        "text_trust_",
        "devices_",
        "n_train_",
    )
    out = {k.rstrip("_"): getattr(model, k) for k in keys if hasattr(model, k)}
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in out.items()}


def walk_forward(
    backbone: str,
    grid: list[dict[str, Any]],
    data: ModelData,
    folds: pl.DataFrame,
    symbols: dict[int, str],
    variants: tuple[str, ...] = VARIANTS,
    log: Log = print,
) -> Experiment:
    """Run ``backbone`` over every walk-forward fold of ``folds`` and return its out-of-sample evidence."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; registered: {sorted(BACKBONES)}")
    if not grid:
        raise ValueError(f"{backbone}: the configuration grid is empty")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "full" not in variants:
        raise ValueError(f"variants must include 'full' and be among {VARIANTS}, got {variants}")
    cls = BACKBONES[backbone]
    inputs = {v: variant_data(data, v) for v in variants}
    frames, records = [], []
    for rows in fold_rows(data, folds.filter(pl.col("fold") >= 0)):
        if not len(rows.test) or not len(rows.train):
            raise ValueError(f"{backbone}: fold {rows.fold} has {len(rows.train)} train / {len(rows.test)} test rows")
        params, scores = choose_config(cls, grid, data, rows)
        record = FoldRecord(rows.fold, params, len(grid), scores, n_train=len(rows.train), n_test=len(rows.test))
        for variant in variants:
            vdata = inputs[variant]
            start = time.perf_counter()
            model = cls(**params).fit(vdata, rows.train, rows.inner)
            record.fit_seconds[variant] = round(time.perf_counter() - start, 3)
            record.diagnostics[variant] = _diagnostics(model)
            frames.append(
                prediction_frame(
                    backbone, variant, rows.fold, vdata, rows.test, model.predict(vdata, rows.test), symbols
                )
            )
        log(
            f"{backbone} fold {rows.fold}: {len(rows.train)} train / {len(rows.test)} test rows, "
            f"{len(grid)} configuration(s), fits {record.fit_seconds}"
        )
        records.append(record)
    return Experiment(backbone, pl.concat(frames), records)


def refit_final(backbone: str, params: dict[str, Any], data: ModelData, spec: FoldSpec) -> tuple[Backbone, FoldRows]:
    """Fit ``params`` on all complete data minus the embargo (with the purged k-fold inside it for fusion and
    calibration): the model that gets registered."""
    first = datetime.fromtimestamp(int(data.t.min()) / 1e6, UTC)
    last = datetime.fromtimestamp(int(data.t.max()) / 1e6, UTC)
    rows = fold_rows(data, refit_folds(first, last, spec))[0]
    model = BACKBONES[backbone](**params).fit(data, rows.train, rows.inner)
    return model, rows
