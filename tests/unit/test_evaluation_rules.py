"""The evaluation's trading rules (issue 11), from the rules, with hand-computed values (dyadic: exact arithmetic).

- A zero after-cost edge (|expected_return| == cost) takes no position.
- The previous position is 0 at the start of each (backbone, variant, fold, symbol, horizon) group: the first step
  of a group is charged |position - 0| x cost / 2, never from the last position of the group before it.
- A row whose expected_return, ret or cost is null or not finite cannot be scored and is left out everywhere
  (core.evaluation.metrics docstring): no step, not counted in n_rows, no NaN in the PnL.

Every row below has vol 0.5, confidence 0.75 and (unless said) cost 0.25, so half the cost is 0.125; with
|expected_return| = 0.5 the edge is 0.25 and the score 0.5, both > 0: the position is sign(expected_return).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.evaluation.metrics import PREDICTION_SCHEMA, fold_metrics, trading_steps
from quantmm_assets.core.signal import SignalConfig

T0 = datetime(2025, 1, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)
GROUP = {"backbone": "ridge", "variant": "full", "fold": 0, "symbol": "BTCUSDT", "horizon": "1h"}


def group(
    hours: list[int],
    er: list[float | None],
    ret: list[float | None],
    cost: list[float | None] | None = None,
    funding: list[float | None] | None = None,
    **key,
) -> pl.DataFrame:
    """The predictions of one group (``GROUP`` with ``key`` changed); row i at ``T0 + hours[i]`` hours."""
    n = len(hours)
    g = {**GROUP, **key}
    return pl.DataFrame(
        {
            **{k: [v] * n for k, v in g.items()},
            "ts_event": [T0 + h * HOUR for h in hours],
            "expected_return": er,
            "vol_forecast": [0.5] * n,
            "signal_confidence": [0.75] * n,
            "y_base": [0.0] * n,
            "gate": [0.0] * n,
            "text_contribution": [0.0] * n,
            "degraded": [False] * n,
            "ret": ret,
            "rv": [0.5] * n,
            "cost": [0.25] * n if cost is None else cost,
            "funding": [0.0] * n if funding is None else funding,
        },
        schema=PREDICTION_SCHEMA,
    )


# --- a zero edge stays flat ---------------------------------------------------------------------------------------


def test_a_zero_after_cost_edge_takes_no_position() -> None:
    # |er| == cost == 0.25: edge 0 (flat) on either side; er 0.5: edge 0.25 (long)
    df = group([0, 1, 2], [0.25, -0.25, 0.5], [0.5, -0.5, 0.25])
    steps = trading_steps(df, "1h")
    assert steps["position"].to_list() == [0.0, 0.0, 1.0]
    assert steps["pnl"].to_list() == [0.0, 0.0, 0.25 - 0.125]
    row = fold_metrics(df).row(0, named=True)
    assert row["exposure"] == 1 / 3 and row["turnover"] == 1 / 3 and row["mean_pnl"] == 0.125 / 3
    # Mutant note: ``edge > 0`` -> ``edge >= 0`` alone is EQUIVALENT in core.signal: a zero edge has score
    # 0 / vol = 0, and ``score > score_threshold`` with a threshold that SignalConfig keeps >= 0 still flattens it.
    # The test above kills ``>=`` in both comparisons (the "zero edge takes a position"); the score's own
    # ``>=`` is killed below and by test_signal.py::test_a_score_exactly_at_the_threshold_is_not_cleared.


def test_a_score_exactly_at_its_threshold_stays_flat_in_the_evaluation() -> None:
    at = SignalConfig(score_threshold={"1h": 0.5})  # er 0.5: edge 0.25, score 0.5 (flat); er 0.75: score 1 (long)
    df = group([0, 1], [0.5, 0.75], [0.5, 0.5])
    assert trading_steps(df, "1h", at)["position"].to_list() == [0.0, 1.0]
    assert trading_steps(df, "1h")["position"].to_list() == [1.0, 1.0]


# --- the previous position is reset per group ---------------------------------------------------------------------

SECOND = {"backbone": "tcn", "variant": "no_text", "fold": 1, "symbol": "ETHUSDT", "horizon": "4h"}


@pytest.mark.parametrize("key", list(SECOND))
def test_each_group_starts_flat(key: str) -> None:
    # group A ends short: +1 then -1. Group B (A with one key changed, sorted after A) is long at its first step.
    a = group([0, 1], [0.5, -0.5], [0.5, -0.75])
    step = 4 if key == "horizon" else 1
    b = group([0, step], [0.5, 0.5], [0.5, 0.25], **{key: SECOND[key]})
    steps = trading_steps(pl.concat([b, a]))
    first_of_b = steps.filter(pl.col(key) == SECOND[key])
    of_a = steps.filter(pl.col(key) == GROUP[key])
    assert of_a["prev_position"].to_list() == [0.0, 1.0]
    assert of_a["pnl"].to_list() == [0.5 - 0.125, 0.75 - 2 * 0.125]
    # B's first step: +1 x 0.5 - |1 - 0| x 0.25 / 2 = 0.375 (charged from A's -1 it would be 0.5 - 0.25 = 0.25)
    assert first_of_b["position"].to_list() == [1.0, 1.0]
    assert first_of_b["prev_position"].to_list() == [0.0, 1.0]
    assert first_of_b["pnl"].to_list() == [0.375, 0.25]
    m = fold_metrics(pl.concat([a, b])).filter(pl.col(key) == SECOND[key]).row(0, named=True)
    assert m["turnover"] == 0.5 and m["mean_pnl"] == 0.3125


# --- funding is charged by side -----------------------------------------------------------------------------------


def test_a_long_pays_the_funding_of_its_window_a_short_receives_it_and_flat_pays_none() -> None:
    # positions +1 (0h), -1 (1h), 0 (2h: edge 0.1 - 0.25 < 0), +1 (3h); funding 0.1, 0.1, 0.3, -0.2
    er, ret, funding = [0.5, -0.5, 0.1, 0.5], [0.5, -0.5, 0.5, 0.5], [0.1, 0.1, 0.3, -0.2]
    steps = trading_steps(group([0, 1, 2, 3], er, ret, funding=funding), "1h")
    assert steps["position"].to_list() == [1.0, -1.0, 0.0, 1.0]
    # +1 x (0.5 - 0.1) - 1 x 0.125; -1 x (-0.5 - 0.1) - 2 x 0.125; 0 - 1 x 0.125; +1 x (0.5 + 0.2) - 1 x 0.125
    assert steps["pnl"].to_list() == pytest.approx([0.275, 0.35, -0.125, 0.575], abs=1e-15)


# --- rows that cannot be scored are left out ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None], ids=["nan", "inf", "-inf", "null"])
@pytest.mark.parametrize("column", ["cost", "expected_return", "ret", "funding"])
def test_a_row_with_a_non_finite_input_is_left_out(column: str, bad: float | None) -> None:
    er, ret, cost, funding = [0.5, 0.5, -0.5, 0.5], [0.5, 0.5, -0.5, 0.75], [0.25] * 4, [0.0] * 4
    {"cost": cost, "expected_return": er, "ret": ret, "funding": funding}[column][1] = bad  # the 1h row: unscored
    df = group([0, 1, 2, 3], er, ret, cost, funding)
    steps = trading_steps(df, "1h")
    # the grid from 0h: no row at 1h, so the steps are 0h, 2h, 3h; positions +1, -1, +1
    assert steps["ts_event"].to_list() == [T0, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert steps["prev_position"].to_list() == [0.0, 1.0, -1.0]
    # 0.5 - 1 x 0.125; 0.5 - 2 x 0.125; 0.75 - 2 x 0.125
    assert steps["pnl"].to_list() == [0.375, 0.25, 0.5]
    m = fold_metrics(df).row(0, named=True)
    assert m["n_rows"] == 3 and m["n_steps"] == 3
    assert m["mean_pnl"] == 0.375 and m["turnover"] == 5 / 3 and m["exposure"] == 1.0
    assert m["hit_rate"] == 1.0 and m["mae"] == 0.25 / 3  # |0.5 - 0.75| on the 3h row only
