"""Model inputs: the feature matrix joined to the wide labels, as numpy arrays (DESIGN section 3).

A :class:`ModelData` row is one feature-matrix row ``(symbol, ts_event)`` with its labels for every horizon
(NaN / ``label_ok = False`` where a label is absent or incomplete). Rows are sorted by ``(t, symbol_code)``.
Nothing here is fitted on data: imputation, scaling and the text projection live in the model stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from quantmm_assets.core.features.matrix import LATENT_COLUMNS, TEXT_COVERAGE_COLUMNS
from quantmm_assets.core.text.features import TEXT_BUCKET_FEATURES

DEFAULT_HORIZONS = ("1h", "4h", "1d", "7d")
LABEL_COLUMNS = ("symbol", "ts_event", "horizon", "ret", "rv", "cost", "funding", "complete")
DEFAULT_LATENT_DIM = 384
# Flat columns that come from text: they feed delta(text), never y_base(price, derivatives, macro).
TEXT_FLAT_COLUMNS = (*TEXT_BUCKET_FEATURES, *TEXT_COVERAGE_COLUMNS, "post_n", "comment_n")


def base_and_text_columns(feature_names: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Return the indices of the base (non-text) and the text flat columns of ``feature_names``."""
    base = [j for j, n in enumerate(feature_names) if n not in TEXT_FLAT_COLUMNS]
    return base, [j for j, n in enumerate(feature_names) if n in TEXT_FLAT_COLUMNS]


@dataclass(frozen=True, eq=False)
class ModelData:
    """Arrays a backbone consumes; ``H = len(horizons)``, ``f = len(feature_names)``."""

    x: np.ndarray  # (n, f) float32, flat features (NaN = null)
    text: np.ndarray  # (n, 2 * dim) float32, post then comment latent (zeros where null)
    text_mask: np.ndarray  # (n,) bool, any latent present
    ret: np.ndarray  # (n, H) float64
    rv: np.ndarray  # (n, H) float64
    cost: np.ndarray  # (n, H) float64
    label_ok: np.ndarray  # (n, H) bool, label complete
    t: np.ndarray  # (n,) int64 microseconds since the epoch (UTC)
    symbol_code: np.ndarray  # (n,) int64
    horizons: tuple[str, ...]
    feature_names: tuple[str, ...]
    funding: np.ndarray | None = None  # (n, H) float64, funding_h a long pays (NaN = unknown; None: all unknown)

    def __post_init__(self) -> None:
        n, h = len(self.t), len(self.horizons)
        if self.funding is None:
            object.__setattr__(self, "funding", np.full((n, h), np.nan))
        shapes = {
            "x": (n, len(self.feature_names)),
            "text_mask": (n,),
            "ret": (n, h),
            "rv": (n, h),
            "cost": (n, h),
            "funding": (n, h),
            "label_ok": (n, h),
            "symbol_code": (n,),
        }
        bad = {k: getattr(self, k).shape for k, s in shapes.items() if getattr(self, k).shape != s}
        if self.text.ndim != 2 or self.text.shape[0] != n or self.text.shape[1] % 2:
            bad["text"] = self.text.shape
        if bad:
            raise ValueError(f"ModelData: inconsistent shapes {bad} for n={n}, H={h}, f={len(self.feature_names)}")

    @property
    def n(self) -> int:
        return len(self.t)

    @property
    def latent_dim(self) -> int:
        return self.text.shape[1] // 2

    @property
    def has_text(self) -> bool:
        """Whether any row carries a text latent: a backbone's text stage is on only for data that has text
        (the ``no_text`` variant carries none), so whether text is used is read from the data, never passed."""
        return bool(self.text_mask.any())


def _missing(frame: pl.DataFrame, needed: list[str] | tuple[str, ...], what: str) -> None:
    gone = [c for c in needed if c not in frame.columns]
    if gone:
        raise ValueError(f"model_data: {what} is missing columns {gone}")


