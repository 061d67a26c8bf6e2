"""A served world for the serving tests: a lake, a registry with active versions, an operational store.

The synthetic raw sample (``tests/synthetic_models``) goes through the core feature code into 5-minute
``feature_matrix_main`` rows of two symbols, written as the lake's date x symbol partitions with the bars and the
funding rates beside them; a Ridge backbone fitted on those rows is registered for (symbol, 1h) and (symbol, 4h)
in a SQLite MLflow and made active through the ledger. Built once per process (:func:`base_world`); each test gets a
copy of the registry and store databases (:func:`served_world`), so promotions and rollbacks never leak between tests.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.features.matrix import build_feature_rows, feature_contract
from quantmm_assets.core.labels import labels_multi_horizon
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.models.data import model_data
from quantmm_assets.models.registry import BACKBONES
from quantmm_resources.lake import Lake, write_atomic
from quantmm_resources.opstore import engine_for
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.registry.promotion import promote
from quantmm_resources.settings import QuantmmSettings
from tests.synthetic_models import DIM, SIGNAL_BETA, START, _cached_hashing_embed, _raw

SERVED = ("BTCUSDT", "ETHUSDT")
HORIZONS = ("1h", "4h")
DAYS = 10
SIGNAL = SignalConfig(score_threshold={"1h": 0.01}, confidence_threshold={"1h": 0.5})
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}


@dataclass(frozen=True)
class World:
    home: Path
    matrix: pl.DataFrame  # every feature row written to the lake (5m, both symbols)
    labels: pl.DataFrame
    names: list[str]
    contract: str
    versions: dict[tuple[str, str], list[str]]  # (symbol, horizon) -> versions registered, oldest first

    def settings(self, home: Path | None = None, **extra) -> QuantmmSettings:
        home = home or self.home
        return QuantmmSettings(
            home=home,
            serve_tokens=TOKENS,
            feature_staleness_minutes=1e9,
            model_max_age_days=1e6,
            alias_poll_seconds=3600,
            feature_poll_seconds=3600,
            **extra,
        )

    def registry(self, home: Path | None = None) -> ModelRegistry:
        home = home or self.home
        return ModelRegistry(
            tracking_uri=f"sqlite:///{home / 'mlflow.db'}", artifact_root=str(self.home / "mlartifacts")
        )


def _write_lake(lake: Lake, asset: str, frame: pl.DataFrame) -> None:
    keyed = frame.with_columns(pl.col("ts_event").dt.date().cast(pl.Utf8).alias("__day"))
    for (day, symbol), part in keyed.group_by("__day", "symbol", maintain_order=True):
        write_atomic(part.drop("__day").sort("ts_event"), lake.partition_file(asset, f"{day}|{symbol}"))


@lru_cache(maxsize=1)
def base_world() -> World:
    """Build the world once per process under a temporary home."""
    home = Path(tempfile.mkdtemp(prefix="quantmm-serving-"))
    raw = _raw(DAYS, True, 7, SIGNAL_BETA)
    first, end = START + timedelta(days=1), START + timedelta(days=DAYS)
    matrix = build_feature_rows(raw, list(SERVED), first, end, _cached_hashing_embed(), DIM)
    spread = matrix.select("symbol", "ts_event", "cs_spread_1d")
    bars_h = {"1h": 12, "4h": 48}
    labels = labels_multi_horizon(raw.bars, spread, first, end, CostConfig(), bars_h, funding=raw.funding)
    contract = feature_contract(DIM)
    names = [n for n in contract.names if n != "symbol_code"]
    lake = Lake(home / "lake")
    _write_lake(lake, "feature_matrix_main", matrix)
    served = pl.col("symbol").is_in(list(SERVED))
    _write_lake(lake, "market_bars_5m", raw.bars.filter(served & (pl.col("market") == "perp")))
    _write_lake(lake, "funding_rates", raw.funding.filter(served))
    _write_lake(lake, "labels_multi_horizon", labels)
    lake.write_feature_contract(contract.to_dict())
    data = model_data(matrix, labels, names, HORIZONS, latent_dim=DIM)
    t = data.t
    train = np.flatnonzero(t < np.quantile(t, 0.7))
    inner = [(np.setdiff1d(train, b), b) for b in np.array_split(train, 3)]
    models = [BACKBONES["ridge"](random_seed=7, alpha=a).fit(data, train, inner) for a in (10.0, 1000.0)]
    registry = World(home, matrix, labels, names, contract.version, {}).registry()
    refit_end = matrix["ts_event"].max() - timedelta(days=3)
    lineage = {"window": {"refit_end": str(refit_end)}, "cost_configs": [CostConfig().as_params()]}
    versions: dict[tuple[str, str], list[str]] = {}
    ops = f"sqlite:///{home / 'ops.db'}"
    for symbol in SERVED:
        example = matrix.filter(pl.col("symbol") == symbol).select("symbol", "ts_event", *contract.names).head(5)
        for h in HORIZONS:
            registered = [
                registry.register_candidate(
                    m, symbol, h, SIGNAL, contract.version, names, DIM, lineage, reference(m, data, example, h), example
                )
                for m in models
            ]
            versions[(symbol, h)] = registered
            promote(registry, ops, registry.model_name(symbol, h), registered[0], "fixture", "serving world", {}, None)
    with engine_for(ops).begin() as conn:  # fold the WAL into ops.db: the tests copy that one file
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return World(home, matrix, labels, names, contract.version, versions)


def reference(model, data, example: pl.DataFrame, horizon: str) -> pl.DataFrame:
    """The version's reference: its predictions of the example symbol's rows (timed, as candidates register them)."""
    rows = np.flatnonzero(data.symbol_code == example["symbol_code"][0])
    pred = model.predict(data, rows)[horizon]
    ts = pl.Series(data.t[rows]).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame({"ts_event": ts, "expected_return": pred.expected_return})


def served_world(tmp_path: Path) -> tuple[World, Path]:
    """The base world with its own copy of the registry and store databases under ``tmp_path``; the lake and
    artifacts are shared read-only. Return the world and the test's home."""
    world = base_world()
    for name in ("mlflow.db", "ops.db"):
        shutil.copy(world.home / name, tmp_path / name)
    (tmp_path / "lake").symlink_to(world.home / "lake")
    return world, tmp_path
