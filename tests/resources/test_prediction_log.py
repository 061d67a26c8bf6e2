"""The prediction log (quantmm_resources/prediction_log.py) on SQLite and PostgreSQL: round trip, first write wins,
typed empty frames."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_resources import prediction_log as plog
from quantmm_resources.opstore import engine_for
from quantmm_resources.prediction_log import (
    PREDICTION_LOG_SCHEMA,
    SERIES_SCHEMA,
    logged_series,
    read_predictions,
    write_predictions,
)

PG = "postgresql://postgres@127.0.0.1:5432"
T0 = datetime(2025, 3, 4, tzinfo=UTC)


def predictions(n: int, version: str = "3", role: str = "active", symbol: str = "BTCUSDT", offset: float = 0.0):
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "horizon": ["1h"] * n,
            "bar_ts": [T0 + timedelta(minutes=5 * i) for i in range(n)],
            "model_version": [version] * n,
            "role": [role] * n,
            "expected_return": [offset + 0.001 * i for i in range(n)],
            "signal_confidence": [0.6] * n,
            "vol_forecast": [0.02] * n,
            "position": [1.0] * n,
            "cost": [0.0011] * n,
            "gate": [0.25 * (i % 5) for i in range(n)],
            "text_contribution": [0.0001 * i for i in range(n)],
            "text_missing": [i % 2 == 0 for i in range(n)],
            "logged_at": [T0 + timedelta(minutes=5 * i, seconds=3) for i in range(n)],
        }
    )


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


def round_trip_and_first_write_wins(url: str) -> None:
    frame = predictions(4)
    assert write_predictions(url, frame) == 4
    back = read_predictions(url)
    assert back.schema == pl.Schema(PREDICTION_LOG_SCHEMA)
    assert back.equals(frame.select(list(PREDICTION_LOG_SCHEMA)).cast(PREDICTION_LOG_SCHEMA))
    # the same keys again, with other values, and two new rows: only the new rows are written
    assert write_predictions(url, predictions(6, offset=1.0)) == 2
    again = read_predictions(url)
    assert again.height == 6 and again["expected_return"].head(4).to_list() == frame["expected_return"].to_list()
    assert again["expected_return"][4] == pytest.approx(1.004)
    # filters: version, role, symbol, horizon, since (bar_ts >= since)
    assert write_predictions(url, predictions(3, version="4", role="shadow")) == 3
    assert read_predictions(url, role="shadow", version="4").height == 3
    assert read_predictions(url, role="active", version="4").is_empty()
    assert read_predictions(url, symbol="BTCUSDT", horizon="1h", since=T0 + timedelta(minutes=10)).height == 4 + 1
    assert read_predictions(url, horizon="4h").schema == pl.Schema(PREDICTION_LOG_SCHEMA)
    series = logged_series(url)
    assert series.schema == pl.Schema(SERIES_SCHEMA)
    assert series.select("model_version", "role", "n_rows").rows() == [("3", "active", 6), ("4", "shadow", 3)]
    assert series["last_bar_ts"][0] == T0 + timedelta(minutes=25)


def test_round_trip_and_first_write_wins_on_sqlite(url):
    round_trip_and_first_write_wins(url)


def test_empty_log_and_empty_writes_are_typed(url):
    empty = read_predictions(url, symbol="BTCUSDT")
    assert empty.is_empty() and empty.schema == pl.Schema(PREDICTION_LOG_SCHEMA)
    assert logged_series(url).schema == pl.Schema(SERIES_SCHEMA)
    assert write_predictions(url, predictions(0)) == 0


def test_chunks_duplicates_in_one_frame_defaults_and_nan(url, monkeypatch):
    monkeypatch.setattr(plog, "CHUNK", 7)
    frame = predictions(20).drop("logged_at", "position")
    frame = pl.concat([frame, frame.head(3).with_columns(expected_return=pl.lit(9.0))])  # repeated keys: first wins
    frame = frame.with_columns(vol_forecast=pl.when(pl.int_range(pl.len()) == 0).then(float("nan")).otherwise(0.02))
    before = datetime.now(UTC)
    assert write_predictions(url, frame) == 20
    back = read_predictions(url)
    assert back.height == 20 and back["expected_return"].max() < 1
    assert back["position"].null_count() == 20 and back["vol_forecast"].null_count() == 1  # NaN is stored as null
    assert back["logged_at"].min() >= before - timedelta(seconds=1)


def test_bad_frames_are_refused(url):
    frame = predictions(2)
    with pytest.raises(ValueError, match="missing columns"):
        write_predictions(url, frame.drop("role"))
    with pytest.raises(ValueError, match="timezone-aware"):
        write_predictions(url, frame.with_columns(pl.col("bar_ts").dt.replace_time_zone(None)))
    with pytest.raises(ValueError, match="role must be one of"):
        write_predictions(url, frame.with_columns(role=pl.lit("candidate")))
    with pytest.raises(ValueError, match="finite"):
        write_predictions(url, frame.with_columns(expected_return=pl.lit(float("nan"))))
    with pytest.raises(ValueError, match="timezone-aware"):
        read_predictions(url, since=datetime(2025, 3, 4))
    assert read_predictions(url).is_empty()


@pytest.fixture
def pg_url(pg_database):
    url = f"{PG}/{pg_database}"
    yield url
    engine_for(url).dispose()


def test_round_trip_and_first_write_wins_on_postgres(pg_url):
    assert engine_for(pg_url).dialect.name == "postgresql"
    round_trip_and_first_write_wins(pg_url)


def test_an_older_store_gains_the_new_columns_and_keeps_its_rows(tmp_path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the prediction log as the first release created it
        conn.execute(
            "CREATE TABLE prediction_log (id INTEGER PRIMARY KEY, symbol VARCHAR(32) NOT NULL, horizon VARCHAR(8) NOT "
            "NULL, bar_ts DATETIME NOT NULL, model_version VARCHAR(32) NOT NULL, role VARCHAR(16) NOT NULL, "
            "expected_return FLOAT NOT NULL, signal_confidence FLOAT, vol_forecast FLOAT, position FLOAT, logged_at "
            "DATETIME NOT NULL, CONSTRAINT uq_prediction_log_key UNIQUE (symbol, horizon, bar_ts, model_version, role))"
        )
        conn.execute(
            "INSERT INTO prediction_log VALUES (1, 'BTCUSDT', '1h', '2025-03-04 00:00:00.000000', '1', 'active', 0.5, "
            "NULL, NULL, NULL, '2025-03-04 00:00:01.000000')"
        )
    url = f"sqlite:///{db}"
    assert write_predictions(url, predictions(2, version="2")) == 2
    back = read_predictions(url)
    assert back.height == 3 and back["cost"].to_list() == [None, 0.0011, 0.0011]
    assert back.filter(pl.col("model_version") == "2")["text_missing"].to_list() == [True, False]
