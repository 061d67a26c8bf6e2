"""Evidence has a size (core/evaluation/evidence.py), by hand: which windows count, how long horizons pool, and
the Sharpe of a unit over its own steps."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.evaluation.evidence import evidence_table, units

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def test_short_horizons_count_each_window_with_thirty_held_steps_and_never_pool():
    assert units([30, 29, 31, 0], pooled=False) == [[0], [2]]
    assert units([29, 29], pooled=False) == []  # 58 held steps, but no window alone holds 30


def test_long_horizons_pool_consecutive_windows_until_thirty_and_keep_the_remainder():
    assert units([10, 10, 10, 5], pooled=True) == [[0, 1, 2, 3]]  # 30 at the third; the fourth joins it
    assert units([30, 30, 3], pooled=True) == [[0], [1, 2]]
    assert units([4, 4, 4], pooled=True) == []  # 12 held steps in all: insufficient
    assert units([0, 31, 29, 1], pooled=True) == [[0, 1], [2, 3]]


def steps(fold_pnls: dict[int, list[float]], horizon: str, held: dict[int, int] | None = None) -> pl.DataFrame:
    """Trading steps of one series: per fold the step PnLs; the first ``held[fold]`` steps hold a position."""
    step = timedelta(days=1) if horizon == "1d" else timedelta(hours=1)
    rows = []
    for fold, pnls in fold_pnls.items():
        n_held = len(pnls) if held is None else held[fold]
        for i, pnl in enumerate(pnls):
            t = T0 + (fold * 100 + i) * step
            rows.append(("ridge", "full", fold, "BTCUSDT", t, horizon, 1.0 if i < n_held else 0.0, pnl))
    schema = ["backbone", "variant", "fold", "symbol", "ts_event", "horizon", "position", "pnl"]
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_a_unit_sharpe_is_over_its_own_steps_and_the_evidence_its_mean():
    a = [0.02, 0.0] * 15  # 30 held steps: mean 0.01, std (ddof 1) 0.0101710...
    b = [0.03, -0.01] * 15
    out = evidence_table(steps({0: a, 1: b, 2: [0.5, 0.5, 0.4]}, "1h")).row(0, named=True)
    per_year = math.sqrt(365 * 24)
    want = np.mean([np.mean(x) / np.std(x, ddof=1) * per_year for x in (a, b)])
    assert out["evidence_sharpe"] == pytest.approx(want, rel=1e-12)
    assert (out["n_windows"], out["n_counted"], out["n_steps"], out["n_held"]) == (3, 2, 63, 63)


def test_flat_steps_count_as_steps_not_as_held_ones():
    pnls = [0.01, -0.005] * 20  # 40 steps, 25 of them held
    out = evidence_table(steps({0: pnls, 1: pnls}, "1h", held={0: 25, 1: 30})).row(0, named=True)
    assert (out["n_counted"], out["n_held"], out["n_steps"]) == (1, 55, 80)


def test_daily_windows_pool_and_a_pooled_unit_is_scored_over_all_its_steps():
    w = [[0.01 * (i % 3) - 0.005 for i in range(12)] for _ in range(5)]  # five windows of 12 daily steps
    out = evidence_table(steps(dict(enumerate(w)), "1d")).row(0, named=True)
    # 12 + 12 + 12 = 36 >= 30 closes the first unit; 12 + 12 = 24 is pooled into it: one unit of 60 steps
    assert (out["n_windows"], out["n_counted"], out["n_held"]) == (5, 1, 60)
    flat = np.concatenate(w)
    assert out["evidence_sharpe"] == pytest.approx(flat.mean() / flat.std(ddof=1) * math.sqrt(365), rel=1e-12)


def test_no_unit_means_no_evidence_sharpe():
    out = evidence_table(steps({0: [0.9, 0.8, 0.7]}, "1h")).row(0, named=True)
    assert out["n_counted"] == 0 and out["evidence_sharpe"] is None and out["n_held"] == 3
