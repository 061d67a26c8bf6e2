"""Leakage checks of the derived assets that are not feature rows: label alignment, text item availability and
fold hygiene. Each returns a ``LeakageOutcome`` that counts what it compared (nothing compared is no pass)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from quantmm_assets.core import labels as lab
from quantmm_assets.core.availability import DEFAULT_SOCIAL_INGEST_DELAY, social_available
from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.folds import fold_violations
from quantmm_assets.core.leakage.asof import LeakageOutcome, compared_nothing, differences, recomputed_availability

LABEL_SAMPLES = 30


def label_alignment(
    labels: pl.DataFrame,
    bars: pl.DataFrame,
    spread: pl.DataFrame,
    cost: CostConfig,
    funding: pl.DataFrame | None = None,
) -> LeakageOutcome:
    """Every label stamped ``t + h``; sampled complete labels recomputed from bars and funding cut by availability
    at t + h (equal, the funding included) and at t + h - 5m (incomplete). ``checked`` counts the labels whose stamp
    was compared."""
    if not len(labels):
        return compared_nothing("no labels in this run")
    want_avail = pl.col("ts_event") + pl.col("horizon").replace_strict(
        {h: timedelta(minutes=5 * k) for h, k in lab.HORIZONS.items()}, return_dtype=pl.Duration("us")
    )
    bad_stamp = labels.filter(pl.col("ts_available") != want_avail)
    failures = [
        f"{r['symbol']} {r['ts_event']} {r['horizon']}: known at {r['ts_available']}"
        for r in bad_stamp.head(10).iter_rows(named=True)
    ]
    done = labels.filter(pl.col("complete"))
    sample = done.sample(min(LABEL_SAMPLES, len(done)), seed=0) if len(done) else done
    known = bars.with_columns(recomputed_availability("market_bars_5m", bars).alias("ts_available"))
    settled = None
    if funding is not None:
        settled = funding.with_columns(recomputed_availability("funding_rates", funding).alias("ts_available"))
    for row in sample.iter_rows(named=True):
        t, h = row["ts_event"], row["horizon"]
        one = {h: lab.HORIZONS[h]}
        for cut, expect_complete in ((row["ts_available"], True), (row["ts_available"] - timedelta(minutes=5), False)):
            got = lab.labels_multi_horizon(
                known.filter((pl.col("symbol") == row["symbol"]) & (pl.col("ts_available") <= cut)),
                spread,
                t,
                t + timedelta(microseconds=1),
                cost,
                one,
                funding=None if settled is None else settled.filter(pl.col("ts_available") <= cut),
            )
            if expect_complete:
                failures += differences(
                    sample.filter(
                        (pl.col("symbol") == row["symbol"]) & (pl.col("ts_event") == t) & (pl.col("horizon") == h)
                    ).drop("horizon"),
                    got.drop("horizon"),
                    f"label {h}",
                )
            elif len(got) and bool(got["complete"][0]):
                failures.append(f"{row['symbol']} {t} {h}: buildable from bars available before t + h")
    skipped = [] if len(sample) else ["no complete label to rebuild (their forward windows are not in the lake yet)"]
    return LeakageOutcome(
        f"{len(labels)} labels stamped t + h ({len(bad_stamp)} not); {len(sample)} sampled labels rebuilt from the "
        "bars (and funding) available at t + h and not before",
        len(labels),
        failures[:20],
        skipped,
    )


def item_availability(items: pl.DataFrame) -> LeakageOutcome:
    """Stamped availability against the rule recomputed from ts_event; engagement without observation time."""
    if not len(items):
        return compared_nothing("no text items in this run")
    expected = social_available(pl.col("ts_event"), DEFAULT_SOCIAL_INGEST_DELAY)
    early = items.filter(pl.col("ts_available") != expected)
    unobserved = items.filter(pl.col("engagement").is_not_null() & pl.col("engagement_observed_at").is_null())
    failures = [
        f"{r['kind']} {r['id']}: stamped {r['ts_available']} for ts_event {r['ts_event']}"
        for r in early.head(10).iter_rows(named=True)
    ]
    failures += [
        f"{r['kind']} {r['id']}: engagement without observation time" for r in unobserved.head(10).iter_rows(named=True)
    ]
    return LeakageOutcome(
        f"{len(items)} items: {len(early)} with an availability other than publication + "
        f"{DEFAULT_SOCIAL_INGEST_DELAY}, {len(unobserved)} with engagement of unknown observation time",
        len(items),
        failures,
    )


def fold_hygiene(
    folds: pl.DataFrame, purge: timedelta, embargo: timedelta, horizons: list[str] | None
) -> LeakageOutcome:
    """``fold_violations`` with the purge verified against the longest label horizon in the lake (``horizons``;
    an unknown one counts as the longest known), not only the spec's own purge: a purge set too short fails."""
    if not len(folds):
        return compared_nothing("no fold intervals")
    longest = max(lab.HORIZONS.get(h, max(lab.HORIZONS.values())) for h in horizons or lab.HORIZONS)
    violations = fold_violations(folds, max(purge, longest * timedelta(minutes=5)), embargo)
    return LeakageOutcome(
        f"{len(folds)} intervals: " + ("purge and embargo hold" if not violations else f"{len(violations)} violations"),
        len(folds),
        violations[:20],
    )
