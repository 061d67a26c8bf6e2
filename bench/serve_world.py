"""The served world of ``bench serve``: a lake of ``feature_matrix_main`` rows, a registry with two versions per
(symbol, horizon) and ``active`` on the first, and an operational store (the promotion ledger), all under one home.

The same recipe as the serving tests (``tests/serving_world.py``, which bench may not import): the seeded synthetic
raw sample of the universe's first five symbols goes through ``core.ingest.normalize`` and the core feature code
(hashing text encoder, 64 latents) into 5-minute rows written as the lake's date x symbol partitions; the 1h / 4h
labels train two Ridge backbones (alpha 10 and 1000) on the first 70% of the rows; each is registered for every
(symbol, horizon) and the first is made active through the ledger (``promotion.promote``). Built once per home
(a marker file says so) and reused by later runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.common import BenchSettings
from quantmm_resources.registry import ModelRegistry

BACKBONE = "ridge"
ALPHAS = (10.0, 1000.0)  # version 1 (active) and version 2 (the one the bench swaps to)
HORIZONS = ("1h", "4h")
N_SYMBOLS = 5
DAYS = 10
DIM = 64
SEED, SIGNAL_BETA = 7, 0.3
START = datetime(2025, 3, 1, tzinfo=UTC)
MARKER = "serve_world.json"


@dataclass(frozen=True)
class ServeWorld:
    """What the bench needs to know about a built world."""

    home: Path
    symbols: list[str]
    horizons: list[str]
    backbone: str
    contract: str
    versions: dict[str, list[str]]  # registered model name -> versions, oldest first
    rows_per_symbol: int
    build_seconds: float

    def describe(self) -> dict:
        return {
            "home": str(self.home),
            "symbols": self.symbols,
            "horizons": self.horizons,
            "backbone": f"{self.backbone} (alpha {ALPHAS[0]:g} active, alpha {ALPHAS[1]:g} swapped to)",
            "feature_contract": self.contract,
            "versions": self.versions,
            "feature_rows_per_symbol": self.rows_per_symbol,
            "latent_dim": DIM,
            "world_build_seconds": self.build_seconds,
        }


def serve_settings(home: Path, **extra) -> BenchSettings:
    """The settings of the served app on the bench home. The synthetic world is dated 2025, so the staleness and
    model-age limits are lifted (as the serving tests do): answers are not flagged degraded for being old."""
    fields = {
        "home": home,
        "text_encoder": "hashing",
        "ops_url": None,
        "dagster_pg_url": None,
        "mlflow_tracking_uri": None,
        "feature_staleness_minutes": 1e9,
        "model_max_age_days": 1e6,
        "alias_poll_seconds": 1.0,
    }
    return BenchSettings(**(fields | extra))


def registry_of(settings: BenchSettings) -> ModelRegistry:
    """The registry the app reads (``build_resources``' recipe)."""
    return ModelRegistry(tracking_uri=settings.resolved_mlflow_uri, artifact_root=str(settings.mlflow_artifacts))


def ensure_world(home: Path) -> ServeWorld:
    """The world under ``home``: read its marker, or build it."""
    marker = home / MARKER
    if marker.exists():
        doc = json.loads(marker.read_text())
        return ServeWorld(home=home, **doc)
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    doc = _build(serve_settings(home))
    doc["build_seconds"] = round(time.perf_counter() - t0, 1)
    marker.write_text(json.dumps(doc, indent=2))
    return ServeWorld(home=home, **doc)


def _embedder():
    """The hashing encoder behind a cache by content hash (a post linked to several symbols is embedded once)."""
    from quantmm_resources.text_encoder import hashing_embed

    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str], hashes: list[str]) -> np.ndarray:
        new = {h: t for t, h in zip(texts, hashes, strict=True) if h not in cache}
        if new:
            cache.update(zip(new, hashing_embed(list(new.values()), DIM), strict=True))
        return np.stack([cache[h] for h in hashes]) if hashes else np.zeros((0, DIM), np.float32)

    return embed


