"""Every raw check fails on failing data and passes on clean data."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core import quality
from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.quality import CheckWindow
from quantmm_assets.core.schemas import RAW_SCHEMAS, REJECT_COLUMNS
from quantmm_assets.defs.checks.raw_checks import RAW_CHECKS, evaluate
from quantmm_resources.settings import get_settings

UNIVERSE = get_settings().universe()

DAY = date(2025, 1, 1)
START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 1, 5, tzinfo=UTC)
NO_REJECTS = pl.DataFrame(schema=REJECT_COLUMNS)


def full_day_bars(symbol="BTCUSDT", n=288, day_start=START) -> pl.DataFrame:
    ts = [day_start + timedelta(minutes=5 * i) for i in range(n)]
    frames = []
    for market in ("perp", "spot"):
        frames.append(
            pl.DataFrame(
                {
                    "symbol": symbol,
                    "market": market,
                    "ts_event": ts,
                    "open": 100.0,
                    "high": 101.0,
                    "low": 99.0,
                    "close": 100.5,
                    "volume": 1.0,
                    "source": "t",
                }
            )
        )
    src = pl.concat(frames)
    return normalize(
        "market_bars_5m",
        src,
        IngestParams(start=day_start, end=day_start + timedelta(days=1), symbols=(symbol,), universe=UNIVERSE),
    ).clean


def window(symbols=("BTCUSDT",), now=NOW, dates=(DAY,)) -> CheckWindow:
    return CheckWindow(dates=dates, symbols=symbols, now=now, universe=UNIVERSE)


def rejects(asset: str, reason: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"asset": [asset] * n, "partition": ["2025-01-01|BTCUSDT"] * n, "reason": [reason] * n, "raw": ["{}"] * n},
        schema=REJECT_COLUMNS,
    )


def test_clean_day_passes_every_bar_check():
    clean = full_day_bars()
    for name in RAW_CHECKS["market_bars_5m"]:
        out = evaluate("market_bars_5m", name, clean, NO_REJECTS, window())
        assert out.passed, (name, out.description)


def test_schema_fails_on_wrong_dtype_and_nulls():
    clean = full_day_bars()
    assert not quality.check_schema(
        "market_bars_5m", clean.with_columns(pl.col("close").cast(pl.Utf8)), NO_REJECTS
    ).passed
    assert not quality.check_schema(
        "market_bars_5m", clean.with_columns(pl.lit(None, pl.Float64).alias("close")), NO_REJECTS
    ).passed


def test_schema_fails_when_too_many_rows_were_unparseable():
    clean = full_day_bars()
    out = quality.check_schema("market_bars_5m", clean, rejects("market_bars_5m", "unparseable open: x", 10))
    assert not out.passed and out.metadata["quarantined_rows"] == 10


def test_key_unique_fails_on_duplicates_in_lake_and_in_source():
    clean = full_day_bars()
    assert not quality.check_key_unique("market_bars_5m", pl.concat([clean, clean.head(1)]), NO_REJECTS).passed
    assert not quality.check_key_unique("market_bars_5m", clean, rejects("market_bars_5m", "duplicate key", 5)).passed


@pytest.mark.parametrize("bad", [{"low": 100.8}, {"high": 100.2}, {"volume": -1.0}])
def test_ohlc_sanity_fails_on_broken_bar(bad):
    clean = full_day_bars()
    broken = pl.concat([clean.head(1).with_columns(**{k: pl.lit(v) for k, v in bad.items()}), clean.slice(1)])
    assert not quality.check_sanity("market_bars_5m", broken, NO_REJECTS).passed


def test_ohlc_sanity_fails_when_source_sent_broken_bars():
    out = quality.check_sanity("market_bars_5m", full_day_bars(), rejects("market_bars_5m", "ohlc: negative volume", 3))
    assert not out.passed


def test_bar_coverage_fails_on_gaps_and_rows_before_listing():
    gappy = full_day_bars(n=250)
    out = quality.check_bar_coverage(gappy, window())
    assert not out.passed and out.metadata["failing"] == 2
    early_day = date(2019, 9, 1)  # BTCUSDT perp listed 2019-09-08
    shift = datetime(2019, 9, 1, tzinfo=UTC) - START  # bars that slipped past ingest (a lake written by hand)
    early = full_day_bars().with_columns(pl.col("ts_event") + shift, pl.col("ts_available") + shift)
    out = quality.check_bar_coverage(early, window(dates=(early_day,), now=datetime(2019, 9, 5, tzinfo=UTC)))
    assert not out.passed and out.metadata["bars_before_listing"] == 576


def test_bar_coverage_expects_only_closed_bars_on_the_partial_day():
    now = START + timedelta(hours=2, minutes=1)
    partial = full_day_bars(n=23)  # bars whose close <= 01:55 + 5m
    assert quality.check_bar_coverage(partial, window(now=now)).passed
    assert not quality.check_bar_coverage(full_day_bars(n=5), window(now=now)).passed


def test_daily_coverage_fails_on_a_missing_symbol_day():
    funding = pl.DataFrame(
        {"symbol": ["BTCUSDT"], "ts_event": [START], "ts_available": [START], "funding_rate": [0.0001]}
    )
    assert quality.check_daily_coverage("funding_rates", funding, window()).passed
    assert not quality.check_daily_coverage("funding_rates", funding, window(symbols=("BTCUSDT", "ETHUSDT"))).passed


def test_macro_coverage_counts_business_days_only():
    days = tuple(date(2025, 1, d) for d in range(1, 8))  # Wed 1 .. Tue 7
    obs = [datetime(2025, 1, d, tzinfo=UTC) for d in (1, 2, 3, 6)]  # missing Tue 7
    macro = pl.DataFrame({"series_id": "vix", "ts_event": obs, "value": 15.0})
    out = quality.check_daily_coverage(
        "macro_series", macro, window(symbols=None, dates=days, now=datetime(2025, 1, 9, tzinfo=UTC))
    )
    assert not out.passed and out.metadata["per_series"]["vix"]["examples"] == ["2025-01-07"]
    full = pl.concat([macro, macro.head(1).with_columns(ts_event=pl.lit(datetime(2025, 1, 7, tzinfo=UTC)))])
    assert quality.check_daily_coverage(
        "macro_series", full, window(symbols=None, dates=days, now=datetime(2025, 1, 9, tzinfo=UTC))
    ).passed


def test_macro_coverage_fails_when_one_series_disappears():
    days = tuple(date(2025, 3, d) for d in range(3, 8))  # Mon 3 .. Fri 7
    obs = [datetime(2025, 3, d, tzinfo=UTC) for d in range(3, 8)]
    vix = pl.DataFrame({"series_id": "vix", "ts_event": obs, "value": 15.0})
    us10y = vix.with_columns(series_id=pl.lit("us10y"))
    w = window(symbols=None, dates=days, now=datetime(2025, 3, 12, tzinfo=UTC))
    assert quality.check_daily_coverage("macro_series", pl.concat([vix, us10y]), w).passed
    gone = pl.concat([vix, us10y.head(2)])  # us10y stops on Wednesday
    out = quality.check_daily_coverage("macro_series", gone, w)
    assert not out.passed and out.metadata["per_series"]["us10y"]["missing"] == 3


def social(days: list[int], hours=range(0, 24, 3)) -> pl.DataFrame:
    ts = [datetime(2025, 1, d, h, tzinfo=UTC) for d in days for h in hours]
    return pl.DataFrame({"ts_event": ts, "ts_available": [t + timedelta(minutes=2) for t in ts]})


def test_social_coverage_and_freshness_fail_on_a_silent_day():
    days = (date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3))
    w = window(symbols=None, dates=days)
    full = social([1, 2, 3])
    assert quality.check_daily_coverage("social_posts_raw", full, w).passed
    assert quality.check_freshness("social_posts_raw", full, w).passed
    silent = social([1, 3])  # nothing on the 2nd: a crawler outage inside the range
    assert not quality.check_daily_coverage("social_comments_raw", silent, w).passed
    out = quality.check_freshness("social_posts_raw", silent, w)
    assert not out.passed and list(out.metadata["stale_examples"]) == ["2025-01-02"]


def test_daily_coverage_fails_on_rows_before_a_listing_date():
    early = pl.DataFrame({"symbol": ["SOLUSDT"], "ts_event": [datetime(2020, 9, 1, tzinfo=UTC)]})  # listed 09-14
    w = window(symbols=("SOLUSDT",), dates=(date(2020, 9, 1),), now=datetime(2020, 9, 5, tzinfo=UTC))
    out = quality.check_daily_coverage("open_interest", early, w)
    assert not out.passed and out.metadata["rows_before_listing"] == 1


def test_coverage_only_judges_the_partitions_of_the_run():
    funding = pl.DataFrame({"symbol": ["BTCUSDT"], "ts_event": [START], "ts_available": [START]})
    w = CheckWindow(
        dates=(DAY, date(2025, 1, 2)),
        symbols=("BTCUSDT", "ETHUSDT"),
        now=NOW,
        universe=UNIVERSE,
        partition_keys=frozenset({"2025-01-01|BTCUSDT"}),
    )
    assert quality.check_daily_coverage("funding_rates", funding, w).passed


def test_freshness_fails_when_partition_stops_early():
    clean = full_day_bars()
    assert quality.check_freshness("market_bars_5m", clean, window()).passed
    assert not quality.check_freshness("market_bars_5m", clean.head(100), window()).passed
    assert not quality.check_freshness("market_bars_5m", clean.clear(), window()).passed
    two_days = pl.concat([clean, full_day_bars(day_start=START + timedelta(days=2))])
    gap = window(dates=(DAY, date(2025, 1, 2), date(2025, 1, 3)))  # the middle day never arrived
    out = quality.check_freshness("market_bars_5m", two_days, gap)
    assert not out.passed and list(out.metadata["stale_examples"]) == ["2025-01-02|BTCUSDT"]


def test_freshness_on_today_measures_against_now():
    now = START + timedelta(hours=1)
    recent = full_day_bars(n=11)  # newest closes 00:55
    assert quality.check_freshness("market_bars_5m", recent, window(now=now)).passed
    assert not quality.check_freshness("market_bars_5m", recent, window(now=now + timedelta(minutes=30))).passed


GOOD_ROW = {
    "funding_rates": {"symbol": "BTCUSDT", "funding_rate": 0.0001, "mark_price": 100.0},
    "open_interest": {"symbol": "BTCUSDT", "period": "5m", "open_interest": 5.0, "open_interest_value": 500.0},
    "derivatives_metrics": {"symbol": "BTCUSDT", "period": "5m", "taker_buy_sell_ratio": 1.1, "mark_price": 100.0},
    "macro_series": {"series_id": "vix", "value": 15.0},
    "social_posts_raw": {"platform": "reddit", "id": "t3_a", "title": None, "text": "hello"},
    "social_comments_raw": {"platform": "reddit", "id": "t1_a", "text": "hello"},
}


def one_row(asset: str, **values) -> pl.DataFrame:
    """A lake row of ``asset``: canonical columns, nulls where not given."""
    schema = RAW_SCHEMAS[asset].columns
    row = {"ts_event": START, "ts_available": START, **GOOD_ROW[asset], **values}
    return pl.DataFrame([{c: row.get(c) for c in schema}], schema=schema)


@pytest.mark.parametrize(
    "asset, column, bad",
    [
        ("funding_rates", "funding_rate", 0.2),
        ("funding_rates", "mark_price", float("nan")),
        ("open_interest", "open_interest", -5.0),
        ("open_interest", "open_interest_value", float("inf")),
        ("derivatives_metrics", "taker_buy_sell_ratio", 0.0),
        ("derivatives_metrics", "period", "7m"),
        ("macro_series", "value", float("inf")),
        ("macro_series", "series_id", "gold"),
        ("social_posts_raw", "text", "   "),
        ("social_comments_raw", "text", "x" * 40_001),
    ],
)
def test_sanity_fails_on_bad_values(asset, column, bad):
    assert quality.check_sanity(asset, one_row(asset), NO_REJECTS).passed
    assert not quality.check_sanity(asset, one_row(asset, **{column: bad}), NO_REJECTS).passed


def test_a_link_post_with_a_title_and_no_body_is_text():
    assert quality.check_sanity(
        "social_posts_raw", one_row("social_posts_raw", title="BTC ETF", text=""), NO_REJECTS
    ).passed


def test_every_raw_asset_has_at_least_three_checks():
    assert len(RAW_CHECKS) == 7
    assert all(len(v) >= 3 for v in RAW_CHECKS.values())
