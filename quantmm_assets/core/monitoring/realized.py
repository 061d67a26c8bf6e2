"""Realized monitoring of served predictions: each logged prediction scored once its label is known (DESIGN 3-5).

- **Join** (:func:`join_realized`): a prediction-log row meets its label on (symbol, horizon, bar_ts == ts_event). It
  is **realized** when the label is complete and ``ts_available <= now``; otherwise it is **pending** and its label
  values are null (no look-ahead: a label known only after ``now`` is never read, even when the frame holds it).
- **Steps** (:func:`realized_steps`): served predictions of horizon h are made every bar and overlap, so every
  figure is computed on non-overlapping steps. Rule: :func:`core.monitoring.drift.thin_to_horizon` (the drift
  monitor's), applied per series (symbol, horizon, role, plus any grouping key) to the realized rows whose inputs
  are finite: the first row, then repeatedly the first at least h after the last kept. It is not the evaluation's
  grid rule (:func:`core.evaluation.metrics.trading_steps`, anchored at a fold's first row): a live log has no fold
  anchor, and the greedy rule keeps earlier steps fixed as new labels arrive.
- **PnL** per step of the logged positions (DESIGN section 3): ``position x (ret - funding) - |position - previous
  position| x cost / 2``, previous position 0 at a series' start; ``cost`` is the label's ``cost`` (``cost_label``,
  the round-trip cost the serving signal used too). A row lacking expected_return, position, ret, cost or funding
  is not scored (as the evaluation).
- **Intervals** (90%): hit rates by Wilson's score interval; a mean step PnL by the normal approximation
  ``mean +- z sd / sqrt(n)`` (sd ddof 1, z = 1.645). Steps of different symbols at the same time share market
  moves, so a pooled interval treats correlated steps as independent and is narrower than the truth.
- **Evidence**: every figure carries its n; under :data:`MIN_STEPS` realized steps the ``verdict`` is
  ``insufficient evidence`` (the figures are shown, not evidence), with none ``no realized predictions yet``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from quantmm_assets.core.evaluation.evidence import INSUFFICIENT
from quantmm_assets.core.evaluation.metrics import (
    PREDICTION_SCHEMA,
    calibration_table,
    expected_calibration_error,
    horizon_order,
    ic,
    rank_ic,
)
from quantmm_assets.core.monitoring.drift import thin_to_horizon
from quantmm_assets.core.schemas import PREDICTION_LOG_SCHEMA, UTC_TS

Z90 = NormalDist().inv_cdf(0.95)  # two-sided 90%: 1.6449
MIN_STEPS = 30  # realized non-overlapping steps below which a figure is not evidence (as evidence.MIN_HELD_STEPS)
NO_REALIZED = "no realized predictions yet"
SUFFICIENT = "sufficient evidence"
LOG_SCHEMA = PREDICTION_LOG_SCHEMA  # the prediction log's columns
JOIN_LOG_COLUMNS = ("symbol", "horizon", "bar_ts", "model_version", "role", "expected_return")
LABEL_COLUMNS = ("symbol", "ts_event", "horizon", "ts_available", "ret", "rv", "cost", "funding", "complete")
LABEL_VALUES: dict[str, pl.DataType] = {
    "ret": pl.Float64,
    "rv": pl.Float64,
    "cost_label": pl.Float64,
    "funding": pl.Float64,
}
PNL_INPUTS = ("expected_return", "position", "ret", "cost_label", "funding")  # a step needs them all finite
SERIES = ("symbol", "horizon", "role")
PERFORMANCE_STATS: dict[str, pl.DataType] = {
    "n_predictions": pl.Int64,
    "n_realized": pl.Int64,
    "n_pending": pl.Int64,
    "n_steps": pl.Int64,  # realized non-overlapping steps scored
    "n_held": pl.Int64,  # of them with position != 0
    "ic": pl.Float64,
    "rank_ic": pl.Float64,
    "hit_n": pl.Int64,  # steps with ret != 0
    "hit_rate": pl.Float64,  # sign(expected_return) == sign(ret)
    "hit_low": pl.Float64,
    "hit_high": pl.Float64,
    "held_hit_n": pl.Int64,  # steps with position != 0 and ret != 0
    "held_hit_rate": pl.Float64,  # sign(position) == sign(ret)
    "held_hit_low": pl.Float64,
    "held_hit_high": pl.Float64,
    "mean_pnl": pl.Float64,
    "pnl_low": pl.Float64,
    "pnl_high": pl.Float64,
    "total_pnl": pl.Float64,
    "verdict": pl.Utf8,
    "note": pl.Utf8,
}
ECE_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "horizon": pl.Utf8,
    "role": pl.Utf8,
    "n": pl.Int64,
    "ece": pl.Float64,
    "verdict": pl.Utf8,
    "note": pl.Utf8,
}
CALIBRATION_SCHEMA: dict[str, pl.DataType] = {
    "horizon": pl.Utf8,
    "role": pl.Utf8,
    "bucket": pl.Int64,
    "bucket_low": pl.Float64,
    "bucket_high": pl.Float64,
    "n": pl.Int64,
    "mean_confidence": pl.Float64,
    "hit_rate": pl.Float64,
}


def require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the columns of ``columns`` that ``frame`` lacks."""
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"{what} must be a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}")


