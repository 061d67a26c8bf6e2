"""Paired bootstrap over UTC days for the backbone comparison (DESIGN section 3, "Evaluation").

Labels overlap within a day (a 1d return starts at every 5-minute bar) and rows of one day share the market's
moves across symbols, so a day is the resampling unit: a resample draws as many days as there are, with
replacement, and takes every row of each drawn day. The statistic sees row indices, so two variants scored on the
same resampled rows give a paired comparison (e.g. rank IC of ``full`` minus rank IC of ``no_text``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from quantmm_assets.core.evaluation.metrics import horizon_order, validate_predictions

CHUNK_ROWS = 1 << 18  # resampled rows built per vectorized draw: cache-sized chunks are several times faster
PAIR_KEYS = ("backbone", "fold", "symbol", "ts_event", "horizon")


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic on the full sample and its percentile interval over day resamples."""

    estimate: float
    low: float
    high: float
    n_days: int
    n_boot: int

    def excludes(self, value: float = 0.0) -> bool:
        """Return whether ``value`` lies outside the interval (False when the interval is undefined)."""
        return bool(value < self.low or value > self.high)


def day_resamples(day: np.ndarray, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` row-index arrays, each the rows of ``n_days`` days drawn with replacement, in draw order."""
    codes = np.unique(np.asarray(day), return_inverse=True)[1].ravel()
    by_day = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.cumsum(counts) - counts
    n_days, rng = counts.size, np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_ROWS // max(codes.size, 1))
    for lo in range(0, n_boot, per_chunk):
        draws = rng.integers(0, n_days, size=(min(per_chunk, n_boot - lo), n_days))
        lens = counts[draws].ravel()
        ends = np.cumsum(lens)
        # position k of the flat draw belongs to drawn day j: its row is by_day[starts[day_j] + k - (ends_j - lens_j)]
        offset = np.repeat(starts[draws.ravel()] - (ends - lens), lens)
        offset += np.arange(offset.size)
        rows = by_day[offset]
        yield from np.split(rows, np.cumsum(lens.reshape(draws.shape).sum(axis=1))[:-1])


def paired_day_bootstrap(
    day: np.ndarray,
    stat: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapResult:
    """Return ``stat`` on all rows and its percentile interval over ``n_boot`` resamples of whole days.

    ``day`` labels each row with its UTC day (any sortable values); ``stat`` receives an array of row indices
    (the concatenated rows of the drawn days) and returns a float. Resamples where ``stat`` is NaN are left out of
    the interval. Deterministic for a given ``seed``.
    """
    day = np.asarray(day).ravel()
    if day.size == 0:
        raise ValueError("paired_day_bootstrap needs at least one row")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < level < 1, got n_boot={n_boot}, level={level}")
    boots = np.array([stat(rows) for rows in day_resamples(day, n_boot, seed)], dtype=np.float64)
    boots = boots[np.isfinite(boots)]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha]) if boots.size else (math.nan, math.nan)
    n_days = int(np.unique(day).size)
    return BootstrapResult(float(stat(np.arange(day.size))), float(low), float(high), n_days, n_boot)


def utc_days(ts: pl.Series) -> np.ndarray:
    """Return the UTC day of each timestamp as days since the epoch (int64)."""
    return ts.dt.convert_time_zone("UTC").dt.date().cast(pl.Int32).cast(pl.Int64).to_numpy()


class WeightedRanks:
    """Average ranks of a resample without sorting it: a resample is the original rows with multiplicities.

    A row of value v in a resample where row i appears w_i times has rank (weight below v) + (weight at v + 1) / 2,
    which only needs the tie groups of the original values, computed once.
    """

    def __init__(self, x: np.ndarray) -> None:
        values, self.group = np.unique(np.asarray(x, dtype=np.float64), return_inverse=True)
        self.group = self.group.ravel()
        self.n_groups = values.size

    def ranks(self, weights: np.ndarray) -> np.ndarray:
        """Return each original row's average rank in the resample of multiplicities ``weights``."""
        at = np.bincount(self.group, weights=weights, minlength=self.n_groups)
        rank = np.cumsum(at)
        rank -= 0.5 * at
        rank += 0.5
        return rank[self.group]


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Return the Pearson correlation of rows repeated ``w`` times (NaN if constant)."""
    total = w.sum()
    if total < 2:
        return math.nan
    # einsum, not ``@``: a BLAS dot of this size may hand off to threads, which is slow on a busy machine
    dx, dy = x - np.einsum("i,i->", w, x) / total, y - np.einsum("i,i->", w, y) / total
    wx = w * dx
    den = math.sqrt(np.einsum("i,i->", wx, dx) * np.einsum("i,i->", w * dy, dy))
    return float(np.einsum("i,i->", wx, dy) / den) if den > 0 else math.nan


def _pair(predictions: pl.DataFrame, variant_a: str, variant_b: str) -> pl.DataFrame:
    cols = ["expected_return", "ret"]
    df = validate_predictions(predictions).filter(pl.col("expected_return").is_finite() & pl.col("ret").is_finite())
    a = df.filter(pl.col("variant") == variant_a).select(*PAIR_KEYS, *cols)
    b = df.filter(pl.col("variant") == variant_b).select(*PAIR_KEYS, pl.col("expected_return").alias("er_b"))
    return a.rename({"expected_return": "er_a"}).join(b, on=list(PAIR_KEYS), how="inner")


def ablation_significance(
    predictions: pl.DataFrame,
    variant_a: str = "full",
    variant_b: str = "no_text",
    metric: str = "rank_ic",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pl.DataFrame:
    """Return per (backbone, horizon) ``metric(a) - metric(b)`` on the rows both variants predicted, with its interval.

    ``metric`` is ``rank_ic`` or ``ic`` (of expected_return vs ret, pooled over folds and symbols) or ``mae``
    (lower is better, so a negative difference favours ``a``). Columns: backbone, horizon, metric, variant_a,
    variant_b, n_rows, n_days, estimate, low, high, n_boot.
    """
    if metric not in ("rank_ic", "ic", "mae"):
        raise ValueError(f"metric must be rank_ic, ic or mae, got {metric!r}")
    pairs = _pair(predictions, variant_a, variant_b)
    out = []
    for (backbone, horizon), g in pairs.group_by(["backbone", "horizon"], maintain_order=True):
        er_a, er_b, ret = (g[c].to_numpy() for c in ("er_a", "er_b", "ret"))
        n = g.height
        if metric == "rank_ic":
            ra, rb, rr = WeightedRanks(er_a), WeightedRanks(er_b), WeightedRanks(ret)

            def stat(rows: np.ndarray, ra=ra, rb=rb, rr=rr, n=n) -> float:
                w = np.bincount(rows, minlength=n).astype(np.float64)
                r = rr.ranks(w)
                return weighted_pearson(ra.ranks(w), r, w) - weighted_pearson(rb.ranks(w), r, w)

        elif metric == "ic":

            def stat(rows: np.ndarray, er_a=er_a, er_b=er_b, ret=ret, n=n) -> float:
                w = np.bincount(rows, minlength=n).astype(np.float64)
                return weighted_pearson(er_a, ret, w) - weighted_pearson(er_b, ret, w)

        else:
            gap = np.abs(er_a - ret) - np.abs(er_b - ret)

            def stat(rows: np.ndarray, gap=gap) -> float:
                return float(gap[rows].mean())

        res = paired_day_bootstrap(utc_days(g["ts_event"]), stat, n_boot=n_boot, seed=seed, level=level)
        out.append((backbone, horizon, metric, variant_a, variant_b, n, res.n_days, res.estimate, res.low, res.high))
    schema = {
        "backbone": pl.Utf8,
        "horizon": pl.Utf8,
        "metric": pl.Utf8,
        "variant_a": pl.Utf8,
        "variant_b": pl.Utf8,
        "n_rows": pl.Int64,
        "n_days": pl.Int64,
        "estimate": pl.Float64,
        "low": pl.Float64,
        "high": pl.Float64,
    }
    frame = pl.DataFrame(out, schema=schema, orient="row").with_columns(n_boot=pl.lit(n_boot, pl.Int64))
    return frame.sort(["backbone", horizon_order()])
