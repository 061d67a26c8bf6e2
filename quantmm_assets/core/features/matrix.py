"""The feature matrix: every feature family built from raw rows, joined on the perpetual's 5m grid, and the
feature contract (ordered names, dtypes, version hash) that serving uses to build the very same row.

``build_feature_rows`` is the one composite: the Dagster assets call the family builders one by one (each an
asset), the leakage checks and serving call this function on raw rows and get the same columns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.features.derivatives import DERIVATIVES_FEATURES, derivatives_features
from quantmm_assets.core.features.macro import MACRO_FEATURES, MACRO_LOOKBACK_DAYS, macro_asof, macro_features
from quantmm_assets.core.features.market import MARKET_FEATURES, market_features
from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_assets.core.text.features import TEXT_BUCKET_FEATURES, text_bucket_features
from quantmm_assets.core.text.pooling import latent_schema, pool_latents
from quantmm_assets.core.text.scoring import text_items

# Bump when a formula changes without a change of names or dtypes: the contract version changes with it.
FEATURE_CODE_VERSION = "3.0"
KEY_COLUMNS = ("symbol", "ts_event", "ts_available")
LATENT_COLUMNS = ("post_latent", "comment_latent")
TEXT_COVERAGE_COLUMNS = ("text_items_1d", "text_missing")
Embed = Callable[[list[str], list[str]], np.ndarray]
LATENT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class RawInputs:
    """Raw rows (lake schemas) a feature computation reads; any of them may be empty."""

    bars: pl.DataFrame
    funding: pl.DataFrame
    open_interest: pl.DataFrame
    metrics: pl.DataFrame
    macro: pl.DataFrame
    posts: pl.DataFrame
    comments: pl.DataFrame

    def map(self, fn: Callable[[str, pl.DataFrame], pl.DataFrame]) -> RawInputs:
        """Apply ``fn(raw asset name, frame)`` to every frame."""
        return replace(self, **{f.name: fn(RAW_ASSET_OF[f.name], getattr(self, f.name)) for f in fields(self)})


RAW_ASSET_OF = {
    "bars": "market_bars_5m",
    "funding": "funding_rates",
    "open_interest": "open_interest",
    "metrics": "derivatives_metrics",
    "macro": "macro_series",
    "posts": "social_posts_raw",
    "comments": "social_comments_raw",
}


def with_schema(frame: pl.DataFrame | None, asset: str) -> pl.DataFrame:
    """``frame``, or an empty frame of the raw asset's schema when nothing was read."""
    if frame is None or frame.width == 0:
        return RAW_SCHEMAS[asset].empty()
    return frame


@dataclass(frozen=True)
class FeatureContract:
    """Ordered feature names and dtypes of ``feature_matrix_main``; ``version`` changes with any of them."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    latent_dim: int = 384
    code_version: str = FEATURE_CODE_VERSION

    @property
    def version(self) -> str:
        payload = json.dumps([self.names, self.dtypes, self.latent_dim, self.code_version]).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "code_version": self.code_version,
            "latent_dim": self.latent_dim,
            "columns": dict(zip(self.names, self.dtypes, strict=True)),
        }

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Key columns then the contract's columns, in order; raises when a column is missing or mistyped."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ValueError(f"feature contract {self.version}: missing columns {missing[:5]}")
        schema = frame.schema
        wrong = [n for n, d in zip(self.names, self.dtypes, strict=True) if str(schema[n]) != d]
        if wrong:
            raise ValueError(f"feature contract {self.version}: wrong dtypes for {wrong[:5]}")
        return frame.select(*KEY_COLUMNS, *self.names)


def feature_contract(latent_dim: int) -> FeatureContract:
    """The contract of the matrix for text latents of width ``latent_dim``."""
    flt, flag = "Float64", "Int8"
    names: list[str] = ["symbol_code"]
    dtypes: list[str] = ["Int16"]
    names += MARKET_FEATURES
    dtypes += [flt] * len(MARKET_FEATURES)
    for n in DERIVATIVES_FEATURES:
        names.append(n)
        dtypes.append(flag if n.endswith("_missing") or n == "basis_reported" else flt)
    for n in MACRO_FEATURES:
        names.append(n)
        dtypes.append(flag if n.endswith("_missing") else flt)
    names += TEXT_BUCKET_FEATURES
    dtypes += [_text_dtype(n) for n in TEXT_BUCKET_FEATURES]
    names += [*TEXT_COVERAGE_COLUMNS, "post_n", "comment_n", *LATENT_COLUMNS]
    # latents as List, not Array: a null list costs nothing, a null fixed-size array still holds its width
    # (600k rows x 768 floats = 1.8 GB for a matrix that has text on a few weeks)
    dtypes += ["Int32", flag, "Int32", "Int32", "List(Float32)", "List(Float32)"]
    return FeatureContract(tuple(names), tuple(dtypes), latent_dim=latent_dim)


def _text_dtype(name: str) -> str:
    return "Int32" if name.endswith("_count") or "unique_authors" in name else "Float64"


def assemble_matrix(
    market: pl.DataFrame,
    derivatives: pl.DataFrame,
    macro: pl.DataFrame,
    text_buckets: pl.DataFrame,
    latents: pl.DataFrame,
    symbols: list[str],
    latent_dim: int,
) -> pl.DataFrame:
    """Join the families on the perp grid (``market`` rows): exact joins on (symbol, t) for families on the same
    grid, an as-of join on ``ts_available <= t`` for macro releases; flags where an input is missing."""
    keys = ["symbol", "ts_event"]
    code = pl.col("symbol").replace_strict({s: i for i, s in enumerate(symbols)}, default=None, return_dtype=pl.Int16)
    out = market.with_columns(code.alias("symbol_code")).join(
        derivatives.drop("ts_available"), on=keys, how="left", coalesce=True
    )
    macro_rows = macro.drop("symbol", strict=False).unique(subset=["ts_event"], keep="first").sort("ts_event")
    out = macro_asof(out.sort(keys), macro_rows)
    out = out.join(text_buckets.drop("ts_available"), on=keys, how="left", coalesce=True)
    lat = latents.drop("ts_available").with_columns(pl.col(*LATENT_COLUMNS).cast(pl.List(pl.Float32)))
    out = out.join(lat, on=keys, how="left", coalesce=True)
    out = out.with_columns(
        pl.col("text_items_1d").fill_null(0).cast(pl.Int32),
        pl.col("post_n", "comment_n").fill_null(0).cast(pl.Int32),
    ).with_columns((pl.col("text_items_1d") == 0).cast(pl.Int8).alias("text_missing"))
    return feature_contract(latent_dim).conform(out.sort(keys))


def items_for(raw: RawInputs, symbol: str) -> pl.DataFrame:
    """The text items (scored posts and comments) relevant to ``symbol``."""
    return text_items(raw.posts, raw.comments, symbol)


def latents_of(
    items: pl.DataFrame, symbol: str, start: datetime, end: datetime, embed: Embed, latent_dim: int
) -> pl.DataFrame:
    """Pooled latents of one symbol's items for grid rows in [start, end) (each text embedded through ``embed``)."""
    window = items.filter((pl.col("ts_available") > start - LATENT_WINDOW) & (pl.col("ts_available") < end))
    if not len(window):
        return pl.DataFrame(schema=latent_schema(latent_dim))
    vectors = embed(window["text"].to_list(), window["content_hash"].to_list())
    return pool_latents(window, vectors, symbol, start, end, window=LATENT_WINDOW)


