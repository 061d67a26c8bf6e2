"""Leakage checks of ``feature_matrix_main`` (blocking: they guard training), recomputed from the raw lake.

The matrix's inputs are feature assets whose stamps a bug could have written; these checks go back to the
raw partitions, re-derive availability from ``ts_event`` and rebuild rows with ``build_feature_rows``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.feature_matrix import (
    RAW_ASSET_OF,
    RAW_LOOKBACK_DAYS,
    Embed,
    RawInputs,
    build_feature_rows,
    raw_inputs,
    raw_window,
)
from quantmm_assets.core.leakage import (
    LeakageOutcome,
    asof_alignment,
    cut_instants,
    raw_known_at,
    restamped,
    sample_rows,
    truncation_invariance,
)
from quantmm_assets.defs.derived_runner import leakage_result
from quantmm_resources.lake import LakeResource

ASOF_SAMPLES = 40
TRUNCATION_CUTS = 50
COMPARE = timedelta(hours=1)  # rows before each cut compared
MATRIX_CHECKS = {
    "asof_alignment": "Blocking: sampled rows rebuilt from the raw lake rows available at their t (availability "
    "recomputed from ts_event) equal the stored rows",
    "truncation_invariance": f"Blocking: at >= {TRUNCATION_CUTS} instants (partition boundaries, funding "
    "settlements, macro releases) the rows up to the cut are unchanged when the raw data is cut there, or when it "
    "starts at the declared look-back",
}


def matrix_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset="feature_matrix_main", blocking=True, description=desc)
        for name, desc in MATRIX_CHECKS.items()
    ]


def _keys_around(instants: list[tuple[str, datetime]], field: str) -> list[str]:
    """Partition keys of one raw input that rows at these instants need (look-back, and a day after)."""
    keys = set()
    for sym, t in instants:
        for back in range(-1, RAW_LOOKBACK_DAYS[field] + 3):  # 2 days more than the look-back
            day = (t - timedelta(days=back)).date()
            keys.add(f"{day}|{sym}" if RAW_ASSET_OF[field] not in DATE_ONLY else str(day))
    return sorted(keys)


DATE_ONLY = {"macro_series", "social_posts_raw", "social_comments_raw"}
LOOKBACKS = {RAW_ASSET_OF[f]: timedelta(days=d) for f, d in RAW_LOOKBACK_DAYS.items()}


def load_raw(lake: LakeResource, instants: list[tuple[str, datetime]]) -> RawInputs:
    """Raw rows around ``instants`` (each input's look-back before, one day after), read once."""
    frames = {
        field: lake.read_partitions(asset, _keys_around(instants, field)) for field, asset in RAW_ASSET_OF.items()
    }
    return RawInputs(**frames)


def matrix_leakage_results(
    stored: pl.DataFrame, lake: LakeResource, embed: Embed, latent_dim: int, universe: list[str], seed: int = 0
) -> Iterator[dg.AssetCheckResult]:
    """Both checks over the run's stored rows."""
    t0 = time.perf_counter()
    samples = sample_rows(stored, ASOF_SAMPLES, seed)
    if not len(stored):
        yield from _empty(t0)
        return
    start, end = stored["ts_event"].min(), stored["ts_event"].max() + timedelta(minutes=5)
    symbols = stored["symbol"].unique(maintain_order=True).to_list()
    days = [str((start + timedelta(days=i)).date()) for i in range((end - start).days + 1)]
    timing = raw_inputs(
        funding=lake.read_partitions("funding_rates", [f"{d}|{symbols[0]}" for d in days]),
        macro=lake.read_partitions("macro_series", days),
    )
    cuts = cut_instants(start - timedelta(minutes=5), end - timedelta(minutes=5), timing, TRUNCATION_CUTS, seed)
    cut_at = [(symbols[i % len(symbols)], c) for i, c in enumerate(cuts)]
    raw = restamped(load_raw(lake, samples + cut_at))  # availability re-derived once, from ts_event

    def build(r: RawInputs, s: datetime, e: datetime) -> pl.DataFrame:
        syms = r.bars["symbol"].unique().to_list() if len(r.bars) else symbols[:1]
        return build_feature_rows(r, syms, s, e, embed, latent_dim, universe)

    asof = asof_alignment(
        stored, raw, build, samples, "matrix", known_at=lambda r, s, t: raw_known_at(r, s, t, restamp=False)
    )
    yield leakage_result("feature_matrix_main", "asof_alignment", asof, time.perf_counter() - t0)
    t1 = time.perf_counter()
    outcomes = []
    by_symbol = {  # each symbol's raw rows and stored rows, narrowed once rather than per cut
        sym: (
            raw.map(lambda _a, f, s=sym: f.filter(pl.col("symbol") == s) if _has_symbol(f) else f),
            stored.filter(pl.col("symbol") == sym),
        )
        for sym in {s for s, _ in cut_at}
    }
    for sym, cut in cut_at:
        mine, full = by_symbol[sym]
        mine = raw_window(mine, cut - COMPARE, cut, extra_back=timedelta(days=2))
        outcomes.append(truncation_invariance(mine, build, [cut], LOOKBACKS, sym, COMPARE, restamp=False, full=full))
    failures = [f for o in outcomes for f in o.failures][:20]
    trunc = LeakageOutcome(
        not failures,
        f"{len(cut_at)} cut instants ({len({c.date() for _, c in cut_at})} days, partition boundaries, funding "
        "settlements and macro releases among them): "
        + ("rows up to each cut unchanged" if not failures else f"{len(failures)}+ values changed"),
        len(cut_at),
        failures,
    )
    yield leakage_result("feature_matrix_main", "truncation_invariance", trunc, time.perf_counter() - t1)


def _has_symbol(frame: pl.DataFrame) -> bool:
    return "symbol" in frame.columns and frame.schema["symbol"] == pl.Utf8


def _empty(t0: float) -> Iterator[dg.AssetCheckResult]:
    for name in MATRIX_CHECKS:
        yield leakage_result("feature_matrix_main", name, LeakageOutcome(True, "no rows in this run", 0), 0.0)
