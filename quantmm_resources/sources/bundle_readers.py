"""Pure readers of the offline-bundle file formats (see docs/bundle.md).

Every reader takes a path (plus what the file name told discovery: symbol, market, series) and returns
``{raw_asset: source_frame}`` with exactly ``RawSchema.source_columns`` and ``ts_event`` as tz-aware UTC.
Readers never drop rows: missing fields are nulls, and a column that does not parse as its canonical dtype
is kept as strings so that core quarantines each bad row with its raw value.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import timedelta
from pathlib import Path

import polars as pl

from quantmm_assets.core.availability import MACRO_SERIES_SPECS
from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS
from quantmm_assets.core.timestamps import to_utc

log = logging.getLogger(__name__)

SOURCE_FREQTRADE = "bundle:freqtrade"
SOURCE_VISION = "bundle:binance_vision"
SOURCE_OI_WIDE = "bundle:oi_wide_csv"
SOURCE_CANONICAL = "bundle:canonical"
SOURCE_REDDIT_TEXT = "bundle:reddit_text_csv"
SOURCE_REDDIT_SCORED = "bundle:reddit_scored_csv"
SOURCE_FRED = "bundle:fred_csv"
SOURCE_MACRO_CLOSE = "bundle:macro_close_csv"

# Source-series label -> canonical series id ("FRED:DGS10" -> "us10y", "ICE:DXY" -> "dxy_ice", ...).
SERIES_BY_SOURCE = {s.source_series: s.series_id for s in MACRO_SERIES_SPECS.values()}
# Single-series daily close files: (file-name prefix, canonical series id, source_series), first match wins.
# ``VIX_*`` is the CBOE VIX close: the same series as FRED VIXCLS (a redistribution of it), hence ``vix``.
MACRO_CLOSE_FILES = (
    ("US10Y_TNX", "tnx_cboe", "CBOE:TNX"),
    ("TNX", "tnx_cboe", "CBOE:TNX"),
    ("DXY_", "dxy_ice", "ICE:DXY"),
    ("VIX_", "vix", "CBOE:VIX"),
)
REDDIT_LOCAL_OFFSET = timedelta(hours=1)  # created_date_local_as_published is UTC+1

Frames = dict[str, pl.DataFrame]


# ----------------------------------------------------------------------------------------------- helpers
def read_bytes(path: Path) -> bytes:
    """Read a file, gunzipping ``*.gz``."""
    data = Path(path).read_bytes()
    return gzip.decompress(data) if str(path).endswith(".gz") else data


def read_header(path: Path) -> list[str]:
    """Column names of a CSV (first line) or keys of the first JSONL record; [] when unreadable."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            line = fh.readline().strip().lstrip("\ufeff")
    except OSError:
        return []
    if ".jsonl" in Path(path).name or ".ndjson" in Path(path).name:
        try:
            return list(json.loads(line))
        except ValueError:
            return []
    return [c.strip().strip('"') for c in line.split(",")]


def read_csv_strings(data: bytes) -> pl.DataFrame:
    """Read CSV bytes with every column as strings (empty field -> null)."""
    if not data.strip():
        return pl.DataFrame()
    return pl.read_csv(data, infer_schema=False, truncate_ragged_lines=True)


def read_jsonl(data: bytes) -> pl.DataFrame:
    """Read JSON lines; on mixed types fall back to strings per field."""
    if not data.strip():
        return pl.DataFrame()
    try:
        return pl.read_ndjson(data, infer_schema_length=None)
    except Exception:
        rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        cols = {
            k: [None if r.get(k) is None else (r[k] if isinstance(r[k], str) else json.dumps(r[k])) for r in rows]
            for k in keys
        }
        return pl.DataFrame(cols, schema=dict.fromkeys(keys, pl.Utf8))


_EXPORT_TS = "%Y-%m-%dT%H:%M:%S%.fZ"  # what bundle_export writes: parsed directly, the fast path


def parse_utc(s: pl.Series) -> pl.Series:
    """Timestamps to UTC µs through the one parser, ``core.timestamps.to_utc``: datetimes, dates, epoch
    seconds / milliseconds / microseconds (told apart per value by magnitude, numbers or digit text) and
    ISO-like text; unparseable -> null. Our own export format is tried first (fast path)."""
    if s.dtype == pl.Utf8 and s.len() > s.null_count():
        fast = s.str.to_datetime(_EXPORT_TS, strict=False, time_unit="us", time_zone="UTC")
        if fast.null_count() == s.null_count():
            return fast.cast(UTC_TS).alias(s.name)
    return s.to_frame("v").select(to_utc(pl.col("v"), s.dtype)).to_series().cast(UTC_TS).alias(s.name)


