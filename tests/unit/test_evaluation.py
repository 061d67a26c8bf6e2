from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from quantmm_assets.core.evaluation.bootstrap import (
    WeightedRanks,
    ablation_significance,
    day_resamples,
    paired_day_bootstrap,
    weighted_pearson,
)
from quantmm_assets.core.evaluation.evidence import AGAINST, EVIDENCE_SCHEMA, FOR, INSUFFICIENT, evidence_table
from quantmm_assets.core.evaluation.metrics import (
    FOLD_METRICS_SCHEMA,
    PREDICTION_SCHEMA,
    calibration_table,
    expected_calibration_error,
    fold_metrics,
    ic,
    max_drawdown,
    rank_ic,
    sharpe_ratio,
    trading_steps,
)
from quantmm_assets.core.evaluation.plots import close_figure, plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.evaluation.report import ablation_table, rank_backbones, report_markdown
from quantmm_assets.core.signal import SignalConfig, signal, signal_expr

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def preds(
    er: list[float] | np.ndarray,
    ret: list[float] | np.ndarray,
    *,
    minutes: list[int] | np.ndarray | None = None,
    cost: float | np.ndarray = 0.001,
    conf: float | np.ndarray = 0.9,
    funding: float | np.ndarray = 0.0,
    horizon: str = "1h",
    backbone: str = "ridge",
    variant: str = "full",
    fold: int = 0,
    symbol: str = "BTC",
) -> pl.DataFrame:
    """A predictions frame of one group; row i at ``T0 + minutes[i]`` (default: every 5 minutes)."""
    n = len(er)
    mins = np.arange(n) * 5 if minutes is None else np.asarray(minutes)
    col = {
        k: np.broadcast_to(np.asarray(v, dtype=np.float64), n)
        for k, v in {"cost": cost, "conf": conf, "funding": funding}.items()
    }
    return pl.DataFrame(
        {
            "backbone": [backbone] * n,
            "variant": [variant] * n,
            "fold": [fold] * n,
            "symbol": [symbol] * n,
            "ts_event": [T0 + int(m) * MIN for m in mins],
            "horizon": [horizon] * n,
            "expected_return": np.asarray(er, dtype=np.float64),
            "vol_forecast": np.full(n, 0.01),
            "signal_confidence": col["conf"],
            "y_base": np.asarray(er, dtype=np.float64),
            "gate": np.zeros(n),
            "text_contribution": np.zeros(n),
            "degraded": [False] * n,
            "ret": np.asarray(ret, dtype=np.float64),
            "rv": np.full(n, 0.01),
            "cost": col["cost"],
            "funding": col["funding"],
        },
        schema=PREDICTION_SCHEMA,
    )


def hourly(er: list[float], ret: list[float], **kw: object) -> pl.DataFrame:
    return preds(er, ret, minutes=np.arange(len(er)) * 60, **kw)


# --- signal -------------------------------------------------------------------------------------------------------


