"""Macro features: publication-time visibility, change, z90, day-start rows, staleness, no look-ahead."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmm_assets.core.availability import macro_available
from quantmm_assets.core.features.macro import (
    MACRO_FEATURES,
    MACRO_LOOKBACK_DAYS,
    MACRO_SERIES,
    macro_asof,
    macro_features,
)
from quantmm_assets.core.schemas import MACRO_SERIES as MACRO_SCHEMA
from quantmm_assets.core.schemas import UTC_TS
from quantmm_resources.sources.synthetic import macro as smac

D = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday
DAY, H = timedelta(days=1), timedelta(hours=1)


def observations(series_id: str, values: dict[datetime, float]) -> pl.DataFrame:
    """Return macro_series rows stamped with the publication rule of ``core.availability``."""
    frame = pl.DataFrame(
        {
            "series_id": series_id,
            "ts_event": list(values),
            "value": list(values.values()),
            "source_series": "test",
            "source": "test",
        },
        schema={k: v for k, v in MACRO_SCHEMA.columns.items() if k != "ts_available"},
    )
    return frame.with_columns(ts_available=macro_available(pl.col("ts_event"), pl.col("series_id"))).select(
        list(MACRO_SCHEMA.columns)
    )


def weekdays(first: datetime, last: datetime) -> list[datetime]:
    days = pl.datetime_range(first, last, "1d", time_unit="us", time_zone="UTC", eager=True).to_list()
    return [d for d in days if d.weekday() < 5]


def grid(*ts: datetime) -> pl.DataFrame:
    return pl.DataFrame({"symbol": "BTCUSDT", "ts_event": list(ts)}, schema={"symbol": pl.Utf8, "ts_event": UTC_TS})


def sample_z(x: float, xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return (x - m) / math.sqrt(sum((v - m) ** 2 for v in xs) / (len(xs) - 1))


def test_a_value_is_invisible_before_its_release_instant() -> None:
    days = weekdays(D - 20 * DAY, D)
    vix = observations("vix", {d: float(i) for i, d in enumerate(days)})  # Fri D-3d is released Mon D 14:00
    feats = macro_features(vix, D, D + DAY)
    assert feats["ts_event"].to_list() == [D, D + 14 * H]  # day start and the one release of the day
    assert (feats["ts_event"] == feats["ts_available"]).all()
    out = macro_asof(grid(D, D + 14 * H - timedelta(minutes=5), D + 14 * H, D + 23 * H), feats)
    thursday, friday = days.index(D - 4 * DAY), days.index(D - 3 * DAY)
    assert out["macro_vix"].to_list() == [thursday, thursday, friday, friday]
    assert out["macro_vix_change"].to_list() == [1.0] * 4
    assert out["macro_vix_staleness_h"].to_list() == pytest.approx([58.0, 71 + 55 / 60, 0.0, 9.0])  # Thu came Fri 14:00
    assert out["macro_us10y_missing"].to_list() == [1] * 4 and out["macro_us10y_staleness_h"].null_count() == 4


def test_change_and_z90_need_five_observations() -> None:
    values = [4.0, 4.2, 4.1, 4.5, 4.3]
    days = weekdays(D - 9 * DAY, D - 3 * DAY)  # Mon..Fri of the previous week, released next day 22:00
    us10y = observations("us10y", dict(zip(days, values, strict=True)))
    feats = macro_features(us10y, D - 2 * DAY, D + DAY)
    by_t = {r["ts_event"]: r for r in feats.to_dicts()}
    four = by_t[D - 2 * DAY]  # Saturday 00:00: Mon..Thu released (Thursday's on Friday 22:00)
    assert four["macro_us10y"] == 4.5 and four["macro_us10y_change"] == pytest.approx(0.4)
    assert four["macro_us10y_z90"] is None
    five = by_t[D + 22 * H]  # Friday's value, released Monday 22:00
    assert five["macro_us10y"] == 4.3 and five["macro_us10y_change"] == pytest.approx(-0.2)
    assert five["macro_us10y_z90"] == pytest.approx(sample_z(4.3, values), rel=1e-9)
    assert five["macro_us10y_released_at"] == D + 22 * H
    assert feats.schema["macro_us10y_released_at"] == UTC_TS and feats.schema["macro_us10y_z90"] == pl.Float64


def test_z90_is_null_on_a_constant_window() -> None:
    vix = observations("vix", dict.fromkeys(weekdays(D - 20 * DAY, D - 3 * DAY), 17.3))
    row = macro_features(vix, D + 15 * H, D + DAY).row(0, named=True)
    assert row["macro_vix"] == 17.3 and row["macro_vix_change"] == 0.0 and row["macro_vix_z90"] is None


def test_z90_window_is_ninety_days_of_observation_dates() -> None:
    days = [D - 200 * DAY, *[D - k * DAY for k in (89, 60, 30, 10, 3)]]
    values = [1000.0, 1.0, 2.0, 4.0, 3.0, 5.0]
    dxy = observations("dollar_index", dict(zip(days, values, strict=True)))
    feats = macro_features(dxy, D + 23 * H, D + DAY)
    row = feats.row(0, named=True)
    assert row["macro_dollar_index"] == 5.0
    assert row["macro_dollar_index_z90"] == pytest.approx(sample_z(5.0, values[1:]), rel=1e-9)  # not the 1000


def test_day_start_rows_staleness_limit_and_other_series_ignored() -> None:
    vix = observations("vix", {D - 3 * DAY: 20.0, D - 2 * DAY: 21.0})  # released Mon D 14:00 and Tue 14:00
    other = observations("dxy_ice", dict.fromkeys(weekdays(D, D + 5 * DAY), 100.0))
    feats = macro_features(pl.concat([vix, other]), D, D + 3 * DAY)
    assert feats.columns == [
        "ts_event",
        "ts_available",
        *[f"macro_{s}{x}" for s in MACRO_SERIES for x in ("", "_change", "_z90", "_released_at")],
    ]
    assert feats["ts_event"].to_list() == [D, D + 14 * H, D + DAY, D + DAY + 14 * H, D + 2 * DAY]
    released = D + DAY + 14 * H
    g = grid(released + 240 * H, released + 240 * H + timedelta(minutes=5))
    out = macro_asof(g, macro_features(vix, released + 10 * DAY, released + 11 * DAY))
    assert out.columns == ["symbol", "ts_event", *MACRO_FEATURES]
    assert out["macro_vix_missing"].to_list() == [0, 1]
    assert out["macro_vix"].to_list() == [21.0, None] and out["macro_vix_change"].to_list() == [1.0, None]
    assert out["macro_vix_staleness_h"][0] == pytest.approx(240.0)
    assert out["macro_vix_staleness_h"][1] is None  # past the limit the release counts as absent
    assert out.schema["macro_vix_missing"] == pl.Int8


def test_grid_rows_before_the_first_macro_row_are_missing() -> None:
    feats = macro_features(observations("vix", {D - 3 * DAY: 20.0}), D, D + DAY)
    out = macro_asof(grid(D + DAY, D - H, D + 15 * H), feats)  # order of the grid is kept
    assert out["ts_event"].to_list() == [D + DAY, D - H, D + 15 * H]
    assert out["macro_vix"].to_list() == [20.0, None, 20.0]
    assert out["macro_vix_missing"].to_list() == [0, 1, 0]


def test_a_release_older_than_the_search_horizon_counts_as_absent() -> None:
    vix = observations("vix", {D - 14 * DAY: 20.0})  # a Monday, released Tuesday D - 13d 14:00
    feats = macro_features(vix, D - 10 * DAY, D + DAY)
    by_t = {r["ts_event"]: r for r in feats.to_dicts()}
    assert by_t[D - 10 * DAY]["macro_vix_released_at"] == D - 13 * DAY + 14 * H  # under 3 days old
    assert by_t[D]["macro_vix_released_at"] is None and by_t[D]["macro_vix"] is None  # over 10 days old
    out = macro_asof(grid(D + H), feats)
    assert out["macro_vix_staleness_h"][0] is None and out["macro_vix_missing"][0] == 1


# ---------------------------------------------------------------- invariance on the synthetic series

ORIGIN = datetime(2024, 6, 3, tzinfo=UTC)
START, END = ORIGIN + 200 * DAY, ORIGIN + 203 * DAY  # Thu 2024-12-19 .. Sun 2024-12-22


@pytest.fixture(scope="module")
def macro() -> pl.DataFrame:
    frame = smac.macro_frame(7, ORIGIN, ORIGIN, END + 10 * DAY, {s: s for s in MACRO_SERIES})
    return frame.with_columns(ts_available=macro_available(pl.col("ts_event"), pl.col("series_id")))


def five_minute_grid() -> pl.DataFrame:
    ts = pl.datetime_range(START, END, "5m", closed="left", time_unit="us", time_zone="UTC", eager=True)
    return pl.DataFrame({"symbol": "BTCUSDT", "ts_event": ts, "ts_available": ts})


def test_look_back_days_suffice(macro: pl.DataFrame) -> None:
    stopped = (pl.col("series_id") == "us10y") & (pl.col("ts_event") > START - 120 * DAY)  # a discontinued series
    macro = macro.filter(~stopped)
    full = macro_features(macro, START, END)
    cut = macro_features(macro.filter(pl.col("ts_event") >= START - MACRO_LOOKBACK_DAYS * DAY), START, END)
    assert_frame_equal(cut, full, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert full.height > 3 and full["macro_vix_z90"].null_count() == 0
    assert full["macro_us10y_released_at"].null_count() == full.height


@pytest.mark.parametrize("cut", [START, START + 14 * H, START + 22 * H, START + DAY, START + DAY + 14 * H + 1 * H])
def test_no_look_ahead_truncation(macro: pl.DataFrame, cut: datetime) -> None:
    g = five_minute_grid()
    full = macro_features(macro, START, END)
    truncated = macro_features(macro.filter(pl.col("ts_available") <= cut), START, END)
    assert_frame_equal(truncated.filter(pl.col("ts_event") <= cut), full.filter(pl.col("ts_event") <= cut))
    late = macro_asof(g, truncated).filter(pl.col("ts_event") <= cut)
    assert_frame_equal(late, macro_asof(g, full).filter(pl.col("ts_event") <= cut))
    assert late.height > 0
