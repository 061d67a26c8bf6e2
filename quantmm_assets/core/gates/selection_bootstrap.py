"""Block bootstraps of the model gate (DESIGN section 4): the selection-aware PnL interval and the ECE interval.

Steps are resampled in blocks of ``max(1 day, horizon)``: block codes are ``floor((ts - first ts) / block)``, and
a resample draws as many blocks as there are, with replacement (:func:`core.evaluation.bootstrap.day_resamples`
over the block codes). Every statistic here is a ratio of per-block sums, so a resample is a vector of block
multiplicities and all resamples are one matrix product.

**Selection-aware interval** (White's reality check, in Hansen's SPA manner, not studentized): the candidate ``c``
was picked among configurations ``k`` scored on the same steps. With ``m_k`` the mean step value of configuration
``k`` and ``m*_k`` its mean in a resample, ``T* = max_k (m*_k - m_k)`` is the resampled spread of the best of them;
the interval is ``[m_c - q_{(1+level)/2}(T*), m_c - q_{(1-level)/2}(T*)]``. With one configuration it is the basic
(reverse-percentile) bootstrap interval of ``m_c``; every configuration added can only lower it (same draws).

**ECE interval**: the expected calibration error over equal-width confidence buckets, ``sum_b |C_b - H_b| / N``
(``C_b`` the summed confidence, ``H_b`` the hits of bucket b), with its basic bootstrap interval
``[2 ece - q_hi, 2 ece - q_lo]``, lower end clipped at 0. ECE is biased upward on few steps (a calibrated forecast
over 90 steps has an ECE above 0.05 most of the time) and a resample adds the same bias again; the basic interval
subtracts it, where a percentile interval would put a calibrated forecast wholly above the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantmm_assets.core.evaluation.bootstrap import day_resamples

DAY_SECONDS = 24 * 3600
N_BUCKETS = 10


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval; ``n_blocks`` resampled, ``n_boot`` resamples (NaN if empty)."""

    estimate: float
    low: float
    high: float
    n_blocks: int
    n_boot: int


def block_codes(ts_us: np.ndarray, horizon_s: int) -> np.ndarray:
    """Return the block of each step: ``floor((ts - first ts) / max(1 day, horizon))``, as 0-based dense codes."""
    ts = np.asarray(ts_us, dtype=np.int64)
    if ts.size == 0:
        return np.zeros(0, dtype=np.int64)
    raw = (ts - ts.min()) // (max(DAY_SECONDS, int(horizon_s)) * 1_000_000)
    return np.unique(raw, return_inverse=True)[1].ravel().astype(np.int64)


def block_multiplicities(n_blocks: int, n_boot: int, seed: int) -> np.ndarray:
    """Return an ``(n_boot, n_blocks)`` array: how often each block is drawn in each resample of ``day_resamples``."""
    if n_boot < 1:
        raise ValueError(f"need n_boot >= 1, got {n_boot}")
    if n_blocks == 0:
        return np.zeros((n_boot, 0))
    # one row per block: the resample's rows are the drawn blocks themselves
    draws = np.stack(list(day_resamples(np.arange(n_blocks), n_boot, seed)))
    flat = (draws + np.arange(n_boot)[:, None] * n_blocks).ravel()
    return np.bincount(flat, minlength=n_boot * n_blocks).reshape(n_boot, n_blocks).astype(np.float64)


def _block_sums(codes: np.ndarray, values: np.ndarray, n_blocks: int) -> np.ndarray:
    sums = np.zeros((n_blocks, values.shape[1]))
    np.add.at(sums, codes, values)
    return sums


def _quantiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"need 0 < level < 1, got {level}")
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return np.nan, np.nan
    low, high = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def selection_interval(
    values: np.ndarray, codes: np.ndarray, chosen: int, weights: np.ndarray, level: float
) -> Interval:
    """Return the selection-aware interval of the mean of column ``chosen`` of ``values`` (steps x configurations).

    ``codes`` are the steps' block codes (:func:`block_codes`), ``weights`` the resamples' block multiplicities
    (:func:`block_multiplicities` over ``codes.max() + 1`` blocks). See the module docstring.
    """
    x = np.asarray(values, dtype=np.float64)
    n_boot, n_blocks = weights.shape
    if (
        x.ndim != 2
        or x.shape[0] != codes.size
        or not 0 <= chosen < x.shape[1]
        or (codes.size and codes.max() >= n_blocks)
    ):
        raise ValueError(f"values {x.shape} do not match {codes.size} steps in {n_blocks} blocks and column {chosen}")
    if x.shape[0] == 0:
        return Interval(np.nan, np.nan, np.nan, 0, n_boot)
    counts = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    means = x.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_means = (weights @ _block_sums(codes, x, n_blocks)) / (weights @ counts)[:, None]
    q_low, q_high = _quantiles((boot_means - means).max(axis=1), level)
    m = float(means[chosen])
    return Interval(m, m - q_high, m - q_low, int(np.count_nonzero(counts)), n_boot)


def ece_interval(
    confidence: np.ndarray, hit: np.ndarray, codes: np.ndarray, weights: np.ndarray, level: float
) -> Interval:
    """Return the ECE of ``confidence`` vs ``hit`` (0/1) over ``N_BUCKETS`` buckets and its basic block interval.

    ``codes`` and ``weights`` as for :func:`selection_interval`. Rows whose confidence is not finite are left out;
    confidence 1 falls in the top bucket. Resamples without a row are left out of the interval.
    """
    conf, hits = np.asarray(confidence, dtype=np.float64), np.asarray(hit, dtype=np.float64)
    ok = np.isfinite(conf)
    conf, hits, codes = conf[ok], hits[ok], np.asarray(codes)[ok]
    n_boot, n_blocks = weights.shape
    if conf.size == 0:
        return Interval(np.nan, np.nan, np.nan, 0, n_boot)
    bucket = np.clip(np.floor(conf * N_BUCKETS).astype(np.int64), 0, N_BUCKETS - 1)
    # per block and bucket: summed confidence minus hits; per block: its rows
    gap = np.zeros((n_blocks, N_BUCKETS))
    np.add.at(gap, (codes, bucket), conf - hits)
    counts = np.bincount(codes, minlength=n_blocks).astype(np.float64)
    ece = float(np.abs(gap.sum(axis=0)).sum() / conf.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.abs(weights @ gap).sum(axis=1) / (weights @ counts)
    q_low, q_high = _quantiles(boot, level)
    n = int(np.count_nonzero(counts))
    return Interval(ece, max(0.0, 2.0 * ece - q_high), max(0.0, 2.0 * ece - q_low), n, n_boot)