def test_signal_cost_kills_small_edge_and_confidence_gates():
    er = [0.003, -0.003, 0.0008, -0.0008, 0.003, 0.003, 0.0, math.nan, 0.003]
    conf = [0.9, 0.9, 0.9, 0.9, 0.5, 0.4, 0.9, 0.9, math.nan]
    want = [1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # edge 0.002 trades; 0.0008 - 0.001 < 0 does not
    assert signal(er, 0.001, 0.01, conf, "1h").tolist() == want
    looser = SignalConfig(confidence_threshold={"1h": 0.3})
    assert signal(er, 0.001, 0.01, conf, "1h", looser).tolist()[4:6] == [1.0, 1.0]
    df = pl.DataFrame({"er": er, "c": [0.001] * len(er), "v": [0.01] * len(er), "conf": conf})
    got = df.select(signal_expr(None, "1h", "er", "c", "v", "conf")).to_series().to_list()
    assert got == want  # polars orders NaN above all


def test_trading_metrics_follow_the_signal_config():
    """The evaluation takes its position from the SignalConfig: a score threshold above a row's score flattens it."""
    df = hourly([0.004, -0.004, 0.004], [0.01, -0.01, 0.01], cost=0.001)  # edge 0.003, vol 0.01: score 0.3
    assert trading_steps(df, "1h")["position"].to_list() == [1.0, -1.0, 1.0]
    strict = SignalConfig(score_threshold={"1h": 0.3})  # exactly at the threshold: not cleared
    assert trading_steps(df, "1h", strict)["position"].to_list() == [0.0, 0.0, 0.0]
    other_horizon = SignalConfig(score_threshold={"4h": 5.0})
    assert trading_steps(df, "1h", other_horizon)["position"].to_list() == [1.0, -1.0, 1.0]
    assert fold_metrics(df, strict)["exposure"].item() == 0.0 and fold_metrics(df)["exposure"].item() == 1.0


# --- steps and PnL ------------------------------------------------------------------------------------------------


def step_minutes(df: pl.DataFrame, horizon: str = "1h") -> list[int]:
    ts = trading_steps(df, horizon)["ts_event"].to_list()
    return [int((t - T0) / MIN) for t in ts]


def naive_steps(minutes: list[int], h: int = 60) -> list[int]:
    """The rule of the module docstring, one grid point at a time."""
    kept: list[int] = []
    g = minutes[0]
    while g <= minutes[-1]:
        row = next(m for m in minutes if m >= g)
        if not kept or row - kept[-1] >= h:
            kept.append(row)
        g += h
    return kept


def test_steps_on_complete_grid_take_every_horizon():
    df = preds(np.full(37, 0.01), np.zeros(37))  # 0..180 min every 5 min
    assert step_minutes(df) == [0, 60, 120, 180]
    assert step_minutes(df.filter(pl.col("ts_event") >= T0 + 10 * MIN)) == [10, 70, 130]  # grid from the first row


def test_steps_with_gaps_and_off_grid_rows():
    # grid point 60 is missing -> 70; grid point 120 is 50 min after 70 -> skipped; back on the grid at 180
    mins = [m for m in range(0, 245, 5) if m not in (60, 65)]
    assert step_minutes(preds(np.zeros(len(mins)), np.zeros(len(mins)), minutes=mins)) == [0, 70, 180, 240]
    for mins in ([0, 110, 165, 215], [0, 70, 125, 185, 245, 300]):  # runs of off-grid conflicts
        got = step_minutes(preds(np.zeros(len(mins)), np.zeros(len(mins)), minutes=mins))
        assert got == naive_steps(mins)
    assert naive_steps([0, 110, 165, 215]) == [0, 110, 215]
    rng = np.random.default_rng(3)
    frames, want = [], {}
    for s in range(20):
        mins = sorted(rng.choice(np.arange(0, 1500, 5), size=int(rng.integers(2, 120)), replace=False).tolist())
        frames.append(preds(np.zeros(len(mins)), np.zeros(len(mins)), minutes=mins, symbol=f"S{s:02d}"))
        want[f"S{s:02d}"] = naive_steps(mins)
    steps = trading_steps(pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=1), "1h")
    for (symbol,), g in steps.group_by(["symbol"]):
        assert [int((t - T0) / MIN) for t in g["ts_event"]] == want[symbol]


def test_pnl_charges_half_cost_per_unit_of_position_change():
    # positions +1, +1, -1, 0 (the last edge 0.0005 is below the cost 0.001)
    df = hourly([0.01, 0.01, -0.01, 0.0005], [0.02, -0.01, -0.03, 0.05])
    steps = trading_steps(df, "1h")
    assert steps["position"].to_list() == [1.0, 1.0, -1.0, 0.0]
    assert steps["prev_position"].to_list() == [0.0, 1.0, 1.0, -1.0]
    assert steps["pnl"].to_list() == pytest.approx([0.02 - 0.0005, -0.01, 0.03 - 0.001, -0.0005], abs=1e-15)
    round_trip = trading_steps(hourly([0.01, 0.0], [0.0, 0.0]), "1h")  # open then close: one cost in all
    assert round_trip["pnl"].sum() == pytest.approx(-0.001, abs=1e-15)


