"""Turn a source frame into canonical raw rows plus quarantined rejects: nothing is silently dropped.

``normalize`` converts the wire dtypes once, stamps ``ts_available`` (core.availability) and, for social
items, the linked ``symbols``; every row that cannot be kept becomes a reject row with its reason and the
original values as JSON. ``len(clean) + len(rejects) == len(source)`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from quantmm_assets.core import availability as av
from quantmm_assets.core.schemas import RAW_SCHEMAS, REJECT_COLUMNS, UTC_TS, RawSchema
from quantmm_assets.core.symbols import link_symbols
from quantmm_assets.core.timestamps import to_utc
from quantmm_assets.core.universe import Universe

MAX_TEXT_CHARS = 40_000
MAX_ABS_FUNDING_RATE = 0.05  # Binance caps are +-2..3% per interval; beyond 5% is a unit error
MARKETS = ("spot", "perp")
# Optional source-frame column naming, per row, the partition a reject that fits no partition of the run is
# filed under (the first partition of the fetch that returned it): re-running that fetch replaces it.
FALLBACK_COLUMN = "_fallback_partition"
NO_OBSERVATION = "no observation (empty value)"


@dataclass(frozen=True)
class IngestParams:
    """What one materialization asked for, and the rules it applies."""

    start: datetime
    end: datetime
    symbols: tuple[str, ...] | None = None  # None: not symbol-partitioned
    partition_keys: frozenset[str] | None = None  # the run's partitions, when not every day x symbol in range
    universe: Universe | None = None  # needed for social symbol linking
    max_text_chars: int = MAX_TEXT_CHARS
    social_ingest_delay: timedelta = av.DEFAULT_SOCIAL_INGEST_DELAY
    # Ingest instant: a row not yet available then (an exchange's still-open candle) is not final data.
    now: datetime | None = None


@dataclass(frozen=True)
class Normalized:
    clean: pl.DataFrame
    rejects: pl.DataFrame  # REJECT_COLUMNS

    @property
    def reject_counts(self) -> dict[str, int]:
        """Rejected rows per reason (reasons without the offending value)."""
        if self.rejects.is_empty():
            return {}
        kinds = self.rejects["reason"].str.split(":").list.first()
        return dict(sorted(kinds.value_counts().iter_rows()))


def _convert(col: str, source_dtype: pl.DataType, target: pl.DataType) -> pl.Expr:
    if target == UTC_TS:
        return to_utc(pl.col(col), source_dtype)
    if target == pl.Utf8:
        return pl.col(col).cast(pl.Utf8, strict=False)
    if source_dtype == pl.Utf8 and target.is_numeric():
        # FRED writes "." and many feeds "" for missing: those are nulls, not parse errors.
        text = pl.col(col).str.strip_chars()
        return (
            pl.when(text.is_in(["", ".", "NaN", "nan", "null", "None"]))
            .then(None)
            .otherwise(text)
            .cast(target, strict=False)
        )
    return pl.col(col).cast(target, strict=False)


def _missing_as_null(col: str, source_dtype: pl.DataType) -> pl.Expr:
    """Whether the source value counts as absent (so a null after conversion is not a parse error)."""
    c = pl.col(col)
    if source_dtype == pl.Utf8:
        return c.is_null() | c.str.strip_chars().is_in(["", ".", "NaN", "nan", "null", "None"])
    if source_dtype.is_float():
        return c.is_null() | c.is_nan()
    return c.is_null()


def _scope_rules(schema: RawSchema, p: IngestParams) -> list[tuple[pl.Expr, pl.Expr]]:
    """Rows the run did not ask for (a source contract problem, not bad data)."""
    c = pl.col
    win = (c("ts_event") < p.start) | (c("ts_event") >= p.end)
    if p.partition_keys is not None:
        win = win | ~partition_label(schema).is_in(list(p.partition_keys))
    rules: list[tuple[pl.Expr, pl.Expr]] = [(win, pl.lit("outside requested window"))]
    if p.symbols is not None:
        rules.append((~c("symbol").is_in(list(p.symbols)), pl.lit("symbol not requested")))
    if p.universe is not None and schema.partitioned_by_symbol:
        listed = {x.symbol: x.listing_date for x in p.universe.listings}
        listing = c("symbol").replace_strict(listed, default=None, return_dtype=pl.Date)
        rules.append((c("ts_event").dt.date() < listing, pl.lit("before listing date")))
    return rules


def value_rules(asset: str, max_text_chars: int = MAX_TEXT_CHARS) -> list[tuple[pl.Expr, pl.Expr]]:
    """(bad-row condition, reason) of each asset's values, on converted columns: ingest quarantines rows that
    match, and the sanity / schema checks count lake rows that match (one definition for both)."""
    c = pl.col
    schema = RAW_SCHEMAS[asset]
    floats = [name for name, dtype in schema.columns.items() if dtype == pl.Float64]
    rules: list[tuple[pl.Expr, pl.Expr]] = [
        (c(x).is_nan() | c(x).is_infinite(), pl.lit(f"non-finite {x}")) for x in floats
    ]
    if asset == "market_bars_5m":
        rules += [
            (~c("market").is_in(list(MARKETS)), pl.lit("unknown market: ") + c("market")),
            (c("ts_event").dt.truncate("5m") != c("ts_event"), pl.lit("ts_event not on the 5m grid")),
            (pl.min_horizontal("open", "high", "low", "close") <= 0, pl.lit("ohlc: non-positive price")),
            (
                (c("low") > pl.min_horizontal("open", "close")) | (c("high") < pl.max_horizontal("open", "close")),
                pl.lit("ohlc: low/high do not bracket open/close"),
            ),
            (c("volume") < 0, pl.lit("ohlc: negative volume")),
        ]
    elif asset == "funding_rates":
        rules.append((c("funding_rate").abs() > MAX_ABS_FUNDING_RATE, pl.lit("funding: |rate| above 5% per interval")))
    elif asset in ("open_interest", "derivatives_metrics"):
        rules.append((~c("period").is_in(list(av.PERIODS)), pl.lit("unknown period: ") + c("period")))
    if asset == "open_interest":
        rules += [
            ((c("open_interest") < 0) | (c("open_interest_value") < 0), pl.lit("open interest: negative")),
            (c("open_interest").is_null() & c("open_interest_value").is_null(), pl.lit("missing open interest")),
        ]
    elif asset == "derivatives_metrics":
        positive = [
            "long_short_account_ratio",
            "top_long_short_account_ratio",
            "top_long_short_position_ratio",
            "taker_buy_sell_ratio",
            "mark_price",
        ]
        rules.append((pl.any_horizontal([c(x) <= 0 for x in positive]), pl.lit("metrics: non-positive ratio or price")))
    elif asset == "macro_series":
        rules.append(
            (~c("series_id").is_in(list(av.MACRO_SERIES_SPECS)), pl.lit("unknown macro series: ") + c("series_id"))
        )
    elif asset.startswith("social_"):
        # A link post has a title and no body: it is text all the same.
        words = pl.concat_str([c("title").fill_null(""), c("text")]) if "title" in schema.columns else c("text")
        rules += [
            (words.str.strip_chars().str.len_chars() == 0, pl.lit("empty text")),
            (c("text").str.len_chars() > max_text_chars, pl.lit(f"oversized text: over {max_text_chars} chars")),
        ]
    return rules


def _sanity_reasons(schema: RawSchema, p: IngestParams) -> list[tuple[pl.Expr, pl.Expr]]:
    return _scope_rules(schema, p) + value_rules(schema.name, p.max_text_chars)


def _stamp_available(schema: RawSchema, p: IngestParams) -> pl.Expr:
    ts = pl.col("ts_event")
    if schema.name == "market_bars_5m":
        return av.bar_available(ts)
    if schema.name == "funding_rates":
        return av.funding_available(ts)
    if schema.name in ("open_interest", "derivatives_metrics"):
        return av.period_available(ts, pl.col("period"))
    if schema.name == "macro_series":
        return av.macro_available(ts, pl.col("series_id"))
    return av.social_available(ts, p.social_ingest_delay)


def partition_label(schema: RawSchema) -> pl.Expr:
    """Partition key of a row: ``YYYY-MM-DD`` of ts_event, ``|SYMBOL`` appended when symbol-partitioned."""
    day = pl.col("ts_event").dt.strftime("%Y-%m-%d")
    return pl.concat_str([day, pl.lit("|"), pl.col("symbol")]) if schema.partitioned_by_symbol else day


def normalize(asset: str, source: pl.DataFrame, params: IngestParams) -> Normalized:
    """Convert, validate, de-duplicate and stamp a source frame; quarantine every bad row with a reason."""
    schema = RAW_SCHEMAS[asset]
    missing = [c for c in schema.required if c in schema.source_columns and c not in source.columns]
    if missing:
        raise ValueError(f"{asset}: source frame lacks required column(s) {missing}; got {source.columns}")
    df = source.with_row_index("_row")
    for col in schema.source_columns:
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=schema.columns[col]).alias(col))
    src_dtypes = {c: df.schema[c] for c in schema.source_columns}
    raw_json = pl.struct(
        [
            pl.col(c) if source.schema[c].is_nested() else pl.col(c).cast(pl.Utf8, strict=False)
            for c in source.columns
            if c != FALLBACK_COLUMN
        ]
    ).struct.json_encode()

    reason: pl.Expr = pl.lit(None, dtype=pl.Utf8)
    converted = []
    for col in reversed(schema.source_columns):  # first column's problem wins: when-chain built in reverse
        target = schema.columns[col]
        new = _convert(col, src_dtypes[col], target)
        converted.append(new.alias(col))
        if col in schema.required:
            # A macro file's empty value is a day without an observation (a holiday placeholder), not a defect.
            why = NO_OBSERVATION if (asset, col) == ("macro_series", "value") else f"missing {col}"
            reason = pl.when(new.is_null() & _missing_as_null(col, src_dtypes[col])).then(pl.lit(why)).otherwise(reason)
        reason = (
            pl.when(new.is_null() & ~_missing_as_null(col, src_dtypes[col]))
            .then(pl.lit(f"unparseable {col}: ") + pl.col(col).cast(pl.Utf8, strict=False).str.slice(0, 40))
            .otherwise(reason)
        )
    df = df.with_columns(raw_json.alias("_raw"), reason.alias("_reason")).with_columns(converted)

    rules = _sanity_reasons(schema, params)
    if params.now is not None:
        rules.append((_stamp_available(schema, params) > params.now, pl.lit("not yet available at ingest")))
    sanity = pl.lit(None, dtype=pl.Utf8)
    for cond, why in reversed(rules):
        sanity = pl.when(cond.fill_null(False)).then(why).otherwise(sanity)
    df = df.with_columns(pl.coalesce("_reason", sanity).alias("_reason"))

    # Duplicates on the key among otherwise-good rows: the last occurrence in source order wins.
    good = pl.col("_reason").is_null()
    last = pl.col("_row") == pl.col("_row").filter(good).max().over(list(schema.key))
    df = df.with_columns(
        pl.when(good & ~last).then(pl.lit("duplicate key")).otherwise(pl.col("_reason")).alias("_reason")
    )
    rejects = _reject_frame(schema, df.filter(pl.col("_reason").is_not_null()), params)
    clean = df.filter(pl.col("_reason").is_null()).with_columns(_stamp_available(schema, params).alias("ts_available"))
    if "symbols" in schema.columns:
        if params.universe is None:
            raise ValueError(f"{asset}: symbol linking needs IngestParams.universe")
        text = (
            pl.concat_str([pl.col("title").fill_null(""), pl.col("text")], separator=" ")
            if "title" in schema.columns
            else pl.col("text")
        )
        clean = clean.with_columns(link_symbols(text, params.universe).alias("symbols"))
    clean = clean.select([pl.col(c).cast(t) for c, t in schema.columns.items()]).sort(list(schema.key))
    return Normalized(clean=clean, rejects=rejects)


def _reject_frame(schema: RawSchema, bad: pl.DataFrame, p: IngestParams) -> pl.DataFrame:
    # Rows that belong to no partition of the run are filed under its first one, so a re-run replaces them.
    if p.partition_keys:
        fallback = min(p.partition_keys)
    else:
        fallback = f"{p.start:%Y-%m-%d}" + (f"|{p.symbols[0]}" if schema.partitioned_by_symbol and p.symbols else "")
    in_window = pl.col("ts_event").is_not_null() & (pl.col("ts_event") >= p.start) & (pl.col("ts_event") < p.end)
    if schema.partitioned_by_symbol:
        in_window = in_window & pl.col("symbol").is_not_null()
    if p.partition_keys is not None:
        in_window = in_window & partition_label(schema).is_in(list(p.partition_keys))
    filed = pl.col(FALLBACK_COLUMN).fill_null(fallback) if FALLBACK_COLUMN in bad.columns else pl.lit(fallback)
    label = pl.when(in_window).then(partition_label(schema)).otherwise(filed)
    return bad.select(
        pl.lit(schema.name).alias("asset"),
        label.alias("partition"),
        pl.col("_reason").alias("reason"),
        pl.col("_raw").alias("raw"),
    ).cast(REJECT_COLUMNS)


def available_at(asset: str, frame: pl.DataFrame) -> pl.Series:
    """``ts_available`` of each row of a converted frame of ``asset`` (the same rule ``normalize`` stamps)."""
    return frame.select(
        _stamp_available(RAW_SCHEMAS[asset], IngestParams(start=datetime.min, end=datetime.max)).alias("ts_available")
    ).to_series()
