"""The gate's statistics against direct computations: block bootstraps, ECE interval, Sharpe figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantmm_assets.core.evaluation.bootstrap import day_resamples
from quantmm_assets.core.gates.selection_bootstrap import (
    block_codes,
    block_multiplicities,
    ece_interval,
    selection_interval,
)
from quantmm_assets.core.gates.sharpe_stats import (
    deflated_sharpe,
    expected_max_sharpe,
    min_detectable_sharpe,
    step_sharpe,
)

HOUR_US = 3_600_000_000
LEVEL, N_BOOT = 0.90, 1000


def test_block_codes_cut_max_of_a_day_and_the_horizon_from_the_first_step() -> None:
    hours = np.array([0, 5, 23, 24, 47, 48, 24 * 9])
    assert block_codes(hours * HOUR_US + 7, 3600).tolist() == [0, 0, 0, 1, 1, 2, 3]  # day 9 is the 4th block drawn
    assert block_codes(hours * HOUR_US, 7 * 24 * 3600).tolist() == [0, 0, 0, 0, 0, 0, 1]  # 7d blocks: day 9 is next


def direct_spreads(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """max_k (mean of the resampled rows of column k - its mean), resample by resample, rows from day_resamples."""
    means = x.mean(axis=0)
    return np.array([(x[rows].mean(axis=0) - means).max() for rows in day_resamples(codes, N_BOOT, 0)])


def sample(n_configs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (200, n_configs)), np.repeat(np.arange(20), 10)  # 20 blocks of 10 steps


def test_one_configuration_gives_the_basic_bootstrap_interval_of_the_mean() -> None:
    x, codes = sample(1)
    x[:, 0] += 0.15
    got = selection_interval(x, codes, 0, block_multiplicities(20, N_BOOT, 0), LEVEL)
    m = x[:, 0].mean()
    boot = np.array([x[rows, 0].mean() for rows in day_resamples(codes, N_BOOT, 0)])
    q05, q95 = np.quantile(boot - m, [0.05, 0.95])
    assert (got.estimate, got.low, got.high) == pytest.approx((m, m - q95, m - q05), rel=1e-12)
    assert got.n_blocks == 20
    assert got.low < m < got.high


def test_several_configurations_give_the_centered_max_bound() -> None:
    x, codes = sample(4, seed=1)
    spread = direct_spreads(x, codes)
    q05, q95 = np.quantile(spread, [0.05, 0.95])
    got = selection_interval(x, codes, 2, block_multiplicities(20, N_BOOT, 0), LEVEL)
    m = x[:, 2].mean()
    assert (got.low, got.high) == pytest.approx((m - q95, m - q05), rel=1e-12)


def test_worthless_configurations_lower_the_bound_of_a_fair_looking_candidate() -> None:
    x, codes = sample(21, seed=2)
    # the candidate: mean 2 standard errors above 0 (one-sided 5% alone: passes)
    x[:, 0] += 2.0 * x[:, 0].std(ddof=1) / math.sqrt(200) - x[:, 0].mean()
    weights = block_multiplicities(20, N_BOOT, 0)
    lows = [selection_interval(x[:, :k], codes, 0, weights, LEVEL).low for k in (1, 2, 6, 21)]
    assert lows[0] > 0 > lows[-1]  # alone it passes; as the best of 21 it does not
    assert lows == sorted(lows, reverse=True) and len(set(lows)) == 4  # each configuration added lowers it


def test_resamples_draw_the_blocks_of_day_resamples() -> None:
    weights = block_multiplicities(5, 7, seed=3)
    direct = [np.bincount(rows, minlength=5) for rows in day_resamples(np.arange(5), 7, 3)]
    assert weights.tolist() == np.array(direct).tolist()
    assert (weights.sum(axis=1) == 5).all()


def test_ece_is_the_count_weighted_gap_of_ten_buckets() -> None:
    conf = np.array([0.15, 0.15, 0.95, 0.95, 1.0, np.nan])
    hit = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    # bucket 1: |.3 - 1| = .7; bucket 9 (1.0 included): |2.9 - 3| = .1; NaN left out -> .8 / 5
    got = ece_interval(conf, hit, np.zeros(6, dtype=np.int64), block_multiplicities(1, 10, 0), LEVEL)
    assert got.estimate == pytest.approx(0.16)


def test_a_calibrated_forecast_rarely_fails_and_a_miscalibrated_one_always() -> None:
    weights = block_multiplicities(90, N_BOOT, 0)
    fails = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        conf = rng.uniform(0.5, 1.0, 90)
        hit = (rng.uniform(size=90) < conf).astype(float)
        got = ece_interval(conf, hit, np.arange(90), weights, LEVEL)
        fails += got.low > 0.05
    print(f"calibrated forecasts over 90 daily steps failing: {fails} of 20")
    assert fails <= 3
    weights = block_multiplicities(300, N_BOOT, 0)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        conf = rng.uniform(0.5, 1.0, 300)
        hit = (rng.uniform(size=300) < conf - 0.2).astype(float)  # 20 points too confident
        assert ece_interval(conf, hit, np.arange(300), weights, LEVEL).low > 0.05


def test_the_point_ece_of_a_calibrated_forecast_on_90_steps_is_mostly_above_the_bound() -> None:
    # why the criterion uses the interval: the point estimate alone would fail most calibrated forecasts
    above = 0
    weights = block_multiplicities(90, 10, 0)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        conf = rng.uniform(0.5, 1.0, 90)
        hit = (rng.uniform(size=90) < conf).astype(float)
        above += ece_interval(conf, hit, np.arange(90), weights, LEVEL).estimate > 0.05
    assert above >= 12


def test_step_sharpe_and_the_expected_maximum() -> None:
    assert step_sharpe(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)  # mean 2, std 1
    assert step_sharpe(np.zeros(5)) == 0.0
    assert math.isnan(step_sharpe(np.array([1.0])))
    # two Sharpes .1 and .3: std .1414; (1 - g) Phi^-1(1/2) = 0; g Phi^-1(1 - 1/(2e)) = .5772 x .90045
    assert expected_max_sharpe(np.array([0.1, 0.3])) == pytest.approx(0.2 / math.sqrt(2) * 0.5772157 * 0.9004526)
    assert expected_max_sharpe(np.array([0.3])) == 0.0


def test_deflated_sharpe_by_hand() -> None:
    pnl = np.array([0.02, -0.01, 0.03, 0.0, 0.01])
    # mean .01, std (ddof 1) .015811 -> SR .632456; skew 0; kurtosis 6.8e-8 / 4e-8 = 1.7
    # z = SR x sqrt(4) / sqrt(1 + .7 / 4 x .4) = 1.264911 / 1.034408 -> Phi(1.222837) = .889304
    assert deflated_sharpe(pnl, np.array([step_sharpe(pnl)])) == pytest.approx(0.8893041, abs=1e-6)
    symmetric = np.array([0.01, -0.01, 0.02, -0.02])
    assert deflated_sharpe(symmetric, np.array([0.0])) == pytest.approx(0.5)
    assert deflated_sharpe(symmetric, np.array([-0.1, 0.1])) < 0.5  # trying two configurations raises the bar
    assert deflated_sharpe(np.ones(4), np.array([0.0])) is None


def test_min_detectable_sharpe_by_hand() -> None:
    # (z.95 + z.80) = 1.644854 + .841621 = 2.486475; / sqrt(100) x sqrt(365)
    assert min_detectable_sharpe(100, 365.0) == pytest.approx(2.486475 / 10 * math.sqrt(365), rel=1e-6)
    assert math.isnan(min_detectable_sharpe(1, 365.0))
