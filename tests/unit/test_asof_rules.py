"""The as-of rebuild's rules (``core.leakage.asof``), each on a few rows written by hand.

Hand-computed instants: a 5m bar opening at ``ts_event`` is known at its close (+5 min); a funding rate at its
settlement (``ts_event``); an open-interest / metrics snapshot at the end of its period; the VIX of Mon 2025-03-10
the next business day at 14:00 UTC (Tue 03-11 14:00); a post or comment 10 minutes after it is published.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import quantmm_assets.core.leakage.asof as asof
from quantmm_assets.core.features.matrix import RAW_ASSET_OF, RawInputs
from quantmm_assets.core.leakage.asof import (
    LeakageOutcome,
    as_known_at,
    asof_alignment,
    compared_nothing,
    items_known_at,
    only_symbol,
    raw_known_at,
    recomputed_availability,
    sample_rows,
)
from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS

A, B = "AAAUSDT", "BBBUSDT"
BAR = timedelta(minutes=5)
NOON = datetime(2025, 3, 11, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
ROW = {"symbol": pl.Utf8, "ts_event": UTC_TS, "ts_available": UTC_TS, "bars_seen": pl.Int64}


def rows(asset: str, **cols: list) -> pl.DataFrame:
    """A frame of the raw asset's schema: the given columns, every other one null."""
    n = len(next(iter(cols.values())))
    return pl.DataFrame({c: cols.get(c, [None] * n) for c in RAW_SCHEMAS[asset].columns}, RAW_SCHEMAS[asset].columns)


def bars(*keys: tuple[str, datetime], stamps: list[datetime] | None = None) -> pl.DataFrame:
    """Perp bars (symbol, open time), stamped at their close unless ``stamps`` says otherwise."""
    opened = [t for _, t in keys]
    return rows(
        "market_bars_5m",
        symbol=[s for s, _ in keys],
        market=["perp"] * len(keys),
        ts_event=opened,
        ts_available=stamps or [t + BAR for t in opened],
        close=[1.0] * len(keys),
    )


def lake(**frames: pl.DataFrame) -> RawInputs:
    empty = {name: RAW_SCHEMAS[asset].empty() for name, asset in RAW_ASSET_OF.items()}
    return RawInputs(**{**empty, **frames})


def vix(observed: list[datetime], stamps: list[datetime]) -> pl.DataFrame:
    n = len(observed)
    return rows("macro_series", series_id=["vix"] * n, ts_event=observed, ts_available=stamps, value=[20.0] * n)


def count_bars(raw_in: RawInputs, start: datetime, end: datetime) -> pl.DataFrame:
    """A stand-in builder: one row at ``start`` per symbol it is handed, with how many bar rows it was handed."""
    symbols = sorted(set(raw_in.bars["symbol"].to_list()))
    return pl.DataFrame([(s, start, start, len(raw_in.bars)) for s in symbols], schema=ROW, orient="row")


def stored(*values: tuple[str, datetime, int]) -> pl.DataFrame:
    return pl.DataFrame([(s, t, t, v) for s, t, v in values], schema=ROW, orient="row")


def as_given(r: object, _symbol: str, _t: datetime) -> object:
    """A ``known_at`` that hands the inputs on as they are (no narrowing, no cut)."""
    return r


# --- outcomes ------------------------------------------------------------------------------------------------------


def test_an_outcome_passes_only_when_it_compared_something_and_found_no_difference() -> None:
    assert LeakageOutcome("d", 1).passed and not LeakageOutcome("d", 1).nothing_compared
    assert not LeakageOutcome("d", 0).passed and LeakageOutcome("d", 0).nothing_compared
    assert not LeakageOutcome("d", 2, ["f"]).passed and not LeakageOutcome("d", 2, ["f"]).nothing_compared
    assert not LeakageOutcome("d", 0, ["f"]).passed and not LeakageOutcome("d", 0, ["f"]).nothing_compared


def test_compared_nothing_says_why_and_lists_it_as_skipped_unless_given_the_skipped_units() -> None:
    out = compared_nothing("no rows")
    assert (out.description, out.checked, out.failures, out.skipped) == (
        "compared nothing: no rows",
        0,
        [],
        ["no rows"],
    )
    assert compared_nothing("no cut", ["cut 1: empty", "cut 2: empty"]).skipped == ["cut 1: empty", "cut 2: empty"]
    assert not out.passed and out.nothing_compared


# --- availability re-derived from ts_event, per raw asset ---------------------------------------------------------