def _utc(frame: pl.DataFrame, col: str, what: str) -> pl.Expr:
    dtype = frame.schema[col]
    if dtype == pl.Null:
        return pl.col(col).cast(UTC_TS)
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise ValueError(f"{what}: {col} must be a timezone-aware datetime column, got {dtype}")
    return pl.col(col).dt.convert_time_zone("UTC").cast(UTC_TS)


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def wilson_interval(hits: int, n: int, z: float = Z90) -> tuple[float | None, float | None]:
    """Return Wilson's score interval of the share ``hits / n`` (None, None without rows)."""
    if n <= 0:
        return None, None
    p, z2 = hits / n, z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def mean_interval(values: ArrayLike, z: float = Z90) -> tuple[float | None, float | None, float | None]:
    """Return (mean, low, high): the normal-approximation interval ``mean +- z sd / sqrt(n)`` (bounds None if n < 2)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return None, None, None
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    half = z * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def evidence_note(n_steps: int, n_realized: int, what: str = "realized non-overlapping steps") -> tuple[str, str]:
    """Return (verdict, note) for a figure resting on ``n_steps`` steps out of ``n_realized`` realized rows."""
    if n_realized == 0:
        return NO_REALIZED, "no realized predictions yet: every label is pending"
    if n_steps < MIN_STEPS:
        return INSUFFICIENT, f"{n_steps} {what} < {MIN_STEPS}: the figures are not evidence"
    return SUFFICIENT, f"{n_steps} {what}"


def _keys(by: Sequence[str], *always: str) -> list[str]:
    return list(dict.fromkeys([*by, *always]))


def sort_keys(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Sort ``frame`` by ``keys``, horizons in the order 1h, 4h, 1d, 7d."""
    if not keys or frame.is_empty():
        return frame
    return frame.sort([horizon_order() if k == "horizon" else pl.col(k) for k in keys])


