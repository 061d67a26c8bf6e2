"""The label, text-item availability and fold hygiene checks: clean inputs pass, planted early stamps fail, and a
check with nothing to compare says so instead of passing."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from raw_sample import START, synthetic_raw

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.features.market import market_features
from quantmm_assets.core.folds import FoldSpec, walk_forward_folds
from quantmm_assets.core.labels import labels_multi_horizon
from quantmm_assets.core.leakage.asof import asof_alignment
from quantmm_assets.core.leakage.derived import fold_hygiene, item_availability, label_alignment
from quantmm_assets.core.text.scoring import text_items

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
    assert out.checked == len(labels) and "30 sampled labels rebuilt" in out.description


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


def test_labels_charged_funding_an_hour_before_it_settled_fail():
    raw = synthetic_raw()
    bars = raw.bars.filter(pl.col("symbol") == "BTCUSDT")
    funding = raw.funding.filter(pl.col("symbol") == "BTCUSDT")
    spread = market_features(bars, DAY, DAY + timedelta(days=1)).select("symbol", "ts_event", "cs_spread_1d")
    end = DAY + timedelta(days=1)
    honest = labels_multi_horizon(bars, spread, DAY, end, CostConfig(), funding=funding)
    assert honest["funding"].drop_nulls().len() > 0 and (honest["funding"] != 0).any()
    assert label_alignment(honest, bars, spread, CostConfig(), funding).passed
    early = funding.with_columns(pl.col("ts_event") - timedelta(hours=1))  # the planted bug: settlements read early
    leaky = labels_multi_horizon(bars, spread, DAY, end, CostConfig(), funding=early)
    out = label_alignment(leaky, bars, spread, CostConfig(), funding)
    assert not out.passed and any("funding" in f for f in out.failures), out.failures


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


def test_checks_with_nothing_to_compare_say_so_and_do_not_pass():
    labels, bars, spread = _labels()
    for out in (
        label_alignment(labels.clear(), bars, spread, CostConfig()),
        item_availability(text_items(synthetic_raw().posts, synthetic_raw().comments, "BTCUSDT").clear()),
        asof_alignment(labels, synthetic_raw(), lambda *_: labels, [], "market"),
    ):
        assert out.nothing_compared and not out.passed and out.checked == 0
        assert out.description.startswith("compared nothing"), out.description


def test_incomplete_labels_are_stamp_checked_and_their_rebuild_is_reported_as_not_compared():
    labels, bars, spread = _labels()
    fresh = labels.with_columns(pl.lit(False).alias("complete"))  # the forward windows are not in the lake yet
    out = label_alignment(fresh, bars, spread, CostConfig())
    assert out.passed and out.checked == len(labels) and "0 sampled" in out.description
    assert out.skipped and "no complete label" in out.skipped[0]


def test_fold_hygiene_checks_the_purge_against_the_longest_label_and_compares_nothing_without_folds():
    spec = FoldSpec(n_folds=2, test_days=5, min_train_days=20, purge=timedelta(days=7), inner_k=2)
    folds = walk_forward_folds(START, START + timedelta(days=60), spec)
    assert fold_hygiene(folds, spec.purge, spec.embargo, ["1h", "7d"]).passed
    short = FoldSpec(n_folds=2, test_days=5, min_train_days=20, purge=timedelta(days=1), inner_k=2)
    short_folds = walk_forward_folds(START, START + timedelta(days=60), short)
    leaky = fold_hygiene(short_folds, short.purge, short.embargo, ["7d"])
    assert not leaky.passed and leaky.failures
    assert fold_hygiene(folds.clear(), spec.purge, spec.embargo, ["7d"]).nothing_compared