# plain values here: a polars frame built while the module is imported (collection) would be built in mutmut's
# fork server, and its forked workers then hang in polars' thread pool
@pytest.mark.parametrize(
    ("asset", "opened", "extra", "known"),
    [
        ("market_bars_5m", NOON, {}, NOON + BAR),
        ("funding_rates", NOON, {}, NOON),
        ("open_interest", NOON, {"period": "1h"}, NOON + timedelta(hours=1)),
        ("derivatives_metrics", NOON, {"period": "4h"}, NOON + timedelta(hours=4)),
        ("macro_series", NOON - timedelta(days=1, hours=12), {"series_id": "vix"}, NOON + timedelta(hours=2)),
        ("social_posts_raw", NOON, {}, NOON + timedelta(minutes=10)),
        ("social_comments_raw", NOON, {}, NOON + timedelta(minutes=10)),
    ],
)
def test_each_raw_asset_gets_its_availability_rule(
    asset: str, opened: datetime, extra: dict[str, str], known: datetime
) -> None:
    # equivalent mutants: ``recomputed_availability(asset, None)`` in as_known_at / restamped (the frame argument is
    # unused: the rule reads columns by name) and ``social_available(ts, )`` (its default delay is the 10 minutes)
    frame = pl.DataFrame(
        {"ts_event": [opened], **{k: [v] for k, v in extra.items()}}, schema_overrides={"ts_event": UTC_TS}
    )
    assert frame.select(recomputed_availability(asset, frame))["ts_event"].to_list() == [known]


def test_an_asset_without_a_rule_raises() -> None:
    with pytest.raises(KeyError, match="no availability rule for 'macro'"):  # the field name, not the asset's
        recomputed_availability("macro", pl.DataFrame({"ts_event": [NOON]}))


# --- as_known_at: the cut, the lower bound, the restamp ------------------------------------------------------------


def test_as_known_at_keeps_rows_known_at_the_cut_and_restamps_them() -> None:
    # bars opening 11:50 and 11:55 are known at 11:55 and 12:00 (kept at a noon cut), the one opening 12:00 at 12:05
    opened = [NOON - 2 * BAR, NOON - BAR, NOON]
    early = bars(*[(A, t) for t in opened], stamps=opened)  # the lake's stamps: at the open, too early
    got = as_known_at(lake(bars=early), NOON)  # restamped: ``if len(f) or True`` (empty frames too) is equivalent
    assert got.bars["ts_event"].to_list() == opened[:2]
    assert got.bars["ts_available"].to_list() == [NOON - BAR, NOON]
    # restamp=False: the stamps are taken as they are (the caller restamped already), so 12:00 is kept
    assert as_known_at(lake(bars=early), NOON, restamp=False).bars["ts_event"].to_list() == opened


def test_as_known_at_drops_rows_before_since_one_instant_or_one_per_raw_asset() -> None:
    # bars opening 11:00, 11:05, 11:10; VIX of Fri 03-07 and Mon 03-10 (known Mon 03-10 14:00 and Tue 03-11 14:00)
    opened = [NOON - timedelta(hours=1) + k * BAR for k in range(3)]
    observed = [datetime(2025, 3, 7, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC)]
    raw = lake(bars=bars(*[(A, t) for t in opened]), macro=vix(observed, observed))
    at = NOON + 3 * timedelta(hours=1)  # 15:00: everything is known
    assert as_known_at(raw, at).bars["ts_event"].to_list() == opened
    since = opened[1]  # one instant for every asset: rows from 11:05 on, 11:05 itself kept; no VIX is that recent
    cut = as_known_at(raw, at, since=since)
    assert cut.bars["ts_event"].to_list() == opened[1:] and cut.macro.is_empty()
    per_asset = as_known_at(raw, at, since={"macro_series": observed[1]})  # keyed by raw asset name
    assert per_asset.bars["ts_event"].to_list() == opened and per_asset.macro["ts_event"].to_list() == observed[1:]
    # a key that is not a raw asset name (the field "macro") bounds nothing
    assert as_known_at(raw, at, since={"macro": observed[1]}).macro["ts_event"].to_list() == observed


def test_as_known_at_blanks_the_engagement_of_comments_observed_after_the_cut() -> None:
    # comments published 11:00 (known 11:10), scores observed 11:59, 12:00, 12:01 and never: known at noon: 2
    observed = [NOON - timedelta(minutes=1), NOON, NOON + timedelta(minutes=1), None]
    comments = rows(
        "social_comments_raw",
        id=["c0", "c1", "c2", "c3"],
        ts_event=[NOON - timedelta(hours=1)] * 4,
        engagement_score=[1, 2, 3, 4],
        engagement_observed_at=observed,
    )
    got = as_known_at(lake(comments=comments), NOON).comments
    assert got["engagement_score"].to_list() == [1, 2, None, None]
    assert got["engagement_observed_at"].to_list() == [*observed[:2], None, None]


