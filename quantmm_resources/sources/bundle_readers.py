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


_EXPORT_TS = "%Y-%m-%dT%H:%M:%S%.fZ"
_TS_FORMATS = (
    ("%Y-%m-%d %H:%M:%S%.f%#z", True),
    ("%Y-%m-%d %H:%M:%S%.f", False),
    ("%Y-%m-%d", False),
    ("%Y-%m-%d %H:%M%#z", True),
    ("%Y-%m-%d %H:%M", False),
)


def parse_utc(s: pl.Series) -> pl.Series:
    """Parse timestamps to UTC microseconds: datetimes, dates, epoch ms integers or ISO-like strings."""
    dt = s.dtype
    if isinstance(dt, pl.Datetime):
        s = s.dt.replace_time_zone("UTC") if dt.time_zone is None else s.dt.convert_time_zone("UTC")
        return s.dt.cast_time_unit("us")
    if dt == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dt.is_integer():
        return pl.from_epoch(s.cast(pl.Int64), time_unit="ms").dt.replace_time_zone("UTC")
    if dt == pl.Null:
        return s.cast(UTC_TS)
    fast = s.str.to_datetime(_EXPORT_TS, strict=False, time_unit="us", time_zone="UTC")  # our own exports
    if fast.null_count() == s.null_count():
        return fast.cast(UTC_TS)
    s = s.cast(pl.Utf8).str.strip_chars()
    norm = s.str.replace(r"^(\d{4}-\d{2}-\d{2})T", "$1 ").str.replace(r"Z$", "+00:00")
    digits = s.str.contains(r"^\d{9,}$").fill_null(False)
    out = pl.select(
        pl.when(digits)
        .then(pl.from_epoch(s.str.to_integer(strict=False), time_unit="ms").dt.replace_time_zone("UTC"))
        .otherwise(None)
        .cast(UTC_TS)
    ).to_series()
    for fmt, has_tz in _TS_FORMATS:  # first format that parses a value wins; stop when all parsed
        if out.null_count() == s.null_count():
            break
        parsed = norm.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC" if has_tz else None)
        out = out.fill_null(parsed if has_tz else parsed.dt.replace_time_zone("UTC"))
    return out.cast(UTC_TS)


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
        elif name == "ts_event":
            cols.append(parse_utc(frame[name]).alias(name))
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


def read_macro_close(path: Path, series_id: str) -> Frames:
    """Read a single-series daily CSV (``date, ..., close``): value = close, blanks stay null."""
    raw = read_csv_strings(read_bytes(path))
    frame = raw.select(pl.col("date").alias("ts_event"), pl.col("close").alias("value"))
    spec = MACRO_SERIES_SPECS[series_id]
    return {
        "macro_series": conform(
            frame, "macro_series", series_id=series_id, source_series=spec.source_series, source=SOURCE_MACRO_CLOSE
        )
    }


# --------------------------------------------------------------------------------------------- social
def _plain_id(col: str) -> pl.Expr:
    """Strip Reddit fullname prefixes (t1_, t3_) to plain base36 ids."""
    return pl.col(col).cast(pl.Utf8).str.strip_chars().str.replace(r"^t[0-9]_", "")


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
    """Read the unified Reddit text CSV (``p_``/``c_`` ids, UTC+1 local times, no engagement)."""
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
    is_comment = uid.str.starts_with("c_") | (~uid.str.contains(r"^[pc]_") & (stype == "comment"))
    frame = raw.with_columns(
        pl.when(uid.str.contains(r"^[pc]_")).then(uid.str.slice(2)).otherwise(uid).alias("id"),
        pl.coalesce("ts_inferred", "ts_local_utc").alias("ts_event"),
        pl.col("text_content").alias("text"),
        (pl.col("subreddit") if "subreddit" in raw.columns else pl.lit(None, pl.Utf8)).alias("community"),
        is_comment.fill_null(False).alias("_is_comment"),
    )
    consts = {"platform": "reddit", "source": SOURCE_REDDIT_TEXT}
    return {
        "social_posts_raw": conform(frame.filter(~pl.col("_is_comment")), "social_posts_raw", **consts),
        "social_comments_raw": conform(frame.filter(pl.col("_is_comment")), "social_comments_raw", **consts),
    }


def _epoch_seconds_or(frame: pl.DataFrame, epoch: str, text: str) -> pl.Series:
    """``ts_event`` from epoch seconds (float text), falling back to an ISO column."""
    secs = (
        frame[epoch].cast(pl.Float64, strict=False)
        if epoch in frame.columns
        else pl.Series([None] * frame.height, dtype=pl.Float64)
    )
    ts = pl.from_epoch((secs * 1e6).round(0).cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC")
    if text in frame.columns:
        ts = pl.select(pl.coalesce(ts, parse_utc(frame[text]))).to_series()
    return ts.alias("ts_event")


def read_reddit_scored_posts(path: Path) -> Frames:
    """Read scored posts (``submission_id``...): text = title, plus the body when there is one."""
    raw = read_csv_strings(read_bytes(path))
    body = pl.col("text").str.strip_chars()
    frame = raw.with_columns(
        _epoch_seconds_or(raw, "created_utc", "created_at_utc"),
        _plain_id("submission_id").alias("id"),
        pl.when(body.is_null() | (body == ""))
        .then(pl.col("title"))
        .otherwise(pl.concat_str([pl.col("title").fill_null(""), pl.col("text")], separator="\n\n"))
        .alias("text"),
        pl.col("score").alias("engagement_score"),
        pl.col("subreddit").alias("community"),
    )
    return {"social_posts_raw": conform(frame, "social_posts_raw", platform="reddit", source=SOURCE_REDDIT_SCORED)}


def read_reddit_scored_comments(path: Path) -> Frames:
    """Read scored comments (``comment_id``...): post_id = submission_id, parent_id without t1_/t3_."""
    raw = read_csv_strings(read_bytes(path))
    frame = raw.with_columns(
        _epoch_seconds_or(raw, "created_utc", "created_at_utc"),
        _plain_id("comment_id").alias("id"),
        _plain_id("submission_id").alias("post_id"),
        _plain_id("parent_id").alias("parent_id"),
        pl.col("body").alias("text"),
        pl.col("score").alias("engagement_score"),
        pl.col("subreddit").alias("community"),
    )
    return {
        "social_comments_raw": conform(frame, "social_comments_raw", platform="reddit", source=SOURCE_REDDIT_SCORED)
    }
