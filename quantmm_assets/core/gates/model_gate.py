"""The model gate: may a candidate model for one (symbol, horizon) be promoted? (DESIGN section 4, "Beats").

The input is the trading steps (:func:`core.evaluation.metrics.trading_steps`, variant ``full``) of one symbol and
one horizon: the candidate's, the comparators' and those of every configuration scored out of sample. Everything is
measured on the candidate's steps (its grid of (fold, ts_event)); another backbone's step missing there counts as
flat (PnL 0) and its steps off that grid are not used. Criteria, all evaluated, in this order:

1. ``evidence``: the candidate's windows make at least ``MIN_UNITS`` evidence units (:func:`evidence.units`: a
   window counts with ``MIN_HELD_STEPS`` held steps, consecutive windows pooled for horizons of 1d and more).
2. ``comparator`` (informational): the comparator with the largest total PnL on the candidate's steps (ties: the
   first named).
3. ``window_wins``: the usable windows are the evidence units (a window counts only with enough held steps,
   DESIGN section 4) where the comparator has steps; the candidate wins one when its PnL there is > 0, > the
   comparator's and the rank IC of expected_return vs ret over its steps there is > 0. Passes with at least
   ``ceil(min_window_win_share x usable)`` and at least ``min_windows`` wins.
4. ``selection_bootstrap_pnl`` / 5. ``selection_bootstrap_vs_comparator``: the selection-aware block-bootstrap
   interval (:mod:`core.gates.selection_bootstrap`) over all configurations of the mean step PnL, and of the mean
   step difference from the comparator; passes when its lower end is > 0.
6. ``max_drawdown`` of the candidate's step PnL in time order <= the limit.
7. ``turnover`` (mean |position - prev_position| per step) <= the limit.
8. ``calibration``: ECE of signal_confidence vs the sign hit (rows with ret != 0); fails only when its whole block
   bootstrap interval lies above the bound.
9. ``deflated_sharpe`` and 10. ``min_detectable_sharpe_diff`` (report only, :mod:`core.gates.sharpe_stats`).

Verdict: ``insufficient evidence`` (deciding ``evidence``) when evidence fails; else ``fail`` at the first failed
criterion of 3-8; else ``insufficient evidence`` at the first of 3-8 that could not be evaluated (e.g. no
confidence at all); else ``pass`` (deciding ``all criteria``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from quantmm_assets.core.evaluation.evidence import (
    INSUFFICIENT,
    MIN_HELD_STEPS,
    MIN_UNITS,
    POOLED_FROM_SECONDS,
    units,
)
from quantmm_assets.core.evaluation.metrics import SECONDS_PER_YEAR, horizon_seconds, max_drawdown, rank_ic
from quantmm_assets.core.gates.selection_bootstrap import (
    block_codes,
    block_multiplicities,
    ece_interval,
    selection_interval,
)
from quantmm_assets.core.gates.sharpe_stats import (
    deflated_sharpe,
    detectable_sentence,
    min_detectable_sharpe,
    step_sharpe,
)

PASS, FAIL = "pass", "fail"
BOOTSTRAPS = ("selection_bootstrap_pnl", "selection_bootstrap_vs_comparator")
DECISIVE = ("window_wins", *BOOTSTRAPS, "max_drawdown", "turnover", "calibration")  # in the order that decides
REQUIRED_COLUMNS = ("backbone", "fold", "ts_event", "position", "prev_position", "pnl", "expected_return", "ret")
REQUIRED_COLUMNS += ("signal_confidence",)
KEY = ["fold", "ts_event"]


@dataclass(frozen=True)
class GateLimits:
    """The gate's thresholds (production defaults, used by the tests too)."""

    level: float = 0.90  # two-sided interval level of the selection-aware bootstrap (and of the ECE interval)
    n_boot: int = 1000
    min_window_win_share: float = 0.5
    min_windows: int = 2
    max_drawdown: float = 0.25  # in the PnL's units (sum of log returns)
    max_turnover: float = 1.0  # mean |position - prev_position| per step
    ece_bound: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class Criterion:
    """One line of the gate report; ``passed`` None = could not be evaluated, or report only."""

    name: str
    value: float | str | None
    threshold: str
    passed: bool | None
    why: str  # one plain sentence
    detail: dict = field(default_factory=dict, compare=False)  # the numbers behind ``value`` (JSON-able)


