"""The leakage checks' own defences (issue 11), from the rules, on a few raw rows written by hand.

- The check re-derives availability from ``ts_event``: a builder fed stored stamps that are too early (the lake's
  ``ts_available`` written wrong) is caught, on both paths (``raw_known_at`` restamping per row, and ``restamped``
  once then ``restamp=False`` as the matrix check does).
- The comparison is a full one: a rebuild that lacks a stored row, or has a row the stored frame lacks, fails.
- Engagement observed after the cut is blanked: a builder that reads engagement before it was observed is caught;
  engagement observed exactly at the cut is known (no false alarm).

Hand-computed instants: VIX is posted the next business day at 14:00 UTC. Observation Fri 2025-03-07 -> Mon
03-10 14:00; Mon 03-10 -> Tue 03-11 14:00; Tue 03-11 -> Wed 03-12 14:00. Social items are known 10 minutes after
they are published. The builder below is a stand-in for the feature builder (pure, a few lines): the VIX last
known at t and the sum of the engagement scores of the posts known at t.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.features.matrix import RAW_ASSET_OF, RawInputs
from quantmm_assets.core.leakage.asof import (
    as_known_at,
    asof_alignment,
    differences,
    items_known_at,
    raw_known_at,
    restamped,
)
from quantmm_assets.core.leakage.truncation import grid_ceil, truncation_invariance
from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS

SYM = "BTCUSDT"
BAR = timedelta(minutes=5)
HOUR = timedelta(hours=1)
NOON = datetime(2025, 3, 11, 12, 0, tzinfo=UTC)  # before the VIX of Mon 03-10 is posted (Tue 14:00)
POSTED = datetime(2025, 3, 11, 14, 0, tzinfo=UTC)  # the VIX of Mon 03-10 is posted: known from this instant
ROW_SCHEMA = {
    "symbol": pl.Utf8,
    "ts_event": UTC_TS,
    "ts_available": UTC_TS,
    "vix": pl.Float64,
    "engagement": pl.Float64,
}


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def macro(early: bool = False) -> pl.DataFrame:
    """VIX observations of Fri 03-07, Mon 03-10, Tue 03-11, stamped by hand at their posting (or, ``early``, at
    their observation day's 00:00: the stamps too early)."""
    obs = [at(7), at(10), at(11)]
    posted = [at(10, 14), at(11, 14), at(12, 14)]
    return pl.DataFrame(
        {
            "series_id": ["vix"] * 3,
            "ts_event": obs,
            "ts_available": obs if early else posted,
            "value": [18.0, 20.0, 22.0],
            "source_series": ["FRED:VIXCLS"] * 3,
            "source": ["hand"] * 3,
        },
        schema=RAW_SCHEMAS["macro_series"].columns,
    )


def posts() -> pl.DataFrame:
    """p1 published 11:00 (known 11:10), its score 50 observed at 13:00; p2 published 10:00, score 7 observed at
    11:30; p3 published 11:55, known 12:05."""
    published = [at(11, 11), at(11, 10), at(11, 11, 55)]
    n = len(published)
    return pl.DataFrame(
        {
            "platform": ["hand"] * n,
            "id": ["p1", "p2", "p3"],
            "ts_event": published,
            "ts_available": [t + timedelta(minutes=10) for t in published],
            "author": [None] * n,
            "community": [None] * n,
            "title": [None] * n,
            "text": ["a", "b", "c"],
            "url": [None] * n,
            "engagement_score": [50, 7, 1000],
            "num_comments": [3, 1, 9],
            "engagement_observed_at": [at(11, 13), at(11, 11, 30), at(11, 12, 30)],
            "symbols": [[SYM]] * n,
            "source": ["hand"] * n,
        },
        schema=RAW_SCHEMAS["social_posts_raw"].columns,
    )


def raw(macro_rows: pl.DataFrame | None = None, post_rows: pl.DataFrame | None = None) -> RawInputs:
    empty = {name: RAW_SCHEMAS[asset].empty() for name, asset in RAW_ASSET_OF.items()}
    macro_rows = macro() if macro_rows is None else macro_rows
    return RawInputs(**{**empty, "macro": macro_rows, "posts": empty["posts"] if post_rows is None else post_rows})


def build(raw_in: RawInputs, start: datetime, end: datetime, honest: bool = True) -> pl.DataFrame:
    """One row per 5m grid instant t in [start, end): the VIX last known at t (by the ``ts_available`` it is
    handed) and the engagement of the posts known at t (``honest``: only scores observed by t)."""
    vix = raw_in.macro.filter(pl.col("series_id") == "vix").sort("ts_event")
    rows, t = [], grid_ceil(start)
    while t < end:
        known = vix.filter(pl.col("ts_available") <= t)
        seen = raw_in.posts.filter(pl.col("ts_available") <= t)
        if honest:
            seen = seen.filter(pl.col("engagement_observed_at") <= t)
        rows.append((SYM, t, t, known["value"][-1] if len(known) else None, float(seen["engagement_score"].sum())))
        t += BAR
    return pl.DataFrame(rows, schema=ROW_SCHEMA, orient="row")


def peeking(raw_in: RawInputs, start: datetime, end: datetime) -> pl.DataFrame:
    """The planted leak: engagement read whenever the post is known, not when the score was observed."""
    return build(raw_in, start, end, honest=False)


def restamped_known_at(r: object, s: str, t: datetime) -> object:
    """The matrix check's path: ``restamped`` once, then no restamp per row."""
    return raw_known_at(r, s, t, restamp=False)


# --- availability re-derived, never read from the stored stamps ---------------------------------------------------


def test_the_hand_stamps_are_the_rule() -> None:
    # the honest frame's stamps are what the availability rule derives (so "early" below is early by the rule)
    assert restamped(raw()).macro["ts_available"].to_list() == [at(10, 14), at(11, 14), at(12, 14)]
    assert restamped(raw(macro(early=True))).macro["ts_available"].to_list() == [at(10, 14), at(11, 14), at(12, 14)]


@pytest.mark.parametrize("known_at", [raw_known_at, restamped_known_at], ids=["restamp-per-row", "restamped-once"])
def test_a_builder_fed_stamps_that_are_too_early_is_caught(known_at) -> None:
    lake = raw(macro(early=True))  # the lake itself holds the early stamps: the check is handed them too
    inputs = restamped(lake) if known_at is restamped_known_at else lake
    stored = build(lake, NOON, NOON + HOUR)
    # by the early stamps the VIX of Tue 03-11 (22) is known at noon; by the rule only Fri 03-07's (18) is
    assert stored.filter(pl.col("ts_event") == NOON)["vix"].item() == 22.0
    out = asof_alignment(stored, inputs, build, [(SYM, NOON)], "m", known_at=known_at)
    assert not out.passed and out.checked == 1
    assert out.failures == [f"m row at 2025-03-11 12:00: {SYM} {NOON} vix: stored 22 vs recomputed 18"]


@pytest.mark.parametrize("known_at", [raw_known_at, restamped_known_at], ids=["restamp-per-row", "restamped-once"])
def test_honest_stamps_pass_at_and_before_the_posting_instant(known_at) -> None:
    lake = raw()
    inputs = restamped(lake) if known_at is restamped_known_at else lake
    stored = build(lake, NOON, POSTED + BAR)
    assert stored.filter(pl.col("ts_event").is_in([NOON, POSTED - BAR, POSTED]))["vix"].to_list() == [18.0, 18.0, 20.0]
    out = asof_alignment(stored, inputs, build, [(SYM, NOON), (SYM, POSTED - BAR), (SYM, POSTED)], "m", known_at)
    assert out.passed and out.checked == 3, out.failures


# --- a full comparison: missing and extra rows fail ---------------------------------------------------------------


def frame(rows: list[tuple[datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame([(SYM, t, t, v, 0.0) for t, v in rows], schema=ROW_SCHEMA, orient="row")


def test_differences_count_a_row_on_one_side_only() -> None:
    stored = frame([(NOON, 18.0), (NOON + BAR, 18.0)])
    assert differences(stored, stored, "x") == []
    lacks = differences(stored, frame([(NOON, 18.0)]), "x")
    assert lacks == [f"x: {SYM} {NOON + BAR}: row missing from recomputation"]
    extra = differences(stored, frame([(NOON, 18.0), (NOON + BAR, 18.0), (NOON + 2 * BAR, 20.0)]), "x")
    assert extra == [f"x: {SYM} {NOON + 2 * BAR}: row not in stored"]


def test_a_row_on_one_side_only_is_a_difference_even_when_all_its_values_are_null() -> None:
    # the planted bug: a full join gives nulls on both sides for such a row, and null equals null
    blank = pl.DataFrame([(SYM, NOON + BAR, NOON + BAR, None, None)], schema=ROW_SCHEMA, orient="row")
    stored = frame([(NOON, 18.0)])
    both = pl.concat([stored, blank])
    assert differences(stored, both, "x") == [f"x: {SYM} {NOON + BAR}: row not in stored"]
    assert differences(both, stored, "x") == [f"x: {SYM} {NOON + BAR}: row missing from recomputation"]


def test_a_rebuild_that_lacks_the_stored_row_fails_asof_alignment() -> None:
    stored = build(raw(), NOON, NOON + BAR)

    def nothing(raw_in: RawInputs, start: datetime, end: datetime) -> pl.DataFrame:
        return build(raw_in, start, end).clear()  # the right columns, no row

    out = asof_alignment(stored, raw(), nothing, [(SYM, NOON)], "m")
    assert not out.passed and out.checked == 1
    assert out.failures == [f"m row at 2025-03-11 12:00: {SYM} {NOON}: row missing from recomputation"]


def test_a_stored_frame_missing_a_row_or_holding_an_extra_one_fails_truncation() -> None:
    cut = NOON + HOUR  # rows (12:00, 13:00] compared; all of them have vix 18
    stored = build(raw(), NOON - HOUR, NOON + 2 * HOUR)
    lookback = timedelta(days=10)
    assert truncation_invariance(raw(), build, [cut], lookback, "t", HOUR, full=stored).passed
    gap = stored.filter(pl.col("ts_event") != NOON + 6 * BAR)  # the rebuild has a row the lake lacks
    out = truncation_invariance(raw(), build, [cut], lookback, "t", HOUR, full=gap)
    where = "t data cut at 2025-03-11 13:00 and at the look-back"
    assert not out.passed and out.failures == [f"{where}: {SYM} {NOON + 6 * BAR}: row not in stored"]
    odd = pl.concat([stored, frame([(NOON + 7 * BAR + timedelta(minutes=1), 18.0)])]).sort("ts_event")
    out = truncation_invariance(raw(), build, [cut], lookback, "t", HOUR, full=odd)  # the lake has a row too many
    missing = f"{where}: {SYM} {NOON + 7 * BAR + timedelta(minutes=1)}: row missing from recomputation"
    assert not out.passed and out.failures == [missing]


# --- engagement known only from its observation -------------------------------------------------------------------


def test_as_known_at_blanks_engagement_observed_after_the_cut() -> None:
    comment = pl.DataFrame(
        {
            "platform": ["hand"] * 2,
            "id": ["c1", "c2"],
            "post_id": ["p2"] * 2,
            "parent_id": [None] * 2,
            "ts_event": [at(11, 10, 30)] * 2,
            "ts_available": [at(11, 10, 40)] * 2,
            "author": ["u"] * 2,
            "community": [None] * 2,
            "text": ["d", "e"],
            "engagement_score": [4, 5],
            "engagement_observed_at": [at(11, 12), None],
            "symbols": [[SYM]] * 2,
            "source": ["hand"] * 2,
        },
        schema=RAW_SCHEMAS["social_comments_raw"].columns,
    )
    lake = RawInputs(**{**raw(post_rows=posts()).__dict__, "comments": comment})
    noon = as_known_at(lake, NOON)
    # p3 (known 12:05) is not there; p1's score (observed 13:00) is blanked; p2's (observed 11:30) is kept
    p = noon.posts.sort("id")
    assert p["id"].to_list() == ["p1", "p2"]
    assert p["engagement_score"].to_list() == [None, 7] and p["num_comments"].to_list() == [None, 1]
    assert p["engagement_observed_at"].to_list() == [None, at(11, 11, 30)]
    # a comment observed exactly at the cut is known; one of unknown observation time never is
    c = noon.comments.sort("id")
    assert c["engagement_score"].to_list() == [4, None]
    one = as_known_at(lake, at(11, 13)).posts.sort("id")  # observed exactly at the cut: known
    assert one["engagement_score"].to_list() == [50, 7, 1000]


def test_a_builder_reading_engagement_before_it_was_observed_is_caught() -> None:
    lake = raw(post_rows=posts())
    leaky = peeking(lake, NOON, NOON + HOUR + BAR)
    # at noon the peeking builder sums p1 (50, observed 13:00) and p2 (7); only p2 was observed
    assert leaky.filter(pl.col("ts_event") == NOON)["engagement"].item() == 57.0
    out = asof_alignment(leaky, lake, peeking, [(SYM, NOON)], "m")
    assert not out.passed
    assert out.failures == [f"m row at 2025-03-11 12:00: {SYM} {NOON} engagement: stored 57 vs recomputed 7"]
    # at 13:00 p1's score is observed and p3 is known with its score observed at 12:30: the leak is gone
    honest = build(lake, NOON, NOON + HOUR + BAR)
    assert honest.filter(pl.col("ts_event") == NOON + HOUR)["engagement"].item() == 1057.0
    out = asof_alignment(honest, lake, build, [(SYM, NOON), (SYM, NOON + HOUR)], "m")
    assert out.passed and out.checked == 2, out.failures


def items(t_pub: list[datetime], observed: list[datetime | None], stamped: list[datetime]) -> pl.DataFrame:
    n = len(t_pub)
    return pl.DataFrame(
        {
            "symbol": [SYM] * n,
            "id": [f"i{k}" for k in range(n)],
            "ts_event": t_pub,
            "ts_available": stamped,
            "engagement": [10 * (k + 1) for k in range(n)],
            "engagement_observed_at": observed,
        },
        schema={
            "symbol": pl.Utf8,
            "id": pl.Utf8,
            "ts_event": UTC_TS,
            "ts_available": UTC_TS,
            "engagement": pl.Int64,
            "engagement_observed_at": UTC_TS,
        },
    )


def test_items_known_at_rederives_availability_and_blanks_later_engagement() -> None:
    # i0 published 11:45 (known 11:55), observed 12:00 exactly; i1 published 11:52 but stamped known at 11:52
    # (too early: by the rule 12:02); i2 published 11:00, observed 12:30; i3 observation time unknown
    pub = [at(11, 11, 45), at(11, 11, 52), at(11, 11), at(11, 10)]
    observed = [NOON, NOON, at(11, 12, 30), None]
    sym, got = items_known_at(items(pub, observed, pub), SYM, NOON)  # every stored stamp at publication
    got = got.sort("id")
    assert sym == SYM and got["id"].to_list() == ["i0", "i2", "i3"]
    assert got["ts_available"].to_list() == [at(11, 11, 55), at(11, 11, 10), at(11, 10, 10)]
    assert got["engagement"].to_list() == [10, None, None]
    assert got["engagement_observed_at"].to_list() == [NOON, None, None]