def test_fold_metrics_hand_computed_trading_metrics():
    df = hourly([0.01, 0.01, -0.01, 0.0005], [0.02, -0.01, -0.03, 0.05])
    row = fold_metrics(df).row(0, named=True)
    pnl = np.array([0.0195, -0.01, 0.029, -0.0005])
    assert row["n_rows"] == 4 and row["n_steps"] == 4
    assert row["sharpe"] == pytest.approx(pnl.mean() / pnl.std(ddof=1) * math.sqrt(365 * 24), rel=1e-9)
    assert row["mean_pnl"] == pytest.approx(pnl.mean())
    assert row["turnover"] == pytest.approx((1 + 0 + 2 + 1) / 4)
    assert row["exposure"] == pytest.approx(0.75)
    assert row["max_drawdown"] == pytest.approx(0.01, abs=1e-12)  # peak 0.0195 -> trough 0.0095
    assert row["hit_rate"] == pytest.approx(3 / 4)
    assert row["mae"] == pytest.approx(np.mean([0.01, 0.02, 0.02, 0.0495]))


def test_sharpe_annualization_and_drawdown_helpers():
    pnl = [0.01, -0.03, 0.01, -0.02, 0.05]
    base = np.mean(pnl) / np.std(pnl, ddof=1)
    for horizon, steps_per_year in (("1h", 8760), ("4h", 2190), ("1d", 365), ("7d", 365 / 7)):
        assert sharpe_ratio(pnl, horizon) == pytest.approx(base * math.sqrt(steps_per_year))
    assert sharpe_ratio([0.01], "1h") is None
    assert sharpe_ratio([0.1] * 7, "1h") is None  # numpy's std of a constant is 1.5e-17, not 0
    assert sharpe_ratio([0.0] * 7, "1h") == 0.0  # never in a position: flat earns nothing
    assert max_drawdown(pnl) == pytest.approx(0.04)  # cum 0.01, -0.02, -0.01, -0.03, 0.02
    assert max_drawdown([-0.01, 0.005]) == pytest.approx(0.01)  # a loss from the start counts
    assert max_drawdown([0.01, 0.02]) == 0.0
    df = hourly([0.01] * 5, pnl, cost=0.0)  # always long, no cost: pnl = ret
    row = fold_metrics(df).row(0, named=True)
    assert row["max_drawdown"] == pytest.approx(0.04)
    assert row["sharpe"] == pytest.approx(base * math.sqrt(8760))
    assert row["turnover"] == pytest.approx(0.2)
    assert fold_metrics(hourly([0.01] * 2, [-0.01, 0.005], cost=0.0))["max_drawdown"].item() == pytest.approx(0.01)


def test_fold_metrics_nulls_where_undefined_and_matches_helpers():
    one = fold_metrics(hourly([0.01], [0.02])).row(0, named=True)
    assert one["ic"] is None and one["rank_ic"] is None and one["sharpe"] is None and one["n_steps"] == 1
    flat = fold_metrics(hourly([0.002] * 5, [0.01, -0.02, 0.0, 0.01, 0.03])).row(0, named=True)
    assert flat["ic"] is None and flat["rank_ic"] is None
    zero_ret = fold_metrics(hourly([0.01, -0.01], [0.0, 0.0])).row(0, named=True)
    assert zero_ret["hit_rate"] is None
    # every edge below the cost: never in a position, Sharpe 0 (not null: flat ranks above losing money)
    never = fold_metrics(hourly([1e-5] * 5, [0.01, -0.02, 0.0, 0.01, 0.03], cost=0.01)).row(0, named=True)
    assert never["exposure"] == 0.0 and never["sharpe"] == 0.0 and never["max_drawdown"] == 0.0
    rng = np.random.default_rng(0)
    ret = rng.normal(0, 0.01, 600)
    frames = [
        preds(0.5 * ret + rng.normal(0, 0.01, 600), ret, conf=rng.uniform(0, 1, 600), fold=f, horizon=h)
        for f in (0, 1)
        for h in ("1h", "4h")
    ]
    m = fold_metrics(pl.concat(frames).with_columns(pl.col("cost") * 0.1))
    assert m.schema == pl.Schema(FOLD_METRICS_SCHEMA) and m.height == 4
    assert m["horizon"].to_list() == ["1h", "4h", "1h", "4h"]
    steps = trading_steps(pl.concat(frames).with_columns(pl.col("cost") * 0.1))
    for row in m.iter_rows(named=True):
        g = steps.filter((pl.col("fold") == row["fold"]) & (pl.col("horizon") == row["horizon"]))
        assert row["sharpe"] == pytest.approx(sharpe_ratio(g["pnl"].to_numpy(), row["horizon"]))
        assert row["max_drawdown"] == pytest.approx(max_drawdown(g["pnl"].to_numpy()))
        assert row["n_steps"] == g.height == (50 if row["horizon"] == "1h" else 13)


