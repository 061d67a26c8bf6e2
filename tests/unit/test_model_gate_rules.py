"""The model gate's rules at their boundaries, on small frames whose figures are derived by hand (docs/registry.md).

PnL values are binary fractions (``P = 2^-10``) so that sums, means and bootstrap means are exact: an interval of a
constant series is the point itself, and a boundary (lower end exactly 0, drawdown exactly the limit, ECE exactly
the bound) is hit exactly rather than to rounding.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
from scipy import stats

from quantmm_assets.core.evaluation.bootstrap import day_resamples
from quantmm_assets.core.gates import Criterion, GateLimits, GateReport, model_gate

T0 = datetime(2024, 1, 1, tzinfo=UTC)
P = 2.0**-10
SCHEMA = {
    "backbone": pl.Utf8,
    "fold": pl.Int64,
    "ts_event": pl.Datetime("us", "UTC"),
    "position": pl.Float64,
    "prev_position": pl.Float64,
    "pnl": pl.Float64,
    "expected_return": pl.Float64,
    "ret": pl.Float64,
    "signal_confidence": pl.Float64,
}


def rows(backbone, fold, start, pnl, position=1.0, prev=None, er=None, ret=None, conf=1.0, step_h=1):
    """Steps of one backbone in one window from hour ``start``; er = ret (rank IC 1) unless given."""
    pnl = np.asarray(pnl, dtype=np.float64)
    n = pnl.size
    pos = np.broadcast_to(np.asarray(position, dtype=np.float64), (n,)).copy()
    ret = (np.arange(n) + 1.0) * 1e-4 if ret is None else np.asarray(ret, dtype=np.float64)
    data = {
        "backbone": [backbone] * n,
        "fold": [fold] * n,
        "ts_event": [T0 + timedelta(hours=step_h * (start + i)) for i in range(n)],
        "position": pos,
        "prev_position": np.r_[0.0, pos[:-1]] if prev is None else np.broadcast_to(prev, (n,)),
        "pnl": pnl,
        "expected_return": ret if er is None else np.broadcast_to(er, (n,)),
        "ret": ret,
        "signal_confidence": [conf] * n if conf is None or np.isscalar(conf) else list(conf),
    }
    return pl.DataFrame(data, schema=SCHEMA)


def steady(windows=2, pnl=P, conf=1.0, prev=None, extra=()):
    """``cand`` holds 30 hourly steps a window earning ``pnl`` each, always right and fully confident; ``zero``."""
    parts = [rows("cand", f, 30 * f, [pnl] * 30, conf=conf, prev=prev) for f in range(windows)]
    parts += [rows("zero", f, 30 * f, [0.0] * 30, position=0.0) for f in range(windows)]
    return pl.concat([*parts, *extra])


def crit(report: GateReport, name: str) -> Criterion:
    return next(c for c in report.criteria if c.name == name)


def gate(steps, comparators=("zero",), horizon="1h", **kw):
    return model_gate(steps, "BTCUSDT", horizon, "cand", list(comparators), **kw)


def mde_of(n: int, per_year: float) -> float:
    z = NormalDist().inv_cdf(0.95) + NormalDist().inv_cdf(0.80)
    return z / math.sqrt(n) * math.sqrt(per_year)


def test_a_steady_winner_passes_and_its_markdown_reads_line_by_line() -> None:
    report = gate(steady())
    # 60 steps over hours 0-59: day blocks 0-23, 24-47, 48-59; every block mean is P, so the interval is [P, P];
    # turnover: one entry per window (prev 0 -> 1) over 60 steps; ECE: confidence 1 and always right -> 0
    mde = mde_of(60, 8760)
    why_mde = (
        f"the observed Sharpe difference from zero (0) is below the smallest that 60 steps could detect ({mde:.4g})"
    )
    assert report.to_markdown().split("\n") == [
        "Model gate for BTCUSDT 1h: candidate `cand` against `zero`",
        "",
        "| criterion | value | threshold | pass/fail | why |",
        "|---|---|---|---|---|",
        "| evidence | 2 | >= 2 units (a window counts with >= 30 held steps) | pass | 2 evidence units from 2 windows "
        "and 60 held steps. |",
        "| comparator | zero (PnL 0) | strongest of the comparators | pass | zero has the largest total after-cost PnL "
        "of 1 comparator on the candidate's steps. |",
        "| window_wins | 2/2 | >= max(ceil(0.5 x usable), 2) = 2 | pass | the candidate beat zero (PnL > 0, > the "
        "comparator's, rank IC > 0) in 2 of 2 usable windows. |",
        "| selection_bootstrap_pnl | [0.0009766, 0.0009766] | 90% selection-aware lower bound > 0 | pass | the 90% "
        "interval of the mean step PnL (mean 0.0009766), allowing for the choice among 1 configuration, over 3 "
        "blocks, lies above 0. |",
        "| selection_bootstrap_vs_comparator | [0.0009766, 0.0009766] | 90% selection-aware lower bound > 0 | pass | "
        "the 90% interval of the mean step PnL minus zero's (mean 0.0009766), allowing for the choice among 1 "
        "configuration, over 3 blocks, lies above 0. |",
        "| max_drawdown | 0 | <= 0.25 | pass | the largest fall of the cumulative step PnL is 0. |",
        "| turnover | 0.03333 | <= 1 | pass | the mean change of position per step is 0.03333. |",
        "| calibration | 0 [0, 0] | fails only when the interval lies wholly above 0.05 | pass | the 90% interval of "
        "the ECE reaches down to 0, not wholly above the bound. |",
        "| deflated_sharpe | - | report only | n/a | undefined: too few steps or a constant PnL. |",
        f"| min_detectable_sharpe_diff | {mde:.4g} | report only (one-sided 5%, power 80%, annualized) | n/a | "
        f"{why_mde}: on this much data a good model often cannot pass; this is not evidence the model is bad. |",
        "",
        "**Verdict: pass** (deciding: all criteria; 60 steps, 60 held, 2 windows, 1 configuration)",
    ]
    out = report.to_dict()
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["criteria"][0]["detail"] == {"units": [[0], [1]], "held_per_window": {"0": 30, "1": 30}}
    assert out["criteria"][2]["detail"]["windows"][1] == {
        "folds": [1], "pnl": 30 * P, "comparator_pnl": 0.0, "rank_ic": pytest.approx(1.0), "won": True
    }  # fmt: skip
    assert out["criteria"][3]["detail"] == {"estimate": P, "low": P, "high": P, "n_blocks": 3, "n_configurations": 1}
    assert out["criteria"][8]["value"] is None and out["criteria"][9]["value"] == pytest.approx(mde)
    assert out["criteria"][9]["detail"] == {"observed_sharpe_diff": 0.0, "n_steps": 60}


def test_a_hand_built_report_renders_every_kind_of_value_and_is_plain_json() -> None:
    crits = (
        Criterion("a|b", float("nan"), "t", None, "w|hy", {1: np.int64(3), "x": (np.float64(np.inf), 0.5)}),
        Criterion("c", None, "t", True, "w"),
        Criterion("d", 1234567.0, "t", False, "w"),
        Criterion("e", np.float64(0.25), "t", False, "w"),
    )
    report = GateReport("ETHUSDT", "4h", "m", "z|z", "fail", "d", crits, 1, 0, 1, 3)
    assert report.to_markdown().split("\n")[4:] == [
        "| a\\|b | - | t | n/a | w\\|hy |",
        "| c | - | t | pass | w |",
        "| d | 1.235e+06 | t | fail | w |",
        "| e | 0.25 | t | fail | w |",
        "",
        "**Verdict: fail** (deciding: d; 1 steps, 0 held, 1 window, 3 configurations)",
    ]
    out = report.to_dict()
    assert out["criteria"][0]["value"] is None and out["criteria"][0]["detail"] == {"1": 3, "x": [None, 0.5]}
    assert type(out["criteria"][0]["detail"]["1"]) is int and type(out["criteria"][3]["value"]) is float
    assert (out["comparator"], out["n_configurations"]) == ("z|z", 3)
    odd = GateReport(
        "ETHUSDT", "4h", "m", "z", "fail", "d", (Criterion("f", 1.0, "t", True, "w", {"t": T0}),), 1, 0, 1, 1
    )
    with pytest.raises(TypeError):  # anything not plain JSON is refused, not passed on
        odd.to_dict()


def test_the_verdict_takes_the_first_failure_then_the_first_criterion_that_could_not_be_evaluated() -> None:
    assert (gate(steady()).verdict, gate(steady()).deciding) == ("pass", "all criteria")
    blind = gate(steady(conf=None))  # no confidence at all: calibration cannot be measured
    cal = crit(blind, "calibration")
    assert (cal.value, cal.passed) == ("undefined [undefined, undefined]", None)
    assert cal.why == "no step has a finite confidence and a non-zero return, so calibration cannot be measured."
    assert (blind.verdict, blind.deciding) == ("insufficient evidence", "calibration")
    churn = gate(steady(conf=None, prev=-1.0))  # |1 - (-1)| = 2 per step: a fail outranks the unmeasured one
    assert (crit(churn, "turnover").value, churn.verdict, churn.deciding) == (2.0, "fail", "turnover")
    both = gate(steady(prev=-1.0), limits=GateLimits(max_drawdown=-0.01))  # drawdown 0 > -0.01 and turnover
    assert (crit(both, "max_drawdown").passed, both.deciding) == (False, "max_drawdown")
    first = gate(steady(prev=-1.0), limits=GateLimits(min_windows=3))  # 2 wins < 3
    assert (crit(first, "window_wins").detail["needed"], first.verdict, first.deciding) == (3, "fail", "window_wins")
    # a PnL of exactly 0 everywhere: both lower ends are exactly 0, not > 0; the first bootstrap decides
    free = GateLimits(min_window_win_share=0.0, min_windows=0)
    flat = gate(steady(pnl=0.0, prev=-1.0), limits=free)
    assert crit(flat, "window_wins").passed is True  # 0 wins >= max(ceil(0), 0)
    pnl, diff = crit(flat, "selection_bootstrap_pnl"), crit(flat, "selection_bootstrap_vs_comparator")
    assert (pnl.value, pnl.passed, diff.passed) == ("[0, 0]", False, False)
    assert pnl.why.endswith("over 3 blocks, does not lie above 0.")
    assert (flat.verdict, flat.deciding) == ("fail", "selection_bootstrap_pnl")
    # a comparator earning what the candidate earns: the difference is exactly 0 and the PnL's bound is P
    twin = gate(steady(extra=[rows("mom", f, 30 * f, [P] * 30) for f in (0, 1)]), ["zero", "mom"], limits=free)
    assert (twin.comparator, crit(twin, "selection_bootstrap_pnl").passed) == ("mom", True)
    assert crit(twin, "selection_bootstrap_vs_comparator").value == "[0, 0]"
    assert (twin.verdict, twin.deciding) == ("fail", "selection_bootstrap_vs_comparator")


def test_evidence_counts_windows_of_at_least_30_held_steps_by_fold_label() -> None:
    alternating = np.where(np.arange(30) % 2, -1.0, 1.0)  # a short position is held too
    two_flat = np.r_[np.ones(29), 0.0, 0.0]  # 31 steps, 29 held
    parts = [
        rows("cand", 3, 0, [P] * 30, position=alternating),
        rows("cand", 5, 30, [P] * 31, position=two_flat),
        rows("cand", 9, 61, [P] * 30),
    ]
    parts += [rows("zero", f, s, [0.0] * 30, position=0.0) for f, s in ((3, 0), (5, 30), (9, 61))]
    report = gate(pl.concat(parts))
    ev = crit(report, "evidence")
    assert (ev.value, ev.passed, report.n_held, report.n_windows, report.n_steps) == (2, True, 89, 3, 91)
    assert ev.detail == {"units": [[3], [9]], "held_per_window": {"3": 30, "5": 29, "9": 30}}
    assert ev.why == "2 evidence units from 3 windows and 89 held steps."
    one = gate(pl.concat(parts[1:]))
    ev = crit(one, "evidence")
    assert (ev.value, ev.passed, one.verdict, one.deciding) == (1, False, "insufficient evidence", "evidence")
    assert ev.why == (
        "1 evidence units from 2 windows and 59 held steps: fewer than 2, so the data cannot tell whether the model "
        "is good or bad."
    )
    daily = [
        rows(b, f, 20 * f, [P] * 20, position=float(b == "cand"), step_h=24) for b in ("cand", "zero") for f in (0, 1)
    ]
    ev = crit(gate(pl.concat(daily), horizon="1d"), "evidence")
    assert (ev.value, ev.detail["units"]) == (1, [[0, 1]])  # 20 + 20 pooled
    assert ev.threshold == ">= 2 units (consecutive windows pooled until they hold >= 30 held steps)"


def test_the_comparator_is_the_largest_total_and_a_tie_goes_to_the_first_named() -> None:
    extra = [rows(b, f, 30 * f, [P / 2] * 30) for b in ("mom", "ridge") for f in (0, 1)]
    for names in (["mom", "ridge", "zero"], ["ridge", "mom", "zero"]):
        report = gate(steady(extra=extra), names)
        comp = crit(report, "comparator")
        assert report.comparator == names[0]
        assert comp.value == f"{names[0]} (PnL 0.0293)"  # 60 x P / 2 = 30 / 1024
        assert comp.detail["total_pnl"] == {"mom": 30 * P, "ridge": 30 * P, "zero": 0.0}
        assert comp.why == f"{names[0]} has the largest total after-cost PnL of 3 comparators on the candidate's steps."
    losing = [rows("mom", f, 30 * f, [-P] * 30) for f in (0, 1)]
    assert gate(steady(extra=losing), ["mom", "zero"]).comparator == "zero"  # 0 > -60 P


def wins_frame(comp_in_f3_off_grid: bool = False) -> pl.DataFrame:
    """Four windows of 30 hourly steps, ``cand`` against ``mom`` (per step):

    f0: P vs P/2, rank IC 1 (a win); f1: P vs P (a tie, no win); f2: 0 vs -P (above mom but not > 0);
    f3: P vs 0 with a U-shaped forecast: ranks symmetric about the middle, rank IC exactly 0 (no win).
    """
    ret = np.arange(1.0, 31.0)
    u_shape = -((ret - 15.5) ** 2)
    spec = [(P, P / 2, None), (P, P, None), (0.0, -P, None), (P, 0.0, u_shape)]
    parts = []
    for f, (c, m, er) in enumerate(spec):
        parts.append(rows("cand", f, 30 * f, [c] * 30, er=er, ret=ret))
        if f < 3 or not comp_in_f3_off_grid:
            parts.append(rows("mom", f, 30 * f, [m] * 30))
    if comp_in_f3_off_grid:  # mom has steps in window 3, none on the candidate's
        parts.append(rows("mom", 3, 500, [P] * 5))
    parts += [rows("zero", f, 30 * f, [0.0] * 30, position=0.0) for f in range(4)]
    return pl.concat(parts)


def test_a_window_is_won_only_strictly_above_zero_the_comparator_and_a_zero_rank_ic() -> None:
    report = gate(wins_frame(), ["zero", "mom"])
    assert report.comparator == "mom"  # 15 P + 30 P - 30 P + 0 > 0
    ww = crit(report, "window_wins")
    windows = ww.detail["windows"]
    assert [w["won"] for w in windows] == [True, False, False, False]
    assert [w["pnl"] for w in windows] == [30 * P, 30 * P, 0.0, 30 * P]
    assert [w["comparator_pnl"] for w in windows] == [15 * P, 30 * P, -30 * P, 0.0]
    assert windows[3]["rank_ic"] == 0.0
    assert (ww.value, ww.passed, ww.detail["usable"], ww.detail["needed"]) == ("1/4", False, 4, 2)
    # the comparator's step off the candidate's grid is not used, but its window is usable with PnL 0
    ww = crit(gate(wins_frame(comp_in_f3_off_grid=True), ["zero", "mom"]), "window_wins")
    assert [w["comparator_pnl"] for w in ww.detail["windows"]] == [15 * P, 30 * P, -30 * P, 0.0]
    assert ww.detail["usable"] == 4
    # a window where the comparator has no step is not usable, and the windows after it still are
    late = wins_frame().filter((pl.col("backbone") != "mom") | (pl.col("fold") > 0))
    ww = crit(gate(late, ["mom"]), "window_wins")
    assert ([w["folds"] for w in ww.detail["windows"]], ww.value, ww.detail["wins"]) == ([[1], [2], [3]], "0/3", 0)


# Equivalent mutants (docs/mutation.md): `present.get(comp, set())` with the default None or dropped (every comparator
# has steps, checked, so it is always a key); `round(share x usable, 9)` -> 10 digits (it only absorbs float noise).
def test_wins_needed_are_max_of_the_rounded_up_share_and_min_windows() -> None:
    report = gate(steady(windows=3))  # 3 usable windows, 3 wins
    ww = crit(report, "window_wins")
    assert (ww.detail["needed"], ww.threshold) == (2, ">= max(ceil(0.5 x usable), 2) = 2")  # ceil(1.5)
    lim = GateLimits(min_window_win_share=0.7, min_windows=3)
    ww = crit(gate(steady(windows=3), limits=lim), "window_wins")
    assert (ww.detail["needed"], ww.passed, ww.threshold) == (3, True, ">= max(ceil(0.7 x usable), 3) = 3")
    lim = GateLimits(min_window_win_share=1.0, min_windows=1)
    ww = crit(gate(steady(windows=3), limits=lim), "window_wins")
    assert (ww.detail["needed"], ww.passed) == (3, True)  # exactly all of them
    # share x usable a hair above a whole number (float noise) does not ask for one more win
    lim = GateLimits(min_window_win_share=1 / 3 + 1e-12, min_windows=1)
    assert crit(gate(steady(windows=3), limits=lim), "window_wins").detail["needed"] == 1
    # one win of two usable: half is enough, min_windows 2 is not
    lost = [rows("mom", 1, 30, [2 * P] * 30), rows("mom", 0, 0, [0.0] * 30)]
    ww = crit(gate(steady(extra=lost), ["mom", "zero"]), "window_wins")
    assert (ww.value, ww.detail["needed"], ww.passed) == ("1/2", 2, False)
    ww = crit(gate(steady(extra=lost), ["mom", "zero"], limits=GateLimits(min_windows=1)), "window_wins")
    assert (ww.value, ww.detail["needed"], ww.passed) == ("1/2", 1, True)


# Equivalent: the `passed = None` branch disabled (the candidate has steps and a finite PnL, its lower end is finite);
# `codes.max(initial=...)` -2 / None / +1 (codes are never empty; with one block an extra empty block only adds
# resamples of that block twice, the same exact ratio, or of none, NaN and left out).
def test_the_bootstrap_intervals_against_a_direct_block_resampling() -> None:
    rng = np.random.default_rng(11)
    cand, alpha, mom = (rng.normal(m, 4 * P, 72).round(12) for m in (P, 0.0, P / 2))
    parts = [rows("cand", f, 36 * f, cand[36 * f : 36 * f + 36], step_h=4) for f in (0, 1)]
    parts += [rows("mom", f, 36 * f, mom[36 * f : 36 * f + 36], step_h=4) for f in (0, 1)]
    parts += [rows("zero", f, 36 * f, [0.0] * 36, position=0.0, step_h=4) for f in (0, 1)]
    # alpha in window 0 for steps 0-49: steps 36-49 are the candidate's window 1, off its (fold, ts_event) grid
    parts += [rows("alpha", 0, 0, alpha[:50], step_h=4), rows("alpha", 7, 900, [1.0] * 3, step_h=4)]
    lim = GateLimits(level=0.8, n_boot=300, seed=4)
    report = gate(pl.concat(parts), ["zero", "mom"], horizon="4h", limits=lim)
    assert report.comparator == "mom" and report.n_configurations == 2
    x = np.column_stack([np.r_[alpha[:36], np.zeros(36)], cand])  # configurations alpha, cand on the grid
    days = np.arange(72) * 4 // 24  # 12 day blocks
    for name, values in (("selection_bootstrap_pnl", x), ("selection_bootstrap_vs_comparator", x - mom[:, None])):
        means = values.mean(axis=0)
        spread = np.array([(values[r].mean(axis=0) - means).max() for r in day_resamples(days, 300, 4)])
        q10, q90 = np.quantile(spread, [0.1, 0.9])
        c = crit(report, name)
        want = (means[1], means[1] - q90, means[1] - q10, 12, 2)
        got = tuple(c.detail[k] for k in ("estimate", "low", "high", "n_blocks", "n_configurations"))
        assert got == pytest.approx(want, rel=1e-9)
        assert c.value == f"[{want[1]:.4g}, {want[2]:.4g}]"
        assert c.passed is bool(want[1] > 0)
        assert c.threshold == "80% selection-aware lower bound > 0"
        assert "the 80% interval" in c.why and "among 2 configurations, over 12 blocks" in c.why


@pytest.mark.parametrize(("drop", "dd_pass"), [(-0.25, True), (-0.25 - 2**-20, False)])
def test_drawdown_and_turnover_equal_to_their_limits_pass(drop: float, dd_pass: bool) -> None:
    pnl = np.r_[0.5, drop, np.zeros(28)]  # cumulative .5 then .25: a fall of exactly .25
    report = gate(pl.concat([rows("cand", 0, 0, pnl, prev=0.0), rows("zero", 0, 0, [0.0] * 30, position=0.0)]))
    dd, turnover = crit(report, "max_drawdown"), crit(report, "turnover")
    assert (dd.value, dd.passed) == (-drop, dd_pass)
    assert (turnover.value, turnover.passed) == (1.0, True)  # |1 - 0| at every step
    limits = GateLimits(max_drawdown=0.125, max_turnover=0.5)
    report = gate(
        pl.concat([rows("cand", 0, 0, pnl, prev=0.0), rows("zero", 0, 0, [0.0] * 30, position=0.0)]), limits=limits
    )
    dd, turnover = crit(report, "max_drawdown"), crit(report, "turnover")
    assert (dd.threshold, dd.passed, turnover.threshold, turnover.passed) == ("<= 0.125", False, "<= 0.5", False)


def test_steps_at_one_time_in_two_windows_are_taken_in_window_order() -> None:
    # window 0: +1, -.5, +.25 at hours 0-2; window 1 (given first): -.5 at hour 2. In (time, window) order the
    # cumulative PnL is 1, .5, .75, .25: a fall of .75 (window 1 first: 1, .5, 0, .25, a fall of 1)
    zero = [rows("zero", f, f * 2, [0.0] * (3 - 2 * f), position=0.0) for f in (0, 1)]
    report = gate(pl.concat([rows("cand", 1, 2, [-0.5]), rows("cand", 0, 0, [1.0, -0.5, 0.25]), *zero]))
    assert crit(report, "max_drawdown").value == 0.75


def one_day(conf, er, ret) -> pl.DataFrame:
    """Hourly steps of one day: one bootstrap block, so every resample is the sample and the interval its ECE."""
    n = len(ret)
    cand = rows("cand", 0, 0, [P] * n, er=np.asarray(er, float), ret=np.asarray(ret, float), conf=conf)
    return pl.concat([cand, rows("zero", 0, 0, [0.0] * n, position=0.0)])


@pytest.mark.parametrize(("misses", "passed"), [(6, True), (7, False)])
def test_calibration_fails_only_when_the_whole_interval_lies_above_the_bound(misses: int, passed: bool) -> None:
    # confidence .75 on 20 steps, 20 - misses hits: ECE |15 - 14| / 20 = .05 exactly (the bound), then .1
    ret = np.where(np.arange(20) < misses, -1e-3, 1e-3)
    cal = crit(gate(one_day(0.75, [1e-3] * 20, ret)), "calibration")
    ece = abs(15 - (20 - misses)) / 20
    assert (cal.detail["ece"], cal.detail["low"], cal.detail["high"], cal.passed) == (ece, ece, ece, passed)
    assert cal.value == f"{ece:.4g} [{ece:.4g}, {ece:.4g}]"
    if not passed:
        assert cal.why == "the whole 90% interval of the ECE lies above 0.05: the confidence is off."
    limits = GateLimits(ece_bound=0.2)
    cal = crit(gate(one_day(0.75, [1e-3] * 20, ret), limits=limits), "calibration")
    assert (cal.passed, cal.threshold) == (True, "fails only when the interval lies wholly above 0.2")


def test_calibration_scores_the_sign_hit_on_steps_with_a_nonzero_return_and_a_confidence() -> None:
    conf = [0.75] * 9 + [None]
    er = [1, 1, 1, 1, -1, -1, 0, 1, 1, 1]  # hits: 4 up, 2 down; a zero forecast misses a rise
    ret = [1, 2, 3, 4, -1, -2, 5, 0, np.nan, 6]  # a zero or unknown return is not scored, nor a null confidence
    cal = crit(gate(one_day(conf, np.multiply(er, 1e-3), np.multiply(ret, 1e-3))), "calibration")
    assert cal.detail["ece"] == pytest.approx(abs(7 * 0.75 - 6) / 7)
    assert cal.detail["n_blocks"] == 1


# Equivalent: the candidate moved first when already listed (`... and False`): only the order of the configurations
# changes, and neither the selection-aware max nor the variance of their Sharpes depends on it. Also equivalent across
# the module: `zip(strict=...)` None / False / dropped (equal lengths by construction), `astype(None)` (float64 is
# numpy's default), the join's `how="inner"` dropped (polars' default) and `return_dtype=pl.Int64` None / dropped
# in `_aligned` (inferred from the integer codes).
def test_configurations_default_to_every_non_comparator_and_always_hold_the_candidate() -> None:
    extra = [rows(b, 0, 0, [P] * 30) for b in ("beta", "alpha")]
    assert gate(steady(extra=extra)).n_configurations == 3  # alpha, beta, cand
    assert gate(steady(extra=extra), configurations=["beta"]).n_configurations == 2
    report = gate(steady(extra=extra), configurations=["cand", "beta", "beta", "cand"])
    assert report.n_configurations == 2
    assert crit(report, "selection_bootstrap_pnl").detail["n_configurations"] == 2
    assert gate(steady(extra=extra), ["zero", "alpha"]).n_configurations == 2  # beta, cand
    with pytest.raises(ValueError, match=r"no steps for \['ghost'\]"):
        gate(steady(), configurations=["ghost"])
    with pytest.raises(ValueError, match="comparators"):
        gate(steady(), [])
    with pytest.raises(ValueError, match="unknown horizon"):
        gate(steady(), horizon="2h")


def test_rows_of_another_symbol_or_horizon_are_left_out_and_inputs_are_checked() -> None:
    base = steady().with_columns(symbol=pl.lit("BTCUSDT"), horizon=pl.lit("1h"), variant=pl.lit("full"))
    other_symbol = base.with_columns(symbol=pl.lit("ETHUSDT"), pnl=pl.lit(-1.0))
    other_horizon = base.with_columns(horizon=pl.lit("4h"), pnl=pl.lit(-1.0))
    report = gate(pl.concat([other_symbol, base, other_horizon]))  # the same keys: kept, they would be duplicates
    assert (report.verdict, report.n_steps, crit(report, "max_drawdown").value) == ("pass", 60, 0.0)
    with pytest.raises(ValueError, match="several variants"):
        gate(pl.concat([base, base.with_columns(variant=pl.lit("no_text"), fold=pl.col("fold") + 10)]))
    # the same time in two windows of one backbone is not a duplicate
    shifted = rows("cand", 7, 0, [P] * 30)
    assert gate(pl.concat([steady(), shifted, rows("zero", 7, 0, [0.0] * 30, position=0.0)])).n_steps == 90
    for col, bad in (("pnl", None), ("pnl", np.inf), ("position", np.nan), ("position", None)):
        broken = steady().with_columns(pl.when(pl.int_range(pl.len()) == 3).then(bad).otherwise(pl.col(col)).alias(col))
        with pytest.raises(ValueError, match="null or non-finite"):
            gate(broken)
    fine = steady().with_columns(expected_return=pl.lit(np.nan), ret=pl.lit(None, pl.Float64))  # not checked
    assert gate(fine).n_steps == 60


def test_the_sharpe_reports_against_direct_formulas() -> None:
    rng = np.random.default_rng(5)
    cand, mom, alpha = (rng.normal(m, 4 * P, 60).round(12) for m in (P, P / 4, 0.0))
    mom += P / 4 - mom.mean()  # its total is > 0: the strongest comparator
    parts = [rows("cand", f, 30 * f, cand[30 * f : 30 * f + 30], step_h=4) for f in (0, 1)]
    parts += [rows("mom", f, 30 * f, mom[30 * f : 30 * f + 30], step_h=4) for f in (0, 1)]
    parts += [rows("zero", f, 30 * f, [0.0] * 30, position=0.0, step_h=4) for f in (0, 1)]
    parts += [rows("alpha", 1, 30, alpha[30:], step_h=4)]  # window 0 counts as flat for it
    report = gate(pl.concat(parts), ["zero", "mom"], horizon="4h", configurations=["alpha", "cand"])
    assert report.comparator == "mom"
    # per-step Sharpes of the configurations on the candidate's grid, then Bailey and Lopez de Prado's PSR(SR0)
    sr = cand.mean() / cand.std(ddof=1)
    alpha_on_grid = np.r_[np.zeros(30), alpha[30:]]
    sharpes = np.array([alpha_on_grid.mean() / alpha_on_grid.std(ddof=1), sr])
    g = 0.5772156649015329
    sr0 = sharpes.std(ddof=1) * ((1 - g) * stats.norm.ppf(1 - 1 / 2) + g * stats.norm.ppf(1 - 1 / (2 * math.e)))
    skew, kurt = stats.skew(cand), stats.kurtosis(cand, fisher=False)
    z = (sr - sr0) * math.sqrt(59) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    dsr = crit(report, "deflated_sharpe")
    assert dsr.value == pytest.approx(stats.norm.cdf(z), rel=1e-9)
    assert dsr.detail == {"n_configurations": 2, "step_sharpe": pytest.approx(sr, rel=1e-12)}
    assert dsr.why == "probability that the true Sharpe beats the best of 2 configurations tried by chance (60 steps)."
    assert (dsr.threshold, dsr.passed) == ("report only", None)
    # 4h: 2190 steps a year; the observed difference is from mom, the strongest comparator
    mde = crit(report, "min_detectable_sharpe_diff")
    diff = cand - mom
    observed = diff.mean() / diff.std(ddof=1) * math.sqrt(2190)
    assert mde.value == pytest.approx(mde_of(60, 2190), rel=1e-12)
    assert mde.detail == {"observed_sharpe_diff": pytest.approx(observed, rel=1e-9), "n_steps": 60}
    assert f"from mom ({observed:.4g})" in mde.why


def test_a_single_step_reports_undefined_figures_as_none() -> None:
    report = gate(pl.concat([rows("cand", 0, 0, [P]), rows("zero", 0, 0, [0.0], position=0.0)]))
    mde = crit(report, "min_detectable_sharpe_diff")
    assert (mde.value != mde.value, mde.why) == (True, "1 steps are too few to say what difference they could detect.")
    out = report.to_dict()
    assert out["criteria"][9]["value"] is None and out["criteria"][9]["detail"]["observed_sharpe_diff"] is None
    assert "| min_detectable_sharpe_diff | - |" in report.to_markdown()
