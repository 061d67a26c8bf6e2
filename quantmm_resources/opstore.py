"""The operational store: SQLite in WAL mode by default, PostgreSQL in production; one SQLAlchemy Core path.

Tables: ``ingest_rejects`` (every source row that ingestion quarantined, with the reason); the promotion ledger
(``promotion_ledger``: the authoritative history of who moved ``active`` of a registered model, from which version to
which, with the gate report and the reason; ``promotion_heads``: one row per registered model, the ledger's current
``active`` version, the row a promotion compares-and-swaps so that of two concurrent promotions one wins); and the
``prediction_log`` (one row per symbol, horizon, bar, model version and role ``active`` / ``shadow``), written by
the serving app and read by the drift sensor.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

metadata = MetaData()

ingest_rejects = Table(
    "ingest_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset", String(64), nullable=False),
    Column("partition", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("run_id", String(64)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_ingest_rejects_asset_partition", "asset", "partition"),
)

promotion_ledger = Table(
    "promotion_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(128), nullable=False),  # the registered model, e.g. quantmm.BTCUSDT.1h
    Column("action", String(16), nullable=False),  # promote | rollback
    Column("from_version", String(32)),  # the active version before (null: none)
    Column("to_version", String(32), nullable=False),
    Column("operator", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("gate_report", Text),  # JSON
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_promotion_ledger_model", "model_name", "id"),
)

promotion_heads = Table(
    "promotion_heads",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("active_version", String(32), nullable=False),
    Column("ledger_id", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

prediction_log = Table(
    "prediction_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("symbol", String(32), nullable=False),
    Column("horizon", String(8), nullable=False),
    Column("bar_ts", DateTime(timezone=True), nullable=False),  # the ts_event of the feature row predicted from
    Column("model_version", String(32), nullable=False),
    Column("role", String(16), nullable=False),  # active | shadow
    Column("expected_return", Float, nullable=False),
    Column("signal_confidence", Float),
    Column("vol_forecast", Float),
    Column("position", Float),
    Column("cost", Float),  # cost_h of the bar (the signal's)
    Column("gate", Float),  # the fusion gate in [0, 1]
    Column("text_contribution", Float),
    Column("text_missing", Boolean),  # no text in the row: the prediction is y_base
    Column("logged_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("symbol", "horizon", "bar_ts", "model_version", "role", name="uq_prediction_log_key"),
    Index("ix_prediction_log_series", "symbol", "horizon", "role", "bar_ts"),
)


# -- the paper-trading loop (quantmm_serving/paper): one row per step, order, fill, settlement; a kill switch per book
paper_steps = Table(
    "paper_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("book", String(64), nullable=False),
    Column("bar_ts", DateTime(timezone=True), nullable=False),  # the bar the step closed on (its decision bar)
    Column("mode", String(16), nullable=False),  # live | replay
    Column(
        "status", Text, nullable=False
    ),  # traded | decided (no order needed) | held (no decision due) | refused: ... | halted: ...
    Column("equity", Float, nullable=False),
    Column("cash", Float, nullable=False),
    Column("gross_exposure", Float, nullable=False),
    Column("net_exposure", Float, nullable=False),
    Column("state", Text, nullable=False),  # JSON: positions, marks, the step's sources and refusals
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("book", "bar_ts", name="uq_paper_steps_book_bar"),
)

paper_orders = Table(
    "paper_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("book", String(64), nullable=False),
    Column("bar_ts", DateTime(timezone=True), nullable=False),  # decision bar; it fills from the next bar on
    Column("symbol", String(32), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("target_quantity", Float, nullable=False),
    Column("target_weight", Float, nullable=False),
    Column("policy", String(32), nullable=False),
    Column("bucket", String(32), nullable=False),
    Column("limit_price", Float),
    Column("reference_price", Float, nullable=False),
    Column("participation_cap", Float, nullable=False),
    Column("slippage_cap_bps", Float, nullable=False),
    Column("contributions", Text, nullable=False),  # JSON: the weight of each horizon
    UniqueConstraint("book", "bar_ts", "symbol", name="uq_paper_orders_key"),
)

paper_fills = Table(
    "paper_fills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("book", String(64), nullable=False),
    Column("order_bar_ts", DateTime(timezone=True), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("bar_ts", DateTime(timezone=True), nullable=False),  # the bar it filled against
    Column("quantity", Float, nullable=False),
    Column("theoretical_price", Float, nullable=False),
    Column("fill_price", Float, nullable=False),
    Column("slippage", Float, nullable=False),
    Column("impact", Float, nullable=False),
    Column("fee", Float, nullable=False),
    Column("delay", Float, nullable=False),
    Column("remaining", Float, nullable=False),
    UniqueConstraint("book", "symbol", "bar_ts", name="uq_paper_fills_key"),
)

paper_funding = Table(
    "paper_funding",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("book", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("settlement_ts", DateTime(timezone=True), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("mark_price", Float, nullable=False),
    Column("rate", Float, nullable=False),
    Column("payment", Float, nullable=False),
    UniqueConstraint("book", "symbol", "settlement_ts", name="uq_paper_funding_key"),
)

paper_control = Table(
    "paper_control",
    metadata,
    Column("book", String(64), primary_key=True),
    Column("halted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("operator", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_CHUNK = 500


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL; SQLite gets WAL and a busy timeout so several processes can write."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    _create_schema(engine)
    return engine


def _create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create the tables; several processes may race to do it on a fresh database (the loser retries)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns a table gained since a store was created (an older store keeps its rows)."""
    found = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(dialect=engine.dialect)
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