@dataclass(frozen=True)
class GateReport:
    """The gate's decision for (symbol, horizon) and the evidence behind it."""

    symbol: str
    horizon: str
    candidate: str
    comparator: str
    verdict: str  # "pass" | "fail" | "insufficient evidence"
    deciding: str  # the criterion that decided; "all criteria" for a pass
    criteria: tuple[Criterion, ...]
    n_steps: int
    n_held: int
    n_windows: int
    n_configurations: int

    def to_dict(self) -> dict:
        """Return the report as plain JSON-able values (non-finite numbers as None)."""
        return _jsonable(asdict(self))

    def to_markdown(self) -> str:
        """Return a table (criterion | value | threshold | pass/fail | why) and the verdict line."""
        lines = [
            f"Model gate for {self.symbol} {self.horizon}: candidate `{self.candidate}` against `{self.comparator}`",
            "",
            "| criterion | value | threshold | pass/fail | why |",
            "|---|---|---|---|---|",
        ]
        for c in self.criteria:
            mark = "n/a" if c.passed is None else (PASS if c.passed else FAIL)
            cells = [c.name, _show(c.value), c.threshold, mark, c.why]
            lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
        lines += [
            "",
            f"**Verdict: {self.verdict}** (deciding: {self.deciding}; {self.n_steps} steps, {self.n_held} held, "
            f"{_n(self.n_windows, 'window')}, {_n(self.n_configurations, 'configuration')})",
        ]
        return "\n".join(lines)


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _jsonable(x: object) -> object:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    json.dumps(x)  # anything else must already be JSON-able
    return x


def _n(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "undefined"


@dataclass(frozen=True)
class _Steps:
    """The candidate's steps in time order and the other backbones' PnL aligned on them."""

    cand: pl.DataFrame
    pnl: np.ndarray
    codes: np.ndarray  # block of each step
    weights: np.ndarray  # resamples x blocks: the block multiplicities of every bootstrap of the gate
    comparators: np.ndarray  # steps x comparators
    configurations: np.ndarray  # steps x configurations
    present: dict[str, set[int]]  # folds where each backbone has steps


def _prepare(steps: pl.DataFrame, symbol: str, horizon: str) -> pl.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in steps.columns]
    if missing:
        raise ValueError(f"model gate: steps miss columns {missing}")
    for col, want in (("symbol", symbol), ("horizon", horizon)):
        if col in steps.columns:
            steps = steps.filter(pl.col(col) == want)
    if "variant" in steps.columns and steps["variant"].n_unique() > 1:
        raise ValueError("model gate: steps hold several variants; pass variant 'full' only")
    if steps.select(pl.struct("backbone", *KEY).is_duplicated().any()).item():
        raise ValueError("model gate: duplicate steps for (backbone, fold, ts_event)")
    bad = steps.select(pl.any_horizontal(~pl.col(c).is_finite().fill_null(False) for c in ("pnl", "position")).sum())
    if bad.item():
        raise ValueError("model gate: steps with a null or non-finite pnl or position")
    return steps


def _aligned(steps: pl.DataFrame, grid: pl.DataFrame, names: list[str]) -> np.ndarray:
    out = np.zeros((grid.height, len(names)))
    rows = steps.filter(pl.col("backbone").is_in(names)).join(grid, on=KEY, how="inner")
    col = rows["backbone"].replace_strict(names, list(range(len(names))), return_dtype=pl.Int64).to_numpy()
    out[rows["_row"].to_numpy(), col] = rows["pnl"].to_numpy()
    return out


def _collect(
    steps: pl.DataFrame, horizon: str, cand: str, comps: list[str], configs: list[str], lim: GateLimits
) -> _Steps:
    cand = steps.filter(pl.col("backbone") == cand).sort("ts_event", "fold")
    grid = cand.select(KEY).with_row_index("_row")
    codes = block_codes(cand["ts_event"].dt.epoch("us").to_numpy(), horizon_seconds(horizon))
    present: dict[str, set[int]] = {}
    pairs = steps.select("backbone", "fold").unique()
    for b, f in zip(pairs["backbone"].to_list(), pairs["fold"].to_list(), strict=True):
        present.setdefault(str(b), set()).add(f)
    return _Steps(
        cand=cand,
        pnl=cand["pnl"].to_numpy().astype(np.float64),
        codes=codes,
        weights=block_multiplicities(int(codes.max(initial=-1)) + 1, lim.n_boot, lim.seed),
        comparators=_aligned(steps, grid, comps),
        configurations=_aligned(steps, grid, configs),
        present=present,
    )


