"""Text assets: scored items per symbol, bucket features, pooled sentence-encoder latents.

``text_items`` (date x symbol) is the bridge from the date-partitioned social assets to the symbol grid: the
posts and comments of a day that name the symbol or no symbol at all, scored once (lexicon sentiment, event
words, content hash). The bucket features and latents read it over a look-back through
TimeWindowPartitionMapping (Dagster has no date -> date x symbol mapping with a look-back).
"""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import polars as pl

from quantmm_assets.core.features.matrix import latents_of, with_item_counts, with_schema
from quantmm_assets.core.leakage.asof import asof_alignment, items_known_at, sample_rows
from quantmm_assets.core.leakage.derived import item_availability
from quantmm_assets.core.text import features as tf
from quantmm_assets.core.text.features import TEXT_LOOKBACK_DAYS
from quantmm_assets.core.text.scoring import TEXT_ITEMS_SCHEMA
from quantmm_assets.core.text.scoring import text_items as score_items
from quantmm_assets.defs.checks.leakage_results import ASOF, ASOF_SAMPLES, asof_spec, run_check
from quantmm_assets.defs.derived_window import (
    COMMON,
    RunWindow,
    derived_output,
    owned_rows,
    run_window,
    timed,
    window_in,
)
from quantmm_assets.defs.partitions import SAME_DAY, date_x_symbol
from quantmm_resources.io_manager import PARTIAL_OK
from quantmm_resources.lake import LakeResource
from quantmm_resources.text_encoder import TextEncoder

SAME_DAY_SOCIAL = dg.AssetIn(partition_mapping=SAME_DAY, metadata={PARTIAL_OK: True})


def items_frame(frame: pl.DataFrame) -> pl.DataFrame:
    return frame if frame.width else pl.DataFrame(schema=TEXT_ITEMS_SCHEMA)


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="text",
    ins={"social_posts_raw": SAME_DAY_SOCIAL, "social_comments_raw": SAME_DAY_SOCIAL},
    check_specs=[
        dg.AssetCheckSpec(
            ASOF,
            asset="text_items",
            blocking=True,
            description="Blocking: every item's ts_available equals publication + ingest delay recomputed from "
            "ts_event; engagement only where its observation time is known",
        )
    ],
    description="Posts and comments of the day naming the symbol (linked) or no symbol (market-wide), scored once: "
    "lexicon sentiment with negation, event words, tokens, content hash (the embedding-cache key).",
    **COMMON,
)
def text_items(context: dg.AssetExecutionContext, social_posts_raw: pl.DataFrame, social_comments_raw: pl.DataFrame):
    win = run_window(context)
    posts = with_schema(social_posts_raw, "social_posts_raw")
    comments = with_schema(social_comments_raw, "social_comments_raw")
    out, secs = timed(lambda: pl.concat([score_items(posts, comments, s) for s in win.symbols], how="vertical_relaxed"))
    yield derived_output(context, out, win, secs, {"posts_read": len(posts), "comments_read": len(comments)})
    yield from run_check("text_items", ASOF, lambda: item_availability(out))


def per_symbol(build, items: pl.DataFrame, win: RunWindow) -> pl.DataFrame:
    """``build((symbol, its items), start, end)`` for each symbol of the run; the run's own rows kept."""
    frames = [build((sym, items.filter(pl.col("symbol") == sym)), win.start, win.end) for sym in win.symbols]
    return owned_rows(pl.concat(frames, how="vertical_relaxed"), win)


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="text",
    ins={"text_items": window_in(TEXT_LOOKBACK_DAYS)},
    check_specs=asof_spec("text_bucket_features"),
    description="Per 5m bucket and symbol: heat (post/comment counts), engagement-weighted sentiment, diffusion "
    "(unique authors, comment/post ratio, engagement growth), event-word density, burst z-scores, and the items "
    "of the last day (0 = no text coverage).",
    **COMMON,
)
def text_bucket_features(context: dg.AssetExecutionContext, text_items: pl.DataFrame):
    win = run_window(context)
    items = items_frame(text_items)

    def build(symbol_items: tuple[str, pl.DataFrame], s: datetime, e: datetime) -> pl.DataFrame:
        sym, mine = symbol_items
        return with_item_counts(tf.text_bucket_features(mine, sym, s, e), mine)

    out, secs = timed(lambda: per_symbol(build, items, win))
    out = out.filter(pl.col("ts_event") <= datetime.now(UTC))  # today's partition: nothing about the future
    yield derived_output(context, out, win, secs, {"items_read": len(items)})
    samples = sample_rows(out, ASOF_SAMPLES)
    yield from run_check(
        "text_bucket_features",
        ASOF,
        lambda: asof_alignment(out, items, build, samples, "text", known_at=items_known_at),
    )


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="text",
    ins={"text_items": window_in(TEXT_LOOKBACK_DAYS)},
    check_specs=asof_spec("text_latents"),
    description="Post and comment towers: each text embedded once with the sentence encoder (MiniLM; hashing "
    "fallback reported in the metadata), cached by content hash, pooled over the trailing hour per 5m bucket and "
    "symbol at full width (engagement-weighted where engagement was observed). Nothing here is fitted. One encoder "
    "per lake: the first run pins it (text_latents/encoder.json) and a run embedding with another fails.",
    **COMMON,
)
def text_latents(
    context: dg.AssetExecutionContext, text_items: pl.DataFrame, text_encoder: TextEncoder, lake: LakeResource
):
    win = run_window(context)
    items = items_frame(text_items)
    stats = []

    def embed(texts: list[str], hashes: list[str]) -> np.ndarray:
        vectors, st = text_encoder.embed(texts, hashes)
        stats.append(st)
        if st.fallback:
            context.log.warning(f"text encoder fell back to {st.encoder_id}: {st.fallback_reason}")
        return vectors

    def build(symbol_items: tuple[str, pl.DataFrame], s: datetime, e: datetime) -> pl.DataFrame:
        sym, mine = symbol_items
        return latents_of(mine, sym, s, e, embed, text_encoder.dim)

    out, secs = timed(lambda: per_symbol(build, items, win))
    enc = next((st for st in stats if st.fallback), stats[0] if stats else None)  # any fallback is reported
    if stats:  # one encoder per lake: refuses (before anything is written) latents of another encoder
        lake.pin_text_encoder({st.encoder_id for st in stats}, enc.fallback_reason if enc else None)
    yield derived_output(
        context,
        out,
        win,
        secs,
        {
            "encoder": ", ".join(sorted({st.encoder_id for st in stats})) or "none (no text in range)",
            "encoder_fallback": bool(enc and enc.fallback),
            "fallback_reason": (enc.fallback_reason or "") if enc else "",
            "texts_embedded": sum(s.computed for s in stats),
            "texts_from_cache": sum(s.cached for s in stats),
            "embed_seconds": round(sum(s.seconds for s in stats), 3),
            "latent_dim": text_encoder.dim,
        },
    )
    samples = sample_rows(out, ASOF_SAMPLES // 2)
    yield from run_check(
        "text_latents", ASOF, lambda: asof_alignment(out, items, build, samples, "latents", known_at=items_known_at)
    )


TEXT_ASSETS = [text_items, text_bucket_features, text_latents]
