"""Served predictions compared and described: shadow vs active, vol coverage, multimodal health, drift (DESIGN 5).

- **Shadow vs active** (:func:`shadow_vs_active`): per (symbol, horizon, active version, shadow version), the bars
  where both were logged; scored on the realized ones where both rows are scorable, thinned to non-overlapping
  steps of the horizon with the rule of :mod:`core.monitoring.realized` (``thin_to_horizon``). Each side's PnL is
  that of its own logged positions on those common steps (chained from 0); the difference is shadow minus active
  per step (positive: the shadow would have earned more), its 90% interval the paired normal approximation
  ``mean(d) +- z sd(d) / sqrt(n)``.
- **Vol coverage** (:func:`vol_coverage`): the vol forecast against the realized rv and |ret| on realized
  non-overlapping steps (the rule of :mod:`core.monitoring.realized`).
- **Multimodal health** (:func:`multimodal_health`): per (horizon, role) over every logged row (no thinning: a
  description of what was served, not a test): text coverage among rows whose ``text_missing`` is known; gate
  mean and 90th percentile, mean |text_contribution| and its share ``sum |text_contribution| / sum
  |expected_return|``, all on rows with text present.
- **Prediction drift** (:func:`prediction_drift`): the PSI (:func:`core.monitoring.drift.psi`) of the active
  expected returns of one horizon, thinned per symbol to the horizon and pooled, against a reference, and the
  decision against the caller's threshold (``calibrated_psi_threshold(...).threshold`` for this live size).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from quantmm_assets.core.evaluation.evidence import INSUFFICIENT
from quantmm_assets.core.evaluation.metrics import horizon_seconds, ic
from quantmm_assets.core.monitoring.drift import DEFAULT_BINS, DEFAULT_MIN_LIVE, psi, thin_to_horizon
from quantmm_assets.core.monitoring.realized import (
    JOIN_LOG_COLUMNS,
    LABEL_VALUES,
    PNL_INPUTS,
    SERIES,
    Z90,
    evidence_note,
    group_counts,
    mean_interval,
    realized_steps,
    require,
    sort_keys,
    thin_series,
    wilson_interval,
    with_pnl,
)

PAIR_KEYS = ("symbol", "horizon", "active_version", "shadow_version")
SHADOW_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "active_version": pl.Utf8,
    "shadow_version": pl.Utf8,
    "n_common": pl.Int64,  # bars logged by both
    "n_common_realized": pl.Int64,  # of them realized and scorable on both sides
    "n_steps": pl.Int64,  # non-overlapping steps of those
    "hit_n": pl.Int64,  # steps with ret != 0
    "active_ic": pl.Float64,
    "shadow_ic": pl.Float64,
    "active_hit_rate": pl.Float64,
    "shadow_hit_rate": pl.Float64,
    "active_mean_pnl": pl.Float64,
    "shadow_mean_pnl": pl.Float64,
    "diff_mean_pnl": pl.Float64,  # shadow - active
    "diff_low": pl.Float64,
    "diff_high": pl.Float64,
    "verdict": pl.Utf8,
    "note": pl.Utf8,
}
HEALTH_COLUMNS = ("horizon", "role", "expected_return", "gate", "text_contribution", "text_missing")
HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "horizon": pl.Utf8,
    "role": pl.Utf8,
    "n": pl.Int64,  # logged rows
    "n_text_known": pl.Int64,  # rows whose text_missing is not null
    "text_coverage": pl.Float64,  # share of them with text present
    "n_text": pl.Int64,  # rows with text present
    "gate_mean": pl.Float64,
    "gate_p90": pl.Float64,
    "mean_abs_text_contribution": pl.Float64,
    "text_share": pl.Float64,  # sum |text_contribution| / sum |expected_return|, text present
}
VOL_SCHEMA: dict[str, pl.DataType] = {
    "horizon": pl.Utf8,
    "role": pl.Utf8,
    "n": pl.Int64,
    "median_ratio": pl.Float64,  # median of rv / vol_forecast
    "mean_log_ratio": pl.Float64,  # mean of ln(rv / vol_forecast)
    "coverage_90": pl.Float64,  # share of |ret| <= z90 x vol_forecast
    "coverage_low": pl.Float64,
    "coverage_high": pl.Float64,
    "verdict": pl.Utf8,
    "note": pl.Utf8,
}


def _nan_to_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _hit_rate(pred: np.ndarray, ret: np.ndarray) -> float | None:
    signed = ret != 0
    return float((np.sign(pred[signed]) == np.sign(ret[signed])).mean()) if signed.any() else None


def _pairs(joined: pl.DataFrame) -> pl.DataFrame:
    side = {
        role: joined.filter(pl.col("role") == role).select(
            "symbol",
            "horizon",
            "bar_ts",
            pl.col("model_version").alias(f"{role}_version"),
            pl.col("expected_return").alias(f"{role}_er"),
            pl.col("position").alias(f"{role}_position"),
            *((*LABEL_VALUES, "realized") if role == "active" else ()),
        )
        for role in ("active", "shadow")
    }
    pairs = side["active"].join(side["shadow"], on=["symbol", "horizon", "bar_ts"], how="inner")
    scorable = [f"{r}_{c}" for r in ("active", "shadow") for c in ("er", "position")] + list(LABEL_VALUES)
    ok = pl.col("realized") & pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in scorable)
    return pairs.with_columns(scorable=ok)


def shadow_vs_active(joined: pl.DataFrame) -> pl.DataFrame:
    """Return per (symbol, horizon, active version, shadow version) both sides' scores on common realized steps.

    Columns: :data:`SHADOW_SCHEMA`; ``insufficient evidence`` under 30 common steps (see the module docstring).
    """
    require(joined, (*JOIN_LOG_COLUMNS, *PNL_INPUTS, "realized"), "joined predictions")
    pairs = _pairs(joined)
    keys = list(PAIR_KEYS)
    steps = thin_series(pairs.filter(pl.col("scorable")), keys).drop("model_version", strict=False)
    steps = with_pnl(with_pnl(steps, keys, "active_position", "active_pnl"), keys, "shadow_position", "shadow_pnl")
    parts = dict(steps.group_by(keys))
    pair_counts = pairs.group_by(keys).agg(
        n_common=pl.len().cast(pl.Int64),
        n_common_realized=pl.col("scorable").sum().cast(pl.Int64),
        n_realized=pl.col("realized").sum().cast(pl.Int64),
    )
    rows = []
    for row in pair_counts.iter_rows(named=True):
        part = parts.get(tuple(row[k] for k in keys))
        part = steps.clear() if part is None else part
        ret = part["ret"].to_numpy()
        a_er, s_er = part["active_er"].to_numpy(), part["shadow_er"].to_numpy()
        a_pnl, s_pnl = part["active_pnl"].to_numpy(), part["shadow_pnl"].to_numpy()
        diff, low, high = mean_interval(s_pnl - a_pnl)
        verdict, note = evidence_note(part.height, row.pop("n_realized"), "common realized non-overlapping steps")
        rows.append(
            {
                **row,
                "n_steps": part.height,
                "hit_n": int((ret != 0).sum()),
                "active_ic": _nan_to_none(ic(a_er, ret)),
                "shadow_ic": _nan_to_none(ic(s_er, ret)),
                "active_hit_rate": _hit_rate(a_er, ret),
                "shadow_hit_rate": _hit_rate(s_er, ret),
                "active_mean_pnl": mean_interval(a_pnl)[0],
                "shadow_mean_pnl": mean_interval(s_pnl)[0],
                "diff_mean_pnl": diff,
                "diff_low": low,
                "diff_high": high,
                "verdict": verdict,
                "note": note,
            }
        )
    return sort_keys(pl.DataFrame(rows, schema=SHADOW_SCHEMA, orient="row"), keys)


def _coverage(part: pl.DataFrame | None) -> dict[str, object]:
    if part is None or part.is_empty():
        return {
            "n": 0,
            **dict.fromkeys(("median_ratio", "mean_log_ratio", "coverage_90", "coverage_low", "coverage_high")),
        }
    vol, rv, ret = (part[c].to_numpy() for c in ("vol_forecast", "rv", "ret"))
    ratio = rv / vol
    inside = int((np.abs(ret) <= Z90 * vol).sum())
    low, high = wilson_interval(inside, part.height)
    return {
        "n": part.height,
        "median_ratio": float(np.median(ratio)),
        "mean_log_ratio": float(np.log(ratio).mean()),
        "coverage_90": inside / part.height,
        "coverage_low": low,
        "coverage_high": high,
    }


def vol_coverage(joined: pl.DataFrame) -> pl.DataFrame:
    """Return per (horizon, role) how the realized rv and |ret| compare with the vol forecast (:data:`VOL_SCHEMA`).

    On realized non-overlapping steps with vol_forecast > 0, rv > 0 and ret finite: the median of rv / vol_forecast,
    the mean of its log (0 when unbiased), and the share of |ret| <= z90 x vol_forecast (0.9 for a calibrated
    forecast of a normal return) with its Wilson interval.
    """
    require(joined, (*JOIN_LOG_COLUMNS, "vol_forecast", *LABEL_VALUES, "realized"), "joined predictions")
    keys = ["horizon", "role"]
    usable = joined.with_columns(
        _ok=pl.when((pl.col("vol_forecast") > 0) & (pl.col("rv") > 0)).then(1.0)  # null where not usable
    )
    steps = realized_steps(usable, SERIES, ("ret", "rv", "vol_forecast", "_ok"))
    parts = dict(steps.group_by(keys))
    rows = []
    for row in group_counts(joined, keys).iter_rows(named=True):
        stats = _coverage(parts.get(tuple(row[k] for k in keys)))
        verdict, note = evidence_note(int(stats["n"]), row["n_realized"])
        rows.append({**{k: row[k] for k in keys}, **stats, "verdict": verdict, "note": note})
    return sort_keys(pl.DataFrame(rows, schema=VOL_SCHEMA, orient="row"), keys)


def multimodal_health(log: pl.DataFrame) -> pl.DataFrame:
    """Return per (horizon, role) text coverage, gate openness and the text's share (:data:`HEALTH_SCHEMA`)."""
    require(log, HEALTH_COLUMNS, "prediction log")
    text = pl.col("text_missing").cast(pl.Boolean)
    present = text.not_() & text.is_not_null()
    gate = pl.col("gate").cast(pl.Float64)
    tc = pl.col("text_contribution").cast(pl.Float64)
    er = pl.col("expected_return").cast(pl.Float64)
    with_tc = present & tc.is_finite() & er.is_finite()
    out = log.group_by(pl.col("horizon").cast(pl.Utf8), pl.col("role").cast(pl.Utf8)).agg(
        n=pl.len().cast(pl.Int64),
        n_text_known=text.is_not_null().sum().cast(pl.Int64),
        text_coverage=present.sum() / text.is_not_null().sum(),
        n_text=present.sum().cast(pl.Int64),
        gate_mean=gate.filter(present & gate.is_finite()).mean(),
        gate_p90=gate.filter(present & gate.is_finite()).quantile(0.9, "linear"),
        mean_abs_text_contribution=tc.abs().filter(with_tc).mean(),
        text_share=tc.abs().filter(with_tc).sum() / er.abs().filter(with_tc).sum(),
    )
    out = out.with_columns(pl.col(c).fill_nan(None) for c in ("text_coverage", "text_share")).cast(HEALTH_SCHEMA)  # type: ignore[arg-type]
    return out.select(list(HEALTH_SCHEMA)).sort("horizon", "role") if out.height else pl.DataFrame(schema=HEALTH_SCHEMA)