def join_realized(log: pl.DataFrame, labels: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Return the log rows with their label's ``ret, rv, cost_label, funding, ts_available`` and ``realized``.

    ``realized``: the label is complete and ``ts_available <= now``; the label values of a pending row are null.
    Rows are sorted by symbol, horizon, role, model_version, bar_ts.
    """
    require(log, JOIN_LOG_COLUMNS, "prediction log")
    require(labels, LABEL_COLUMNS, "labels")
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    casts = [pl.col(c).cast(dt) for c, dt in LOG_SCHEMA.items() if c in log.columns and dt != UTC_TS]
    stamps = [_utc(log, c, "prediction log").alias(c) for c in ("bar_ts", "logged_at") if c in log.columns]
    left = log.with_columns(*casts, *stamps)
    keys = ["symbol", "horizon", "bar_ts"]
    right = labels.select(
        pl.col("symbol").cast(pl.Utf8),
        pl.col("horizon").cast(pl.Utf8),
        _utc(labels, "ts_event", "labels").alias("bar_ts"),
        _utc(labels, "ts_available", "labels").alias("ts_available"),
        pl.col("ret").cast(pl.Float64),
        pl.col("rv").cast(pl.Float64),
        pl.col("cost").cast(pl.Float64).alias("cost_label"),
        pl.col("funding").cast(pl.Float64),
        pl.col("complete").cast(pl.Boolean).alias("_complete"),
    )
    if right.height and right.select(pl.struct(keys).is_duplicated().any()).item():
        raise ValueError("labels: duplicate rows for the key (symbol, ts_event, horizon)")
    clash = [c for c in (*LABEL_VALUES, "ts_available", "realized") if c in left.columns]
    left = left.drop(clash)
    on_time = pl.col("ts_available") <= pl.lit(now.astimezone(UTC)).cast(UTC_TS)
    realized = (pl.col("_complete") & on_time).fill_null(False)
    out = (
        left.join(right, on=keys, how="left")
        .with_columns(realized=realized)
        .with_columns([pl.when(pl.col("realized")).then(pl.col(c)).alias(c) for c in LABEL_VALUES])
        .drop("_complete")
    )
    return out.sort(["symbol", "horizon", "role", "model_version", "bar_ts"])


def thin_series(rows: pl.DataFrame, series: Sequence[str]) -> pl.DataFrame:
    """Return one row per non-overlapping window of the horizon per series (``thin_to_horizon``), sorted."""
    rows = rows.sort([*series, "bar_ts", "model_version"] if "model_version" in rows.columns else [*series, "bar_ts"])
    if rows.is_empty():
        return rows
    keep, offset = [], 0
    for part in rows.partition_by(list(series), maintain_order=True):
        ts = part["bar_ts"].dt.epoch("us").to_numpy()
        _, idx = thin_to_horizon(ts, np.arange(part.height, dtype=np.float64), str(part["horizon"][0]))
        keep.append(idx.astype(np.int64) + offset)
        offset += part.height
    return rows[np.concatenate(keep)]


def with_pnl(steps: pl.DataFrame, series: Sequence[str], position: str = "position", out: str = "pnl") -> pl.DataFrame:
    """Add the after-cost PnL of ``position`` per step (see the module docstring), chained per series."""
    pos = pl.col(position)
    prev = pos.shift(1, fill_value=0.0).over(list(series)) if steps.height else pos
    return steps.with_columns(
        (pos * (pl.col("ret") - pl.col("funding")) - (pos - prev).abs() * pl.col("cost_label") / 2.0).alias(out)
    )


def realized_steps(
    joined: pl.DataFrame, series: Sequence[str] = SERIES, inputs: Sequence[str] = PNL_INPUTS
) -> pl.DataFrame:
    """Return the realized rows whose ``inputs`` are finite, thinned per series, with ``pnl`` when it can be."""
    finite = pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in inputs)
    steps = thin_series(joined.filter(pl.col("realized") & finite), series)
    if all(c in inputs for c in ("position", "ret", "cost_label", "funding")):
        steps = with_pnl(steps, series)
    return steps


def _hits(pred: np.ndarray, ret: np.ndarray) -> tuple[int, float | None, float | None, float | None]:
    signed = ret != 0
    n = int(signed.sum())
    hits = int((np.sign(pred[signed]) == np.sign(ret[signed])).sum())
    low, high = wilson_interval(hits, n)
    return n, (hits / n if n else None), low, high


def _performance(steps: pl.DataFrame) -> dict[str, object]:
    er, ret = steps["expected_return"].to_numpy(), steps["ret"].to_numpy()
    pos, pnl = steps["position"].to_numpy(), steps["pnl"].to_numpy()
    held = pos != 0
    hit_n, hit, hit_low, hit_high = _hits(er, ret)
    held_n, held_hit, held_low, held_high = _hits(pos[held], ret[held])
    mean, low, high = mean_interval(pnl)
    return {
        "n_steps": steps.height,
        "n_held": int(held.sum()),
        "ic": _finite(ic(er, ret)),
        "rank_ic": _finite(rank_ic(er, ret)),
        "hit_n": hit_n,
        "hit_rate": hit,
        "hit_low": hit_low,
        "hit_high": hit_high,
        "held_hit_n": held_n,
        "held_hit_rate": held_hit,
        "held_hit_low": held_low,
        "held_hit_high": held_high,
        "mean_pnl": mean,
        "pnl_low": low,
        "pnl_high": high,
        "total_pnl": float(pnl.sum()) if pnl.size else None,
    }


def group_counts(joined: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Return per group of ``keys`` the logged, realized and pending predictions."""
    return joined.group_by(keys).agg(
        n_predictions=pl.len().cast(pl.Int64),
        n_realized=pl.col("realized").sum().cast(pl.Int64),
        n_pending=(~pl.col("realized")).sum().cast(pl.Int64),
    )


def realized_performance(joined: pl.DataFrame, by: Sequence[str] = ("horizon",)) -> pl.DataFrame:
    """Return per group of ``by`` and role the counts, IC, rank IC, hit rates and step PnL with intervals.

    Columns: the keys, then :data:`PERFORMANCE_STATS`. Steps are thinned per (``by``, symbol, horizon, role) series
    and pooled within a group (see the module docstring).
    """
    require(joined, (*JOIN_LOG_COLUMNS, "position", *LABEL_VALUES, "realized"), "joined predictions")
    require(joined, by, "joined predictions (by)")
    keys = _keys(by, "role")
    steps = realized_steps(joined, _keys(keys, *SERIES))
    parts = dict(steps.group_by(keys))
    rows = []
    for row in group_counts(joined, keys).iter_rows(named=True):
        part = parts.get(tuple(row[k] for k in keys))
        stats = _performance(part if part is not None else steps.clear())
        verdict, note = evidence_note(int(stats["n_steps"]), row["n_realized"])
        rows.append({**row, **stats, "verdict": verdict, "note": note})
    schema = {**{k: joined.schema[k] for k in keys}, **PERFORMANCE_STATS}
    return sort_keys(pl.DataFrame(rows, schema=schema, orient="row"), keys)


def _as_predictions(steps: pl.DataFrame) -> pl.DataFrame:
    """The steps in the evaluation's ``PREDICTION_SCHEMA`` (backbone = role), for its calibration functions."""
    given = {
        "backbone": pl.col("role"),
        "variant": pl.lit("served"),
        "fold": pl.lit(0, pl.Int64),
        "ts_event": pl.col("bar_ts"),
        "cost": pl.col("cost_label"),
    }
    cols = [
        (given[c] if c in given else pl.col(c) if c in steps.columns else pl.lit(None)).cast(dt).alias(c)
        for c, dt in PREDICTION_SCHEMA.items()
    ]
    return steps.select(cols)


def calibration_report(joined: pl.DataFrame, n_buckets: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the confidence reliability table and the ECE summary per (horizon, role) on realized steps.

    The steps are those of :func:`realized_performance`; the table and ECE are the evaluation's own
    (:func:`calibration_table`, :func:`expected_calibration_error`: equal-width buckets on [0, 1], rows with
    ret == 0 or no confidence left out). Table: :data:`CALIBRATION_SCHEMA`; summary: :data:`ECE_SUMMARY_SCHEMA`.
    """
    require(
        joined, (*JOIN_LOG_COLUMNS, "position", "signal_confidence", *LABEL_VALUES, "realized"), "joined predictions"
    )
    keys = ["horizon", "role"]
    steps = realized_steps(joined)
    table = calibration_table(_as_predictions(steps), n_buckets).rename({"backbone": "role"})
    table = sort_keys(table.select(list(CALIBRATION_SCHEMA)).cast(CALIBRATION_SCHEMA), keys)  # type: ignore[arg-type]
    ece = expected_calibration_error(table.with_columns(backbone=pl.col("role"), variant=pl.lit("served")))
    ece = ece.select(pl.col("backbone").alias("role"), "horizon", "n", "ece")
    rows = []
    for row in group_counts(joined, keys).join(ece, on=keys, how="left").iter_rows(named=True):
        n = int(row["n"] or 0)
        verdict, note = evidence_note(n, row["n_realized"], "realized non-overlapping steps with a confidence")
        rows.append({**{k: row[k] for k in keys}, "n": n, "ece": row["ece"], "verdict": verdict, "note": note})
    return table, sort_keys(pl.DataFrame(rows, schema=ECE_SUMMARY_SCHEMA, orient="row"), keys)
