"""The label and text-item availability checks: clean inputs pass, planted early stamps fail."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from raw_sample import START, synthetic_raw

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.features_market import market_features
from quantmm_assets.core.labels import labels_multi_horizon
from quantmm_assets.core.text_scoring import text_items
from quantmm_assets.defs.matrix_assets import label_alignment
from quantmm_assets.defs.text_assets import item_availability

DAY = START + timedelta(days=2)


def _labels():
    raw = synthetic_raw()
    bars = raw.bars.filter(pl.col("symbol") == "BTCUSDT")
    spread = market_features(bars, DAY, DAY + timedelta(days=1)).select("symbol", "ts_event", "cs_spread_1d")
    return labels_multi_horizon(bars, spread, DAY, DAY + timedelta(days=1), CostConfig()), bars, spread


def test_clean_labels_pass_label_alignment():
    labels, bars, spread = _labels()
    out = label_alignment(labels, bars, spread, CostConfig())
    assert out.passed, out.failures
    assert out.checked == 30


def test_labels_stamped_available_before_their_horizon_fail():
    labels, bars, spread = _labels()
    early = labels.with_columns(
        pl.when(pl.col("horizon") == "4h")
        .then(pl.col("ts_event") + timedelta(hours=1))
        .otherwise(pl.col("ts_available"))
        .alias("ts_available")
    )
    out = label_alignment(early, bars, spread, CostConfig())
    assert not out.passed and any("4h" in f for f in out.failures)


def test_labels_built_from_a_shifted_window_fail():
    labels, bars, spread = _labels()
    shifted = labels.with_columns(pl.col("ret").shift(-4).over("horizon"))  # the return of the next bar's window
    out = label_alignment(shifted, bars, spread, CostConfig())
    assert not out.passed and any("ret" in f for f in out.failures)


def test_text_items_with_early_availability_or_unobserved_engagement_fail():
    raw = synthetic_raw()
    items = text_items(raw.posts, raw.comments, "BTCUSDT")
    assert item_availability(items).passed
    early = items.with_columns(pl.col("ts_event").alias("ts_available"))
    assert not item_availability(early).passed
    unobserved = items.with_columns(
        pl.lit(5, pl.Int64).alias("engagement"),
        pl.lit(None, items.schema["engagement_observed_at"]).alias("engagement_observed_at"),
    )
    out = item_availability(unobserved)
    assert not out.passed and "engagement" in out.failures[0]
