"""Leakage checks catch planted leaks and pass clean builds (core only, on the synthetic raw sample)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from raw_sample import START, SYMBOLS, synthetic_raw

from quantmm_assets.core.features.matrix import build_feature_rows
from quantmm_assets.core.leakage.asof import as_known_at, asof_alignment, sample_rows
from quantmm_assets.core.leakage.truncation import cut_instants, truncation_invariance
from quantmm_resources.text_encoder import hashing_embed

DIM = 384
DAY0 = START + timedelta(days=10)  # rows of two days, with the whole look-back inside the sample
DAY2 = DAY0 + timedelta(days=2)
LOOKBACK = {"market_bars_5m": timedelta(days=2), "funding_rates": timedelta(days=9)}


def embed(texts: list[str], _hashes: list[str]):
    return hashing_embed(texts, DIM)


def build(raw, start, end):
    syms = [s for s in SYMBOLS if s in set(raw.bars["symbol"].to_list())] or list(SYMBOLS[:1])
    return build_feature_rows(raw, syms, start, end, embed, DIM, list(SYMBOLS))


@pytest.fixture(scope="module")
def stored() -> pl.DataFrame:
    return build(synthetic_raw(), DAY0, DAY2)


def shift_into_future(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """The planted leak: a feature takes the next row's value; its stamped ts_available stays as it was."""
    return frame.with_columns(pl.col(column).shift(-1).over("symbol"))


def test_clean_matrix_passes_asof_alignment(stored: pl.DataFrame) -> None:
    out = asof_alignment(stored, synthetic_raw(), build, sample_rows(stored, 12, seed=1), "matrix")
    assert out.passed, out.failures
    assert out.checked >= 12


def test_feature_shifted_into_the_future_fails_asof_alignment(stored: pl.DataFrame) -> None:
    leaky = shift_into_future(stored, "ret_1h")
    assert leaky["ts_available"].equals(stored["ts_available"])
    out = asof_alignment(leaky, synthetic_raw(), build, sample_rows(leaky, 12, seed=1), "matrix")
    assert not out.passed
    assert any("ret_1h" in f for f in out.failures)


def test_macro_used_before_release_fails_asof_alignment() -> None:
    raw = synthetic_raw()
    # the builder is handed macro rows stamped available at their observation date (00:00), not at publication
    early = raw.macro.with_columns(pl.col("ts_event").alias("ts_available"))
    leaky = build(type(raw)(**{**raw.__dict__, "macro": early}), DAY0, DAY2)
    honest = build(raw, DAY0, DAY2)
    assert not leaky["macro_vix"].equals(honest["macro_vix"], null_equal=True)
    changed = leaky.filter(pl.col("macro_vix").ne_missing(honest["macro_vix"]))
    samples = [(r["symbol"], r["ts_event"]) for r in changed.head(5).iter_rows(named=True)]
    out = asof_alignment(leaky, raw, build, samples, "matrix")
    assert not out.passed
    assert any("macro_vix" in f for f in out.failures)


def test_clean_builder_is_truncation_invariant() -> None:
    raw = synthetic_raw()
    cuts = cut_instants(DAY0, DAY2, raw, n=10, seed=3)
    assert any(c.hour == 0 and c.minute == 0 for c in cuts)  # partition boundaries are among the cuts
    out = truncation_invariance(
        as_known_at(raw, DAY2 + timedelta(days=1)), build, cuts, LOOKBACK, "clean", timedelta(hours=1)
    )
    assert out.passed, out.failures


def test_lookahead_in_the_builder_fails_truncation_invariance() -> None:
    def peeking(raw, start, end):
        # a builder that reads the next bar: the planted look-ahead
        rows = build(raw, start, end + timedelta(minutes=5))
        return shift_into_future(rows, "ret_5m").filter(pl.col("ts_event") < end)

    raw = synthetic_raw()
    cuts = cut_instants(DAY0, DAY2, raw, n=6, seed=3)
    out = truncation_invariance(raw, peeking, cuts, LOOKBACK, "peeking", timedelta(hours=1))
    assert not out.passed
    assert any("ret_5m" in f for f in out.failures)


def test_lookback_longer_than_declared_fails_truncation_invariance() -> None:
    def long_memory(raw, start, end):
        # a feature that depends on the first bar of whatever data it is given (an expanding window)
        rows = build(raw, start, end)
        first = (
            raw.bars.filter(pl.col("market") == "perp")
            .group_by("symbol")
            .agg(pl.col("close").sort_by("ts_event").first())
        )
        return (
            rows.join(first.rename({"close": "_c0"}), on="symbol")
            .with_columns((pl.col("ret_5m") + pl.col("_c0") * 1e-6).alias("ret_5m"))
            .drop("_c0")
        )

    raw = synthetic_raw()
    out = truncation_invariance(raw, long_memory, [DAY0 + timedelta(hours=6)], LOOKBACK, "memory", timedelta(hours=1))
    assert not out.passed


def test_an_event_used_one_bar_early_fails_truncation_at_the_cut_before_it():
    raw = synthetic_raw()

    def early_macro(r, start, end):
        # the planted leak: macro releases are read 5 minutes before they are published
        early = r.macro.with_columns(pl.col("ts_available") - timedelta(minutes=5))
        return build(type(r)(**{**r.__dict__, "macro": early}), start, end)

    cuts = cut_instants(DAY0, DAY2, as_known_at(raw, DAY2 + timedelta(days=1)), n=60, seed=3)
    releases = set(as_known_at(raw, DAY2).macro["ts_available"].to_list())
    assert any(c + timedelta(minutes=5) in releases for c in cuts)  # the bar before a release is cut
    out = truncation_invariance(raw, early_macro, cuts, LOOKBACK, "early", timedelta(hours=1))
    assert not out.passed and any("macro_" in f for f in out.failures)


def test_cut_instants_on_a_short_span_returns_what_there_is():
    raw = synthetic_raw()
    cuts = cut_instants(DAY0, DAY0 + timedelta(hours=1), raw, n=50)
    assert len(cuts) == 12 and cuts[-1] == DAY0 + timedelta(hours=1)
