"""The MLflow pyfunc of a registered version (DESIGN section 4): a refit backbone answering for one symbol and horizon.

A version carries two artifacts: ``backbone`` (the fitted :class:`~quantmm_assets.models.protocol.Backbone`, pickled,
with its fitted text projection and calibration inside) and ``meta`` (JSON: symbol, symbol code, horizon, the
backbone's horizons, feature-contract version, the ordered contract feature names, latent dim, the signal config
record, backbone name and config hash). :meth:`QuantmmPyfunc.predict` takes feature-matrix rows as
:func:`to_model_input` writes them and returns one row of predictions per input row, in the input's order.

The input's ``ts_event`` is naive UTC (MLflow's datetime columns are timezone-naive); flat features are doubles
(null = missing) and the latent columns arrays of doubles (null = no text).
"""

from __future__ import annotations

import json
import pickle
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import DataType
from mlflow.types.schema import Array, ColSpec, Schema

from quantmm_assets.core.features.matrix import LATENT_COLUMNS
from quantmm_assets.core.signal import SignalConfig, signal
from quantmm_assets.models.data import LABEL_COLUMNS, model_data
from quantmm_assets.models.protocol import Backbone

CONTRACT_COLUMN = "feature_contract_version"
COST_COLUMN = "cost"
KEY_COLUMNS = ("symbol", "ts_event", "symbol_code")
OUTPUT_COLUMNS = (
    "ts_event",
    "symbol",
    "horizon",
    "expected_return",
    "vol_forecast",
    "signal_confidence",
    "y_base",
    "gate",
    "text_contribution",
    "degraded",
)
BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas", "polars", "pyarrow", "scikit-learn")
BACKBONE_REQUIREMENTS = {"lightgbm": ("lightgbm",), "torch": ("torch", "pytorch-lightning")}


def flat_features(feature_names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the flat (non-latent) feature names of a contract's ordered ``feature_names``."""
    return [n for n in feature_names if n not in LATENT_COLUMNS]


def to_model_input(matrix_rows: pl.DataFrame, contract_version: str | None = None) -> pd.DataFrame:
    """Return feature-matrix rows as the pyfunc's input: ``ts_event`` naive UTC, ``symbol_code`` Int64, flat features
    Float64, latents List(Float64), and a ``feature_contract_version`` column (``contract_version`` when given;
    rows that already carry the column keep it when it is None)."""
    frame = matrix_rows
    if contract_version is not None:
        frame = frame.with_columns(pl.lit(str(contract_version)).alias(CONTRACT_COLUMN))
    elif CONTRACT_COLUMN not in frame.columns:
        raise ValueError(f"to_model_input: rows have no {CONTRACT_COLUMN} column and no contract_version was given")
    ts = frame.schema["ts_event"]
    naive = pl.col("ts_event")
    if isinstance(ts, pl.Datetime) and ts.time_zone is not None:
        naive = naive.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    casts = [naive.cast(pl.Datetime("us")), pl.col("symbol_code").cast(pl.Int64)]
    casts += [pl.col(c).cast(pl.List(pl.Float64)) for c in LATENT_COLUMNS if c in frame.columns]
    skip = {*KEY_COLUMNS, *LATENT_COLUMNS, CONTRACT_COLUMN}
    casts += [pl.col(c).cast(pl.Float64) for c, t in frame.schema.items() if c not in skip and t.is_numeric()]
    return frame.with_columns(casts).to_pandas()


def _latent_series(name: str, values: pd.Series) -> pl.Series:
    """Return an object column of arrays / None (NaN) as a List(Float32) series (null where absent)."""
    present = np.array([v is not None and not (pd.api.types.is_scalar(v) and pd.isna(v)) for v in values], dtype=bool)
    if not present.any():
        return pl.Series(name, [None] * len(values), dtype=pl.List(pl.Float32))
    arrays = [np.asarray(v, dtype=np.float32).ravel() for v, p in zip(values, present, strict=True) if p]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"{name}: latents of different lengths {sorted({len(a) for a in arrays})}")
    lists = pl.Series(name, np.stack(arrays)).cast(pl.List(pl.Float32))
    spread = lists.gather(np.where(present, np.cumsum(present) - 1, 0))  # row i: its list (any list where absent)
    return pl.select(pl.when(pl.Series(present)).then(spread).otherwise(None).alias(name)).to_series()


def empty_labels() -> pl.DataFrame:
    """No label rows, in the label schema: :func:`model_data` of rows to predict (inference has no labels)."""
    types = [pl.Utf8, pl.Datetime("us", "UTC"), pl.Utf8, pl.Float64, pl.Float64, pl.Float64, pl.Float64, pl.Boolean]
    return pl.DataFrame(schema=dict(zip(LABEL_COLUMNS, types, strict=True)))


