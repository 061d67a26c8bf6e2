"""Prediction drift: the population stability index (PSI) of live predictions against a version's reference.

- **PSI** (:func:`psi`): bins at the reference's quantiles (``n_bins`` of them; edges that coincide, as in a
  reference with ties, are merged, so there may be fewer bins), the outer bins open-ended so that a live value
  outside the reference's range lands in an end bin; a value on an edge belongs to the bin above it.
  ``PSI = sum_b (q_b - p_b) ln(q_b / p_b)``, ``p_b`` and ``q_b`` the reference's and the sample's shares of bin b.
  An empty bin would make it infinite, so each share is floored at half an observation: ``max(count, 0.5) / n``.
  The floor shrinks with the sample (a fixed 1e-4 would make one empty bin of a 30-point sample weigh about 0.7).
- **Thinning** (:func:`thin_to_horizon`): predictions of horizon h made every 5 minutes overlap (288 of a 1d
  horizon are one observation, not 288). Kept: the first prediction, then repeatedly the first one at least h
  after the last kept, so that no two kept windows ``[t, t + h)`` overlap. Non-finite values are dropped first.
- **Threshold** (:func:`calibrated_psi_threshold`): the PSI of a small sample is large without any drift (about
  (bins - 1) / n: 0.3 for 30 points in 10 bins), so a fixed 0.1 fires on most undrifted samples. The threshold is
  the ``quantile`` of the null distribution of the PSI between the thinned reference and samples of the live
  sample's size drawn from the thinned reference itself. The draws are **contiguous blocks**, not iid points: the
  live sample is a contiguous stretch of time and thinned predictions can still be autocorrelated (a 1h horizon
  keeps every 12th 5m prediction), so a block wanders as a live sample does, where iid draws would understate the
  null's spread and fire too often. Each block is compared with the rest of the reference (the bins stay those of
  the whole reference): a block compared with a reference that contains it would shrink the null by about
  (m - n) / (m + n) and fire too often. The rest must stay large, so :func:`drift_decision` compares at most half
  the thinned reference's length of live points (the newest ones).
- **Decision** (:func:`drift_decision`): drifted when the PSI of the newest thinned live predictions exceeds the
  calibrated threshold. With fewer than ``min_live`` thinned live points, or a reference shorter than twice that,
  it says so and does not fire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from quantmm_assets.core.evaluation.metrics import horizon_seconds

HALF_COUNT = 0.5  # the floor of a bin's count (see the module docstring)
DEFAULT_BINS = 10
DEFAULT_MIN_LIVE = 30
DEFAULT_QUANTILE = 0.99
DEFAULT_NULL_DRAWS = 500
NULL_METHOD = "contiguous blocks of the thinned reference"


@dataclass(frozen=True)
class NullSummary:
    """The calibrated threshold and the null distribution of the PSI it was read from."""

    threshold: float
    quantile: float
    n_null: int
    n_sample: int
    n_reference: int
    mean: float
    median: float
    q90: float
    max: float
    method: str = NULL_METHOD


@dataclass(frozen=True)
class DriftDecision:
    """Whether live predictions drifted from the reference, and the evidence (NaN PSI/threshold: no decision)."""

    psi: float
    threshold: float
    n_live_thinned: int
    n_reference_thinned: int
    drifted: bool
    reason: str
    null: NullSummary | None = None


def _sorted_finite(ts_us: ArrayLike, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(ts_us, dtype=np.int64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if ts.shape != v.shape:
        raise ValueError(f"timestamps and values differ in length: {ts.size} and {v.size}")
    ok = np.isfinite(v)
    ts, v = ts[ok], v[ok]
    order = np.argsort(ts, kind="stable")
    return ts[order], v[order]


def quantile_edges(reference: ArrayLike, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Return the interior bin edges: the reference's 1/n_bins ... (n_bins-1)/n_bins quantiles, made unique."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        raise ValueError("psi: the reference holds no finite value")
    if n_bins < 2:
        raise ValueError(f"psi: n_bins must be at least 2, got {n_bins}")
    return np.unique(np.quantile(ref, np.linspace(0.0, 1.0, n_bins + 1))[1:-1])


def _shares(counts: np.ndarray, n: int) -> np.ndarray:
    return np.maximum(counts, HALF_COUNT) / n


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def _psi(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """PSI of shares ``q`` (last axis) against ``p``."""
    return np.sum((q - p) * np.log(q / p), axis=-1)


def psi(reference: ArrayLike, sample: ArrayLike, n_bins: int = DEFAULT_BINS) -> float:
    """Return the PSI of ``sample`` against ``reference`` (non-finite values of either are left out)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    sam = np.asarray(sample, dtype=np.float64).ravel()
    ref, sam = ref[np.isfinite(ref)], sam[np.isfinite(sam)]
    if sam.size == 0:
        raise ValueError("psi: the sample holds no finite value")
    edges = quantile_edges(ref, n_bins)
    return float(_psi(_shares(_counts(ref, edges), ref.size), _shares(_counts(sam, edges), sam.size)))