# --- narrowing to one symbol, and the rows known at t ---------------------------------------------------------------


def test_only_symbol_keeps_that_symbol_and_leaves_frames_without_symbols_as_they_are() -> None:
    two = bars((A, NOON), (B, NOON), (A, NOON + BAR))
    assert only_symbol(two, A)["ts_event"].to_list() == [NOON, NOON + BAR]
    macro = vix([NOON], [NOON])
    assert only_symbol(macro, A).equals(macro)


def test_raw_known_at_is_the_symbols_rows_known_at_t_restamped_unless_told_not_to() -> None:
    # A's bars opening 11:55 (known 12:00) and 12:00 (known 12:05), stamped at their open; one B bar
    raw = lake(bars=bars((A, NOON - BAR), (A, NOON), (B, NOON - BAR), stamps=[NOON - BAR, NOON, NOON - BAR]))
    assert raw_known_at(raw, A, NOON).bars["ts_event"].to_list() == [NOON - BAR]
    assert raw_known_at(raw, A, NOON, restamp=False).bars["ts_event"].to_list() == [NOON - BAR, NOON]


def test_items_known_at_keeps_only_the_symbols_items_known_by_t() -> None:
    # published 11:00 and 11:50 (known 11:10 and exactly 12:00: both kept at noon), B's item, one known 12:01
    published = [
        NOON - timedelta(hours=1),
        NOON - timedelta(minutes=10),
        NOON - timedelta(hours=1),
        NOON - timedelta(minutes=9),
    ]
    items = pl.DataFrame(
        {"symbol": [A, A, B, A], "ts_event": published, "engagement": [1, 2, 3, 4]},
        schema_overrides={"ts_event": UTC_TS},
    ).with_columns(pl.col("ts_event").alias("ts_available"), pl.col("ts_event").alias("engagement_observed_at"))
    sym, got = items_known_at(items, A, NOON)
    assert sym == A and got["engagement"].to_list() == [1, 2]
    assert items_known_at(items, B, NOON)[1]["engagement"].to_list() == [3]


# --- sampling -------------------------------------------------------------------------------------------------------


def test_sample_rows_always_holds_each_symbols_newest_row_and_is_seeded() -> None:
    times = [NOON + k * BAR for k in range(6)]
    frame = stored(*[(A, t, 0) for t in times[:4]], *[(B, t, 0) for t in times[:2]])  # A newest 12:15, B 12:05
    assert sample_rows(frame.clear(), 3) == []
    assert sample_rows(frame, 0) == [(A, times[3]), (B, times[1])]
    every = [(A, t) for t in times[:4]] + [(B, t) for t in times[:2]]
    # ``replace=None`` is an equivalent mutant (numpy reads it as False)
    assert sample_rows(frame, 6) == every and sample_rows(frame, 50) == every  # n past the rows: every row
    two = sample_rows(frame, 2, seed=7)
    assert {(A, times[3]), (B, times[1])} <= set(two) and 2 <= len(two) <= 4 and two == sorted(two, key=every.index)
    assert sample_rows(frame, 2) == sample_rows(frame, 2, seed=0)  # seed 0 by default
    assert [sample_rows(frame, 2, seed=s) for s in range(5)] == [sample_rows(frame, 2, seed=s) for s in range(5)]
    draws = {tuple(sample_rows(frame, 1, seed=s)) for s in range(20)}
    assert len(draws) > 1  # the seed changes which rows are drawn


# --- asof_alignment -------------------------------------------------------------------------------------------------


def test_asof_alignment_rebuilds_each_sampled_row_from_the_inputs_known_at_its_t() -> None:
    raw = lake(bars=bars((A, NOON - BAR), (A, NOON), (B, NOON - 2 * BAR), (B, NOON - BAR)))
    # at noon A has one bar known (11:55), B two (11:50, 11:55); at 12:05 A has two
    honest = stored((A, NOON, 1), (A, NOON + BAR, 2), (B, NOON, 2))
    samples = [(A, NOON), (B, NOON), (A, NOON + BAR)]
    out = asof_alignment(honest, raw, count_bars, samples, "m")
    assert out.passed and out.checked == 3 and out.failures == []
    assert out.description == "3 sampled rows rebuilt from raw rows available at their t: all equal"
    leaky = stored((A, NOON, 2), (A, NOON + BAR, 2), (B, NOON, 2))  # A's noon row counted the bar known at 12:05
    out = asof_alignment(leaky, raw, count_bars, samples, "m")
    assert not out.passed and out.checked == 3
    assert out.failures == [f"m row at 2025-03-11 12:00: {A} {NOON} bars_seen: stored 2 vs recomputed 1"]
    assert out.description == (
        "3 sampled rows rebuilt from raw rows available at their t: 1+ values differ: they used inputs published "
        "later, or were built from stale or missing upstream partitions"
    )


