"""Leakage checks of ``feature_matrix_main`` (blocking: they guard training), recomputed from the raw lake.

The matrix's inputs are feature assets whose stamps a bug could have written; these checks go back to the
raw partitions, re-derive availability from ``ts_event`` and rebuild rows with ``build_feature_rows``. Each
symbol is cut on the 5m grid, inside the span of its own rows, at its own funding settlements (and the macro
releases); a run with no rows compares nothing and says so (``leakage_result``: not a pass, WARN).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.features.matrix import (
    RAW_ASSET_OF,
    RAW_LOOKBACK_DAYS,
    Embed,
    RawInputs,
    build_feature_rows,
    raw_inputs,
)
from quantmm_assets.core.leakage.asof import asof_alignment, compared_nothing, raw_known_at, restamped, sample_rows
from quantmm_assets.core.leakage.truncation import symbol_cuts, truncation_by_symbol
from quantmm_assets.defs.checks.leakage_results import leakage_result
from quantmm_resources.lake import LakeResource

ASOF_SAMPLES = 40
TRUNCATION_CUTS = 50
COMPARE = timedelta(hours=1)  # rows before each cut compared
MATRIX_CHECKS = {
    "asof_alignment": "Blocking: sampled rows rebuilt from the raw lake rows available at their t (availability "
    "recomputed from ts_event) equal the stored rows",
    "truncation_invariance": f"Blocking: at >= {TRUNCATION_CUTS} (symbol, cut) pairs on the 5m grid (partition "
    "boundaries, each symbol's funding settlements, macro releases) the rows up to the cut are unchanged when the "
    "raw data is cut there, or when it starts at the declared look-back",
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
    """Both checks over the run's stored rows (a run without rows: both say they compared nothing)."""
    if not len(stored):
        for name in MATRIX_CHECKS:
            outcome = compared_nothing("no rows in this run (no data in its partitions)")
            yield leakage_result("feature_matrix_main", name, outcome, 0.0)
        return
    t0 = time.perf_counter()
    samples = sample_rows(stored, ASOF_SAMPLES, seed)
    start, end = stored["ts_event"].min(), stored["ts_event"].max() + timedelta(minutes=5)
    symbols = stored["symbol"].unique(maintain_order=True).to_list()
    days = [str((start + timedelta(days=i)).date()) for i in range((end - start).days + 1)]
    timing = raw_inputs(  # every symbol's own funding settlements, and the macro releases
        funding=lake.read_partitions("funding_rates", [f"{d}|{s}" for s in symbols for d in days]),
        macro=lake.read_partitions("macro_series", days),
    )
    cut_at = symbol_cuts(stored, timing, TRUNCATION_CUTS, seed)
    raw = restamped(load_raw(lake, samples + cut_at))  # availability re-derived once, from ts_event

    def build(r: RawInputs, s: datetime, e: datetime) -> pl.DataFrame:
        syms = r.bars["symbol"].unique().to_list() if len(r.bars) else symbols[:1]
        return build_feature_rows(r, syms, s, e, embed, latent_dim, universe)

    asof = asof_alignment(
        stored, raw, build, samples, "matrix", known_at=lambda r, s, t: raw_known_at(r, s, t, restamp=False)
    )
    yield leakage_result("feature_matrix_main", "asof_alignment", asof, time.perf_counter() - t0)
    t1 = time.perf_counter()
    trunc = truncation_by_symbol(raw, stored, cut_at, build, LOOKBACKS, COMPARE, restamp=False)
    yield leakage_result("feature_matrix_main", "truncation_invariance", trunc, time.perf_counter() - t1)
