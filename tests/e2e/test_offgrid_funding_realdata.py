"""A perp-only slice of the real data whose funding settlements are stamped 1 ms after the hour (as some
exchanges' files have them) goes through the feature layer: the truncation check raises no false alarm."""

from datetime import date, timedelta

import polars as pl
import pytest

from quantmm_jobs.cli.bundle_import import import_bundle
from quantmm_jobs.cli.runs import instance_for, run_features
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings

pytestmark = pytest.mark.realdata
START, END = date(2025, 10, 9), date(2025, 10, 10)
FUTURES = "binance_usdt_5m/futures"


def test_funding_stamped_after_the_hour_passes_the_matrix_checks(shared_data, quantmm_home, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTMM_TEXT_ENCODER", "hashing")
    get_settings.cache_clear()
    bundle = tmp_path / "bundle" / "futures"
    bundle.mkdir(parents=True)
    for name in ("BTC_USDT_USDT-5m-futures.feather", "BTC_USDT_USDT-1h-mark.feather"):
        (bundle / name).symlink_to(shared_data / FUTURES / name)
    funding = pl.read_ipc(shared_data / FUTURES / "BTC_USDT_USDT-1h-funding_rate.feather")
    late = funding.with_columns(pl.col("date") + timedelta(milliseconds=1))
    late.write_ipc(bundle / "BTC_USDT_USDT-1h-funding_rate.feather")
    instance = instance_for(get_settings())
    raw = import_bundle(bundle.parent, start=START - timedelta(days=12), end=END + timedelta(days=1), instance=instance)
    assert all(r.success for r in raw)
    stored = pl.read_parquet(quantmm_home / f"lake/funding_rates/date={START}/symbol=BTCUSDT/data.parquet")
    assert (stored["ts_event"].dt.millisecond() == 1).all()  # the settlements kept their stamps
    resources = build_resources(get_settings(), source="bundle", bundle_dir=bundle.parent)
    runs = run_features(START, END, ["BTCUSDT"], resources, instance, with_folds=False)
    checks = {k: v for r in runs for k, v in r.checks.items()}
    assert all(r.success for r in runs), checks
    for name in ("asof_alignment", "truncation_invariance"):
        assert checks[f"feature_matrix_main:{name}"] == "passed", checks
    assert checks["derivatives_features:asof_alignment"] == "passed"
