"""The derived-asset checks' rules (``core.leakage.derived``), on a few rows written by hand.

Labels: 16 perp 5m bars of one symbol opening at 00:00 .. 01:15, closes ``100 * exp(0.01 k)``, so every 5m log
return is 0.01; a 1h label at t (the close of bar k, t = (k + 1) * 5m) needs the bars closing in (t, t + 1h], so
the labels at 00:05 .. 00:20 are complete: ret = 12 * 0.01 = 0.12, rv = sqrt(12 * 0.01^2) = sqrt(0.0012), cost =
2 * (4 + 1) bps = 0.001 (no spread: no impact), stamped t + 1h; the later ones are incomplete (null ret and rv).
Text items are known 10 minutes after publication. Fold intervals: a train window must end ``purge + embargo``
before its test window, with the purge at least the longest label horizon in the lake.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.folds import FOLD_SCHEMA
from quantmm_assets.core.labels import LABEL_SCHEMA
from quantmm_assets.core.leakage import derived
from quantmm_assets.core.leakage.derived import fold_hygiene, item_availability, label_alignment
from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS

A = "AAAUSDT"
T0 = datetime(2025, 3, 11, tzinfo=UTC)
BAR = timedelta(minutes=5)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RV = math.sqrt(0.0012)
SPREAD = {"symbol": pl.Utf8, "ts_event": UTC_TS, "cs_spread_1d": pl.Float64}  # an empty spread frame: no impact
COMPLETE = [T0 + k * BAR for k in range(1, 5)]  # 00:05 .. 00:20
INCOMPLETE = [T0 + k * BAR for k in range(5, 17)]  # 00:25 .. 01:20


def perp_bars() -> pl.DataFrame:
    n = 16
    cols = {
        "symbol": [A] * n,
        "market": ["perp"] * n,
        "ts_event": [T0 + k * BAR for k in range(n)],
        "ts_available": [T0] * n,  # the lake's stamps, wrong on purpose: the check re-derives them (close time)
        "close": [100 * math.exp(0.01 * k) for k in range(n)],
    }
    return pl.DataFrame({c: cols.get(c, [None] * n) for c in RAW_SCHEMAS["market_bars_5m"].columns})


def label_rows(times: list[datetime], complete: bool, stamp: timedelta = HOUR, **values: float) -> pl.DataFrame:
    ret, rv = (values.get("ret", 0.12), values.get("rv", RV)) if complete else (None, None)
    funding = values.get("funding")  # unknown (null) unless given: check() passes no funding rows
    return pl.DataFrame(
        [(A, t, "1h", t + stamp, ret, rv, values.get("cost", 0.001), funding, complete) for t in times],
        schema=LABEL_SCHEMA,
        orient="row",
    )


def honest() -> pl.DataFrame:
    return pl.concat([label_rows(COMPLETE, True), label_rows(INCOMPLETE, False)])


def check(labels: pl.DataFrame, funding: pl.DataFrame | None = None):
    return label_alignment(labels, perp_bars(), pl.DataFrame(schema=SPREAD), CostConfig(), funding)


def settlements() -> pl.DataFrame:
    """Settlements at T0 - 8h (0.0001), 00:30 (0.0005), 01:05 (0.0003: exactly t + h of the 00:05 label) and 01:30
    (0.0002). The lake's stamps are wrong on purpose: the 01:05 one an hour late, the others a day early; the check
    re-derives funding availability (the settlement instant) from ts_event."""
    times = [T0 - 8 * HOUR, T0 + 6 * BAR, T0 + 13 * BAR, T0 + 18 * BAR]
    stamps = [T0 - DAY, T0 - DAY, T0 + 13 * BAR + HOUR, T0 - DAY]
    cols = {"symbol": [A] * 4, "ts_event": times, "ts_available": stamps, "funding_rate": [1e-4, 5e-4, 3e-4, 2e-4]}
    schema = RAW_SCHEMAS["funding_rates"].columns
    return pl.DataFrame({c: cols.get(c, [None] * 4) for c in schema}, schema=schema)


def replaced(labels: pl.DataFrame, t: datetime, row: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([labels.filter(pl.col("ts_event") != t), row]).sort("ts_event")


# --- label alignment ------------------------------------------------------------------------------------------------


def test_honest_labels_pass_and_every_complete_one_is_rebuilt() -> None:
    # equivalent mutants: the rebuild's end ``t + 2 us`` (labels lie on the 5m grid) and
    # ``recomputed_availability("market_bars_5m", None)`` (the frame argument is unused)
    out = check(honest())
    assert out.passed and out.checked == 16 and out.skipped == [], out.failures
    assert out.description == (
        "16 labels stamped t + h (0 not); 4 sampled labels rebuilt from the bars (and funding) available at t + h "
        "and not before"
    )


def test_funding_is_rebuilt_from_the_settlements_known_at_t_plus_h() -> None:
    # every complete 1h label (00:05 .. 00:20) spans the 00:30 and 01:05 settlements and no other: 0.0008; for the
    # 00:05 label 01:05 is t + h itself, known then by the rule though the lake stamped it an hour later
    honest_funding = pl.concat([label_rows(COMPLETE, True, funding=0.0008), label_rows(INCOMPLETE, False)])
    out = check(honest_funding, settlements())
    assert out.passed and out.checked == 16, out.failures
    # a builder that also charged the 01:30 settlement (after every t + h) is caught by the rebuild
    t = COMPLETE[0]
    late = replaced(honest_funding, t, label_rows([t], True, funding=0.001))
    assert check(late, settlements()).failures == [f"label 1h: {A} {t} funding: stored 0.001 vs recomputed 0.0008"]
    # labels built without funding rows (null) are not what the settlements give
    assert len(check(honest(), settlements()).failures) == 4


def test_every_horizon_is_stamped_t_plus_h() -> None:
    # equivalent mutants: replace_strict without ``return_dtype`` (timedeltas are inferred as Duration("us"))
    hours = {"1h": 1, "4h": 4, "1d": 24, "7d": 168}
    labels = pl.DataFrame(
        [(A, T0, h, T0 + n * HOUR, None, None, 0.001, None, False) for h, n in hours.items()],
        schema=LABEL_SCHEMA,
        orient="row",
    )
    out = check(labels)
    assert out.passed and out.checked == 4 and out.failures == []
    assert out.skipped == ["no complete label to rebuild (their forward windows are not in the lake yet)"]
    early = labels.with_columns(pl.col("ts_available") - timedelta(microseconds=1))
    assert len(check(early).failures) == 4 and "4 labels stamped t + h (4 not); 0 sampled" in check(early).description


def test_a_label_stamped_before_t_plus_h_fails_its_stamp_and_its_rebuild() -> None:
    t = COMPLETE[0]
    early = replaced(honest(), t, label_rows([t], True, stamp=HOUR - BAR))  # 00:05 + 55m: the last bar is not known
    out = check(early)
    assert not out.passed and out.checked == 16
    assert out.failures == [
        f"{A} {t} 1h: known at {t + HOUR - BAR}",
        f"label 1h: {A} {t} ret: stored 0.12 vs recomputed None",
        f"label 1h: {A} {t} rv: stored 0.0346410161514 vs recomputed None",
        f"label 1h: {A} {t} complete: stored True vs recomputed False",
    ]


def test_a_label_stamped_after_t_plus_h_is_buildable_one_bar_before_its_stamp() -> None:
    t = COMPLETE[1]
    late = replaced(honest(), t, label_rows([t], True, stamp=HOUR + BAR))  # at t + 1h (its stamp - 5m) complete
    assert check(late).failures == [
        f"{A} {t} 1h: known at {t + HOUR + BAR}",
        f"{A} {t} 1h: buildable from bars available before t + h",
    ]


def test_a_label_that_is_not_its_own_window_fails_its_rebuild() -> None:
    t = COMPLETE[2]
    shifted = replaced(honest(), t, label_rows([t], True, ret=0.13, cost=0.002))
    assert check(shifted).failures == [
        f"label 1h: {A} {t} ret: stored 0.13 vs recomputed 0.12",
        f"label 1h: {A} {t} cost: stored 0.002 vs recomputed 0.001",
    ]


def test_label_failures_keep_ten_stamps_and_twenty_in_all() -> None:
    # 12 incomplete labels stamped at t (10 reported), 4 complete ones wrong in ret, rv and cost (12 more)
    wrong = pl.concat(
        [label_rows(COMPLETE, True, ret=1.0, rv=1.0, cost=1.0), label_rows(INCOMPLETE, False, stamp=0 * HOUR)]
    )
    out = check(wrong)
    assert len(out.failures) == 20 and "(12 not)" in out.description
    assert out.failures[:10] == [f"{A} {t} 1h: known at {t}" for t in INCOMPLETE[:10]]
    stamps_only = check(label_rows(INCOMPLETE, False, stamp=0 * HOUR))
    assert len(stamps_only.failures) == 10 and stamps_only.checked == 12


def test_at_most_label_samples_complete_labels_are_rebuilt_the_same_ones_each_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(derived, "LABEL_SAMPLES", 2)  # two of the four complete labels
    wrong = pl.concat([label_rows(COMPLETE, True, ret=1.0), label_rows(INCOMPLETE, False)])  # each fails if rebuilt
    # equivalent mutants: ``seed=1`` (another fixed draw: which labels a seed picks is no rule) and ``... or True``
    # (sampling an empty frame gives it back empty)
    runs = [check(wrong) for _ in range(5)]
    assert "2 sampled labels rebuilt" in runs[0].description and len(runs[0].failures) == 2
    assert all(out.failures == runs[0].failures for out in runs)  # seeded: the same two, in the same order


def test_no_labels_compare_nothing() -> None:
    out = check(honest().clear())
    assert out.nothing_compared and out.description == "compared nothing: no labels in this run"


# --- text item availability ----------------------------------------------------------------------------------------

ITEM_SCHEMA = {
    "kind": pl.Utf8,
    "id": pl.Utf8,
    "ts_event": UTC_TS,
    "ts_available": UTC_TS,
    "engagement": pl.Int64,
    "engagement_observed_at": UTC_TS,
}


def items(n: int, stamp: timedelta = timedelta(minutes=10), observed: bool = True) -> pl.DataFrame:
    """``n`` posts published hourly from 00:00, stamped ``stamp`` later, with engagement observed at 12:00 (or
    without an observation time)."""
    return pl.DataFrame(
        [
            ("post", f"p{k}", T0 + k * HOUR, T0 + k * HOUR + stamp, 5, T0 + 12 * HOUR if observed else None)
            for k in range(n)
        ],
        schema=ITEM_SCHEMA,
        orient="row",
    )


def test_items_known_ten_minutes_after_publication_with_observed_engagement_pass() -> None:
    # ``social_available(ts, )`` is an equivalent mutant: its default delay is the same 10 minutes
    out = item_availability(items(3))
    assert out.passed and out.checked == 3
    assert out.description == (
        "3 items: 0 with an availability other than publication + 0:10:00, 0 with engagement of unknown observation "
        "time"
    )


def test_items_stamped_otherwise_or_with_unobserved_engagement_fail_ten_of_each_reported() -> None:
    early = items(12, stamp=timedelta(minutes=9))
    out = item_availability(early)
    assert not out.passed and len(out.failures) == 10
    assert out.failures[0] == f"post p0: stamped {T0 + timedelta(minutes=9)} for ts_event {T0}"
    late = items(1, stamp=timedelta(minutes=11))  # later than the rule is "other than" too
    assert item_availability(late).failures == [f"post p0: stamped {T0 + timedelta(minutes=11)} for ts_event {T0}"]
    unobserved = items(11, observed=False)
    out = item_availability(unobserved)
    assert len(out.failures) == 10 and out.failures[0] == "post p0: engagement without observation time"
    assert "0 with an availability other than" in out.description and "11 with engagement of unknown" in out.description
    no_engagement = unobserved.with_columns(pl.lit(None, pl.Int64).alias("engagement"))  # nothing to have observed
    assert item_availability(no_engagement).passed
    both = pl.concat([early, unobserved])
    assert len(item_availability(both).failures) == 20


def test_no_items_compare_nothing() -> None:
    out = item_availability(items(0))
    assert out.nothing_compared and out.description == "compared nothing: no text items in this run"


# --- fold hygiene ---------------------------------------------------------------------------------------------------


def folds(gaps: list[timedelta], overlap: bool = False) -> pl.DataFrame:
    """One walk-forward fold per gap, 10 days apart: train [d, d + 3 days), test from ``gap`` after the train end
    (``overlap``: from a day before it) for 2 days."""
    rows = []
    for k, gap in enumerate(gaps):
        start = T0 + 10 * k * DAY
        test = start + 3 * DAY + (-DAY if overlap else gap)
        rows += [
            (k, "walk_forward", None, "train", start, start + 3 * DAY),
            (k, "walk_forward", None, "test", test, test + 2 * DAY),
        ]
    return pl.DataFrame(rows, schema=FOLD_SCHEMA, orient="row")


def test_the_purge_is_at_least_the_longest_label_horizon_in_the_lake() -> None:
    zero = timedelta(0)
    four = folds([4 * HOUR])
    assert fold_hygiene(four, zero, zero, ["1h", "4h"]).passed  # 4h after the train end: the longest label ends
    short = folds([4 * HOUR - timedelta(minutes=1)])
    out = fold_hygiene(short, zero, zero, ["4h", "1h"])
    assert not out.passed and out.checked == 2 and out.description == "2 intervals: 1 violations"
    assert fold_hygiene(short, zero, zero, ["1h"]).passed
    assert fold_hygiene(folds([HOUR]), zero, zero, ["1h"]).description == "2 intervals: purge and embargo hold"
    assert not fold_hygiene(folds([HOUR - timedelta(minutes=1)]), zero, zero, ["1h"]).passed


def test_an_unknown_horizon_or_none_given_counts_as_the_longest_known() -> None:
    zero = timedelta(0)
    four_days = folds([4 * DAY])
    assert fold_hygiene(four_days, zero, zero, ["1d"]).passed
    for horizons in (["2w"], None, []):
        assert not fold_hygiene(four_days, zero, zero, horizons).passed, horizons  # 7d > 4 days
    assert fold_hygiene(folds([7 * DAY]), zero, zero, ["2w"]).passed


def test_the_specs_own_purge_and_embargo_count_when_longer() -> None:
    assert not fold_hygiene(folds([7 * DAY]), 8 * DAY, timedelta(0), ["1h"]).passed  # the spec's purge: 8 days
    assert not fold_hygiene(folds([90 * timedelta(minutes=1)]), timedelta(0), HOUR, ["1h"]).passed  # 1h + 1h embargo
    assert fold_hygiene(folds([2 * HOUR]), timedelta(0), HOUR, ["1h"]).passed


def test_fold_hygiene_keeps_twenty_violations_and_compares_nothing_without_folds() -> None:
    out = fold_hygiene(folds([DAY] * 25, overlap=True), timedelta(0), timedelta(0), ["1h"])
    assert out.checked == 50 and len(out.failures) == 20 and out.description == "50 intervals: 25 violations"
    empty = fold_hygiene(folds([]), timedelta(0), timedelta(0), ["1h"])
    assert empty.nothing_compared and empty.description == "compared nothing: no fold intervals"