class QuantmmPyfunc(mlflow.pyfunc.PythonModel):
    """A fitted backbone's head for one symbol and one horizon, refusing rows it was not built for."""

    backbone: Backbone | None = None
    meta: dict[str, Any] | None = None

    def load_context(self, context: Any) -> None:
        """Load the pickled backbone and the meta JSON from the version's artifacts."""
        backbone = pickle.loads(Path(context.artifacts["backbone"]).read_bytes())
        self.bind(backbone, json.loads(Path(context.artifacts["meta"]).read_text()))

    def bind(self, backbone: Backbone, meta: dict[str, Any]) -> QuantmmPyfunc:
        """Attach a fitted backbone and its meta (the loader does it; tests and the registration call it)."""
        self.backbone, self.meta = backbone, meta
        self.signal_config = SignalConfig.from_params(meta["signal"])
        return self

    @property
    def label(self) -> str:
        m = self.meta or {}
        return f"quantmm.{m.get('symbol')}.{m.get('horizon')}"

    def _check(self, frame: pd.DataFrame) -> None:
        """Raise ValueError for missing columns, rows of another symbol or of another feature contract."""
        meta = self.meta
        if meta is None or self.backbone is None:
            raise RuntimeError("QuantmmPyfunc: no backbone bound (load it through MLflow, or call bind)")
        needed = [*KEY_COLUMNS, CONTRACT_COLUMN, *flat_features(meta["feature_names"]), *LATENT_COLUMNS]
        if gone := [c for c in needed if c not in frame.columns]:
            raise ValueError(f"{self.label}: input lacks columns {gone}")
        others = sorted({str(s) for s in frame["symbol"].unique()} - {meta["symbol"]})
        if others:
            raise ValueError(f"{self.label} answers for symbol {meta['symbol']} only: got rows of {others}")
        want = str(meta["feature_contract_version"])
        got = sorted({str(v) for v in frame[CONTRACT_COLUMN].unique()} - {want})
        if got:
            raise ValueError(
                f"{self.label}: rows of feature contract version(s) {got}, but this version was trained on feature "
                f"contract version {want}: rebuild the rows with contract {want} or serve a version trained on {got}"
            )
        code = meta.get("symbol_code")
        codes = sorted({int(c) for c in frame["symbol_code"].unique()} - ({int(code)} if code is not None else set()))
        if code is not None and codes:
            raise ValueError(f"{self.label}: symbol {meta['symbol']} has symbol_code {code}, rows carry {codes}")

    def _matrix(self, frame: pd.DataFrame) -> pl.DataFrame:
        """Return the input rows as the feature-matrix frame :func:`model_data` reads (ts_event UTC)."""
        flat = flat_features(self.meta["feature_names"])
        ts = pd.to_datetime(frame["ts_event"])
        ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        cols = {
            "symbol": pl.Series("symbol", [str(s) for s in frame["symbol"]], dtype=pl.Utf8),
            "ts_event": pl.Series("ts_event", ts.dt.tz_localize(None).to_numpy()).cast(pl.Datetime("us")),
            "symbol_code": pl.Series("symbol_code", frame["symbol_code"].to_numpy()).cast(pl.Int64),
        }
        for c in flat:
            cols[c] = pl.Series(c, pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
        for c in LATENT_COLUMNS:
            cols[c] = _latent_series(c, frame[c])
        out = pl.DataFrame(list(cols.values()))
        return out.with_columns(pl.col("ts_event").dt.replace_time_zone("UTC"))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Return one row per input row: ts_event, symbol, horizon, the heads, and ``position`` when the input has a
        ``cost`` column (the horizon's round-trip cost; the stored signal config)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        self._check(frame)
        meta, horizon = self.meta, self.meta["horizon"]
        matrix = self._matrix(frame)
        if matrix.height == 0:
            empty = {c: [] for c in OUTPUT_COLUMNS} | ({"position": []} if COST_COLUMN in frame.columns else {})
            return pd.DataFrame(empty)
        if matrix["ts_event"].is_duplicated().any():
            raise ValueError(f"{self.label}: input has duplicate ts_event rows")
        data = model_data(
            matrix, empty_labels(), meta["feature_names"], tuple(meta["horizons"]), latent_dim=int(meta["latent_dim"])
        )
        pred = self.backbone.predict(data, np.arange(data.n))[horizon]
        # model_data sorts by ts_event (one symbol): put the predictions back in the input's order
        where = np.argsort(np.argsort(matrix["ts_event"].dt.epoch("us").to_numpy(), kind="stable"), kind="stable")
        out = pd.DataFrame(
            {
                "ts_event": frame["ts_event"].to_numpy(),
                "symbol": [meta["symbol"]] * matrix.height,
                "horizon": [horizon] * matrix.height,
                **{k: getattr(pred, k)[where] for k in OUTPUT_COLUMNS[3:9]},
                "degraded": pred.degraded[where].astype(bool),
            }
        )
        if COST_COLUMN in frame.columns:
            cost = pd.to_numeric(frame[COST_COLUMN], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out["position"] = signal(
                out["expected_return"], cost, out["vol_forecast"], out["signal_confidence"], horizon, self.signal_config
            )
        return out


def version_meta(
    backbone: Backbone,
    symbol: str,
    horizon: str,
    signal_config: SignalConfig,
    contract_version: str,
    feature_names: list[str],
    latent_dim: int,
    symbol_code: int | None,
) -> dict[str, Any]:
    """Return the meta JSON of a version; raise when the backbone was not fitted on these features / horizons."""
    horizons = tuple(getattr(backbone, "horizons_", ()))
    if horizon not in horizons:
        raise ValueError(f"backbone {backbone.name} was fitted on horizons {list(horizons)}, not {horizon!r}")
    fitted = tuple(getattr(backbone, "feature_names_", ()))
    if tuple(flat_features(feature_names)) != fitted:
        raise ValueError(
            f"backbone {backbone.name} was fitted on features {list(fitted)}; the contract's flat features are "
            f"{flat_features(feature_names)}"
        )
    return {
        "symbol": symbol,
        "symbol_code": symbol_code,
        "horizon": horizon,
        "horizons": list(horizons),
        "feature_contract_version": str(contract_version),
        "feature_names": list(feature_names),
        "latent_dim": int(latent_dim),
        "signal": signal_config.record(),
        "backbone": backbone.name,
        "config_hash": backbone.config_hash(),
    }


def signature_for(example: pd.DataFrame, output: pd.DataFrame, feature_names: list[str]) -> ModelSignature:
    """Infer the signature from the example, then fix what an example cannot show: features and latents optional
    (null = missing), latents arrays of doubles, an optional ``cost`` column."""
    with warnings.catch_warnings():  # symbol_code is an integer and never null: MLflow's hint does not apply
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        inferred = infer_signature(example, output)
    flat = set(flat_features(feature_names))
    cols = []
    for spec in inferred.inputs.inputs:
        if spec.name in LATENT_COLUMNS:
            spec = ColSpec(Array(DataType.double), spec.name, required=False)
        elif spec.name in flat or spec.name == COST_COLUMN:
            spec = ColSpec(DataType.double, spec.name, required=False)
        cols.append(spec)
    if COST_COLUMN not in example.columns:
        cols.append(ColSpec(DataType.double, COST_COLUMN, required=False))
    return ModelSignature(inputs=Schema(cols), outputs=inferred.outputs)


def requirements(backbone: Backbone) -> list[str]:
    """Pinned pip requirements of a version (given, not inferred: inference imports the model in a subprocess)."""
    module = type(backbone).__module__
    names = list(BASE_REQUIREMENTS)
    names += [p for key, pkgs in BACKBONE_REQUIREMENTS.items() if key in module or backbone.name == key for p in pkgs]
    if any(c.__module__.endswith("torch_base") for c in type(backbone).__mro__):
        names += list(BACKBONE_REQUIREMENTS["torch"])
    out = []
    for name in dict.fromkeys(names):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def log_pyfunc(backbone: Backbone, meta: dict[str, Any], input_example: pd.DataFrame, name: str = "model") -> Any:
    """Log the pyfunc of ``backbone`` into the active run (signature and input example); return the ModelInfo."""
    model = QuantmmPyfunc().bind(backbone, meta)
    output = model.predict(None, input_example)
    signature = signature_for(input_example, output, meta["feature_names"])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "backbone.pkl").write_bytes(pickle.dumps(backbone, protocol=pickle.HIGHEST_PROTOCOL))
        (Path(tmp) / "meta.json").write_text(json.dumps(meta, sort_keys=True, indent=1))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=QuantmmPyfunc(),
            artifacts={"backbone": str(Path(tmp) / "backbone.pkl"), "meta": str(Path(tmp) / "meta.json")},
            signature=signature,
            input_example=input_example,
            pip_requirements=requirements(backbone),
        )