def _latents(col: pl.Series, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (n, dim) float32 latents of a List column (zeros where null) and the presence mask."""
    present = col.is_not_null().to_numpy()
    out = np.zeros((len(col), dim), dtype=np.float32)
    if present.any():
        kept = col.filter(pl.Series(present))
        lens = kept.list.len().to_numpy()
        if (lens != dim).any():
            raise ValueError(f"model_data: {col.name} has lists of length {sorted(set(lens.tolist()))}, expected {dim}")
        vals = kept.explode().cast(pl.Float32).fill_null(0.0).to_numpy().reshape(-1, dim)
        out[present] = np.nan_to_num(vals, nan=0.0, posinf=0.0, neginf=0.0)
    return out, present


def _latent_dim(matrix: pl.DataFrame, latent_dim: int | None) -> int:
    if latent_dim is not None:
        return latent_dim
    for c in LATENT_COLUMNS:
        first = matrix[c].drop_nulls()
        if len(first):
            return int(first.list.len()[0])
    return DEFAULT_LATENT_DIM


def model_data(
    matrix: pl.DataFrame,
    labels: pl.DataFrame,
    feature_names: list[str],
    horizons: tuple[str, ...] = DEFAULT_HORIZONS,
    latent_dim: int | None = None,
) -> ModelData:
    """Join ``matrix`` rows to the long ``labels`` pivoted wide on (symbol, ts_event); return :class:`ModelData`.

    ``feature_names`` is the ordered feature list (e.g. ``feature_contract(...).names``); the latent columns in
    it are not flat features and go to ``text``. ``latent_dim`` is inferred from the data when not given.
    """
    horizons = tuple(horizons)
    if not horizons:
        raise ValueError("model_data: needs at least one horizon")
    flat = [c for c in feature_names if c not in LATENT_COLUMNS]
    _missing(matrix, ["symbol", "ts_event", *flat, *LATENT_COLUMNS], "matrix")
    _missing(labels, LABEL_COLUMNS, "labels")
    present_h = set(labels["horizon"].unique().to_list())
    if labels.height and (absent := [h for h in horizons if h not in present_h]):
        raise ValueError(f"model_data: labels have no rows for horizons {absent} (have {sorted(present_h)})")
    keys = ["symbol", "ts_event"]
    if matrix.select(pl.struct(keys).is_duplicated().any()).item():
        raise ValueError("model_data: matrix has duplicate (symbol, ts_event) rows")
    ts = pl.col("ts_event").cast(pl.Datetime("us", "UTC"))
    out = matrix.with_columns(ts)
    if "symbol_code" not in out.columns:
        codes = {s: i for i, s in enumerate(sorted(out["symbol"].unique().to_list()))}
        out = out.with_columns(pl.col("symbol").replace_strict(codes, return_dtype=pl.Int64).alias("symbol_code"))
    if out["symbol_code"].null_count():
        raise ValueError("model_data: matrix has rows with a null symbol_code")
    lab = labels.with_columns(ts)
    for h in horizons:
        part = lab.filter(pl.col("horizon") == h).select(
            *keys,
            pl.col("ret").cast(pl.Float64).alias(f"__ret_{h}"),
            pl.col("rv").cast(pl.Float64).alias(f"__rv_{h}"),
            pl.col("cost").cast(pl.Float64).alias(f"__cost_{h}"),
            pl.col("funding").cast(pl.Float64).alias(f"__funding_{h}"),
            pl.col("complete").fill_null(False).alias(f"__ok_{h}"),
        )
        if part.select(pl.struct(keys).is_duplicated().any()).item():
            raise ValueError(f"model_data: labels have duplicate (symbol, ts_event) rows for horizon {h}")
        out = out.join(part, on=keys, how="left", coalesce=True)
    out = out.with_columns(
        pl.col("ts_event").dt.epoch("us").alias("__t"), pl.col("symbol_code").cast(pl.Int64).alias("__code")
    ).sort("__t", "__code")
    dim = _latent_dim(out, latent_dim)
    post, p_ok = _latents(out[LATENT_COLUMNS[0]], dim)
    comment, c_ok = _latents(out[LATENT_COLUMNS[1]], dim)
    x = out.select([pl.col(c).cast(pl.Float64) for c in flat]).to_numpy().astype(np.float32)
    if not flat:
        x = np.zeros((out.height, 0), dtype=np.float32)

    def wide(prefix: str) -> np.ndarray:
        cols = [pl.col(f"__{prefix}_{h}").cast(pl.Float64) for h in horizons]
        return out.select(cols).to_numpy().astype(np.float64).reshape(out.height, len(horizons))

    ok = out.select([pl.col(f"__ok_{h}").fill_null(False) for h in horizons]).to_numpy().astype(bool)
    return ModelData(
        x=x,
        text=np.hstack([post, comment]),
        text_mask=p_ok | c_ok,
        ret=wide("ret"),
        rv=wide("rv"),
        cost=wide("cost"),
        funding=wide("funding"),
        label_ok=ok.reshape(out.height, len(horizons)),
        t=out["__t"].to_numpy().astype(np.int64),
        symbol_code=out["__code"].to_numpy().astype(np.int64),
        horizons=horizons,
        feature_names=tuple(flat),
    )
