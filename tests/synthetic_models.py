"""Model data from the synthetic source of the foundation issue (raw sample -> core features -> labels).

The whole pipeline runs in core (no Dagster): ``synthetic_raw`` generates every raw input with the planted text
signal on or off, ``build_feature_rows`` builds the matrix (hashing text encoder: deterministic and fast), and
``labels_multi_horizon`` the 1h / 4h labels. Rows are kept at each hour's close (the planted sentiment moves the
next hour), which keeps the fits small. Cached per world in the test process and, under pytest-xdist, in a folder
the workers of one run share (``SHARED_DIR``): each world is built once per run, not once per worker.
"""

from __future__ import annotations

import fcntl
import tomllib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.features.matrix import RawInputs, build_feature_rows, feature_contract
from quantmm_assets.core.folds import FoldSpec, walk_forward_folds
from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.labels import labels_multi_horizon
from quantmm_assets.core.universe import Universe
from quantmm_assets.models.data import ModelData, model_data
from quantmm_resources.sources.synthetic import SyntheticExchange, SyntheticMacro, SyntheticSocial
from quantmm_resources.text_encoder import hashing_embed

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")
START = datetime(2025, 3, 1, tzinfo=UTC)
HORIZONS = {"1h": 12, "4h": 48}
DIM = 64
# The planted drift, raised from the source's default 0.07 so that 90 test days decide the fusion tests.
SIGNAL_BETA = 0.3
# Set by tests/conftest.py on each pytest-xdist worker: the run's shared folder of built worlds (Parquet).
SHARED_DIR: Path | None = None
SPEC = FoldSpec(n_folds=3, test_days=20, min_train_days=40, embargo=timedelta(days=1), purge=timedelta(days=1))


def _universe() -> Universe:
    with open(ROOT / "quantmm_resources" / "config" / "universe.toml", "rb") as fh:
        return Universe.from_dict(tomllib.load(fh))


def _raw(days: int, text_signal: bool, seed: int, signal_beta: float) -> RawInputs:
    end = START + timedelta(days=days + 2)
    uni = _universe()
    ex = SyntheticExchange(seed=seed, symbols=list(uni.symbols), signal_beta=signal_beta)
    social = SyntheticSocial(seed=seed, symbols=list(uni.symbols), text_signal=text_signal)
    macro_start = START - timedelta(days=120)

    def norm(asset: str, frame: pl.DataFrame, start: datetime, symbols: tuple[str, ...] | None) -> pl.DataFrame:
        params = IngestParams(start=start, end=end, symbols=symbols, universe=uni, now=end + timedelta(days=30))
        return normalize(asset, frame, params).clean

    def per_symbol(fetch) -> pl.DataFrame:
        return pl.concat([fetch(s, START, end) for s in SYMBOLS], how="diagonal_relaxed")

    bars = per_symbol(lambda s, a, b: pl.concat([ex.fetch_bars(s, m, a, b) for m in ("perp", "spot")]))
    return RawInputs(
        bars=norm("market_bars_5m", bars, START, SYMBOLS),
        funding=norm("funding_rates", per_symbol(ex.fetch_funding), START, SYMBOLS),
        open_interest=norm("open_interest", per_symbol(ex.fetch_open_interest), START, SYMBOLS),
        metrics=norm("derivatives_metrics", per_symbol(ex.fetch_derivatives_metrics), START, SYMBOLS),
        macro=norm("macro_series", SyntheticMacro(seed=seed).fetch_macro(macro_start, end), macro_start, None),
        posts=norm("social_posts_raw", social.fetch_posts(START, end), START, None),
        comments=norm("social_comments_raw", social.fetch_comments(START, end), START, None),
    )


@lru_cache(maxsize=6)
def synthetic_frames(
    days: int = 120, text_signal: bool = True, seed: int = 7, signal_beta: float = SIGNAL_BETA
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the hourly feature matrix and the long 1h / 4h labels of ``days`` days of SYMBOLS."""
    if SHARED_DIR is None:
        return _build_frames(days, text_signal, seed, signal_beta)
    SHARED_DIR.mkdir(parents=True, exist_ok=True)
    key = f"{days}d-text{int(text_signal)}-seed{seed}-beta{signal_beta}"
    paths = (SHARED_DIR / f"{key}.matrix.parquet", SHARED_DIR / f"{key}.labels.parquet")
    with open(SHARED_DIR / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds; the others wait, then read its files
        if not all(path.exists() for path in paths):
            for frame, path in zip(_build_frames(days, text_signal, seed, signal_beta), paths, strict=True):
                frame.write_parquet(path)
        return pl.read_parquet(paths[0]), pl.read_parquet(paths[1])


def _cached_hashing_embed():
    """The hashing encoder behind a cache by content hash, as the TextEncoder resource keeps one: a post linked to
    several symbols is embedded once per world."""
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str], hashes: list[str]) -> np.ndarray:
        new = {h: t for t, h in zip(texts, hashes, strict=True) if h not in cache}
        if new:
            cache.update(zip(new, hashing_embed(list(new.values()), DIM), strict=True))
        return np.stack([cache[h] for h in hashes]) if hashes else np.zeros((0, DIM), np.float32)

    return embed


def _build_frames(days: int, text_signal: bool, seed: int, signal_beta: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    raw = _raw(days, text_signal, seed, signal_beta)
    first, end = START + timedelta(days=1), START + timedelta(days=days)
    matrix = build_feature_rows(raw, list(SYMBOLS), first, end, _cached_hashing_embed(), DIM)
    matrix = matrix.filter(pl.col("ts_event").dt.minute() == 0)
    spread = matrix.select("symbol", "ts_event", "cs_spread_1d")
    return matrix, labels_multi_horizon(raw.bars, spread, first, end, CostConfig(), HORIZONS, funding=raw.funding)


def synthetic_model_data(
    days: int = 120, text_signal: bool = True, seed: int = 7, signal_beta: float = SIGNAL_BETA
) -> tuple[ModelData, pl.DataFrame]:
    """Return the model data of :func:`synthetic_frames` and its walk-forward folds (``SPEC``)."""
    matrix, labels = synthetic_frames(days, text_signal, seed, signal_beta)
    names = [n for n in feature_contract(DIM).names if n != "symbol_code"]
    data = model_data(matrix, labels, names, tuple(HORIZONS), latent_dim=DIM)
    return data, walk_forward_folds(START + timedelta(days=1), START + timedelta(days=days), SPEC)


SYMBOL_NAMES = dict(enumerate(SYMBOLS))