def _cast_keep(s: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Cast to ``dtype``; if that would turn any value into null, keep the column as strings."""
    if s.dtype == dtype:
        return s
    if s.dtype == pl.Null:
        return s.cast(dtype)
    if s.dtype == pl.Utf8 and not dtype.is_integer():  # fast path: clean text casts directly
        out = s.cast(dtype, strict=False)
        if out.null_count() == s.null_count():
            return out
    src = s.str.strip_chars() if s.dtype == pl.Utf8 else s
    if dtype.is_integer() and not s.dtype.is_integer():
        as_float = src.cast(pl.Float64, strict=False)  # "153.0" is a valid count, 1.5 is not
        whole = as_float.is_null() | (as_float.is_finite() & (as_float == as_float.floor()))
        out = as_float.cast(dtype, strict=False) if bool(whole.all()) else None
    else:
        out = src.cast(dtype, strict=False)
    if out is None or out.null_count() > s.null_count():
        return s.cast(pl.Utf8)
    return out


def conform(frame: pl.DataFrame, asset: str, **constants: str | None) -> pl.DataFrame:
    """Return the source frame of ``asset``: its source columns in order, typed where they parse."""
    schema = RAW_SCHEMAS[asset]
    n = frame.height
    cols = []
    for name in schema.source_columns:
        dtype = schema.columns[name]
        if name in constants:
            cols.append(pl.Series(name, [constants[name]] * n, dtype=pl.Utf8))
        elif name not in frame.columns:
            cols.append(pl.Series(name, [None] * n, dtype=dtype))
        elif name == "ts_event":  # unparseable -> null: the bundle sets the row aside with a reason
            cols.append(parse_utc(frame[name]).alias(name))
        elif dtype == UTC_TS:  # other timestamps: kept as text when a value does not parse (core rejects it)
            parsed = parse_utc(frame[name])
            cols.append(
                (parsed if parsed.null_count() == frame[name].null_count() else frame[name].cast(pl.Utf8)).alias(name)
            )
        else:
            cols.append(_cast_keep(frame[name], dtype).alias(name))
    return pl.DataFrame(cols) if cols else schema.empty()


# ------------------------------------------------------------------------------------------- exchange
def read_freqtrade(path: Path, kind: str, symbol: str) -> Frames:
    """Read a freqtrade feather: ``kind`` is spot | perp | funding | mark."""
    raw = pl.read_ipc(path)
    frame = raw.rename({"date": "ts_event"}).with_columns(pl.lit(symbol).alias("symbol"))
    if kind in ("spot", "perp"):
        return {"market_bars_5m": conform(frame, "market_bars_5m", market=kind, source=SOURCE_FREQTRADE)}
    if kind == "funding":
        frame = frame.select("symbol", "ts_event", pl.col("open").alias("funding_rate"))
        return {"funding_rates": conform(frame, "funding_rates", source=SOURCE_FREQTRADE)}
    if kind == "mark":
        frame = frame.select("symbol", "ts_event", pl.col("close").alias("mark_price"))
        return {"derivatives_metrics": conform(frame, "derivatives_metrics", period="1h", source=SOURCE_FREQTRADE)}
    raise ValueError(f"unknown freqtrade kind {kind!r}")


def read_vision(path: Path, kind: str, symbol: str, market: str) -> Frames:
    """Read a Binance Vision CSV or zip through ``binance_wire``: ``kind`` is klines | funding | metrics."""
    from quantmm_resources.sources import binance_wire as wire

    data = Path(path).read_bytes()
    if str(path).endswith(".zip"):
        data = wire.read_zip_member(data)
    if kind == "klines":
        frames = {"market_bars_5m": wire.parse_vision_klines_csv(data, symbol, market, SOURCE_VISION)}
    elif kind == "funding":
        frames = {"funding_rates": wire.parse_vision_funding_csv(data, symbol, SOURCE_VISION)}
    elif kind == "metrics":
        oi, dm = wire.parse_vision_metrics_csv(data, symbol, SOURCE_VISION)
        frames = {"open_interest": oi, "derivatives_metrics": dm}
    else:
        raise ValueError(f"unknown vision kind {kind!r}")
    return {asset: conform(frame, asset) for asset, frame in frames.items()}


def read_oi_wide(path: Path) -> Frames:
    """Read a daily ``date, {SYMBOL}_oi_value_usd...`` CSV: period 1d, open_interest_value only."""
    raw = read_csv_strings(read_bytes(path))
    value_cols = [c for c in raw.columns if c.lower().endswith("_oi_value_usd")]
    if not value_cols:
        return {"open_interest": conform(pl.DataFrame(), "open_interest")}
    long = raw.unpivot(index="date", on=value_cols, variable_name="col", value_name="open_interest_value")
    long = long.with_columns(
        pl.col("col").str.replace(r"(?i)_oi_value_usd$", "").str.to_uppercase().alias("symbol"),
        pl.col("date").alias("ts_event"),
    )
    return {"open_interest": conform(long, "open_interest", period="1d", source=SOURCE_OI_WIDE)}


def read_canonical(path: Path, asset: str) -> Frames:
    """Read a generic canonical CSV/JSONL of one raw asset (``date`` is accepted for ``ts_event``)."""
    data = read_bytes(path)
    frame = read_jsonl(data) if ".jsonl" in Path(path).name or ".ndjson" in Path(path).name else read_csv_strings(data)
    if "ts_event" not in frame.columns and "date" in frame.columns:
        frame = frame.rename({"date": "ts_event"})
    if "source" not in frame.columns:
        frame = frame.with_columns(pl.lit(SOURCE_CANONICAL).alias("source"))
    else:
        frame = frame.with_columns(pl.col("source").cast(pl.Utf8).fill_null(SOURCE_CANONICAL))
    return {asset: conform(frame, asset)}


# ---------------------------------------------------------------------------------------------- macro
def read_fred(path: Path) -> Frames:
    """Read a FRED-style wide CSV (``date`` + FRED ids as columns); blank values stay as null rows."""
    raw = read_csv_strings(read_bytes(path))
    ids = [c for c in raw.columns if f"FRED:{c}" in SERIES_BY_SOURCE]
    if not ids:
        return {"macro_series": conform(pl.DataFrame(), "macro_series")}
    long = raw.unpivot(index="date", on=ids, variable_name="fred", value_name="value").with_columns(
        pl.col("date").alias("ts_event"),
        ("FRED:" + pl.col("fred")).alias("source_series"),
        ("FRED:" + pl.col("fred")).replace_strict(SERIES_BY_SOURCE).alias("series_id"),
    )
    return {"macro_series": conform(long, "macro_series", source=SOURCE_FRED)}


def read_macro_close(path: Path, series_id: str, source_series: str) -> Frames:
    """Read a single-series daily CSV (``date, ..., close``): value = close, blanks stay null."""
    raw = read_csv_strings(read_bytes(path))
    frame = raw.select(pl.col("date").alias("ts_event"), pl.col("close").alias("value"))
    return {
        "macro_series": conform(
            frame, "macro_series", series_id=series_id, source_series=source_series, source=SOURCE_MACRO_CLOSE
        )
    }


# --------------------------------------------------------------------------------------------- social
def reddit_fullname(ids: pl.Expr, kind: str) -> pl.Expr:
    """Reddit *fullnames*, the one id convention of every Reddit source: ``kind`` is ``t3`` (posts) or ``t1``
    (comments); a plain base36 id gets the ``<kind>_`` prefix, an id already prefixed ``t<N>_`` and a blank id
    are kept as they are, null stays null."""
    text = ids.cast(pl.Utf8).str.strip_chars()
    return (
        pl.when(text.str.contains(r"^t[0-9]_") | (text == ""))
        .then(text)
        .otherwise(pl.concat_str([pl.lit(f"{kind}_"), text]))
    )


def _parent_fullname(parent: str, post: str) -> pl.Expr:
    """A comment's ``parent_id`` as a fullname: as given when prefixed; a plain id is the post (``t3_``)
    when it equals the comment's post id, otherwise a comment (``t1_``)."""
    plain_post = pl.col(post).cast(pl.Utf8).str.strip_chars().str.replace(r"^t3_", "")
    given = pl.col(parent).cast(pl.Utf8).str.strip_chars()
    return pl.when(given == plain_post).then(reddit_fullname(given, "t3")).otherwise(reddit_fullname(given, "t1"))


def utc_plus_one_check(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``ts_local_utc`` (local - 1h) and ``ts_inferred`` to a Reddit text frame."""
    local = (
        parse_utc(frame["created_date_local_as_published"]) - REDDIT_LOCAL_OFFSET
        if "created_date_local_as_published" in frame.columns
        else pl.Series([None] * frame.height, dtype=UTC_TS)
    )
    inferred = (
        parse_utc(frame["created_at_utc_inferred"])
        if "created_at_utc_inferred" in frame.columns
        else pl.Series([None] * frame.height, dtype=UTC_TS)
    )
    return frame.with_columns(local.alias("ts_local_utc"), inferred.alias("ts_inferred"))


def read_reddit_text(path: Path) -> Frames:
    """Read the unified Reddit text CSV (``p_``/``c_`` ids -> ``t3_``/``t1_``, UTC+1 local times, no engagement)."""
    raw = utc_plus_one_check(read_csv_strings(read_bytes(path)))
    bad = raw.filter(
        pl.col("ts_inferred").is_not_null()
        & pl.col("ts_local_utc").is_not_null()
        & (pl.col("ts_inferred") != pl.col("ts_local_utc"))
    ).height
    if bad:
        log.warning("%s: %d rows where created_at_utc_inferred != local - 1h (inferred kept)", path, bad)
    uid = pl.col("unified_id").cast(pl.Utf8)
    stype = (
        pl.col("source_type").cast(pl.Utf8).str.to_lowercase()
        if "source_type" in raw.columns
        else pl.lit(None, pl.Utf8)
    )
    is_comment = (uid.str.starts_with("c_") | (~uid.str.contains(r"^[pc]_") & (stype == "comment"))).fill_null(False)
    plain = pl.when(uid.str.contains(r"^[pc]_")).then(uid.str.slice(2)).otherwise(uid)
    frame = raw.with_columns(
        pl.when(is_comment).then(reddit_fullname(plain, "t1")).otherwise(reddit_fullname(plain, "t3")).alias("id"),
        pl.coalesce("ts_inferred", "ts_local_utc").alias("ts_event"),
        pl.col("text_content").alias("text"),
        (pl.col("subreddit") if "subreddit" in raw.columns else pl.lit(None, pl.Utf8)).alias("community"),
        is_comment.alias("_is_comment"),
    )
    consts = {"platform": "reddit", "source": SOURCE_REDDIT_TEXT}
    return {
        "social_posts_raw": conform(frame.filter(~pl.col("_is_comment")), "social_posts_raw", **consts),
        "social_comments_raw": conform(frame.filter(pl.col("_is_comment")), "social_comments_raw", **consts),
    }


def _epoch_seconds_or(frame: pl.DataFrame, epoch: str, text: str) -> pl.Series:
    """``ts_event`` from an epoch column (seconds as float text: whole seconds), falling back to an ISO column."""
    secs = (
        frame[epoch].cast(pl.Float64, strict=False)
        if epoch in frame.columns
        else pl.Series([None] * frame.height, dtype=pl.Float64)
    )
    ts = parse_utc(secs)
    if text in frame.columns:
        ts = pl.select(pl.coalesce(ts, parse_utc(frame[text]))).to_series()
    return ts.alias("ts_event")


def read_reddit_scored_posts(path: Path) -> Frames:
    """Read scored posts (``submission_id``...): text = title, plus the body when there is one."""
    raw = read_csv_strings(read_bytes(path))
    body = pl.col("text").str.strip_chars()
    frame = raw.with_columns(
        _epoch_seconds_or(raw, "created_utc", "created_at_utc"),
        reddit_fullname(pl.col("submission_id"), "t3").alias("id"),
        pl.when(body.is_null() | (body == ""))
        .then(pl.col("title"))
        .otherwise(pl.concat_str([pl.col("title").fill_null(""), pl.col("text")], separator="\n\n"))
        .alias("text"),
        pl.col("score").alias("engagement_score"),
        pl.col("subreddit").alias("community"),
    )
    return {"social_posts_raw": conform(frame, "social_posts_raw", platform="reddit", source=SOURCE_REDDIT_SCORED)}


def read_reddit_scored_comments(path: Path) -> Frames:
    """Read scored comments (``comment_id``...): fullnames ``t1_<comment_id>``, post_id ``t3_<submission_id>``."""
    raw = read_csv_strings(read_bytes(path))
    frame = raw.with_columns(
        _epoch_seconds_or(raw, "created_utc", "created_at_utc"),
        reddit_fullname(pl.col("comment_id"), "t1").alias("id"),
        reddit_fullname(pl.col("submission_id"), "t3").alias("post_id"),
        _parent_fullname("parent_id", "submission_id").alias("parent_id"),
        pl.col("body").alias("text"),
        pl.col("score").alias("engagement_score"),
        pl.col("subreddit").alias("community"),
    )
    return {
        "social_comments_raw": conform(frame, "social_comments_raw", platform="reddit", source=SOURCE_REDDIT_SCORED)
    }