def _evidence(cand: pl.DataFrame, horizon: str) -> tuple[Criterion, list[list[int]]]:
    folds = sorted(cand["fold"].unique().to_list())
    held = [int(((cand["fold"] == f) & (cand["position"] != 0)).sum()) for f in folds]
    pooled = horizon_seconds(horizon) >= POOLED_FROM_SECONDS
    counted = [[folds[i] for i in unit] for unit in units(held, pooled)]
    enough = len(counted) >= MIN_UNITS
    how = "consecutive windows pooled until they hold" if pooled else "a window counts with"
    why = f"{len(counted)} evidence units from {len(folds)} windows and {sum(held)} held steps" + (
        "." if enough else f": fewer than {MIN_UNITS}, so the data cannot tell whether the model is good or bad."
    )
    crit = Criterion(
        "evidence",
        len(counted),
        f">= {MIN_UNITS} units ({how} >= {MIN_HELD_STEPS} held steps)",
        enough,
        why,
        {"units": counted, "held_per_window": dict(zip(map(str, folds), held, strict=True))},
    )
    return crit, counted


def _comparator(totals: np.ndarray, names: list[str]) -> tuple[Criterion, int]:
    best = int(np.argmax(totals))
    crit = Criterion(
        "comparator",
        f"{names[best]} (PnL {_fmt(float(totals[best]))})",
        "strongest of the comparators",
        True,
        f"{names[best]} has the largest total after-cost PnL of {_n(len(names), 'comparator')} on the candidate's "
        "steps.",
        {"total_pnl": dict(zip(names, totals.tolist(), strict=True))},
    )
    return crit, best


def _window_wins(data: _Steps, counted: list[list[int]], comp: str, comp_pnl: np.ndarray, lim: GateLimits) -> Criterion:
    fold = data.cand["fold"].to_numpy()
    er, ret = data.cand["expected_return"].to_numpy(), data.cand["ret"].to_numpy()
    windows, wins = [], 0
    for unit in counted:
        if not data.present.get(comp, set()) & set(unit):
            continue
        rows = np.isin(fold, unit)
        own, other, ric = float(data.pnl[rows].sum()), float(comp_pnl[rows].sum()), rank_ic(er[rows], ret[rows])
        won = own > 0 and own > other and ric > 0
        wins += won
        windows.append({"folds": unit, "pnl": own, "comparator_pnl": other, "rank_ic": ric, "won": won})
    usable = len(windows)
    need = max(math.ceil(round(lim.min_window_win_share * usable, 9)), lim.min_windows)
    return Criterion(
        "window_wins",
        f"{wins}/{usable}",
        f">= max(ceil({lim.min_window_win_share:g} x usable), {lim.min_windows}) = {need}",
        wins >= need,
        f"the candidate beat {comp} (PnL > 0, > the comparator's, rank IC > 0) in {wins} of {usable} usable windows.",
        {"wins": wins, "usable": usable, "needed": need, "windows": windows},
    )


def _bootstrap(name: str, what: str, values: np.ndarray, data: _Steps, at: int, lim: GateLimits) -> Criterion:
    res = selection_interval(values, data.codes, at, data.weights, lim.level)
    passed = None if not math.isfinite(res.low) else res.low > 0
    n = values.shape[1]
    return Criterion(
        name,
        f"[{_fmt(res.low)}, {_fmt(res.high)}]",
        f"{lim.level:.0%} selection-aware lower bound > 0",
        passed,
        f"the {lim.level:.0%} interval of the mean step {what} (mean {_fmt(res.estimate)}), allowing for the choice "
        f"among {_n(n, 'configuration')}, over {_n(res.n_blocks, 'block')}, "
        f"{'lies' if passed else 'does not lie'} above 0.",
        {"estimate": res.estimate, "low": res.low, "high": res.high, "n_blocks": res.n_blocks, "n_configurations": n},
    )


def _within(name: str, value: float, limit: float, what: str) -> Criterion:
    return Criterion(name, value, f"<= {limit:g}", value <= limit, f"{what} is {_fmt(value)}.")