# --- IC -----------------------------------------------------------------------------------------------------------


def test_ic_and_rank_ic_match_scipy_with_ties_and_nan():
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(size=300), 1)  # many ties
    b = a + rng.normal(size=300)
    a[[3, 50]], b[[7]] = np.nan, np.inf
    ok = np.isfinite(a) & np.isfinite(b)
    assert ic(a, b) == pytest.approx(stats.pearsonr(a[ok], b[ok])[0], rel=1e-12)
    assert rank_ic(a, b) == pytest.approx(stats.spearmanr(a[ok], b[ok])[0], rel=1e-12)
    assert math.isnan(ic([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])) and math.isnan(rank_ic([2.0] * 4, [1.0, 2.0, 3.0, 4.0]))
    assert math.isnan(rank_ic([1.0], [2.0]))
    df = preds(a[ok], b[ok], cost=0.0)
    row = fold_metrics(df).row(0, named=True)
    assert row["ic"] == pytest.approx(stats.pearsonr(a[ok], b[ok])[0], rel=1e-9)
    assert row["rank_ic"] == pytest.approx(stats.spearmanr(a[ok], b[ok])[0], rel=1e-9)


# --- ranking and ablations ----------------------------------------------------------------------------------------


def metrics_rows(rows: list[tuple]) -> pl.DataFrame:
    """Fold-metric rows (backbone, variant, fold, sharpe, rank_ic), symbol BTC, horizon 1h, the rest filled."""
    df = pl.DataFrame(rows, schema=["backbone", "variant", "fold", "sharpe", "rank_ic"], orient="row")
    fill = {c: pl.lit(1.0) for c in ("ic", "hit_rate", "mae", "mean_pnl", "turnover", "max_drawdown", "exposure")}
    df = df.with_columns(symbol=pl.lit("BTC"), horizon=pl.lit("1h"), n_rows=pl.lit(10), n_steps=pl.lit(2), **fill)
    return df.select([pl.col(c).cast(dt) for c, dt in FOLD_METRICS_SCHEMA.items()])


def evidence_rows(rows: list[tuple[str, str, int, float | None]]) -> pl.DataFrame:
    """Evidence rows (backbone, variant, n_counted, evidence_sharpe), symbol BTC, horizon 1h, 3 windows."""
    df = pl.DataFrame(rows, schema=["backbone", "variant", "n_counted", "evidence_sharpe"], orient="row")
    df = df.with_columns(symbol=pl.lit("BTC"), horizon=pl.lit("1h"), n_windows=3, n_steps=90, n_held=pl.lit(60))
    return df.select([pl.col(c).cast(dt) for c, dt in EVIDENCE_SCHEMA.items()])