def prediction_drift(
    log: pl.DataFrame,
    reference_values: ArrayLike,
    horizon: str,
    threshold: float,
    *,
    min_live: int = DEFAULT_MIN_LIVE,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, object]:
    """Return the PSI of the active ``horizon`` predictions (thinned per symbol) against ``reference_values`` and the
    decision against ``threshold``: keys horizon, psi, threshold, drifted, n_live_thinned, n_reference, n_symbols,
    reason. ``reference_values`` are already thinned (as ``calibrated_psi_threshold`` thins them). Under
    ``min_live`` thinned live points the PSI is reported and nothing fires."""
    require(log, ("symbol", "horizon", "bar_ts", "role", "expected_return"), "prediction log")
    horizon_seconds(horizon)  # an unknown horizon is an error
    rows = log.filter((pl.col("horizon") == horizon) & (pl.col("role") == "active"))
    rows = rows.filter(pl.col("expected_return").is_finite().fill_null(False))
    live = [np.empty(0)]
    for part in rows.partition_by("symbol") if rows.height else []:
        live.append(thin_to_horizon(part["bar_ts"].dt.epoch("us").to_numpy(), part["expected_return"], horizon)[1])
    sample = np.concatenate(live)
    ref = np.asarray(reference_values, dtype=np.float64).ravel()
    ref = ref[np.isfinite(ref)]
    out: dict[str, object] = {
        "horizon": horizon,
        "psi": math.nan,
        "threshold": float(threshold),
        "drifted": False,
        "n_live_thinned": int(sample.size),
        "n_reference": int(ref.size),
        "n_symbols": len(live) - 1,
    }
    if sample.size == 0:
        return {**out, "reason": f"no active {horizon} predictions logged yet"}
    if ref.size == 0:
        return {**out, "reason": "the reference holds no finite value"}
    value = psi(ref, sample, n_bins)
    out["psi"] = value
    if sample.size < min_live:
        reason = f"{INSUFFICIENT}: {sample.size} thinned predictions (one per {horizon}) < {min_live}"
        return {**out, "reason": reason}
    if not math.isfinite(threshold):
        return {**out, "reason": f"PSI {value:.3f} on {sample.size} thinned predictions; no threshold given"}
    drifted = value > threshold
    sign = ">" if drifted else "<="
    reason = f"PSI {value:.3f} {sign} threshold {threshold:.3f} on {sample.size} thinned vs {ref.size} reference"
    return {**out, "drifted": bool(drifted), "reason": reason}
