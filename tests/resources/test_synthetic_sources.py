"""The synthetic sources meet the source contract and are deterministic whatever the requested window."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.core.availability import MACRO_SERIES_SPECS
from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_assets.core.universe import Universe
from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource
from quantmm_resources.sources.synthetic import SyntheticExchange, SyntheticMacro, SyntheticSocial
from quantmm_resources.sources.synthetic import market as sm
from quantmm_resources.sources.synthetic import text as st

DAY = datetime(2024, 12, 20, tzinfo=UTC)
ONE = timedelta(days=1)

FETCHES: dict[str, Callable[[object, datetime, datetime], pl.DataFrame]] = {
    "market_bars_5m": lambda r, a, b: r.fetch_bars("ETHUSDT", "perp", a, b),
    "funding_rates": lambda r, a, b: r.fetch_funding("ETHUSDT", a, b),
    "open_interest": lambda r, a, b: r.fetch_open_interest("ETHUSDT", a, b),
    "derivatives_metrics": lambda r, a, b: r.fetch_derivatives_metrics("ETHUSDT", a, b),
    "macro_series": lambda r, a, b: r.fetch_macro(a, b),
    "social_posts_raw": lambda r, a, b: r.fetch_posts(a, b),
    "social_comments_raw": lambda r, a, b: r.fetch_comments(a, b),
}


def _resource(asset: str, **config: object) -> ExchangeSource | MacroSource | SocialSource:
    if asset == "macro_series":
        return SyntheticMacro(**config)
    if asset.startswith("social"):
        return SyntheticSocial(**config)
    return SyntheticExchange(**config)


def _clear() -> None:
    sm.clear_caches()
    st.social_day.cache_clear()


@pytest.mark.parametrize("asset", list(FETCHES))
def test_a_day_alone_equals_its_slice_of_a_longer_window(asset: str) -> None:
    fetch, res = FETCHES[asset], _resource(asset)
    _clear()
    alone = fetch(res, DAY, DAY + ONE)
    _clear()
    longer = fetch(res, DAY - 3 * ONE, DAY + 2 * ONE)
    sliced = longer.filter((pl.col("ts_event") >= DAY) & (pl.col("ts_event") < DAY + ONE))
    assert len(alone) > 0 and len(longer) > len(alone)
    assert alone.equals(sliced)
    _clear()
    far = fetch(res, DAY + 40 * ONE, DAY + 41 * ONE)  # generating far beyond the day changes nothing
    assert len(far) > 0 and fetch(res, DAY, DAY + ONE).equals(alone)


@pytest.mark.parametrize("asset", list(FETCHES))
def test_source_frame_contract(asset: str) -> None:
    fetch, res = FETCHES[asset], _resource(asset)
    start, end = DAY - 3 * ONE + timedelta(hours=3, minutes=2), DAY - ONE + timedelta(hours=5)
    frame = fetch(res, start, end)
    assert len(frame) > 0 and frame.columns == RAW_SCHEMAS[asset].source_columns
    assert frame.schema["ts_event"] == pl.Datetime("us", "UTC")
    assert frame["ts_event"].min() >= start and frame["ts_event"].max() < end
    required = [c for c in RAW_SCHEMAS[asset].required if c in frame.columns]
    assert frame.select(pl.col(required).null_count()).sum_horizontal().item() == 0
    assert (frame["source"] == "synthetic").all()
    assert fetch(res, start, start).is_empty()
    with pytest.raises(ValueError, match="tz-aware"):
        fetch(res, start.replace(tzinfo=None), end)


@pytest.mark.parametrize("asset", list(FETCHES))
def test_before_origin_is_empty_and_origin_moves_the_path(asset: str) -> None:
    fetch = FETCHES[asset]
    res = _resource(asset, origin="2025-01-01")
    before = fetch(res, datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert before.is_empty() and before.columns == RAW_SCHEMAS[asset].source_columns
    straddle = fetch(res, datetime(2024, 12, 30, tzinfo=UTC), datetime(2025, 1, 8, tzinfo=UTC))
    assert len(straddle) > 0 and straddle["ts_event"].min() >= datetime(2025, 1, 1, tzinfo=UTC)


def test_same_config_same_frames_other_seed_other_frames() -> None:
    a = SyntheticExchange(seed=3).fetch_bars("BTCUSDT", "spot", DAY, DAY + ONE)
    assert a.equals(SyntheticExchange(seed=3).fetch_bars("BTCUSDT", "spot", DAY, DAY + ONE))
    assert not a.equals(SyntheticExchange(seed=4).fetch_bars("BTCUSDT", "spot", DAY, DAY + ONE))
    p = SyntheticSocial(seed=3).fetch_posts(DAY, DAY + ONE)
    assert p.equals(SyntheticSocial(seed=3).fetch_posts(DAY, DAY + ONE))
    assert not p.equals(SyntheticSocial(seed=4).fetch_posts(DAY, DAY + ONE))


def test_symbols_outside_the_config_are_empty() -> None:
    res = SyntheticExchange(symbols=["BTCUSDT", "DOGEUSDT"])
    assert len(res.fetch_bars("DOGEUSDT", "perp", DAY, DAY + ONE)) == 288
    assert res.fetch_bars("ETHUSDT", "perp", DAY, DAY + ONE).is_empty()
    assert res.fetch_funding("ETHUSDT", DAY, DAY + ONE).columns == RAW_SCHEMAS["funding_rates"].source_columns
    assert SyntheticExchange().symbols == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]
    with pytest.raises(ValueError, match="spot"):
        res.fetch_bars("BTCUSDT", "futures", DAY, DAY + ONE)


def test_spot_and_perp_differ_by_a_small_basis() -> None:
    res = SyntheticExchange()
    spot = res.fetch_bars("SOLUSDT", "spot", DAY, DAY + ONE)
    perp = res.fetch_bars("SOLUSDT", "perp", DAY, DAY + ONE)
    metrics = res.fetch_derivatives_metrics("SOLUSDT", DAY, DAY + ONE)
    premium = (perp["close"] / spot["close"] - 1).to_numpy()
    assert abs(premium).max() < 0.005 and (premium != 0).any()
    basis = (perp["close"] - spot["close"]).to_numpy()
    assert abs(metrics["basis"].to_numpy() - basis).max() < 1e-6
    assert (metrics["period"] == "5m").all()
    assert (res.fetch_open_interest("SOLUSDT", DAY, DAY + ONE)["period"] == "5m").all()


def test_macro_has_the_canonical_series_on_weekdays_only() -> None:
    frame = SyntheticMacro().fetch_macro(DAY, DAY + 14 * ONE)
    assert set(frame["series_id"]) == {"vix", "us10y", "dollar_index"}
    assert (frame["ts_event"].dt.weekday() <= 5).all() and len(frame) == 3 * 10
    for sid, src in frame.select("series_id", "source_series").unique().iter_rows():
        assert src == MACRO_SERIES_SPECS[sid].source_series


def test_comments_may_reply_to_posts_before_the_window() -> None:
    res = SyntheticSocial()
    comments = res.fetch_comments(DAY, DAY + ONE)
    posts = res.fetch_posts(DAY - 3 * ONE, DAY + ONE)
    assert set(comments["post_id"]) <= set(posts["id"])
    assert not set(comments["post_id"]) <= set(res.fetch_posts(DAY, DAY + ONE)["id"])


def test_text_signal_switch_and_intensity_knob() -> None:
    signal = SyntheticSocial().fetch_posts(DAY, DAY + 2 * ONE)
    noise = SyntheticSocial(text_signal=False).fetch_posts(DAY, DAY + 2 * ONE)
    assert signal["id"].equals(noise["id"]) and not signal["text"].equals(noise["text"])
    busy = SyntheticSocial(posts_per_day=960.0).fetch_posts(DAY, DAY + 2 * ONE)
    assert 3.0 < len(busy) / len(signal) < 5.0
    ten = SyntheticSocial(symbols=list(sm.SYMBOL_PARAMS)).fetch_posts(DAY, DAY + 2 * ONE)
    assert 1.5 < len(ten) / len(signal) < 2.6  # the default intensity scales with the symbols


def test_resources_work_inside_dagster() -> None:
    @dg.asset
    def probe(exchange: ExchangeSource, macro: MacroSource, social: SocialSource) -> int:
        bars = exchange.fetch_bars("BTCUSDT", "perp", DAY, DAY + ONE)
        return len(bars) + len(macro.fetch_macro(DAY, DAY + ONE)) + len(social.fetch_posts(DAY, DAY + ONE))

    result = dg.materialize(
        [probe],
        resources={
            "exchange": SyntheticExchange(seed=5, symbols=["BTCUSDT"]),
            "macro": SyntheticMacro(seed=5),
            "social": SyntheticSocial(seed=5, text_signal=False, posts_per_day=100.0),
        },
    )
    assert result.success and result.output_for_node("probe") > 288


@pytest.mark.parametrize("asset", list(FETCHES))
def test_frames_normalize_without_rejects(asset: str) -> None:
    from quantmm_assets.core.ingest import IngestParams, normalize
    from quantmm_resources.settings import DEFAULT_UNIVERSE_FILE

    with open(DEFAULT_UNIVERSE_FILE, "rb") as fh:
        universe = Universe.from_dict(tomllib.load(fh))
    start, end = DAY - 2 * ONE, DAY + ONE
    symbols = None if asset == "macro_series" or asset.startswith("social") else ("ETHUSDT",)
    out = normalize(
        asset,
        FETCHES[asset](_resource(asset), start, end),
        IngestParams(start=start, end=end, symbols=symbols, universe=universe),
    )
    assert out.rejects.is_empty(), out.reject_counts
    assert len(out.clean) > 0
    if asset == "social_posts_raw":
        assert (out.clean["symbols"].list.len() > 0).mean() > 0.75
