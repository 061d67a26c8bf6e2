"""Out-of-sample evaluation of the backbone comparison (DESIGN section 3, "The signal" and "Evaluation").

The input is the long predictions frame (``PREDICTION_SCHEMA``): one row per (backbone, variant, fold, symbol,
ts_event, horizon) with the heads, the realized label ``ret``, the round-trip ``cost`` and the ``funding`` a long
pays over the window (``funding_h``, :mod:`core.funding`). Rows whose ``expected_return``, ``ret``, ``cost`` or
``funding`` is null or not finite cannot be scored and are left out everywhere.

- **Signal**: the position of each row is :func:`core.signal.signal_expr` under one
  :class:`~quantmm_assets.core.signal.SignalConfig` (side, edge over the cost, score over the vol forecast,
  per-horizon score and confidence thresholds; a null or NaN anywhere gives flat).
- **Steps** (:func:`trading_steps`): a position is held for h, so it is scored on non-overlapping steps of h per
  (backbone, variant, fold, symbol, horizon). The grid is ``t0 + k h`` with ``t0`` the group's first row. Grid point
  ``g`` takes the first row at or after ``g`` (the grid row itself when present; rows between grid points are
  dropped), unless that row is less than h after the step kept before it (possible only right after an off-grid
  step), in which case ``g`` is skipped. After a gap the steps thus return to the grid instead of drifting.
- **PnL** per step = position x (ret - funding) - |position - previous position| x cost / 2, previous position 0
  at the start of each group (the last position's exit is not charged): a long pays the funding of the settlements
  it spans, a short receives it. Sharpe = mean / std (ddof 1) x sqrt(steps per year), steps
  per year = 365 d / h, null with fewer than 2 steps or a zero std.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from quantmm_assets.core.labels import BAR, HORIZONS
from quantmm_assets.core.schemas import UTC_TS
from quantmm_assets.core.signal import SignalConfig, signal_expr

PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "backbone": pl.Utf8,
    "variant": pl.Utf8,
    "fold": pl.Int64,
    "symbol": pl.Utf8,
    "ts_event": UTC_TS,
    "horizon": pl.Utf8,
    "expected_return": pl.Float64,
    "vol_forecast": pl.Float64,
    "signal_confidence": pl.Float64,
    "y_base": pl.Float64,
    "gate": pl.Float64,
    "text_contribution": pl.Float64,
    "degraded": pl.Boolean,
    "ret": pl.Float64,
    "rv": pl.Float64,
    "cost": pl.Float64,
    "funding": pl.Float64,
}
SCORED_INPUTS = ("expected_return", "ret", "cost", "funding")  # a row with one of them null or not finite is not scored
GROUP_KEYS = ("backbone", "variant", "fold", "symbol", "horizon")
ABLATION_VARIANTS = ("full", "no_text", "no_macro", "event_window")
SECONDS_PER_YEAR = 365 * 24 * 3600
HORIZON_SECONDS: dict[str, int] = {h: int(k * BAR.total_seconds()) for h, k in HORIZONS.items()}
FOLD_METRICS_SCHEMA: dict[str, pl.DataType] = {
    "backbone": pl.Utf8,
    "variant": pl.Utf8,
    "fold": pl.Int64,
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "n_rows": pl.Int64,
    "n_steps": pl.Int64,
    "ic": pl.Float64,
    "rank_ic": pl.Float64,
    "hit_rate": pl.Float64,
    "mae": pl.Float64,
    "sharpe": pl.Float64,
    "mean_pnl": pl.Float64,
    "turnover": pl.Float64,
    "max_drawdown": pl.Float64,
    "exposure": pl.Float64,
}
# The headline metric values of a (backbone, variant, fold, symbol, horizon): the one list the per-fold logs, the
# ranking and the run summaries are written against.
HEADLINE_METRICS = ("sharpe", "rank_ic", "ic", "hit_rate", "mae", "turnover", "max_drawdown")
STD_REL_TOL = 1e-9  # a PnL std at or below this fraction of |mean| is rounding noise of a constant series


def _compatible(got: pl.DataType, want: pl.DataType) -> bool:
    if want == pl.Utf8:
        return got in (pl.Utf8, pl.Categorical) or isinstance(got, pl.Enum)
    if want == pl.Int64:
        return got.is_integer()
    if want == pl.Float64:
        return got.is_float() or got.is_integer() or got == pl.Null
    if want == pl.Boolean:
        return got in (pl.Boolean, pl.Null)
    return isinstance(got, pl.Datetime) and got.time_zone == "UTC"


def validate_predictions(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` cast to ``PREDICTION_SCHEMA`` (extra columns kept), or raise ValueError saying what is wrong."""
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"predictions must be a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in PREDICTION_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"predictions: missing columns {missing}")
    wrong = {c: f"{frame.schema[c]} (want {dt})" for c, dt in PREDICTION_SCHEMA.items()}
    wrong = {c: msg for c, msg in wrong.items() if not _compatible(frame.schema[c], PREDICTION_SCHEMA[c])}
    if wrong:
        raise ValueError(f"predictions: wrong dtypes {wrong}")
    df = frame.with_columns([pl.col(c).cast(dt) for c, dt in PREDICTION_SCHEMA.items()])
    unknown = sorted(set(df["horizon"].drop_nulls().unique().to_list()) - set(HORIZONS))
    if unknown or df["horizon"].null_count():
        raise ValueError(f"predictions: unknown or null horizons {unknown}; known: {list(HORIZONS)}")
    conf = pl.col("signal_confidence").fill_nan(None)
    if df.select(((conf < 0) | (conf > 1)).any()).item():
        raise ValueError("predictions: signal_confidence outside [0, 1]")
    keys = [*GROUP_KEYS, "ts_event"]
    if df.height and df.select(pl.struct(keys).is_duplicated().any()).item():
        raise ValueError(f"predictions: duplicate rows for the key {keys}")
    return df