def thin_to_horizon(ts_us: ArrayLike, values: ArrayLike, horizon: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (ts, values) sorted by time with one prediction per non-overlapping window of ``horizon``."""
    ts, v = _sorted_finite(ts_us, values)
    h_us = horizon_seconds(horizon) * 1_000_000
    keep: list[int] = []
    i = 0
    while i < ts.size:
        keep.append(i)
        i = int(np.searchsorted(ts, ts[i] + h_us, side="left"))
    idx = np.asarray(keep, dtype=np.int64)
    return ts[idx], v[idx]


def _null(
    ref: np.ndarray, n_sample: int, n_bins: int, quantile: float, n_null: int, seed: int
) -> tuple[NullSummary, np.ndarray, np.ndarray]:
    """The null PSI of ``n_sample``-long contiguous blocks of ``ref`` (thinned) against the rest of it; also the
    edges and the whole reference's shares."""
    if not 1 <= n_sample < ref.size:
        raise ValueError(f"n_sample must lie in [1, {ref.size - 1}] (thinned reference: {ref.size}), got {n_sample}")
    if not 0.0 < quantile < 1.0 or n_null < 1:
        raise ValueError(f"quantile must lie in (0, 1) and n_null be positive, got {quantile} and {n_null}")
    edges = quantile_edges(ref, n_bins)
    p = _shares(_counts(ref, edges), ref.size)
    onehot = np.zeros((ref.size + 1, edges.size + 1), dtype=np.int64)
    onehot[np.arange(1, ref.size + 1), np.searchsorted(edges, ref, side="right")] = 1
    cum = np.cumsum(onehot, axis=0)  # cum[i]: bin counts of ref[:i]
    starts = np.random.default_rng(seed).integers(0, ref.size - n_sample + 1, size=n_null)
    block = cum[starts + n_sample] - cum[starts]
    # each block against the rest of the reference: disjoint, as the live sample and the reference are
    null = _psi(_shares(cum[-1] - block, ref.size - n_sample), _shares(block, n_sample))
    summary = NullSummary(
        threshold=float(np.quantile(null, quantile)),
        quantile=quantile,
        n_null=n_null,
        n_sample=n_sample,
        n_reference=int(ref.size),
        mean=float(null.mean()),
        median=float(np.median(null)),
        q90=float(np.quantile(null, 0.9)),
        max=float(null.max()),
    )
    return summary, edges, p


def calibrated_psi_threshold(
    reference_ts_us: ArrayLike,
    reference_values: ArrayLike,
    horizon: str,
    n_sample: int,
    quantile: float = DEFAULT_QUANTILE,
    n_null: int = DEFAULT_NULL_DRAWS,
    seed: int = 0,
    n_bins: int = DEFAULT_BINS,
) -> NullSummary:
    """Return the ``quantile`` of the PSI of ``n_null`` contiguous blocks of ``n_sample`` thinned reference points
    against the rest of the thinned reference (the threshold), with the null's summary."""
    _, ref = thin_to_horizon(reference_ts_us, reference_values, horizon)
    return _null(ref, n_sample, n_bins, quantile, n_null, seed)[0]


def drift_decision(
    reference_ts_us: ArrayLike,
    reference_values: ArrayLike,
    live_ts_us: ArrayLike,
    live_values: ArrayLike,
    horizon: str,
    *,
    min_live: int = DEFAULT_MIN_LIVE,
    n_bins: int = DEFAULT_BINS,
    quantile: float = DEFAULT_QUANTILE,
    n_null: int = DEFAULT_NULL_DRAWS,
    seed: int = 0,
) -> DriftDecision:
    """Decide whether the live predictions of ``horizon`` drifted from the reference (see the module docstring)."""
    _, ref = thin_to_horizon(reference_ts_us, reference_values, horizon)
    _, live = thin_to_horizon(live_ts_us, live_values, horizon)
    n_ref, n_live = int(ref.size), int(live.size)
    if n_live < min_live:
        reason = f"insufficient live evidence: {n_live} thinned predictions (one per {horizon}) < {min_live}"
        return DriftDecision(math.nan, math.nan, n_live, n_ref, False, reason)
    if n_ref < 2 * min_live:
        reason = f"reference too short to calibrate: {n_ref} thinned predictions < {2 * min_live}"
        return DriftDecision(math.nan, math.nan, n_live, n_ref, False, reason)
    n = min(n_live, n_ref // 2)
    null, edges, p = _null(ref, n, n_bins, quantile, n_null, seed)
    value = float(_psi(p, _shares(_counts(live[-n:], edges), n)))
    drifted = value > null.threshold
    reason = (
        f"PSI {value:.3f} {'>' if drifted else '<='} threshold {null.threshold:.3f} (the {quantile:g} quantile of "
        f"{n_null} null draws of {n} thinned points); newest {n} of {n_live} live vs {n_ref} reference"
    )
    return DriftDecision(value, null.threshold, n_live, n_ref, drifted, reason, null)
