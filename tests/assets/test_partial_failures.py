"""Lake and rejects stay consistent when a whole partition is rejected or one symbol's fetch fails."""

from datetime import date, datetime

import dagster as dg
import polars as pl

from quantmm_assets.defs.raw_assets import funding_rates, market_bars_5m
from quantmm_jobs.cli.runs import run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings
from quantmm_resources.sources.synthetic import SyntheticExchange

DAY = date(2025, 3, 4)
KEY = f"{DAY}|BTCUSDT"


class FlakyExchange(SyntheticExchange):
    """The synthetic market, except that funding for ``failing`` raises (an API error, a delisted symbol)."""

    failing: str = ""

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        if symbol == self.failing:
            raise RuntimeError(f"HTTP 400 for {symbol}: Invalid symbol.")
        return super().fetch_funding(symbol, start, end)


def lake(home, asset: str, key: str) -> pl.DataFrame:
    day, sym = key.split("|")
    return pl.read_parquet(home / f"lake/{asset}/date={day}/symbol={sym}/data.parquet")


def test_a_partition_whose_rows_are_all_rejected_is_emptied(quantmm_home, instance, tmp_path):
    resources = build_resources(get_settings(), source="synthetic")
    assert dg.materialize([market_bars_5m], partition_key=KEY, resources=resources, instance=instance).success
    assert len(lake(quantmm_home, "market_bars_5m", KEY)) == 576
    bundle = tmp_path / "b"
    bundle.mkdir()
    broken = lake(quantmm_home, "market_bars_5m", KEY).drop("ts_available").with_columns(high=pl.lit(1.0))
    broken.with_columns(pl.col("ts_event").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(bundle / "market_bars_5m.csv")
    bad = build_resources(get_settings(), source="bundle", bundle_dir=bundle)
    assert dg.materialize([market_bars_5m], partition_key=KEY, resources=bad, instance=instance).success
    store = OperationalStore(url=get_settings().resolved_ops_url)
    assert lake(quantmm_home, "market_bars_5m", KEY).is_empty()  # the lake and the rejects tell one story
    assert store.count_rejects("market_bars_5m") == 576


def test_a_failing_symbol_keeps_its_lake_and_rejects_and_the_others_go_on(quantmm_home, instance):
    settings = get_settings()
    resources = build_resources(settings, source="synthetic")
    symbols = ["BTCUSDT", "ETHUSDT"]
    assert run_range([funding_rates], DAY, DAY, symbols, resources, instance, log_level="WARNING").success
    before = lake(quantmm_home, "funding_rates", f"{DAY}|ETHUSDT")
    store = OperationalStore(url=settings.resolved_ops_url)
    planted = pl.DataFrame(
        {"asset": ["funding_rates"], "partition": [f"{DAY}|ETHUSDT"], "reason": ["funding: x"], "raw": ["{}"]}
    )
    store.replace_rejects("funding_rates", [f"{DAY}|ETHUSDT"], planted)
    flaky = {**resources, "exchange": FlakyExchange(symbols=settings.universe().symbols, failing="ETHUSDT")}
    run = run_range([funding_rates], DAY, DAY, symbols, flaky, instance, log_level="WARNING")
    assert run.success  # BTCUSDT was refreshed
    assert lake(quantmm_home, "funding_rates", f"{DAY}|ETHUSDT").equals(before)
    assert store.rejects("funding_rates")["reason"].to_list() == ["funding: x"]
    mat = instance.get_latest_materialization_event(dg.AssetKey("funding_rates")).asset_materialization
    assert "Invalid symbol" in mat.metadata["fetch_errors"].value[0]
    assert run.checks["funding_rates:freshness"].startswith("WARN: 1 of 2 partitions")  # shown, at WARN severity


def test_a_symbol_the_source_has_nothing_for_keeps_its_lake_and_rejects(quantmm_home, instance, tmp_path):
    settings = get_settings()
    symbols = ["BTCUSDT", "ETHUSDT"]
    synthetic = build_resources(settings, source="synthetic")
    assert run_range([market_bars_5m], DAY, DAY, symbols, synthetic, instance, log_level="WARNING").success
    eth = f"{DAY}|ETHUSDT"
    before = lake(quantmm_home, "market_bars_5m", eth)
    store = OperationalStore(url=settings.resolved_ops_url)
    planted = pl.DataFrame({"asset": ["market_bars_5m"], "partition": [eth], "reason": ["ohlc: x"], "raw": ["{}"]})
    store.replace_rejects("market_bars_5m", [eth], planted)
    bundle = tmp_path / "btc_only"
    bundle.mkdir()
    btc = lake(quantmm_home, "market_bars_5m", KEY).drop("ts_available")
    btc.with_columns(pl.col("ts_event").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(bundle / "market_bars_5m.csv")
    only_btc = build_resources(settings, source="bundle", bundle_dir=bundle)
    run = run_range([market_bars_5m], DAY, DAY, symbols, only_btc, instance, log_level="WARNING")
    assert run.success
    assert lake(quantmm_home, "market_bars_5m", eth).equals(before)
    assert store.rejects("market_bars_5m")["reason"].to_list() == ["ohlc: x"]