def with_item_counts(buckets: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Add ``text_items_1d``: items (linked or market-wide) available in ``(t - 1d, t]`` (0 = no text coverage)."""
    ts = items["ts_available"].sort()
    t = buckets["ts_event"]
    hi = np.searchsorted(ts.to_numpy(), t.to_numpy(), side="right")
    lo = np.searchsorted(ts.to_numpy(), (t - timedelta(days=1)).to_numpy(), side="right")
    return buckets.with_columns(pl.Series("text_items_1d", hi - lo, dtype=pl.Int32))


def build_feature_rows(
    raw: RawInputs,
    symbols: list[str],
    start: datetime,
    end: datetime,
    embed: Embed,
    latent_dim: int,
    universe: list[str] | None = None,
) -> pl.DataFrame:
    """Feature matrix rows for ``symbols`` with ``t`` in [start, end), from raw rows: the one composite that
    checks and serving use (the assets run the same family functions one asset at a time)."""
    raw = raw.map(lambda asset, f: with_schema(f, asset))
    bars = raw.bars.filter(pl.col("symbol").is_in(symbols))
    market = market_features(bars, start, end)
    deriv = derivatives_features(bars, raw.funding, raw.open_interest, raw.metrics, start, end)
    macro = macro_features(raw.macro, start, end)
    buckets, latents = [], []
    for sym in symbols:
        items = items_for(raw, sym)
        buckets.append(with_item_counts(text_bucket_features(items, sym, start, end), items))
        latents.append(latents_of(items, sym, start, end, embed, latent_dim))
    return assemble_matrix(
        market,
        deriv,
        macro,
        pl.concat(buckets, how="vertical_relaxed"),
        pl.concat(latents, how="vertical_relaxed"),
        universe or symbols,
        latent_dim,
    )


# Daily partitions of each raw input a matrix row at t needs before t's day (the families' look-backs).
RAW_LOOKBACK_DAYS = {
    "bars": 2,
    "funding": 9,
    "open_interest": 3,
    "metrics": 3,
    "macro": MACRO_LOOKBACK_DAYS,
    "posts": 2,
    "comments": 2,
}


def raw_inputs(**frames: pl.DataFrame) -> RawInputs:
    """RawInputs with the given frames (by field name) and empty frames of the right schema for the rest."""
    return RawInputs(**{name: with_schema(frames.get(name), asset) for name, asset in RAW_ASSET_OF.items()})


def raw_window(
    raw: RawInputs,
    first: datetime,
    last: datetime,
    ahead: timedelta = timedelta(days=1),
    extra_back: timedelta = timedelta(0),
) -> RawInputs:
    """The raw rows rows in [first, last] need: from each input's look-back before ``first``'s day to ``ahead``
    after ``last`` (data after t is kept on purpose: the checks must see whether a build would use it)."""
    day0 = datetime(first.year, first.month, first.day, tzinfo=first.tzinfo)

    def cut(name: str, frame: pl.DataFrame) -> pl.DataFrame:
        lo = day0 - timedelta(days=RAW_LOOKBACK_DAYS[name]) - extra_back
        return frame.filter((pl.col("ts_event") >= lo) & (pl.col("ts_event") < last + ahead)) if len(frame) else frame

    return replace(raw, **{f.name: cut(f.name, getattr(raw, f.name)) for f in fields(raw)})
