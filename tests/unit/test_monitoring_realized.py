"""Realized monitoring of served predictions (core/monitoring/realized.py, comparison.py), numbers by hand."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.monitoring.comparison import (
    HEALTH_SCHEMA,
    SHADOW_SCHEMA,
    VOL_SCHEMA,
    multimodal_health,
    prediction_drift,
    shadow_vs_active,
    vol_coverage,
)
from quantmm_assets.core.monitoring.realized import (
    CALIBRATION_SCHEMA,
    ECE_SUMMARY_SCHEMA,
    PERFORMANCE_STATS,
    calibration_report,
    join_realized,
    realized_performance,
    wilson_interval,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
M5 = timedelta(minutes=5)
Z = 1.6448536269514722  # the 0.95 quantile of the standard normal
LOG_SCHEMA = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "bar_ts": pl.Datetime("us", "UTC"),
    "model_version": pl.Utf8,
    "role": pl.Utf8,
    "expected_return": pl.Float64,
    "signal_confidence": pl.Float64,
    "vol_forecast": pl.Float64,
    "position": pl.Float64,
    "cost": pl.Float64,
    "gate": pl.Float64,
    "text_contribution": pl.Float64,
    "text_missing": pl.Boolean,
    "logged_at": pl.Datetime("us", "UTC"),
}
LABEL_SCHEMA = {
    "symbol": pl.Utf8,
    "ts_event": pl.Datetime("us", "UTC"),
    "horizon": pl.Utf8,
    "ts_available": pl.Datetime("us", "UTC"),
    "ret": pl.Float64,
    "rv": pl.Float64,
    "cost": pl.Float64,
    "funding": pl.Float64,
    "complete": pl.Boolean,
}


def pred(bar_ts, er, position=0.0, *, symbol="BTCUSDT", role="active", version="v1", conf=0.6, vol=0.01, **kw):
    row = {
        "symbol": symbol,
        "horizon": "1h",
        "bar_ts": bar_ts,
        "model_version": version,
        "role": role,
        "expected_return": er,
        "signal_confidence": conf,
        "vol_forecast": vol,
        "position": position,
        "cost": 0.002,
        "gate": 0.5,
        "text_contribution": 0.0,
        "text_missing": False,
        "logged_at": bar_ts,
    }
    return {**row, **kw}


def label(ts, ret, *, symbol="BTCUSDT", cost=0.002, funding=0.0, rv=0.01, complete=True, available=None):
    return {
        "symbol": symbol,
        "ts_event": ts,
        "horizon": "1h",
        "ts_available": ts + H if available is None else available,
        "ret": ret,
        "rv": rv,
        "cost": cost,
        "funding": funding,
        "complete": complete,
    }


def log_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LOG_SCHEMA, orient="row") if rows else pl.DataFrame(schema=LOG_SCHEMA)


def label_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LABEL_SCHEMA, orient="row") if rows else pl.DataFrame(schema=LABEL_SCHEMA)


def joined(preds: list[dict], labels: list[dict], now: datetime = T0 + 30 * 24 * H) -> pl.DataFrame:
    return join_realized(log_frame(preds), label_frame(labels), now)


def wilson(hits: int, n: int) -> tuple[float, float]:
    """Wilson's score interval written out (the test's own formula)."""
    p = hits / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_interval_by_hand():
    assert wilson(3, 4) == pytest.approx((0.35616, 0.94210), abs=1e-4)  # the formula, checked against paper
    assert wilson_interval(3, 4) == pytest.approx((0.35616, 0.94210), abs=1e-4)
    low, high = wilson_interval(3, 3)
    assert low == pytest.approx(0.52580, abs=1e-4) and high == 1.0
    assert wilson_interval(0, 0) == (None, None)


def test_a_label_counts_only_when_complete_and_available_at_now():
    now = T0 + 5 * H
    preds = [pred(T0 + k * H, 0.01, 1.0) for k in range(5)]
    labels = [
        label(T0, 0.01),  # available at T0 + 1h: realized
        label(T0 + H, 0.02, available=now),  # available exactly at now: realized
        label(T0 + 2 * H, 0.5, available=now + M5),  # complete but known only after now: pending, value hidden
        label(T0 + 3 * H, 0.7, complete=False, available=T0 + 4 * H),  # available, incomplete: pending
    ]  # T0 + 4h has no label row: pending
    out = joined(preds, labels, now)
    assert out["realized"].to_list() == [True, True, False, False, False]
    assert out["ret"].to_list() == [0.01, 0.02, None, None, None]
    assert out["cost_label"].to_list() == [0.002, 0.002, None, None, None]
    perf = realized_performance(out).row(0, named=True)
    assert (perf["n_predictions"], perf["n_realized"], perf["n_pending"]) == (5, 2, 3)
    assert perf["n_steps"] == 2 and perf["total_pnl"] == pytest.approx(0.01 - 0.001 + 0.02)  # no look-ahead 0.5


def test_join_rejects_missing_columns_naive_now_and_duplicate_labels():
    log, labels = log_frame([pred(T0, 0.01)]), label_frame([label(T0, 0.01)])
    with pytest.raises(ValueError, match=r"prediction log: missing columns \['expected_return'\]"):
        join_realized(log.drop("expected_return"), labels, T0)
    with pytest.raises(ValueError, match=r"labels: missing columns \['complete'\]"):
        join_realized(log, labels.drop("complete"), T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        join_realized(log, labels, datetime(2024, 3, 2))
    with pytest.raises(ValueError, match="duplicate"):
        join_realized(log, pl.concat([labels, labels]), T0)


def performance_case() -> tuple[list[dict], list[dict]]:
    """Four hourly steps by hand, two overlapping rows that thinning drops, one pending row."""
    steps = [  # bar, er, position, ret, cost, funding
        (T0, 0.02, 1.0, 0.03, 0.002, 0.001),
        (T0 + H, -0.01, -1.0, -0.02, 0.002, 0.0),
        (T0 + 2 * H, 0.005, 0.0, -0.01, 0.002, 0.0005),
        (T0 + 3 * H + 10 * M5, 0.03, 1.0, 0.01, 0.004, -0.001),
    ]
    preds = [pred(ts, er, pos) for ts, er, pos, *_ in steps]
    labels = [label(ts, ret, cost=c, funding=f) for ts, _, _, ret, c, f in steps]
    for ts in (T0 + M5, T0 + H + 6 * M5):  # less than 1h after the step before: not steps
        preds.append(pred(ts, -1.0, -1.0))
        labels.append(label(ts, 0.5))
    preds.append(pred(T0 + 5 * H, 0.01, 1.0))  # pending: its label is known after now
    labels.append(label(T0 + 5 * H, 0.9))
    return preds, labels


def test_performance_by_hand_on_non_overlapping_steps():
    preds, labels = performance_case()
    perf = realized_performance(joined(preds, labels, now=T0 + 5 * H))
    assert perf.columns == ["horizon", "role", *PERFORMANCE_STATS]
    row = perf.row(0, named=True)
    assert (row["n_predictions"], row["n_realized"], row["n_pending"]) == (7, 6, 1)
    assert (row["n_steps"], row["n_held"]) == (4, 3)
    # pnl = pos (ret - funding) - |pos - prev| cost / 2, prev 0 at the start
    pnl = [1 * (0.03 - 0.001) - 1 * 0.002 / 2, -1 * -0.02 - 2 * 0.002 / 2, 0 - 1 * 0.002 / 2, 0.011 - 0.004 / 2]
    assert pnl == pytest.approx([0.028, 0.018, -0.001, 0.009])
    half = Z * statistics.stdev(pnl) / 2
    assert row["mean_pnl"] == pytest.approx(0.0135) and row["total_pnl"] == pytest.approx(0.054)
    assert (row["pnl_low"], row["pnl_high"]) == pytest.approx((0.0135 - half, 0.0135 + half))
    assert half == pytest.approx(0.010195, abs=1e-5)
    # signs of er vs ret: + +, - -, + -, + +: 3 of 4; held steps (1, 2, 4) all right
    assert (row["hit_n"], row["hit_rate"]) == (4, 0.75)
    assert (row["hit_low"], row["hit_high"]) == pytest.approx(wilson(3, 4))
    assert (row["held_hit_n"], row["held_hit_rate"]) == (3, 1.0)
    assert (row["held_hit_low"], row["held_hit_high"]) == pytest.approx((wilson(3, 3)[0], 1.0))
    er, ret = [0.02, -0.01, 0.005, 0.03], [0.03, -0.02, -0.01, 0.01]
    assert row["ic"] == pytest.approx(float(np.corrcoef(er, ret)[0, 1]))
    assert row["rank_ic"] == pytest.approx(1 - 6 * (1 + 0 + 0 + 1) / (4 * 15))  # ranks 3 1 2 4 vs 4 1 2 3
    assert row["verdict"] == "insufficient evidence" and row["note"].startswith("4 realized")


def test_steps_are_thinned_per_symbol_and_pooled_per_group():
    preds, labels = performance_case()
    # ETH's only step is 5 minutes after BTC's first: a thinning across symbols would drop it
    preds.append(pred(T0 + M5, 0.01, 1.0, symbol="ETHUSDT"))
    labels.append(label(T0 + M5, 0.02, symbol="ETHUSDT"))
    preds.append(pred(T0, 0.02, 1.0, role="shadow", version="v2"))  # another role: its own group
    out = joined(preds, labels, now=T0 + 5 * H)
    pooled = realized_performance(out)
    assert pooled.select("role", "n_steps").rows() == [("active", 5), ("shadow", 1)]
    assert pooled.row(0, named=True)["total_pnl"] == pytest.approx(0.054 + 0.02 - 0.001)
    per_symbol = realized_performance(out, by=("symbol", "horizon")).filter(pl.col("role") == "active")
    assert per_symbol.select("symbol", "n_steps").rows() == [("BTCUSDT", 4), ("ETHUSDT", 1)]
    with pytest.raises(ValueError, match=r"missing columns \['model'\]"):
        realized_performance(out, by=("model",))


@pytest.mark.parametrize(("n", "verdict"), [(29, "insufficient evidence"), (30, "sufficient evidence")])
def test_under_30_realized_steps_is_insufficient_evidence(n, verdict):
    preds = [pred(T0 + k * H, 0.01, 1.0) for k in range(n)]
    labels = [label(T0 + k * H, 0.01 if k % 2 else -0.01) for k in range(n)]
    out = joined(preds, labels)
    assert realized_performance(out)["verdict"].to_list() == [verdict]
    assert vol_coverage(out)["verdict"].to_list() == [verdict]
    assert calibration_report(out)[1]["verdict"].to_list() == [verdict]


def test_empty_inputs_give_typed_empty_frames_or_a_clear_note():
    empty = joined([], [])
    assert empty.is_empty() and "realized" in empty.columns
    assert realized_performance(empty).schema == pl.Schema({"horizon": pl.Utf8, "role": pl.Utf8, **PERFORMANCE_STATS})
    table, summary = calibration_report(empty)
    assert table.schema == pl.Schema(CALIBRATION_SCHEMA) and summary.schema == pl.Schema(ECE_SUMMARY_SCHEMA)
    assert table.is_empty() and summary.is_empty()
    assert vol_coverage(empty).schema == pl.Schema(VOL_SCHEMA) and vol_coverage(empty).is_empty()
    assert shadow_vs_active(empty).schema == pl.Schema(SHADOW_SCHEMA) and shadow_vs_active(empty).is_empty()
    assert multimodal_health(log_frame([])).schema == pl.Schema(HEALTH_SCHEMA)
    drift = prediction_drift(log_frame([]), np.arange(10.0), "1h", 0.1)
    assert drift["drifted"] is False and math.isnan(drift["psi"]) and "no active 1h predictions" in drift["reason"]
    # logged but nothing realized yet: a row per group that says so
    pending = joined([pred(T0, 0.01, 1.0)], [])
    row = realized_performance(pending).row(0, named=True)
    assert (row["n_predictions"], row["n_pending"], row["n_steps"], row["mean_pnl"]) == (1, 1, 0, None)
    assert row["verdict"] == "no realized predictions yet"
    assert calibration_report(pending)[1]["verdict"].to_list() == ["no realized predictions yet"]


def test_every_function_names_its_missing_columns():
    out = joined(*performance_case())
    with pytest.raises(ValueError, match=r"missing columns \['realized'\]"):
        realized_performance(out.drop("realized"))
    with pytest.raises(ValueError, match=r"missing columns \['signal_confidence'\]"):
        calibration_report(out.drop("signal_confidence"))
    with pytest.raises(ValueError, match=r"missing columns \['vol_forecast'\]"):
        vol_coverage(out.drop("vol_forecast"))
    with pytest.raises(ValueError, match=r"missing columns \['position'\]"):
        shadow_vs_active(out.drop("position"))
    with pytest.raises(ValueError, match=r"missing columns \['gate'\]"):
        multimodal_health(log_frame([pred(T0, 0.01)]).drop("gate"))
    with pytest.raises(ValueError, match=r"missing columns \['expected_return'\]"):
        prediction_drift(log_frame([pred(T0, 0.01)]).drop("expected_return"), [0.0], "1h", 0.1)


def test_calibration_table_and_ece_by_hand():
    cases = [(0.55, 0.01), (0.58, -0.01), (0.85, 0.01), (0.95, 0.01), (0.99, 0.0)]  # conf, ret; er is +0.01
    preds = [pred(T0 + k * H, 0.01, 1.0, conf=c) for k, (c, _) in enumerate(cases)]
    labels = [label(T0 + k * H, r) for k, (_, r) in enumerate(cases)]
    preds.append(pred(T0 + M5, 0.01, 1.0, conf=0.15))  # overlaps the first step: not a step
    labels.append(label(T0 + M5, 0.01))
    table, summary = calibration_report(joined(preds, labels))
    # ret == 0 is left out; buckets of width 0.1: 5 -> {0.55 hit, 0.58 miss}, 8 -> {0.85 hit}, 9 -> {0.95 hit}
    assert table.select("bucket", "n").rows() == [(5, 2), (8, 1), (9, 1)]
    assert table["mean_confidence"].to_list() == pytest.approx([0.565, 0.85, 0.95])
    assert table["hit_rate"].to_list() == [0.5, 1.0, 1.0]
    ece = (2 * abs(0.565 - 0.5) + abs(0.85 - 1) + abs(0.95 - 1)) / 4
    row = summary.row(0, named=True)
    assert (row["n"], row["ece"]) == (4, pytest.approx(ece)) and ece == pytest.approx(0.0825)
    assert row["verdict"] == "insufficient evidence"


def test_vol_coverage_by_hand():
    cases = [(0.01, 0.01, 0.005), (0.01, 0.02, -0.02), (0.02, 0.01, 0.03), (0.02, 0.04, 0.03), (0.0, 0.01, 0.0)]
    preds = [pred(T0 + k * H, 0.01, vol=v) for k, (v, _, _) in enumerate(cases)]
    labels = [label(T0 + k * H, ret, rv=rv) for k, (_, rv, ret) in enumerate(cases)]
    row = vol_coverage(joined(preds, labels)).row(0, named=True)
    assert row["n"] == 4  # vol_forecast 0 is left out
    assert row["median_ratio"] == pytest.approx(1.5)  # ratios 1, 2, 0.5, 2
    assert row["mean_log_ratio"] == pytest.approx(math.log(2) / 4)
    # |ret| <= 1.645 vol: 0.005 <= 0.01645 yes, 0.02 no, 0.03 <= 0.0329 yes (twice)
    assert row["coverage_90"] == 0.75
    assert (row["coverage_low"], row["coverage_high"]) == pytest.approx(wilson(3, 4))


def test_multimodal_health_by_hand():
    rows = [  # text_missing, gate, text_contribution, expected_return
        (False, 0.2, 0.001, 0.01),
        (False, 0.6, -0.003, 0.02),
        (True, 0.9, 0.0, 0.005),
        (None, 0.5, 0.002, 0.01),
    ]
    log = log_frame([pred(T0 + k * M5, er, gate=g, text_contribution=tc, text_missing=m) for k, (m, g, tc, er) in
                     enumerate(rows)])  # fmt: skip
    row = multimodal_health(log).row(0, named=True)
    assert (row["n"], row["n_text_known"], row["n_text"]) == (4, 3, 2)
    assert row["text_coverage"] == pytest.approx(2 / 3)
    assert row["gate_mean"] == pytest.approx(0.4)
    assert row["gate_p90"] == pytest.approx(0.2 + 0.9 * (0.6 - 0.2))  # linear interpolation
    assert row["mean_abs_text_contribution"] == pytest.approx(0.002)
    assert row["text_share"] == pytest.approx(0.004 / 0.03)


def test_shadow_vs_active_on_common_realized_steps_by_hand():
    rets = [0.01, -0.02, 0.015]
    shadow = [(0.01, 1.0), (-0.01, -1.0), (0.005, 0.0)]
    preds = [pred(T0 + k * H, 0.01, 1.0) for k in range(3)]
    preds += [pred(T0 + k * H, er, p, role="shadow", version="v2") for k, (er, p) in enumerate(shadow)]
    preds += [pred(T0 + 3 * H, 0.01, 1.0), pred(T0 + 3 * H, 0.01, 1.0, role="shadow", version="v2")]  # pending
    preds.append(pred(T0 + 4 * H, 0.5, 1.0))  # active alone: not common
    labels = [label(T0 + k * H, r) for k, r in enumerate(rets)] + [label(T0 + 4 * H, 0.3)]
    labels.append(label(T0 + 3 * H, 0.4, available=T0 + 9 * H))
    row = shadow_vs_active(joined(preds, labels, now=T0 + 6 * H)).row(0, named=True)
    assert (row["active_version"], row["shadow_version"]) == ("v1", "v2")
    assert (row["n_common"], row["n_common_realized"], row["n_steps"], row["hit_n"]) == (4, 3, 3, 3)
    active = [0.01 - 0.001, -0.02, 0.015]  # long throughout: entry cost once
    shadow_pnl = [0.01 - 0.001, 0.02 - 2 * 0.001, 0.0 - 0.001]  # flip to short, then flat
    d = [s - a for s, a in zip(shadow_pnl, active, strict=True)]
    assert d == pytest.approx([0.0, 0.038, -0.016])
    half = Z * statistics.stdev(d) / math.sqrt(3)
    assert row["active_mean_pnl"] == pytest.approx(sum(active) / 3)
    assert row["shadow_mean_pnl"] == pytest.approx(sum(shadow_pnl) / 3)
    assert row["diff_mean_pnl"] == pytest.approx(0.022 / 3)
    assert (row["diff_low"], row["diff_high"]) == pytest.approx((0.022 / 3 - half, 0.022 / 3 + half))
    assert (row["active_hit_rate"], row["shadow_hit_rate"]) == (pytest.approx(2 / 3), 1.0)
    assert row["active_ic"] is None  # a constant prediction has no correlation
    assert row["shadow_ic"] == pytest.approx(float(np.corrcoef([0.01, -0.01, 0.005], rets)[0, 1]))
    assert row["verdict"] == "insufficient evidence"


def test_prediction_drift_thins_per_symbol_and_decides_against_the_threshold():
    log = log_frame(
        [
            pred(T0, 1.0),
            pred(T0 + M5, 100.0),  # within 1h of the one before: thinned away
            pred(T0 + H, 2.0),
            pred(T0, 7.0, symbol="ETHUSDT"),
            pred(T0 + 2 * H, 50.0, role="shadow", version="v2"),  # not active
            pred(T0 + 3 * H, 60.0, horizon="4h"),  # another horizon
        ]
    )
    reference = np.arange(10.0)  # two bins split at 4.5, shares 1/2 and 1/2
    expected = (2 / 3 - 0.5) * math.log((2 / 3) / 0.5) + (1 / 3 - 0.5) * math.log((1 / 3) / 0.5)
    out = prediction_drift(log, reference, "1h", 0.11, min_live=3, n_bins=2)
    assert out["psi"] == pytest.approx(expected) and expected == pytest.approx(0.1155, abs=1e-4)
    assert (out["n_live_thinned"], out["n_reference"], out["n_symbols"], out["drifted"]) == (3, 10, 2, True)
    assert prediction_drift(log, reference, "1h", 0.12, min_live=3, n_bins=2)["drifted"] is False
    few = prediction_drift(log, reference, "1h", 0.0, n_bins=2)  # 3 < 30 thinned points: reported, no decision
    assert few["drifted"] is False and few["psi"] == pytest.approx(expected)
    assert few["reason"].startswith("insufficient evidence: 3 thinned")
