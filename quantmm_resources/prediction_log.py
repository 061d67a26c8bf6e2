"""The prediction log of the operational store (``opstore.prediction_log``): what the serving app predicted.

One row per (symbol, horizon, bar_ts, model_version, role); ``role`` is ``active`` (acted on) or ``shadow`` (the
candidate beside it, never acted on). Writes are idempotent and **first write wins**: a row whose key is already
logged is left as it is (``INSERT ... ON CONFLICT DO NOTHING``), because the log records what was served at the
time, which a replay or a retried request must not rewrite. SQLite and PostgreSQL through one SQLAlchemy Core path
(``opstore.engine_for``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from quantmm_assets.core.schemas import PREDICTION_LOG_SCHEMA
from quantmm_resources.opstore import engine_for, prediction_log

UTC_TS = pl.Datetime("us", "UTC")
KEY = ("symbol", "horizon", "bar_ts", "model_version", "role")
REQUIRED = (*KEY, "expected_return")
FLOATS = ("signal_confidence", "vol_forecast", "position", "cost", "gate", "text_contribution")
OPTIONAL = (*FLOATS, "text_missing", "logged_at")
ROLES = ("active", "shadow")
SERIES_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "model_version": pl.Utf8,
    "role": pl.Utf8,
    "first_bar_ts": UTC_TS,
    "last_bar_ts": UTC_TS,
    "n_rows": pl.Int64,
}
CHUNK = 1000


def _to_utc(col: pl.Series) -> pl.Series:
    """A datetime column in UTC microseconds; naive values are read as UTC (SQLite returns them naive)."""
    if not isinstance(col.dtype, pl.Datetime):
        raise ValueError(f"prediction log: {col.name} must be a datetime column, got {col.dtype}")
    col = col.dt.replace_time_zone("UTC") if col.dtype.time_zone is None else col.dt.convert_time_zone("UTC")
    return col.cast(UTC_TS)


def _rows(frame: pl.DataFrame) -> list[dict]:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"prediction log: missing columns {missing}")
    if frame.is_empty():
        return []
    for c in ("bar_ts", "logged_at"):
        dtype = frame[c].dtype if c in frame.columns else None
        if dtype is not None and (not isinstance(dtype, pl.Datetime) or dtype.time_zone is None):
            raise ValueError(f"prediction log: {c} must be a timezone-aware datetime column, got {dtype}")
    now = datetime.now(UTC)
    df = frame.select(
        *(pl.col(c).cast(pl.Utf8) for c in ("symbol", "horizon", "model_version", "role")),
        _to_utc(frame["bar_ts"]),
        pl.col("expected_return").cast(pl.Float64),
        *(pl.col(c).cast(pl.Float64) if c in frame.columns else pl.lit(None, pl.Float64).alias(c) for c in FLOATS),
        pl.col("text_missing").cast(pl.Boolean)
        if "text_missing" in frame.columns
        else pl.lit(None, pl.Boolean).alias("text_missing"),
        _to_utc(frame["logged_at"]) if "logged_at" in frame.columns else pl.lit(now, UTC_TS).alias("logged_at"),
    ).with_columns(pl.col("logged_at").fill_null(now))
    nulls = [c for c in REQUIRED if df[c].null_count()]
    if nulls:
        raise ValueError(f"prediction log: null values in {nulls}")
    roles = set(df["role"].unique().to_list()) - set(ROLES)
    if roles:
        raise ValueError(f"prediction log: role must be one of {ROLES}, got {sorted(roles)}")
    if not df["expected_return"].is_finite().all():
        raise ValueError("prediction log: expected_return must be finite")
    df = df.unique(subset=list(KEY), keep="first", maintain_order=True)
    rows = df.to_dicts()
    for row in rows:  # NaN is no value: stored as NULL (SQLite would turn it into NULL anyway)
        for c in FLOATS:
            if row[c] is not None and math.isnan(row[c]):
                row[c] = None
    return rows


def _insert_ignoring_duplicates(engine: Engine):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    if engine.dialect.name not in ("postgresql", "sqlite"):
        raise ValueError(f"prediction log: unsupported database {engine.dialect.name}")
    return (
        dialect.insert(prediction_log)
        .on_conflict_do_nothing(index_elements=list(KEY))
        .returning(prediction_log.c.id, sort_by_parameter_order=False)
    )


def write_predictions(url: str, frame: pl.DataFrame) -> int:
    """Log ``frame``'s predictions (columns of :data:`PREDICTION_LOG_SCHEMA`; those of :data:`OPTIONAL` may be
    absent, ``logged_at`` defaulting to now) in chunks of
    :data:`CHUNK` rows, in one transaction. Rows whose key is logged already are left as they are (first write
    wins), as is a repeated key within ``frame`` after its first row. Return the number of rows inserted."""
    rows = _rows(frame)
    if not rows:
        return 0
    engine = engine_for(url)
    stmt = _insert_ignoring_duplicates(engine)
    inserted = 0
    with engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            inserted += len(conn.execute(stmt, rows[i : i + CHUNK]).all())
    return inserted


def _frame(rows: Sequence, schema: dict[str, pl.DataType], datetimes: Sequence[str]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema)
    raw = pl.DataFrame([tuple(r) for r in rows], schema=list(schema), orient="row", infer_schema_length=None)
    return raw.with_columns(*(_to_utc(raw[c]) for c in datetimes)).cast(schema)  # type: ignore[arg-type]


def read_predictions(
    url: str,
    symbol: str | None = None,
    horizon: str | None = None,
    role: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
) -> pl.DataFrame:
    """Logged predictions (:data:`PREDICTION_LOG_SCHEMA`, also when none match), ``bar_ts >= since`` when given,
    sorted by symbol, horizon, model_version, role and bar_ts."""
    t = prediction_log.c
    query = select(*(t[c] for c in PREDICTION_LOG_SCHEMA))
    for col, value in (("symbol", symbol), ("horizon", horizon), ("role", role), ("model_version", version)):
        if value is not None:
            query = query.where(t[col] == value)
    if since is not None:
        if since.tzinfo is None:
            raise ValueError("read_predictions: since must be timezone-aware")
        query = query.where(t.bar_ts >= since.astimezone(UTC))
    query = query.order_by(t.symbol, t.horizon, t.model_version, t.role, t.bar_ts)
    with engine_for(url).connect() as conn:
        rows = conn.execute(query).all()
    return _frame(rows, PREDICTION_LOG_SCHEMA, ("bar_ts", "logged_at"))


def logged_series(url: str, role: str | None = None) -> pl.DataFrame:
    """One row per logged (symbol, horizon, model_version, role): its first and last bar_ts and row count
    (:data:`SERIES_SCHEMA`), sorted by symbol, horizon and first bar_ts."""
    t = prediction_log.c
    query = select(t.symbol, t.horizon, t.model_version, t.role, func.min(t.bar_ts), func.max(t.bar_ts), func.count())
    if role is not None:
        query = query.where(t.role == role)
    query = query.group_by(t.symbol, t.horizon, t.model_version, t.role)
    with engine_for(url).connect() as conn:
        rows = conn.execute(query).all()
    frame = _frame(rows, SERIES_SCHEMA, ("first_bar_ts", "last_bar_ts"))
    return frame.sort("symbol", "horizon", "first_bar_ts", "model_version", "role")