def test_rank_backbones_order_tie_break_and_baselines():
    m = metrics_rows(
        [
            ("A", "full", 0, 1.0, 0.02),
            ("A", "full", 1, 2.0, 0.02),
            ("A", "no_text", 0, 10.0, 0.5),  # another variant: ignored
            ("B", "full", 0, 1.5, 0.05),
            ("B", "full", 1, 1.5, 0.05),  # same Sharpe as A, higher rank IC
            ("C", "full", 0, None, 0.9),  # no Sharpe: evidence against, last of them despite its rank IC
            ("D", "full", 0, 17.6, -0.1),  # a Sharpe from three trades: insufficient, never first
            ("zero", "full", 0, 0.5, None),  # a baseline run as variant "full"
            ("baseline", "momentum", 0, 1.2, 0.01),  # a baseline named by its variant
        ]
    )
    ev = evidence_rows(
        [("A", "full", 2, 1.5), ("A", "no_text", 2, 10.0), ("B", "full", 2, 1.5), ("C", "full", 2, None)]
        + [("D", "full", 0, None), ("zero", "full", 2, 0.5), ("baseline", "momentum", 2, 1.2)]
    )
    r = rank_backbones(m, ev)
    assert r["backbone"].to_list() == ["B", "A", "momentum", "zero", "C", "D"]
    assert r["rank"].to_list() == [1, 2, 3, None, None, None]
    assert r["verdict"].to_list() == [FOR, FOR, FOR, AGAINST, AGAINST, INSUFFICIENT]
    assert r["evidence_sharpe"].to_list()[:2] == [1.5, 1.5] and r["n_folds"].to_list()[:2] == [2, 2]
    assert r["mean_sharpe"].to_list()[-1] == 17.6 and r["n_counted"].to_list() == [2, 2, 2, 2, 2, 0]
    assert rank_backbones(m, ev, include_baselines=False)["backbone"].to_list() == ["B", "A", "C", "D"]
    assert rank_backbones(m, ev, variant="no_text", include_baselines=False)["backbone"].to_list() == ["A"]
    # a series with no evidence row at all (nothing scored) is insufficient, with zero counts
    lone = rank_backbones(m, ev.filter(pl.col("backbone") != "B"), include_baselines=False)
    assert lone.filter(pl.col("backbone") == "B").select("verdict", "n_counted", "n_steps").row(0) == (
        INSUFFICIENT,
        0,
        0,
    )
    with pytest.raises(ValueError, match="evidence: missing columns"):
        rank_backbones(m, ev.drop("n_held"))


def test_ablation_table_side_by_side_and_difference():
    m = metrics_rows(
        [("A", "full", 0, 2.0, 0.10), ("A", "full", 1, 1.0, 0.06), ("A", "no_text", 0, 0.5, 0.03)]
        + [("A", "no_text", 1, 0.5, 0.01), ("A", "no_macro", 0, 3.0, 0.2), ("ridge_price", "full", 0, 9.0, 0.9)]
    )
    row = ablation_table(m).row(0, named=True)
    assert ablation_table(m).height == 1
    assert row["sharpe_full"] == 1.5 and row["sharpe_no_text"] == 0.5 and row["sharpe_no_macro"] == 3.0
    assert row["sharpe_event_window"] is None
    assert row["sharpe_full_minus_no_text"] == pytest.approx(1.0)
    assert row["rank_ic_full_minus_no_text"] == pytest.approx(0.06)


# --- calibration --------------------------------------------------------------------------------------------------


def calibrated(n: int, hit_prob: np.ndarray | float, conf: np.ndarray) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    hit = rng.uniform(size=n) < hit_prob
    return preds(np.full(n, 0.01), np.where(hit, 0.01, -0.01), conf=conf, minutes=np.arange(n))


def test_ece_near_zero_when_calibrated_and_large_when_not():
    conf = np.random.default_rng(5).uniform(0.5, 1.0, 20_000)
    good = expected_calibration_error(calibration_table(calibrated(20_000, conf, conf)))
    bad = expected_calibration_error(calibration_table(calibrated(20_000, 0.5, conf)))
    assert good["ece"].item() < 0.02
    assert bad["ece"].item() > 0.2  # confidence 0.75 on average, right half the time
    table = pl.DataFrame(
        {"backbone": "A", "variant": "full", "horizon": "1h", "n": [10, 30]}
        | {"mean_confidence": [0.55, 0.85], "hit_rate": [0.5, 0.95]}
    )
    assert expected_calibration_error(table)["ece"].item() == pytest.approx(0.25 * 0.05 + 0.75 * 0.1)


def test_calibration_buckets_edges_and_zero_returns():
    df = preds([0.01, 0.01, -0.01, 0.01, 0.01], [0.02, -0.01, -0.01, 0.0, 0.03], conf=[0.0, 0.05, 1.0, 0.9, 0.95])
    t = calibration_table(df, n_buckets=10)
    assert t["bucket"].to_list() == [0, 9] and t["n"].to_list() == [2, 2]  # ret == 0 left out; conf 1 on top
    assert t["hit_rate"].to_list() == [0.5, 1.0] and t["bucket_high"].to_list() == [0.1, 1.0]