def test_asof_alignment_narrows_raw_inputs_to_each_sampled_symbol_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counted(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
        calls.append(symbol)
        return only_symbol(frame, symbol)

    monkeypatch.setattr(asof, "only_symbol", counted)
    raw = lake(bars=bars((A, NOON - BAR), (A, NOON), (B, NOON - BAR)))
    # handed on as they are (no cut): the builder sees A's two bars and B's one, never the three together
    honest = stored((A, NOON, 2), (A, NOON + BAR, 2), (B, NOON, 1))
    out = asof_alignment(honest, raw, count_bars, [(A, NOON), (A, NOON + BAR), (B, NOON)], "m", as_given)
    assert out.passed and out.checked == 3, out.failures
    assert calls == [A] * len(RAW_ASSET_OF) + [B] * len(RAW_ASSET_OF)  # A narrowed once for its two rows


def test_asof_alignment_hands_other_inputs_on_and_asks_the_builder_for_the_row_at_t_only() -> None:
    items = pl.DataFrame({"symbol": [A]})
    seen: list[tuple[object, datetime, datetime]] = []

    def build(inputs: object, start: datetime, end: datetime) -> pl.DataFrame:
        seen.append((inputs, start, end))
        return stored((A, start, 0))

    out = asof_alignment(stored((A, NOON, 0)), items, build, [(A, NOON)], "text", as_given)
    assert out.passed and len(seen) == 1
    assert seen[0][0] is items and seen[0][1:] == (NOON, NOON + US)


def test_asof_alignment_compares_only_the_sampled_symbols_row_at_t() -> None:
    # the builder returns a row for every symbol at t; only A's is compared; B's stored row at t is not A's
    def both(_raw: object, start: datetime, _end: datetime) -> pl.DataFrame:
        return stored((A, start, 1), (B, start, 5))

    frame = stored((A, NOON, 1), (B, NOON, 9), (A, NOON + BAR, 7))
    out = asof_alignment(frame, None, both, [(A, NOON)], "m", as_given)
    assert out.passed and out.checked == 1, out.failures


def test_asof_alignment_with_nothing_stored_or_sampled_compares_nothing() -> None:
    def nothing(_raw: object, _start: datetime, _end: datetime) -> pl.DataFrame:
        return stored()

    out = asof_alignment(stored(), None, nothing, [(A, NOON), (B, NOON)], "m", as_given)
    assert out.nothing_compared and out.description == "compared nothing: none of the 2 sampled m rows is stored"
    assert out.skipped == ["none of the 2 sampled m rows is stored"]
    out = asof_alignment(stored(), None, nothing, [], "m", as_given)
    assert out.nothing_compared and out.description == "compared nothing: no m rows to sample"
    # a rebuilt row that is not stored is a difference, not "nothing compared"
    out = asof_alignment(stored(), None, count_bars_of(A), [(A, NOON)], "m", as_given)
    assert out.checked == 0 and not out.nothing_compared and not out.passed
    assert out.failures == [f"m row at 2025-03-11 12:00: {A} {NOON}: row not in stored"]


def count_bars_of(symbol: str):
    def build(_raw: object, start: datetime, _end: datetime) -> pl.DataFrame:
        return stored((symbol, start, 0))

    return build


def test_asof_alignment_stops_after_twenty_failures_and_keeps_twenty() -> None:
    times = [NOON + k * BAR for k in range(25)]
    wrong = stored(*[(A, t, 1) for t in times])  # the builder says 0 everywhere: one failure a row
    out = asof_alignment(wrong, None, count_bars_of(A), [(A, t) for t in times], "m", as_given)
    assert out.checked == 20 and len(out.failures) == 20  # the 20th failing row ends the loop
    assert out.failures[-1] == f"m row at 2025-03-11 13:35: {A} {times[19]} bars_seen: stored 1 vs recomputed 0"

    # a row with 19 failures does not stop it; the next one's 19 make 38, cut to 20
    def nineteen_extra(_raw: object, start: datetime, _end: datetime) -> pl.DataFrame:
        return stored((A, start, 1), *[(A, start + k * US, 1) for k in range(1, 20)])

    out = asof_alignment(wrong, None, nineteen_extra, [(A, times[0]), (A, times[1])], "m", as_given)
    assert out.checked == 2 and len(out.failures) == 20 and "38+ values differ" in out.description
    assert out.failures[-1] == f"m row at 2025-03-11 12:05: {A} {times[1] + US}: row not in stored"
