"""Model inputs read from the lake: the whole feature matrix and labels as one :class:`ModelData`.

The training assets read every materialized partition of ``feature_matrix_main`` and ``labels_multi_horizon``
through ``polars.scan_parquet`` (only the contract's columns), so no IO manager holds both frames twice. It lives
in ``quantmm_resources`` (not ``defs``) so that serving, which never imports ``defs``, builds the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantmm_assets.core.features.matrix import LATENT_COLUMNS
from quantmm_assets.models.data import LABEL_COLUMNS, ModelData, model_data
from quantmm_resources.lake import LakeLayout


@dataclass(frozen=True)
class LakeModelData:
    """The model data plus what a run records about it."""

    data: ModelData
    symbols: dict[int, str]
    contract_version: str
    latent_dim: int
    partitions: dict[str, str]  # first / last date and counts of the partitions read


def _files(lake: LakeLayout, asset: str, partitions: list[str] | None) -> list:
    if partitions is None:
        return lake.files(asset)
    files = [f for f in (lake.partition_file(asset, k) for k in sorted(partitions)) if f.exists()]
    if not files:
        raise ValueError(f"none of the {len(partitions)} {asset} partitions to read is in the lake at {lake.root}")
    return files


def load_model_data(
    lake: LakeLayout, horizons: tuple[str, ...], row_stride: int = 1, partitions: list[str] | None = None
) -> LakeModelData:
    """Read the matrix and labels from ``lake``; keep every ``row_stride``-th 5m row per symbol (1 = all).

    ``partitions`` (date x symbol keys) limits both to those partitions (the ones a passing run vouches for);
    None reads every partition in the lake.
    """
    if row_stride < 1:
        raise ValueError(f"row_stride must be >= 1, got {row_stride}")
    contract = lake.feature_contract()
    names = [n for n in contract["columns"] if n != "symbol_code"]
    matrix_files = _files(lake, "feature_matrix_main", partitions)
    scan = pl.scan_parquet(matrix_files, hive_partitioning=False).select("symbol", "ts_event", "symbol_code", *names)
    if row_stride > 1:
        minutes = pl.col("ts_event").dt.hour().cast(pl.Int64) * 60 + pl.col("ts_event").dt.minute()
        scan = scan.filter((minutes // 5) % row_stride == 0)
    matrix = scan.collect()
    label_scan = pl.scan_parquet(_files(lake, "labels_multi_horizon", partitions), hive_partitioning=False)
    absent = [c for c in LABEL_COLUMNS if c not in label_scan.collect_schema().names()]
    if absent:
        raise ValueError(
            f"labels_multi_horizon in {lake.root} lacks {absent} (written by an older version): re-materialize "
            "labels_multi_horizon (quantmm features) before training"
        )
    labels = label_scan.select(*LABEL_COLUMNS).filter(pl.col("horizon").is_in(list(horizons))).collect()
    dim = int(contract["latent_dim"])
    data = model_data(matrix, labels, names, horizons, latent_dim=dim)
    codes = matrix.select("symbol_code", "symbol").unique().sort("symbol_code")
    days = matrix["ts_event"].dt.date()
    return LakeModelData(
        data=data,
        symbols={int(c): s for c, s in codes.iter_rows()},
        contract_version=str(contract["version"]),
        latent_dim=dim,
        partitions={
            "first_date": str(days.min()),
            "last_date": str(days.max()),
            "matrix_files": str(len(matrix_files)),
            "symbols": ",".join(codes["symbol"].to_list()),
            "text_encoder": lake.pinned_text_encoder() or "unpinned (latents written before the encoder pin)",
            "rows": str(matrix.height),
            "rows_with_text": str(
                int(matrix.select(pl.any_horizontal(pl.col(LATENT_COLUMNS).is_not_null())).sum().item())
            ),
        },
    )
