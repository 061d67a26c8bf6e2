"""Truncation invariance: the builders' code on data cut at >= 50 instants (partition boundaries, funding
settlements, macro releases, random instants) against the stored rows or the same code on the uncut data, rows
``t <= cut`` compared; and the start of the data cut at the declared look-back (partition boundaries and
look-back windows change nothing). Freqtrade's lookahead / recursive analysis, applied to every feature.

Every cut lies on the 5-minute grid of the rows (UTC, counted from the epoch): a cut is an instant at which a
row exists, the data cut there is what was known at that row, and the rows compared are those at or before it.
Events stamped off the grid (a funding settlement at ``00:00:00.001``, as some exchanges' files have it) give
the first grid instant at or after them (the first row that may see the event) and the grid instant before.
A cut with no stored row in its window (before a symbol's first row, in a gap) compares nothing: it is listed
as such and not counted; each symbol is cut inside the span of its own rows, at its own events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.features.matrix import RawInputs, raw_window
from quantmm_assets.core.leakage.asof import (
    Builder,
    LeakageOutcome,
    as_known_at,
    compared_nothing,
    differences,
    only_symbol,
    recomputed_availability,
)

GRID = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def on_grid(t: datetime) -> datetime:
    """``t`` floored to the 5m grid: the last row instant at or before ``t``."""
    return (t - (t - EPOCH) % GRID).astimezone(UTC)


def grid_ceil(t: datetime) -> datetime:
    """The first 5m grid instant at or after ``t``."""
    floor = on_grid(t)
    return floor if floor == t else floor + GRID


def event_instants(raw: RawInputs) -> list[datetime]:
    """When the events of ``raw`` became known: funding settlements and macro releases (recomputed)."""
    events = raw.funding["ts_event"].to_list() if len(raw.funding) else []
    if len(raw.macro):
        events += raw.macro.select(recomputed_availability("macro_series", raw.macro).alias("_a"))["_a"].to_list()
    return events


def cut_instants(start: datetime, end: datetime, raw: RawInputs, n: int = 60, seed: int = 0) -> list[datetime]:
    """Up to ``n`` grid instants in (start, end]: partition boundaries (00:00, up to a third of the cuts), the
    first grid instant at or after each funding settlement and macro release *and the one before it* (a build
    that uses an event one bar early is only seen with the cut just before its first row), then seeded random
    grid instants; fewer only when the span has fewer."""
    rng = np.random.default_rng(seed)
    start, end = on_grid(start), on_grid(end)
    first_midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
    days = [first_midnight + timedelta(days=i) for i in range(max(0, (end - first_midnight).days + 1))]
    picks: set[datetime] = set(_spread([d for d in days if start < d <= end], n // 3, rng))
    events = [grid_ceil(t) for t in event_instants(raw) if start < t <= end]
    for t in _spread(events, n // 6, rng):
        picks |= {t, t - GRID} if t - GRID > start else {t}
    steps = int((end - start) / GRID)
    for k in rng.permutation(steps) + 1 if steps > 0 else []:
        if len(picks) >= n:
            break
        picks.add(start + GRID * int(k))
    return sorted(picks)


def _spread(items: list[datetime], k: int, rng: np.random.Generator) -> list[datetime]:
    items = sorted(set(items))
    if len(items) <= k:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]


def symbol_cuts(stored: pl.DataFrame, timing: RawInputs, n: int, seed: int = 0) -> list[tuple[str, datetime]]:
    """``(symbol, cut)`` pairs, about ``n`` in all over the symbols of ``stored``: each symbol is cut inside the
    span of its own stored rows, at its own events (its funding settlements, and the macro releases everyone
    shares), so a symbol listed late is cut where it has rows."""
    if not len(stored):
        return []
    spans = stored.group_by("symbol", maintain_order=True).agg(
        pl.col("ts_event").min().alias("first"), pl.col("ts_event").max().alias("last")
    )
    per = -(-n // len(spans))
    out: list[tuple[str, datetime]] = []
    for sym, first, last in spans.iter_rows():
        mine = timing.map(lambda _a, f, s=sym: only_symbol(f, s))
        out += [(sym, c) for c in cut_instants(first - GRID, last, mine, per, seed)]
    return out


def truncation_invariance(
    raw: RawInputs,
    build: Builder,
    cuts: list[datetime],
    lookback: timedelta | dict[str, timedelta],
    label: str,
    compare: timedelta,
    restamp: bool = True,
    full: pl.DataFrame | None = None,
) -> LeakageOutcome:
    """Rows in (cut - compare, cut] built from data cut at ``cut`` and starting ``lookback`` before the compared
    rows' day (one look-back, or one per raw asset name) must equal the full computation: ``full`` (the stored
    rows, computed from all the data) or, without it, the same rows built from all the data given (which should
    reach further back than the look-back for the start cut to test anything). Each cut is floored to the grid
    first; a cut without a row to compare is listed in ``skipped`` and not counted in ``checked``."""
    failures: list[str] = []
    skipped: list[str] = []
    compared = 0
    for cut in (on_grid(c) for c in cuts):
        lo, hi = cut - compare + GRID, cut + GRID  # grid rows t in (cut - compare, cut]
        where = f"{label} data cut at {cut:%Y-%m-%d %H:%M}"
        if full is None:
            whole = build(raw, lo, hi)
        else:  # the stored rows start at the run's first partition: compare from there
            whole = full.filter(pl.col("ts_event").is_between(lo, hi, closed="left"))
        whole = whole.filter(pl.col("ts_event") <= cut)
        if not len(whole):
            skipped.append(f"{where}: no row in ({cut - compare:%Y-%m-%d %H:%M}, {cut:%H:%M}] to compare")
            continue
        day = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
        since = {a: day - lb for a, lb in lookback.items()} if isinstance(lookback, dict) else day - lookback
        # one rebuild on data cut at both ends: a difference is look-ahead (the end) or a look-back longer than
        # declared (the start); the message names the cut
        cut_both = build(as_known_at(raw, cut, since=since, restamp=restamp), lo, hi)
        cut_both = cut_both.filter(pl.col("ts_event") <= cut)
        if full is not None:
            cut_both = cut_both.filter(pl.col("ts_event") >= full["ts_event"].min())
        compared += 1
        failures += differences(whole, cut_both, f"{where} and at the look-back")
        if len(failures) >= 20:
            break
    if not compared and not failures:
        return compared_nothing(f"none of the {len(cuts)} {label} cut instants has a row to compare", skipped)
    return LeakageOutcome(
        f"{compared} of {len(cuts)} cut instants compared"
        + (f" ({len(skipped)} without a row to compare)" if skipped else "")
        + ": "
        + (
            "rows before each cut unchanged by cutting the data there or at the look-back"
            if not failures
            else f"{len(failures)}+ values change when later data is removed (look-ahead) or earlier data is removed"
        ),
        compared,
        failures[:20],
        skipped,
    )


def truncation_by_symbol(
    raw: RawInputs,
    stored: pl.DataFrame,
    cut_at: list[tuple[str, datetime]],
    build: Builder,
    lookback: dict[str, timedelta],
    compare: timedelta,
    restamp: bool = True,
) -> LeakageOutcome:
    """``truncation_invariance`` of each ``(symbol, cut)`` against that symbol's stored rows, from its own raw rows
    (narrowed once per symbol, windowed around each cut)."""
    if not cut_at:
        return compared_nothing("no cut instants (no stored rows)")
    by_symbol = {  # each symbol's raw rows and stored rows, narrowed once rather than per cut
        sym: (raw.map(lambda _a, f, s=sym: only_symbol(f, s)), stored.filter(pl.col("symbol") == sym))
        for sym in {s for s, _ in cut_at}
    }
    outcomes = []
    for sym, cut in cut_at:
        mine, full = by_symbol[sym]
        mine = raw_window(mine, cut - compare, cut, extra_back=timedelta(days=2))
        outcomes.append(truncation_invariance(mine, build, [cut], lookback, sym, compare, restamp=restamp, full=full))
    failures = [f for o in outcomes for f in o.failures][:20]
    skipped = [s for o in outcomes for s in o.skipped]
    compared = sum(o.checked for o in outcomes)
    if not compared and not failures:
        return compared_nothing(f"none of the {len(cut_at)} (symbol, cut) pairs has a stored row to compare", skipped)
    days = len({on_grid(c).date() for _, c in cut_at})
    return LeakageOutcome(
        f"{compared} of {len(cut_at)} (symbol, cut) pairs compared ({days} days; partition boundaries, funding "
        "settlements and macro releases among the cuts)"
        + (f", {len(skipped)} without a stored row to compare" if skipped else "")
        + ": "
        + ("rows up to each cut unchanged" if not failures else f"{len(failures)}+ values changed"),
        compared,
        failures,
        skipped,
    )
