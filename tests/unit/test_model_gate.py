"""The model gate's rules on small frames whose figures are computed by hand (DESIGN section 4, "Beats")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.gates import GateLimits, GateReport, model_gate

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ORDER = [
    "evidence",
    "comparator",
    "window_wins",
    "selection_bootstrap_pnl",
    "selection_bootstrap_vs_comparator",
    "max_drawdown",
    "turnover",
    "calibration",
    "deflated_sharpe",
    "min_detectable_sharpe_diff",
]


def block(backbone: str, fold: int, start: int, pnl, position=1.0, ic: float = 1.0, step_h: int = 1, **cols):
    """Steps of one backbone in one window from step ``start`` (``step_h`` hours apart); rank IC of er vs ret = ic."""
    pnl = np.asarray(pnl, dtype=np.float64)
    n = pnl.size
    pos = np.broadcast_to(np.asarray(position, dtype=np.float64), (n,)).copy()
    ret = (np.arange(n) + 1.0) * 1e-4
    data = {
        "backbone": [backbone] * n,
        "fold": [fold] * n,
        "ts_event": [T0 + timedelta(hours=step_h * (start + i)) for i in range(n)],
        "position": pos,
        "prev_position": np.r_[0.0, pos[:-1]],
        "pnl": pnl,
        "expected_return": ic * ret,
        "ret": ret,
        "signal_confidence": np.full(n, 0.5),
    }
    data.update(cols)
    return pl.DataFrame(data).with_columns(pl.col("ts_event").dt.cast_time_unit("us"))


def crit(report: GateReport, name: str):
    return next(c for c in report.criteria if c.name == name)


def windows_frame(fold3_ic: float, mom_in_fold5: bool) -> pl.DataFrame:
    """Six windows of 40 hourly steps; the candidate ``cand`` against ``mom`` and the flat ``zero``.

    per step      f0      f1      f2      f3      f4 (10 held)  f5
    cand          .001    -.001   .001    .001    .01 held      .001
    mom           .0005   -.002   .002    0       0             absent (or 0)
    """
    cand = [(0.001, 1.0), (-0.001, 1.0), (0.001, 1.0), (0.001, fold3_ic)]
    mom = [0.0005, -0.002, 0.002, 0.0]
    parts = []
    for f, ((c, ic), m) in enumerate(zip(cand, mom, strict=True)):
        parts += [block("cand", f, 40 * f, [c] * 40, ic=ic), block("mom", f, 40 * f, [m] * 40)]
    held10 = np.r_[np.ones(10), np.zeros(30)]
    parts += [block("cand", 4, 160, held10 * 0.01, position=held10), block("mom", 4, 160, [0.0] * 40)]
    parts += [block("cand", 5, 200, [0.001] * 40)]
    if mom_in_fold5:
        parts.append(block("mom", 5, 200, [0.0] * 40))
    parts += [block("zero", f, 40 * f, [0.0] * 40, position=0.0) for f in range(6)]
    return pl.concat(parts)


def test_window_wins_need_pnl_above_zero_and_the_comparator_and_a_positive_rank_ic() -> None:
    report = model_gate(windows_frame(fold3_ic=-1.0, mom_in_fold5=False), "BTCUSDT", "1h", "cand", ["zero", "mom"])
    # mom on the candidate's steps: 40 x (.0005 - .002 + .002 + 0) = .02 > 0 (zero): the comparator is mom
    assert report.comparator == "mom"
    assert crit(report, "comparator").detail["total_pnl"] == pytest.approx({"zero": 0.0, "mom": 0.02})
    # held per window 40, 40, 40, 40, 10, 40: five units; fold 4 (10 held) does not count, mom has no step in fold 5
    assert crit(report, "evidence").value == 5
    ww = crit(report, "window_wins")
    assert [w["folds"] for w in ww.detail["windows"]] == [[0], [1], [2], [3]]
    # f0 wins (.04 > .02, IC 1); f1 .04 < 0 though above mom's -.08; f2 .04 < .08; f3 rank IC -1
    assert [w["won"] for w in ww.detail["windows"]] == [True, False, False, False]
    assert ww.detail["windows"][1]["pnl"] == pytest.approx(-0.04)
    assert ww.detail["windows"][2]["comparator_pnl"] == pytest.approx(0.08)
    assert (ww.value, ww.detail["needed"], ww.passed) == ("1/4", 2, False)  # max(ceil(.5 x 4), 2) = 2
    assert (report.verdict, report.deciding) == ("fail", "window_wins")

    report = model_gate(windows_frame(fold3_ic=1.0, mom_in_fold5=False), "BTCUSDT", "1h", "cand", ["zero", "mom"])
    ww = crit(report, "window_wins")
    assert (ww.value, ww.detail["needed"], ww.passed) == ("2/4", 2, True)


def test_half_the_usable_windows_rounds_up() -> None:
    # mom now has (flat) steps in fold 5: five usable windows, ceil(.5 x 5) = 3 wins needed; f0, f3 and f5 win
    steps = windows_frame(fold3_ic=1.0, mom_in_fold5=True)
    ww = crit(model_gate(steps, "BTCUSDT", "1h", "cand", ["zero", "mom"]), "window_wins")
    assert (ww.value, ww.detail["needed"], ww.passed) == ("3/5", 3, True)
    steps = windows_frame(fold3_ic=-1.0, mom_in_fold5=True)
    ww = crit(model_gate(steps, "BTCUSDT", "1h", "cand", ["zero", "mom"]), "window_wins")
    assert (ww.value, ww.detail["needed"], ww.passed) == ("2/5", 3, False)


def test_the_strongest_comparator_is_measured_on_the_candidates_steps_missing_steps_flat() -> None:
    parts = [block("cand", f, 40 * f, [0.001] * 40) for f in (0, 1)]
    # ridge: .001 x 40 on the candidate's fold 0 and a large PnL on steps the candidate does not have
    parts += [block("ridge", 0, 0, [0.001] * 40), block("ridge", 5, 400, [0.01] * 40)]
    # momentum: .0008 per step, but steps only for fold 0 and half of fold 1 -> 60 x .0008 = .048 > .04
    parts += [block("momentum", 0, 0, [0.0008] * 40), block("momentum", 1, 40, [0.0008] * 20)]
    parts += [block("zero", f, 40 * f, [0.0] * 40, position=0.0) for f in (0, 1)]
    report = model_gate(pl.concat(parts), "BTCUSDT", "1h", "cand", ["zero", "ridge", "momentum"])
    comparator = crit(report, "comparator")
    assert report.comparator == "momentum"
    assert comparator.detail["total_pnl"] == pytest.approx({"zero": 0.0, "ridge": 0.04, "momentum": 0.048})
    assert comparator.value == "momentum (PnL 0.048)"
    # the difference from momentum: 20 steps of fold 1 where it has none count its PnL as 0
    assert crit(report, "selection_bootstrap_vs_comparator").detail["estimate"] == pytest.approx(
        (60 * 0.0002 + 20 * 0.001) / 80
    )


def drawdown_frame(fold0_positions) -> pl.DataFrame:
    """Fold 1 holds the first five hours, fold 0 the next five: time order is not fold order."""
    first = block("cand", 1, 0, [0.1, -0.2, 0.05, -0.12, 0.3], position=[1.0, -1.0, -1.0, 0.0, 1.0])
    second = block("cand", 0, 5, [-0.15, 0.0, 0.0, 0.0, 0.0], position=fold0_positions)
    zero = pl.concat([block("zero", 1, 0, [0.0] * 5, position=0.0), block("zero", 0, 5, [0.0] * 5, position=0.0)])
    return pl.concat([second, zero, first])  # rows out of time order on purpose


def test_drawdown_in_time_order_turnover_and_insufficient_evidence() -> None:
    report = model_gate(drawdown_frame([1.0] * 5), "ETHUSDT", "1h", "cand", ["zero"])
    # cumulative .1, -.1, -.05, -.17, .13, -.02, ...: the peak .1 falls to -.17 (in fold order it would be .32)
    dd = crit(report, "max_drawdown")
    assert dd.value == pytest.approx(0.27)
    assert dd.passed is False
    # |dpos|: fold 1: 1, 2, 0, 1, 1; fold 0: 1, 0, 0, 0, 0 -> 6 / 10
    assert crit(report, "turnover").value == pytest.approx(0.6)
    assert crit(report, "turnover").passed is True
    # 4 and 5 held steps: no window counts -> insufficient evidence, however the drawdown looks
    assert (crit(report, "evidence").value, crit(report, "evidence").passed) == (0, False)
    assert (report.verdict, report.deciding) == ("insufficient evidence", "evidence")
    assert [c.name for c in report.criteria] == ORDER  # every criterion is still computed and shown
    assert (report.n_steps, report.n_held, report.n_windows, report.n_configurations) == (10, 9, 2, 1)

    churn = model_gate(drawdown_frame([1.0, -1.0, 1.0, -1.0, 1.0]), "ETHUSDT", "1h", "cand", ["zero"])
    # fold 0 now: 1, 2, 2, 2, 2 -> (5 + 9) / 10
    assert crit(churn, "turnover").value == pytest.approx(1.4)
    assert crit(churn, "turnover").passed is False


@pytest.mark.parametrize(("horizon", "units"), [("1d", [[0, 1], [2, 3]]), ("1h", [[3]])])
def test_evidence_pools_consecutive_windows_from_one_day(horizon: str, units: list[list[int]]) -> None:
    step_h = 24 if horizon == "1d" else 1
    held, parts, start = [20, 15, 10, 40], [], 0
    for f, n in enumerate(held):
        parts += [
            block("cand", f, start, [0.001] * n, step_h=step_h),
            block("zero", f, start, [0.0] * n, 0.0, 1, step_h),
        ]
        start += n
    report = model_gate(pl.concat(parts), "BTCUSDT", horizon, "cand", ["zero"])
    evidence = crit(report, "evidence")
    # pooled: 20 + 15 = 35 >= 30, then 10 + 40; not pooled: only the window of 40 held steps counts
    assert evidence.detail["units"] == units
    assert evidence.passed is (len(units) >= 2)
    assert report.verdict == ("insufficient evidence" if len(units) < 2 else report.verdict)


def calibration_frame(conf: np.ndarray, hit: np.ndarray) -> pl.DataFrame:
    """Daily steps in windows of 30, expected_return > 0 and ret of the sign ``hit`` says."""
    n = conf.size
    ret = np.where(hit, 1e-3, -1e-3)
    parts = []
    for f in range(n // 30):
        rows = slice(30 * f, 30 * f + 30)
        c = block("cand", f, 30 * f, ret[rows], step_h=24, signal_confidence=conf[rows])
        parts += [c.with_columns(ret=pl.Series(ret[rows]), expected_return=pl.lit(1e-3))]
        parts += [block("zero", f, 30 * f, [0.0] * 30, position=0.0, step_h=24)]
    return pl.concat(parts)


def test_a_perfectly_calibrated_forecast_over_90_steps_does_not_fail() -> None:
    # buckets .55 x 20 (11 hits), .65 x 20 (13), .75 x 20 (15), .85 x 20 (17), .9 x 10 (9): ECE exactly 0
    conf = np.repeat([0.55, 0.65, 0.75, 0.85, 0.9], [20, 20, 20, 20, 10])
    hit = np.concatenate([np.arange(k) < h for k, h in [(20, 11), (20, 13), (20, 15), (20, 17), (10, 9)]])
    order = np.random.default_rng(3).permutation(90)  # spread the buckets over the days
    report = model_gate(calibration_frame(conf[order], hit[order]), "BTCUSDT", "1d", "cand", ["zero"])
    cal = crit(report, "calibration")
    assert cal.detail["ece"] == pytest.approx(0.0, abs=1e-12)
    assert cal.passed is True


def test_a_badly_miscalibrated_forecast_fails() -> None:
    conf = np.full(300, 0.9)  # says 90% but is right every other step: ECE .4
    hit = np.arange(300) % 2 == 0
    report = model_gate(calibration_frame(conf, hit), "BTCUSDT", "1d", "cand", ["zero"])
    cal = crit(report, "calibration")
    assert cal.detail["ece"] == pytest.approx(0.4)
    assert cal.detail["low"] > GateLimits().ece_bound
    assert cal.passed is False


def test_the_report_renders_every_criterion_and_is_json() -> None:
    report = model_gate(windows_frame(fold3_ic=1.0, mom_in_fold5=False), "BTCUSDT", "1h", "cand", ["zero", "mom"])
    text = report.to_markdown()
    assert "| criterion | value | threshold | pass/fail | why |" in text
    for name in ORDER:
        assert f"| {name} |" in text
    assert f"**Verdict: {report.verdict}** (deciding: {report.deciding};" in text
    out = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert [c["name"] for c in out["criteria"]] == ORDER
    assert (out["verdict"], out["comparator"], out["n_steps"]) == (report.verdict, "mom", 240)


def test_the_minimum_detectable_difference_says_when_the_data_could_not_tell() -> None:
    pnl = np.tile([0.011, -0.01], 20)  # mean .0005 per step against the flat comparator
    parts = [block("cand", f, 40 * f, pnl) for f in (0, 1, 2)]
    parts += [block("zero", f, 40 * f, [0.0] * 40, position=0.0) for f in (0, 1, 2)]
    mde = crit(model_gate(pl.concat(parts), "BTCUSDT", "1h", "cand", ["zero"]), "min_detectable_sharpe_diff")
    # (z.95 + z.80) / sqrt(120) x sqrt(8760) = 2.4865 x 8.544 = 21.24
    assert mde.value == pytest.approx((1.644854 + 0.841621) / np.sqrt(120) * np.sqrt(8760), rel=1e-5)
    all_pnl = np.tile(pnl, 3)
    observed = all_pnl.mean() / all_pnl.std(ddof=1) * np.sqrt(8760)  # 4.44
    assert mde.detail["observed_sharpe_diff"] == pytest.approx(observed)
    assert observed < mde.value
    assert "on this much data a good model often cannot pass; this is not evidence the model is bad" in mde.why
    # constant PnL per window: a large observed difference, said plainly to be detectable
    steps = windows_frame(fold3_ic=1.0, mom_in_fold5=False)
    mde = crit(model_gate(steps, "BTCUSDT", "1h", "cand", ["zero", "mom"]), "min_detectable_sharpe_diff")
    assert mde.detail["observed_sharpe_diff"] > mde.value
    assert "is at or above the smallest that 240 steps could detect" in mde.why


def test_bad_inputs_are_refused() -> None:
    steps = windows_frame(fold3_ic=1.0, mom_in_fold5=False)
    with pytest.raises(ValueError, match="no steps for"):
        model_gate(steps, "BTCUSDT", "1h", "cand", ["zero", "active"])
    with pytest.raises(ValueError, match="comparators"):
        model_gate(steps, "BTCUSDT", "1h", "cand", ["cand"])
    with pytest.raises(ValueError, match="duplicate"):
        model_gate(pl.concat([steps, steps.head(1)]), "BTCUSDT", "1h", "cand", ["zero"])
    with pytest.raises(ValueError, match="miss columns"):
        model_gate(steps.drop("pnl"), "BTCUSDT", "1h", "cand", ["zero"])
