"""Dagster event-log storage for the embedded SQLite instance that keeps one engine per database.

Stock ``SqliteEventLogStorage`` builds a new SQLAlchemy engine, connection and statement compilation for
every statement and closes the connection after it; in WAL mode the last close also checkpoints (an
fsync). A single-run backfill writes several events per partition, so on this 2-core machine a range
run over 2,000 partitions spent most of its time there (40 ms per partition for a trivial asset). This
subclass changes only ``_connect`` and ``has_table`` (asked once per stored event, with a new engine each
time): engines (with their compiled-statement cache and a small pool) are kept per shard, most recently used
first, ``synchronous=NORMAL`` is set on their connections, and a table once found is remembered. Everything
else — schema, migrations, queries, the per-run database layout — is Dagster's own. `dagster.yaml` under
``$QUANTMM_HOME/dagster`` names it for the embedded default; production uses dagster-postgres.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

MAX_OPEN_SHARDS = 8
BUSY_TIMEOUT_S = 30


def _pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with long-lived engines per shard (index + the most recent runs)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        self._has_table_engine: Engine | None = None
        self._has_table_lock = threading.Lock()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard), pool_size=2, max_overflow=4, connect_args={"timeout": BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", _pragmas)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN_SHARDS:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Stock: a new engine and a PRAGMA per stored event (~0.5 ms each). Tables only appear (migrations),
        so a positive answer is remembered; a negative one is asked again."""
        if table_name in self._tables_present:
            return True
        # Dagster asks from inside an open index connection, which holds ``_db_lock``: use an engine of its own
        with self._has_table_lock:
            if self._has_table_engine is None:
                self._has_table_engine = create_engine(
                    self.conn_string_for_shard(INDEX_SHARD_NAME),
                    poolclass=NullPool,
                    connect_args={"timeout": BUSY_TIMEOUT_S},
                )
            engine = self._has_table_engine
        with engine.connect() as conn:
            present = bool(engine.dialect.has_table(conn, table_name))
        if present:
            self._tables_present.add(table_name)
        return present

    def _dispose(self, shard: str | None = None) -> None:
        for key in [shard] if shard else list(self._engines):
            engine = self._engines.pop(key, None)
            if engine is not None:
                engine.dispose()

    def delete_events(self, run_id: str) -> None:
        self._dispose(run_id)
        super().delete_events(run_id)

    def wipe(self) -> None:
        self._dispose()
        self._tables_present.clear()
        self._has_table_engine = None
        super().wipe()

    def dispose(self) -> None:
        self._dispose()
        super().dispose()
