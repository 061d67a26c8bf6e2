"""A slice of the real BTC 5m, funding and Reddit files imported through `quantmm bundle import`:
lake rows + quarantined rows == the source's rows, and every partition has a materialization."""

from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
import pytest

from quantmm_jobs.cli.main import main
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings

pytestmark = pytest.mark.realdata
START, END = date(2025, 10, 6), date(2025, 10, 19)  # two weeks, the 10-11 Oct crash included
FILES = {
    "futures": ["BTC_USDT_USDT-5m-futures.feather", "BTC_USDT_USDT-1h-funding_rate.feather"],
    "spot": ["BTC_USDT-5m.feather"],
    "social": ["reddit_crypto_posts_comments_text.csv.gz"],
}


def in_window(col: pl.Expr) -> pl.Expr:
    return (col >= datetime(START.year, START.month, START.day, tzinfo=UTC)) & (
        col < datetime(END.year, END.month, END.day + 1, tzinfo=UTC)
    )


def source_counts(data) -> dict[str, int]:
    """Count the window's rows straight from the files, independently of the bundle reader."""
    perp = pl.read_ipc(data / "binance_usdt_5m/futures/BTC_USDT_USDT-5m-futures.feather")
    spot = pl.read_ipc(data / "binance_usdt_5m/spot/BTC_USDT-5m.feather")
    funding = pl.read_ipc(data / "binance_usdt_5m/futures/BTC_USDT_USDT-1h-funding_rate.feather")
    reddit = pl.read_csv(data / "social/reddit_crypto_posts_comments_text.csv.gz", infer_schema_length=0)
    ts = pl.col("created_at_utc_inferred").str.to_datetime(time_zone="UTC", strict=False)
    reddit = reddit.filter(in_window(ts))
    return {
        "market_bars_5m": perp.filter(in_window(pl.col("date"))).height + spot.filter(in_window(pl.col("date"))).height,
        "funding_rates": funding.filter(in_window(pl.col("date"))).height,
        "social_posts_raw": reddit.filter(pl.col("unified_id").str.starts_with("p_")).height,
        "social_comments_raw": reddit.filter(pl.col("unified_id").str.starts_with("c_")).height,
    }


def test_real_slice_through_bundle_import(shared_data, quantmm_home, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    for sub, names in FILES.items():
        (bundle / sub).mkdir(parents=True)
        for name in names:
            src = shared_data / ("social" if sub == "social" else f"binance_usdt_5m/{sub}") / name
            (bundle / sub / name).symlink_to(src)
    assert main(["bundle", "import", str(bundle), "--start", str(START), "--end", str(END)]) == 0
    printed = capsys.readouterr().out
    assert "market_bars_5m" in printed and "social_comments_raw" in printed

    expected = source_counts(shared_data)
    con = connect_lake(quantmm_home / "lake")
    store = OperationalStore(url=get_settings().resolved_ops_url)
    for asset, n in expected.items():
        lake = con.execute(f"select count(*) from {asset}").fetchone()[0]
        assert lake + store.count_rejects(asset) == n, asset
        assert lake > 0, asset
    assert expected["market_bars_5m"] == 2 * 14 * 288  # the files have no gaps in this window

    instance = dg.DagsterInstance.from_config(str(ensure_dagster_home(get_settings())))
    days = pl.date_range(START, END, eager=True).cast(pl.Utf8).to_list()
    assert instance.get_materialized_partitions(dg.AssetKey("market_bars_5m")) == {f"{d}|BTCUSDT" for d in days}
    assert instance.get_materialized_partitions(dg.AssetKey("social_posts_raw")) == set(days)
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("market_bars_5m"), "ohlc_sanity")]
    )
    assert len(check) == 1