def _calibration(data: _Steps, lim: GateLimits) -> Criterion:
    er, ret = data.cand["expected_return"].to_numpy(), data.cand["ret"].to_numpy()
    conf = data.cand["signal_confidence"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    rows = np.isfinite(ret) & (ret != 0)
    hit = (np.sign(er[rows]) == np.sign(ret[rows])).astype(np.float64)
    res = ece_interval(conf[rows], hit, data.codes[rows], data.weights, lim.level)
    passed = None if not math.isfinite(res.low) else not res.low > lim.ece_bound
    if passed is None:
        why = "no step has a finite confidence and a non-zero return, so calibration cannot be measured."
    elif passed:
        why = f"the {lim.level:.0%} interval of the ECE reaches down to {_fmt(res.low)}, not wholly above the bound."
    else:
        why = f"the whole {lim.level:.0%} interval of the ECE lies above {lim.ece_bound:g}: the confidence is off."
    return Criterion(
        "calibration",
        f"{_fmt(res.estimate)} [{_fmt(res.low)}, {_fmt(res.high)}]",
        f"fails only when the interval lies wholly above {lim.ece_bound:g}",
        passed,
        why,
        {"ece": res.estimate, "low": res.low, "high": res.high, "n_blocks": res.n_blocks},
    )


def _sharpe_reports(data: _Steps, comp: str, comp_pnl: np.ndarray, horizon: str) -> list[Criterion]:
    sharpes = np.array([step_sharpe(data.configurations[:, k]) for k in range(data.configurations.shape[1])])
    dsr = deflated_sharpe(data.pnl, sharpes)
    per_year = SECONDS_PER_YEAR / horizon_seconds(horizon)
    n = data.pnl.size
    mde = min_detectable_sharpe(n, per_year)
    observed = step_sharpe(data.pnl - comp_pnl) * math.sqrt(per_year)
    return [
        Criterion(
            "deflated_sharpe",
            dsr,
            "report only",
            None,
            f"probability that the true Sharpe beats the best of {_n(sharpes.size, 'configuration')} tried by chance "
            f"({n} steps)."
            if dsr is not None
            else "undefined: too few steps or a constant PnL.",
            {"n_configurations": int(sharpes.size), "step_sharpe": step_sharpe(data.pnl)},
        ),
        Criterion(
            "min_detectable_sharpe_diff",
            mde,
            "report only (one-sided 5%, power 80%, annualized)",
            None,
            detectable_sentence(observed, mde, n, comp),
            {"observed_sharpe_diff": observed, "n_steps": n},
        ),
    ]


def _verdict(criteria: list[Criterion]) -> tuple[str, str]:
    by_name = {c.name: c for c in criteria}
    if not by_name["evidence"].passed:
        return INSUFFICIENT, "evidence"
    for name in DECISIVE:
        if by_name[name].passed is False:
            return FAIL, name
    for name in DECISIVE:
        if by_name[name].passed is None:
            return INSUFFICIENT, name
    return PASS, "all criteria"


def model_gate(
    steps: pl.DataFrame,
    symbol: str,
    horizon: str,
    candidate: str,
    comparators: list[str],
    configurations: list[str] | None = None,
    limits: GateLimits = GateLimits(),
) -> GateReport:
    """Return the gate report of ``candidate`` for (``symbol``, ``horizon``) (see the module docstring).

    ``comparators`` and ``configurations`` (default: every backbone that is not a comparator; the candidate is
    always one) must have steps; rows of another symbol or horizon are left out when those columns exist.
    """
    horizon_seconds(horizon)
    if not comparators or candidate in comparators:
        raise ValueError(f"model gate: need comparators (e.g. the flat 'zero') other than {candidate!r}")
    steps = _prepare(steps, symbol, horizon)
    names = set(steps["backbone"].unique().to_list())
    configs = [b for b in sorted(names) if b not in comparators] if configurations is None else list(configurations)
    configs = list(dict.fromkeys(configs if candidate in configs else [candidate, *configs]))
    absent = [b for b in dict.fromkeys([candidate, *comparators, *configs]) if b not in names]
    if absent:
        raise ValueError(f"model gate: no steps for {absent} ({symbol}, {horizon})")
    data = _collect(steps, horizon, candidate, list(comparators), configs, limits)
    evidence, counted = _evidence(data.cand, horizon)
    comparator, best = _comparator(data.comparators.sum(axis=0), list(comparators))
    comp, comp_pnl = comparators[best], data.comparators[:, best]
    pos = data.cand["position"].to_numpy()
    turnover = float(np.abs(pos - data.cand["prev_position"].to_numpy()).mean())
    drawdown = max_drawdown(data.pnl)
    at = configs.index(candidate)
    criteria = [
        evidence,
        comparator,
        _window_wins(data, counted, comp, comp_pnl, limits),
        _bootstrap(BOOTSTRAPS[0], "PnL", data.configurations, data, at, limits),
        _bootstrap(BOOTSTRAPS[1], f"PnL minus {comp}'s", data.configurations - comp_pnl[:, None], data, at, limits),
        _within("max_drawdown", drawdown, limits.max_drawdown, "the largest fall of the cumulative step PnL"),
        _within("turnover", turnover, limits.max_turnover, "the mean change of position per step"),
        _calibration(data, limits),
        *_sharpe_reports(data, comp, comp_pnl, horizon),
    ]
    verdict, deciding = _verdict(criteria)
    return GateReport(
        symbol=symbol,
        horizon=horizon,
        candidate=candidate,
        comparator=comp,
        verdict=verdict,
        deciding=deciding,
        criteria=tuple(criteria),
        n_steps=data.cand.height,
        n_held=int((pos != 0).sum()),
        n_windows=data.cand["fold"].n_unique(),
        n_configurations=len(configs),
    )