def horizon_seconds(horizon: str) -> int:
    """Return the length of ``horizon`` in seconds."""
    if horizon not in HORIZON_SECONDS:
        raise ValueError(f"unknown horizon {horizon!r}; known: {list(HORIZON_SECONDS)}")
    return HORIZON_SECONDS[horizon]


def _finite_pairs(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"arrays differ in length: {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    dot = np.einsum("i,i->", dx, dy)  # not ``@``: no BLAS thread hand-off on short vectors
    return float(np.clip(dot / math.sqrt(np.einsum("i,i->", dx, dx) * np.einsum("i,i->", dy, dy)), -1.0, 1.0))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Return the 1-based ranks of ``x``, ties sharing their average rank (``scipy.stats.rankdata``)."""
    order = np.argsort(x)
    xs = x[order]
    new = np.empty(x.size, dtype=bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, x.size))
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def ic(a: ArrayLike, b: ArrayLike) -> float:
    """Return the Pearson correlation over the pairs where both are finite (NaN if under 2 or constant)."""
    return _pearson(*_finite_pairs(a, b))


def rank_ic(a: ArrayLike, b: ArrayLike) -> float:
    """Return the Spearman correlation over the pairs where both are finite (NaN if under 2 or constant)."""
    x, y = _finite_pairs(a, b)
    return _pearson(average_ranks(x), average_ranks(y)) if x.size >= 2 else math.nan


def sharpe_ratio(pnl: ArrayLike, horizon: str) -> float | None:
    """Return the annualized Sharpe of per-step PnL on non-overlapping steps of ``horizon``.

    A signal that never held a position (every step's PnL exactly 0) has Sharpe 0: staying flat earns nothing and
    must rank above losing money (before, it was null and ranked last, below every losing model)."""
    p = np.asarray(pnl, dtype=np.float64)
    if p.size < 2:
        return None
    if not p.any():
        return 0.0
    mean, std = float(p.mean()), float(p.std(ddof=1))
    if not (std > 0 and std > STD_REL_TOL * abs(mean)):
        return None
    return mean / std * math.sqrt(SECONDS_PER_YEAR / horizon_seconds(horizon))


def max_drawdown(pnl: ArrayLike) -> float:
    """Return the largest peak-to-trough drop of the cumulative PnL started at 0 (a positive number, 0 if none)."""
    cum = np.cumsum(np.asarray(pnl, dtype=np.float64))
    if cum.size == 0:
        return 0.0
    peak = np.maximum.accumulate(np.maximum(cum, 0.0))
    return float(np.max(peak - cum))


def _evaluable(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.all_horizontal(pl.col(c).is_finite() for c in SCORED_INPUTS))


def _step_rows(first: np.ndarray, t_us: np.ndarray, h_us: int) -> np.ndarray:
    """Return the row indices of the steps (see the module docstring), rows sorted by group then time."""
    n = t_us.size
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    slot = (t_us - t_us[start]) // h_us  # index of the last grid point at or before the row
    candidate = first.copy()
    candidate[1:] |= slot[1:] != slot[:-1]  # the first row at or after some grid point
    ci = np.flatnonzero(candidate)
    conflict = ~first[ci]
    conflict[1:] &= (t_us[ci[1:]] - t_us[ci[:-1]]) < h_us
    conflict[:1] = False
    # A conflicting candidate is one slot after the previous one and closer than h to it: it is dropped when the
    # previous one is kept, and kept otherwise (it is then >= 2 slots after the last kept). In a run of conflicts the
    # verdict therefore alternates, starting with "drop".
    last_clear = np.maximum.accumulate(np.where(conflict, -1, np.arange(ci.size)))
    keep = ~conflict | ((np.arange(ci.size) - last_clear) % 2 == 0)
    return ci[keep]


def _trading_steps(df: pl.DataFrame, horizon: str, config: SignalConfig) -> pl.DataFrame:
    keys = [k for k in GROUP_KEYS if k != "horizon"]
    rows = _evaluable(df.filter(pl.col("horizon") == horizon)).sort([*keys, "ts_event"])
    if rows.height:
        first = rows.select(
            pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys).fill_null(True)
        ).to_series()
        t_us = rows["ts_event"].dt.epoch("us").to_numpy()
        rows = rows[_step_rows(first.to_numpy(), t_us, horizon_seconds(horizon) * 1_000_000)]
    pos = pl.col("position")
    return (
        rows.with_columns(position=signal_expr(config, horizon))
        .with_columns(prev_position=pos.shift(1, fill_value=0.0).over(keys))
        .with_columns(
            pnl=pos * (pl.col("ret") - pl.col("funding")) - (pos - pl.col("prev_position")).abs() * pl.col("cost") / 2.0
        )
    )


def trading_steps(frame: pl.DataFrame, horizon: str | None = None, signal: SignalConfig | None = None) -> pl.DataFrame:
    """Return the non-overlapping steps of ``horizon`` (every horizon when None) with position, prev_position, pnl.

    The position is the signal under ``signal`` (the default :class:`SignalConfig` when None). Rows keep the input
    columns and are sorted by (backbone, variant, fold, symbol, ts_event) within a horizon.
    """
    if horizon is not None:
        horizon_seconds(horizon)  # an unknown horizon is an error, not an empty result
    return _all_steps(validate_predictions(frame), horizon, signal or SignalConfig())


def _all_steps(df: pl.DataFrame, horizon: str | None, config: SignalConfig) -> pl.DataFrame:
    present = set(df["horizon"].unique().to_list())
    horizons = [horizon] if horizon is not None else [h for h in HORIZONS if h in present]
    parts = [_trading_steps(df, h, config) for h in horizons]
    return pl.concat(parts) if parts else _trading_steps(df.clear(), next(iter(HORIZONS)), config)


def horizon_order() -> pl.Expr:
    """Return the position of ``horizon`` in ``HORIZONS`` (for sorting 1h, 4h, 1d, 7d in that order)."""
    return pl.col("horizon").replace_strict(list(HORIZONS), list(range(len(HORIZONS))), default=len(HORIZONS))


def _defined_corr(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    varies = (a.max() > a.min()) & (b.max() > b.min()) & (pl.len() >= 2)
    return pl.when(varies).then(pl.corr(a, b).fill_nan(None))


def fold_metrics(predictions: pl.DataFrame, signal: SignalConfig | None = None) -> pl.DataFrame:
    """Return one row of metrics per (backbone, variant, fold, symbol, horizon) (``FOLD_METRICS_SCHEMA``).

    The trading metrics are those of the signal under ``signal`` (the default :class:`SignalConfig` when None).
    ``ic`` / ``rank_ic`` / ``hit_rate`` / ``mae`` use every scorable row; hit rate counts rows with ret != 0 where
    sign(expected_return) == sign(ret). ``sharpe``, ``mean_pnl``, ``turnover`` (mean |change in position| per step),
    ``max_drawdown`` and ``exposure`` (share of steps holding a position) use the non-overlapping steps.
    """
    df = _evaluable(validate_predictions(predictions))
    keys = list(GROUP_KEYS)
    er, ret = pl.col("expected_return"), pl.col("ret")
    per_row = df.group_by(keys).agg(
        n_rows=pl.len(),
        ic=_defined_corr(er, ret),
        rank_ic=_defined_corr(er.rank("average"), ret.rank("average")),
        hit_rate=(er.sign() == ret.sign()).filter(ret != 0).mean(),
        mae=(er - ret).abs().mean(),
    )
    steps = _all_steps(df, None, signal or SignalConfig())
    cum = pl.col("pnl").cum_sum().over(keys)
    steps = steps.with_columns(drawdown=cum.cum_max().over(keys).clip(lower_bound=0.0) - cum)
    pos, pnl = pl.col("position"), pl.col("pnl")
    per_step = steps.group_by(keys).agg(
        n_steps=pl.len(),
        mean_pnl=pnl.mean(),
        std_pnl=pnl.std(ddof=1),
        turnover=(pos - pl.col("prev_position")).abs().mean(),
        max_drawdown=pl.col("drawdown").max(),
        exposure=(pos != 0).mean(),
        flat=(pnl == 0).all(),
    )
    mean, std = pl.col("mean_pnl"), pl.col("std_pnl")
    per_year = pl.lit(float(SECONDS_PER_YEAR)) / pl.col("horizon").replace_strict(HORIZON_SECONDS, default=None)
    enough = pl.col("n_steps") >= 2
    sharpe = (
        pl.when(enough & pl.col("flat"))
        .then(0.0)  # as sharpe_ratio: never in a position, Sharpe 0
        .when(enough & (std > 0) & (std > STD_REL_TOL * mean.abs()))
        .then(mean / std * per_year.sqrt())
    )
    out = per_row.join(per_step, on=keys, how="left").with_columns(sharpe=sharpe)
    out = out.select([pl.col(c).cast(dt) for c, dt in FOLD_METRICS_SCHEMA.items()])
    return out.sort(["backbone", "variant", "fold", "symbol", horizon_order()])


def calibration_table(predictions: pl.DataFrame, n_buckets: int = 10) -> pl.DataFrame:
    """Return the reliability table per (backbone, variant, horizon) over equal-width confidence buckets on [0, 1].

    Columns: backbone, variant, horizon, bucket, bucket_low, bucket_high, n, mean_confidence, hit_rate (share of
    rows where sign(expected_return) == sign(ret)). Rows with ret == 0 or no confidence are left out; confidence 1
    falls in the top bucket; empty buckets have no row.
    """
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    conf, er, ret = pl.col("signal_confidence"), pl.col("expected_return"), pl.col("ret")
    df = _evaluable(validate_predictions(predictions)).filter(conf.is_finite() & (ret != 0))
    bucket = (conf * n_buckets).floor().cast(pl.Int64).clip(0, n_buckets - 1)
    keys = ["backbone", "variant", "horizon"]
    out = (
        df.with_columns(bucket=bucket)
        .group_by([*keys, "bucket"])
        .agg(n=pl.len().cast(pl.Int64), mean_confidence=conf.mean(), hit_rate=(er.sign() == ret.sign()).mean())
        .with_columns(
            bucket_low=pl.col("bucket") / n_buckets,
            bucket_high=(pl.col("bucket") + 1) / n_buckets,
        )
    )
    cols = [*keys, "bucket", "bucket_low", "bucket_high", "n", "mean_confidence", "hit_rate"]
    return out.select(cols).sort(["backbone", "variant", horizon_order(), "bucket"])


def expected_calibration_error(table: pl.DataFrame) -> pl.DataFrame:
    """Return per (backbone, variant, horizon) ``n`` and ``ece`` = sum over buckets of n_b / N x |conf_b - hit_b|."""
    need = ["backbone", "variant", "horizon", "n", "mean_confidence", "hit_rate"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"calibration table: missing columns {missing}")
    gap = (pl.col("mean_confidence") - pl.col("hit_rate")).abs()
    return (
        table.group_by(["backbone", "variant", "horizon"])
        .agg(n=pl.col("n").sum(), ece=(pl.col("n") * gap).sum() / pl.col("n").sum())
        .sort(["backbone", "variant", horizon_order()])
    )