class OperationalStore(dg.ConfigurableResource):
    """Shared operational state: ingest rejects, the promotion ledger, the prediction log (paper trading later)."""

    url: str

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    def replace_rejects(
        self, asset: str, partitions: Iterable[str], rejects: pl.DataFrame, run_id: str | None = None
    ) -> int:
        """Replace the rejects of ``asset`` for these partitions (idempotent re-materialization)."""
        keys = sorted(set(partitions))  # only this run's partitions: never another run's rejects
        now = datetime.now(UTC)
        # PostgreSQL text cannot hold NUL bytes; the raw row is kept, escaped.
        clean = rejects.select(
            "partition", *(pl.col(c).str.replace_all("\x00", "\\u0000", literal=True) for c in ("reason", "raw"))
        )
        rows = [
            {"asset": asset, "partition": p, "reason": r, "raw": raw, "run_id": run_id, "recorded_at": now}
            for p, r, raw in clean.iter_rows()
        ]
        with self.engine.begin() as conn:
            for i in range(0, len(keys), _CHUNK):
                conn.execute(
                    delete(ingest_rejects).where(
                        ingest_rejects.c.asset == asset, ingest_rejects.c.partition.in_(keys[i : i + _CHUNK])
                    )
                )
            if rows:
                conn.execute(insert(ingest_rejects), rows)
        return len(rows)

    def count_rejects(self, asset: str | None = None) -> int:
        query = select(func.count()).select_from(ingest_rejects)
        if asset:
            query = query.where(ingest_rejects.c.asset == asset)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def rejects(self, asset: str | None = None) -> pl.DataFrame:
        """Rejected rows (asset, partition, reason, raw, run_id, recorded_at)."""
        query = select(ingest_rejects).order_by(ingest_rejects.c.id)
        if asset:
            query = query.where(ingest_rejects.c.asset == asset)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        schema = {
            "id": pl.Int64,
            "asset": pl.Utf8,
            "partition": pl.Utf8,
            "reason": pl.Utf8,
            "raw": pl.Utf8,
            "run_id": pl.Utf8,
            "recorded_at": pl.Datetime("us", "UTC"),
        }
        return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