# --- bootstrap ----------------------------------------------------------------------------------------------------


def day_effects(diff: float, n_days: int = 60, per_day: int = 100, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Paired differences ``diff`` + a shared day effect + noise; returns (day, d)."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(n_days), per_day)
    return day, diff + rng.normal(0, 1.0, n_days)[day] + rng.normal(0, 1.0, day.size)


def test_day_bootstrap_covers_truth_and_detects_planted_difference():
    day, d = day_effects(0.8)
    res = paired_day_bootstrap(day, lambda rows: float(d[rows].mean()), n_boot=1000, seed=0)
    assert res.low < 0.8 < res.high and res.excludes(0.0) and res.n_days == 60 and res.n_boot == 1000
    assert res.estimate == pytest.approx(d.mean())
    day0, d0 = day_effects(0.0)
    null = paired_day_bootstrap(day0, lambda rows: float(d0[rows].mean()), n_boot=1000, seed=0)
    assert not null.excludes(0.0)
    rows_as_days = paired_day_bootstrap(np.arange(d.size), lambda rows: float(d[rows].mean()), n_boot=300)
    assert rows_as_days.high - rows_as_days.low < 0.5 * (res.high - res.low)  # day effects widen the interval


def test_day_resamples_are_whole_days_and_deterministic():
    day = np.repeat(np.array(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-05"]), [3, 1, 4, 2])
    counts = np.array([3, 1, 4, 2])
    for rows in day_resamples(day, 50, seed=4):
        per_day = np.bincount(np.unique(day, return_inverse=True)[1][rows], minlength=4)
        assert np.all(per_day % counts == 0) and (per_day // counts).sum() == 4
    a = [r.tolist() for r in day_resamples(day, 20, seed=1)]
    assert a == [r.tolist() for r in day_resamples(day, 20, seed=1)]
    assert a != [r.tolist() for r in day_resamples(day, 20, seed=2)]


def test_weighted_ranks_equal_rank_ic_on_the_resample():
    rng = np.random.default_rng(8)
    x, y = np.round(rng.normal(size=500), 1), rng.normal(size=500)
    rows = rng.integers(0, 500, 500)
    w = np.bincount(rows, minlength=500).astype(float)
    got = weighted_pearson(WeightedRanks(x).ranks(w), WeightedRanks(y).ranks(w), w)
    assert got == pytest.approx(rank_ic(x[rows], y[rows]), rel=1e-12)


def test_ablation_significance_planted_and_null():
    rng = np.random.default_rng(9)
    n = 10_080  # 35 days of 5-minute rows
    ret = rng.normal(0, 0.01, n)
    full = preds(ret + rng.normal(0, 0.005, n), ret)
    frame = pl.concat(
        [
            full,
            full.with_columns(variant=pl.lit("no_text"), expected_return=pl.lit(rng.normal(0, 0.01, n))),
            full.with_columns(backbone=pl.lit("lgbm"), expected_return=pl.lit(rng.normal(0, 0.01, n))),
            full.with_columns(
                backbone=pl.lit("lgbm"), variant=pl.lit("no_text"), expected_return=pl.lit(rng.normal(0, 0.01, n))
            ),
        ]
    )
    sig = ablation_significance(frame, n_boot=500, seed=0)
    ridge, lgbm = sig.filter(pl.col("backbone") == "ridge").row(0, named=True), sig.filter(pl.col("backbone") == "lgbm")
    truth = 6 / math.pi * math.asin(1 / math.sqrt(1.25) / 2)  # Spearman of a bivariate normal of corr 1/sqrt(1.25)
    assert ridge["low"] < truth < ridge["high"] and ridge["low"] > 0.5 and ridge["n_days"] == 35
    assert lgbm["low"].item() < 0 < lgbm["high"].item()
    mae = ablation_significance(frame, metric="mae", n_boot=200).filter(pl.col("backbone") == "ridge")
    assert mae["high"].item() < 0  # full's errors are smaller


def test_bootstrap_of_a_rank_ic_difference_is_fast():
    rng = np.random.default_rng(12)
    day, (a, b, y) = np.repeat(np.arange(100), 100), rng.normal(size=(3, 10_000))
    ra, rb, ry = WeightedRanks(a), WeightedRanks(b), WeightedRanks(y)

    def stat(rows: np.ndarray) -> float:  # the stat ablation_significance uses for rank IC
        w = np.bincount(rows, minlength=y.size).astype(np.float64)
        r = ry.ranks(w)
        return weighted_pearson(ra.ranks(w), r, w) - weighted_pearson(rb.ranks(w), r, w)

    start = time.process_time()  # CPU time: other processes on a busy machine do not count
    res = paired_day_bootstrap(day, stat, n_boot=1000)
    assert time.process_time() - start < 2.0  # 1000 resamples of 10k rows (about 0.3 s on an idle core)
    assert res.estimate == pytest.approx(rank_ic(a, y) - rank_ic(b, y), rel=1e-9)


# --- report and plots ---------------------------------------------------------------------------------------------


def small_run() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    ret = rng.normal(0, 0.01, 400)
    return pl.concat(
        [
            preds(
                k * ret + rng.normal(0, 0.01, 400), ret, conf=rng.uniform(0, 1, 400), backbone=b, variant=v, horizon=h
            )
            for b, k in (("ridge", 0.5), ("lgbm", 0.2))
            for v in ("full", "no_text")
            for h in ("1h", "4h")
        ]
    )


def test_report_markdown_states_configurations_and_tables():
    m = fold_metrics(small_run())
    ece = expected_calibration_error(calibration_table(small_run()))
    evidence = evidence_table(trading_steps(small_run()))
    md = report_markdown(rank_backbones(m, evidence), ablation_table(m), ece, {"ridge": 12})
    # one test window each: below the 2 counted windows a verdict needs, so nothing is ranked, and it says so
    assert "- BTC: no contender shows evidence of an edge; nothing is ranked." in md
    assert "A test window counts with at least 30 non-overlapping steps holding a position" in md
    assert "## Signal" in md and SignalConfig().config_hash() in md and "1h: score > 0 and confidence > 0.5" in md
    assert "| ridge | 12 |" in md and "| lgbm | not reported |" in md
    assert "### 1h" in md and "### 4h" in md and "sharpe_full_minus_no_text" in md and "ece" in md


def test_plots_render_png_figures(tmp_path: Path):
    run = small_run()
    figures = {
        "pnl.png": plot_cumulative_pnl(run),
        "cal.png": plot_calibration(calibration_table(run), variants=["full"]),
        "empty.png": plot_cumulative_pnl(run.clear()),
    }
    assert len(figures["pnl.png"].axes) == 2  # one subplot per horizon (1h, 4h)
    assert [a.get_title() for a in figures["empty.png"].axes] == ["Cumulative after-cost PnL"]
    for name, fig in figures.items():
        fig.savefig(tmp_path / name)
        close_figure(fig)
        path = tmp_path / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


# --- input validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: df.drop("ret", "gate"), r"missing columns \['gate', 'ret'\]"),
        (lambda df: df.with_columns(pl.col("ts_event").dt.replace_time_zone(None)), "wrong dtypes.*ts_event"),
        (lambda df: df.with_columns(pl.col("fold").cast(pl.Utf8)), "wrong dtypes.*fold"),
        (lambda df: df.with_columns(horizon=pl.lit("2h")), "unknown or null horizons"),
        (lambda df: df.with_columns(signal_confidence=pl.lit(1.5)), r"outside \[0, 1\]"),
        (lambda df: pl.concat([df, df.head(1)]), "duplicate rows"),
        (lambda df: df.to_dict(as_series=False), "must be a polars DataFrame"),
    ],
)
def test_bad_input_is_a_clear_error(edit, message):
    with pytest.raises(ValueError, match=message):
        fold_metrics(edit(preds([0.01, 0.02], [0.01, 0.0])))
