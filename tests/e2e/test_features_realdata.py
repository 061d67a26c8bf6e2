"""A small slice of the real data (BTC bars, funding, mark prices, Reddit text, FRED macro) through the whole
feature layer: every leakage check passes, the matrix has a row per perp bar, text and macro are present."""

from datetime import date, timedelta

import polars as pl
import pytest

from quantmm_jobs.cli.bundle_import import import_bundle
from quantmm_jobs.cli.runs import instance_for, run_features
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings

pytestmark = pytest.mark.realdata
START, END = date(2025, 10, 9), date(2025, 10, 11)  # the 10-11 Oct liquidation crash
FILES = {
    "futures": [
        "BTC_USDT_USDT-5m-futures.feather",
        "BTC_USDT_USDT-1h-funding_rate.feather",
        "BTC_USDT_USDT-1h-mark.feather",
    ],
    "spot": ["BTC_USDT-5m.feather"],
    "social": ["reddit_crypto_posts_comments_text.csv.gz"],
    "macro": ["FRED_DGS10_VIXCLS_DTWEXBGS_daily.csv"],
}


def test_real_slice_through_the_feature_layer(shared_data, quantmm_home, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTMM_TEXT_ENCODER", "hashing")  # MiniLM on these texts runs in `make bench`
    get_settings.cache_clear()
    bundle = tmp_path / "bundle"
    for sub, names in FILES.items():
        (bundle / sub).mkdir(parents=True)
        for name in names:
            src = shared_data / (sub if sub in ("social", "macro") else f"binance_usdt_5m/{sub}") / name
            (bundle / sub / name).symlink_to(src)
    instance = instance_for(get_settings())
    # raw data from 110 days before: the macro look-back (100 days) is then real, not empty
    raw = import_bundle(bundle, start=START - timedelta(days=110), end=END + timedelta(days=8), instance=instance)
    assert all(r.success for r in raw)
    resources = build_resources(get_settings(), source="bundle", bundle_dir=bundle)
    runs = run_features(START, END, ["BTCUSDT"], resources, instance, with_folds=False)
    checks = {k: v for r in runs for k, v in r.checks.items()}
    assert len(checks) == 9 and all(v == "passed" for v in checks.values()), checks
    lake = quantmm_home / "lake"
    fm = pl.concat(
        pl.read_parquet(lake / f"feature_matrix_main/date={START + timedelta(days=i)}/symbol=BTCUSDT/data.parquet")
        for i in range(3)
    )
    assert len(fm) == 3 * 288  # the perp file has no gap here
    assert fm["text_missing"].sum() == 0 and fm["post_latent"].is_not_null().sum() > 100
    assert fm["macro_vix_missing"].sum() == 0 and fm["funding_missing"].sum() == 0
    assert fm["mark_missing"].sum() == 0 and fm["basis_reported"].sum() == 0  # basis from perp vs spot
    crash = fm.filter(pl.col("ts_event").dt.date() == date(2025, 10, 10))
    assert crash["rv_1d"].max() > fm.filter(pl.col("ts_event").dt.date() == START)["rv_1d"].max()