def _raw(settings: BenchSettings, symbols: list[str], days: int = DAYS):
    """The synthetic raw inputs of ``symbols`` over ``days`` (and two more), normalized as ingestion does."""
    from quantmm_assets.core.features.matrix import RawInputs
    from quantmm_assets.core.ingest import IngestParams, normalize
    from quantmm_resources.sources.synthetic import SyntheticExchange, SyntheticMacro, SyntheticSocial

    uni = settings.universe()
    end = START + timedelta(days=days + 2)
    ex = SyntheticExchange(seed=SEED, symbols=list(uni.symbols), signal_beta=SIGNAL_BETA)
    social = SyntheticSocial(seed=SEED, symbols=list(uni.symbols), text_signal=True)
    macro_start = START - timedelta(days=120)
    chosen = tuple(symbols)

    def norm(asset: str, frame: pl.DataFrame, start: datetime, only: tuple[str, ...] | None) -> pl.DataFrame:
        params = IngestParams(start=start, end=end, symbols=only, universe=uni, now=end + timedelta(days=30))
        return normalize(asset, frame, params).clean

    def per_symbol(fetch) -> pl.DataFrame:
        return pl.concat([fetch(s, START, end) for s in symbols], how="diagonal_relaxed")

    bars = per_symbol(lambda s, a, b: pl.concat([ex.fetch_bars(s, m, a, b) for m in ("perp", "spot")]))
    return RawInputs(
        bars=norm("market_bars_5m", bars, START, chosen),
        funding=norm("funding_rates", per_symbol(ex.fetch_funding), START, chosen),
        open_interest=norm("open_interest", per_symbol(ex.fetch_open_interest), START, chosen),
        metrics=norm("derivatives_metrics", per_symbol(ex.fetch_derivatives_metrics), START, chosen),
        macro=norm("macro_series", SyntheticMacro(seed=SEED).fetch_macro(macro_start, end), macro_start, None),
        posts=norm("social_posts_raw", social.fetch_posts(START, end), START, None),
        comments=norm("social_comments_raw", social.fetch_comments(START, end), START, None),
    )


def _build(settings: BenchSettings) -> dict:
    from quantmm_assets.core.costs import CostConfig
    from quantmm_assets.core.features.matrix import build_feature_rows, feature_contract
    from quantmm_assets.core.labels import HORIZONS as BARS
    from quantmm_assets.core.labels import labels_multi_horizon
    from quantmm_assets.core.signal import SignalConfig
    from quantmm_assets.models.data import model_data
    from quantmm_assets.models.registry import BACKBONES
    from quantmm_resources.lake import Lake, write_atomic
    from quantmm_resources.registry.promotion import promote

    symbols = list(settings.universe().symbols[:N_SYMBOLS])
    raw = _raw(settings, symbols)
    first, end = START + timedelta(days=1), START + timedelta(days=DAYS)
    matrix = build_feature_rows(raw, symbols, first, end, _embedder(), DIM)
    spread = matrix.select("symbol", "ts_event", "cs_spread_1d")
    bars_h = {h: BARS[h] for h in HORIZONS}
    labels = labels_multi_horizon(raw.bars, spread, first, end, CostConfig(), bars_h, funding=raw.funding)
    contract = feature_contract(DIM)
    names = [n for n in contract.names if n != "symbol_code"]

    lake = Lake(settings.lake_dir)
    keyed = matrix.with_columns(pl.col("ts_event").dt.date().cast(pl.Utf8).alias("__day"))
    for (day, symbol), part in keyed.group_by("__day", "symbol", maintain_order=True):
        write_atomic(part.drop("__day").sort("ts_event"), lake.partition_file("feature_matrix_main", f"{day}|{symbol}"))
    lake.write_feature_contract(contract.to_dict())

    data = model_data(matrix, labels, names, HORIZONS, latent_dim=DIM)
    train = np.flatnonzero(data.t < np.quantile(data.t, 0.7))
    inner = [(np.setdiff1d(train, b), b) for b in np.array_split(train, 3)]
    models = [BACKBONES[BACKBONE](random_seed=SEED, alpha=a).fit(data, train, inner) for a in ALPHAS]

    registry = registry_of(settings)
    signal = SignalConfig(score_threshold={"1h": 0.01}, confidence_threshold={"1h": 0.5})
    refit_end = matrix["ts_event"].max() - timedelta(days=3)
    lineage = {"window": {"refit_end": str(refit_end)}, "cost_configs": [CostConfig().as_params()]}
    versions: dict[str, list[str]] = {}
    for symbol in symbols:
        example = matrix.filter(pl.col("symbol") == symbol).select("symbol", "ts_event", *contract.names).head(5)
        for h in HORIZONS:
            name = registry.model_name(symbol, h)
            versions[name] = [
                registry.register_candidate(
                    m, symbol, h, signal, contract.version, names, DIM, lineage, np.zeros(50), example
                )
                for m in models
            ]
            promote(registry, settings.resolved_ops_url, name, versions[name][0], "bench", "serve world", {}, None)
    per_symbol = matrix.group_by("symbol").len()["len"].to_list()
    return {
        "symbols": symbols,
        "horizons": list(HORIZONS),
        "backbone": BACKBONE,
        "contract": contract.version,
        "versions": versions,
        "rows_per_symbol": int(min(per_symbol)),
    }
