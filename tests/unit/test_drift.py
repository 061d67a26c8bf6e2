"""Prediction drift (core/monitoring/drift.py): PSI by hand, thinning to the horizon, the calibrated threshold."""

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from quantmm_assets.core.monitoring.drift import (
    calibrated_psi_threshold,
    drift_decision,
    psi,
    quantile_edges,
    thin_to_horizon,
)

STEP_US = 300_000_000  # 5 minutes
DAY = 288  # 5m steps


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    """A stationary AR(1) path of unit variance on 5m steps."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n) * math.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], noise, zi=[phi * rng.standard_normal()])[0]


def steps(n: int, start: int = 0) -> np.ndarray:
    return (start + np.arange(n, dtype=np.int64)) * STEP_US


def test_psi_by_hand_two_bins():
    ref = np.arange(10.0)  # median 4.5: bins (-inf, 4.5) and [4.5, inf), shares 1/2 and 1/2
    assert quantile_edges(ref, 2).tolist() == [4.5]
    # 0..7: 5 below, 3 above -> q = (5/8, 3/8)
    expected = (0.625 - 0.5) * math.log(0.625 / 0.5) + (0.375 - 0.5) * math.log(0.375 / 0.5)
    assert psi(ref, np.arange(8.0), n_bins=2) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.06385, abs=1e-5)
    assert psi(ref, ref, n_bins=2) == 0.0
    # values beyond the reference's range land in the end bins: 8 x 100 -> q = (0.5 / 8 floored, 1)
    far = (0.0625 - 0.5) * math.log(0.0625 / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi(ref, np.full(8, 100.0), n_bins=2) == pytest.approx(far, abs=1e-12)


def test_an_empty_bin_counts_half_an_observation_and_edges_are_made_unique():
    ref = np.arange(10.0)
    # [0, 1, 2]: bin 1 is empty -> its share is 0.5 / 3, not 0 (which would make the PSI infinite)
    q_empty = 0.5 / 3
    expected = (1 - 0.5) * math.log(1 / 0.5) + (q_empty - 0.5) * math.log(q_empty / 0.5)
    assert psi(ref, [0.0, 1.0, 2.0], n_bins=2) == pytest.approx(expected, abs=1e-12)
    ties = np.array([0.0] * 8 + [1.0, 2.0])  # the deciles 0.1 .. 0.7 all equal 0: one edge
    assert quantile_edges(ties, 10).tolist() == [0.0, pytest.approx(0.2), pytest.approx(1.1)]
    assert psi(ties, [np.nan, *ties]) == 0.0  # non-finite values are left out


def test_thinning_keeps_one_prediction_per_non_overlapping_horizon_window():
    ts, v = thin_to_horizon(steps(36), np.arange(36.0), "1h")  # 3 hours of 5m predictions
    assert (ts // STEP_US).tolist() == [0, 12, 24] and v.tolist() == [0.0, 12.0, 24.0]
    assert thin_to_horizon(steps(3 * DAY), np.zeros(3 * DAY), "1d")[0].size == 3
    # unsorted, with a gap and a NaN: the first finite one, then the first at least 1h after the last kept
    minutes = np.array([130, 61, 0, 5, 50, 62, 3])
    values = np.array([6.0, 4.0, np.nan, 2.0, 3.0, 5.0, 1.0])
    ts, v = thin_to_horizon(minutes * 60_000_000, values, "1h")
    assert (ts // 60_000_000).tolist() == [3, 130] and v.tolist() == [1.0, 6.0]  # 62 is 59 min after 3
    with pytest.raises(ValueError, match="unknown horizon"):
        thin_to_horizon(steps(3), np.zeros(3), "2h")


def test_calibrated_threshold_is_a_quantile_of_block_draws_and_is_reproducible():
    x = ar1(400 * DAY, 0.99, seed=3)
    null = calibrated_psi_threshold(steps(x.size), x, "1d", n_sample=60, n_null=300, seed=1)
    assert (null.n_reference, null.n_sample, null.n_null, null.quantile) == (400, 60, 300, 0.99)
    assert null.median < null.q90 < null.threshold <= null.max and "contiguous blocks" in null.method
    # small samples have a large PSI without any drift: about (bins - 1) / n, far above the customary 0.1
    assert null.median > 0.1 and null.threshold > 0.25
    assert calibrated_psi_threshold(steps(x.size), x, "1d", n_sample=60, n_null=300, seed=1) == null
    with pytest.raises(ValueError, match="n_sample"):
        calibrated_psi_threshold(steps(x.size), x, "1d", n_sample=400)


def test_an_undrifted_autocorrelated_series_does_not_fire_where_a_fixed_psi_of_0_1_does():
    """AR(1), phi 0.99 on 5m steps, predictions of a 1d horizon: 400 days of reference, the next 60 days live."""
    seeds = range(40)
    calibrated = fixed = 0
    for seed in seeds:
        x = ar1(460 * DAY, 0.99, seed)
        ts, ref, live = steps(x.size), slice(0, 400 * DAY), slice(400 * DAY, None)
        decision = drift_decision(ts[ref], x[ref], ts[live], x[live], "1d", seed=seed, n_null=300)
        assert (decision.n_live_thinned, decision.n_reference_thinned) == (60, 400)
        calibrated += decision.drifted
        fixed += decision.psi > 0.1
    assert calibrated <= 0.1 * len(seeds), f"the calibrated threshold fired on {calibrated} of {len(seeds)}"
    assert fixed >= 0.6 * len(seeds), f"a fixed 0.1 fired on only {fixed} of {len(seeds)}"


@pytest.mark.parametrize("shift, scale", [(1.0, 1.0), (0.0, 2.5)])
def test_a_shifted_or_scaled_series_fires(shift, scale):
    for seed in range(5):
        x = ar1(460 * DAY, 0.99, 100 + seed)
        ts, ref, live = steps(x.size), slice(0, 400 * DAY), slice(400 * DAY, None)
        decision = drift_decision(ts[ref], x[ref], ts[live], x[live] * scale + shift, "1d", seed=seed)
        assert decision.drifted and decision.psi > decision.threshold, decision.reason
        assert decision.null is not None and decision.reason.startswith("PSI")


def test_too_few_thinned_live_points_or_too_short_a_reference_decide_nothing():
    x = ar1(130 * DAY, 0.99, seed=5)
    ts = steps(x.size)
    # 29 days of 1d predictions every 5 minutes: 8352 rows, 29 observations
    few = drift_decision(ts[: 100 * DAY], x[: 100 * DAY], ts[100 * DAY : 129 * DAY], x[:8352] + 5, "1d")
    assert not few.drifted and math.isnan(few.psi) and few.n_live_thinned == 29
    assert "insufficient live evidence" in few.reason
    assert drift_decision(ts[: 100 * DAY], x[: 100 * DAY], ts[:8352], x[:8352] + 5, "1d", min_live=20).drifted
    short = drift_decision(ts[: 50 * DAY], x[: 50 * DAY], ts[50 * DAY :], x[50 * DAY :] + 5, "1d")
    assert not short.drifted and "reference too short" in short.reason
