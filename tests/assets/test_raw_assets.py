"""Raw assets materialized in-process: synthetic sample, range runs, idempotency, planted bad input."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.defs.raw_assets import RAW_ASSETS, RAW_DATE_ASSETS, RAW_MARKET_ASSETS, market_bars_5m
from quantmm_jobs.cli.runs import run_range
from quantmm_jobs.schedules import refresh_window, today_market_request
from quantmm_resources.environment import build_resources
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings

DAY = date(2025, 3, 4)


def lake_rows(home, asset: str) -> int:
    return connect_lake(home / "lake").execute(f"select count(*) from {asset}").fetchone()[0]


def test_one_partition_of_each_raw_asset_on_the_synthetic_sample(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    res = dg.materialize(RAW_MARKET_ASSETS, partition_key=f"{DAY}|BTCUSDT", resources=resources, instance=instance)
    res2 = dg.materialize(RAW_DATE_ASSETS, partition_key=str(DAY), resources=resources, instance=instance)
    assert res.success and res2.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for r in (res, res2)
        for e in r.get_asset_check_evaluations()
    }
    assert len(checks) == 35 and all(checks.values()), [k for k, v in checks.items() if not v]
    bars = pl.read_parquet(quantmm_home / "lake/market_bars_5m/date=2025-03-04/symbol=BTCUSDT/data.parquet")
    assert bars.group_by("market").len().sort("market")["len"].to_list() == [288, 288]
    assert (bars["ts_available"] > bars["ts_event"]).all()
    posts = pl.read_parquet(quantmm_home / "lake/social_posts_raw/date=2025-03-04/data.parquet")
    assert len(posts) > 50 and posts["symbols"].list.len().sum() > 0
    mat = instance.get_latest_materialization_event(dg.AssetKey("market_bars_5m")).asset_materialization
    assert mat.metadata["complete"].value is True and mat.metadata["rejected_rows"].value == 0


def test_range_run_is_one_run_with_a_materialization_per_partition_and_idempotent(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    symbols = ["BTCUSDT", "ETHUSDT"]
    first = run_range(RAW_MARKET_ASSETS, DAY, DAY + timedelta(days=2), symbols, resources, instance)
    assert first.success and first.partitions == 6
    parts = instance.get_materialized_partitions(dg.AssetKey("market_bars_5m"))
    assert parts == {f"{d}|{s}" for d in ("2025-03-04", "2025-03-05", "2025-03-06") for s in symbols}
    before = {a: lake_rows(quantmm_home, a) for a in ("market_bars_5m", "funding_rates", "derivatives_metrics")}
    assert before["market_bars_5m"] == 6 * 2 * 288
    again = run_range(RAW_MARKET_ASSETS, DAY, DAY + timedelta(days=2), symbols, resources, instance)
    assert again.success
    assert {a: lake_rows(quantmm_home, a) for a in before} == before
    dupes = (
        connect_lake(quantmm_home / "lake")
        .execute("select count(*) - count(distinct (symbol, market, ts_event)) from market_bars_5m")
        .fetchone()[0]
    )
    assert dupes == 0


def write_bad_bundle(path):
    """Canonical bars for one day with planted bad rows; returns the number of source rows."""
    ts = [datetime(2025, 3, 4, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(288)]
    good = pl.DataFrame(
        {
            "symbol": "BTCUSDT",
            "market": "perp",
            "ts_event": ts,
            "open": "100",
            "high": "101",
            "low": "99",
            "close": "100.5",
            "volume": "3",
        }
    )
    bad = pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * 4,
            "market": ["perp"] * 4,
            "ts_event": ts[:3] + [ts[3] + timedelta(minutes=1)],
            "open": ["100", "abc", "100", "100"],
            "high": ["101", "101", "98", "101"],
            "low": ["99", "99", "99", "99"],
            "close": ["100.5", "100", "100", "100"],
            "volume": ["3", "3", "3", "3"],
        }
    )
    src = pl.concat([good, bad]).with_columns(pl.col("ts_event").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    path.mkdir()
    src.write_csv(path / "market_bars_5m.csv")
    return len(src)


def test_planted_bad_rows_are_quarantined_counted_and_fail_the_checks(quantmm_home, instance, tmp_path):
    bundle = tmp_path / "bundle"
    n_source = write_bad_bundle(bundle)
    resources = build_resources(get_settings(), source="bundle", bundle_dir=bundle)
    res = dg.materialize([market_bars_5m], partition_key=f"{DAY}|BTCUSDT", resources=resources, instance=instance)
    assert res.success
    store = OperationalStore(url=get_settings().resolved_ops_url)
    rejects = store.rejects("market_bars_5m")
    reasons = sorted(r.split(":")[0] for r in rejects["reason"])
    assert reasons == ["duplicate key", "ohlc", "ts_event not on the 5m grid", "unparseable open"]
    assert lake_rows(quantmm_home, "market_bars_5m") + len(rejects) == n_source
    md = res.asset_materializations_for_node("market_bars_5m")[0].metadata
    assert md["rejected_rows"].value == 4 and md["rejects_by_reason"].value["ohlc"] == 1
    checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert checks["schema"] is False and checks["ohlc_sanity"] is False and checks["key_unique"] is False
    assert checks["coverage"] is False  # spot market absent from the bundle
    # Re-materializing replaces the partition's rejects instead of adding to them.
    dg.materialize([market_bars_5m], partition_key=f"{DAY}|BTCUSDT", resources=resources, instance=instance)
    assert store.count_rejects("market_bars_5m") == 4


def test_todays_partition_is_partial_and_the_schedule_refreshes_it(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    now = datetime.now(UTC)
    request = today_market_request(now)
    res = dg.materialize(RAW_MARKET_ASSETS, resources=resources, instance=instance, tags=request.tags)
    assert res.success
    md = res.asset_materializations_for_node("market_bars_5m")[0].metadata
    first, last = refresh_window(now)
    days = (last - first).days + 1
    assert md["run_complete"].value is False
    assert md["run_partitions"].value == days * len(get_settings().universe().symbols)
    latest = pl.read_parquet(
        quantmm_home / f"lake/market_bars_5m/date={datetime.now(UTC).date()}/symbol=BTCUSDT/data.parquet"
    )["ts_available"].max()
    assert latest <= datetime.now(UTC)  # nothing from the future, even on the partial day


@pytest.mark.parametrize("asset", [a.key.to_user_string() for a in RAW_ASSETS])
def test_each_raw_asset_declares_its_checks(asset):
    specs = {s.name for a in RAW_ASSETS for s in a.check_specs if s.asset_key.to_user_string() == asset}
    assert {"schema", "key_unique", "freshness"} <= specs
