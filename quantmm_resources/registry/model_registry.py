"""The MLflow model registry of quantmm (DESIGN section 4): one registered model per symbol and horizon.

``quantmm.{symbol}.{horizon}`` holds the versions; aliases ``candidate`` (set by
:meth:`ModelRegistry.register_candidate`), ``active`` and ``previous`` (moved only by
:mod:`quantmm_resources.registry.promotion`, after the ledger in the operational store recorded the move: the ledger
is the history, MLflow keeps none). A version's run holds the pyfunc
(``model``), ``lineage.json`` and ``reference/oos_expected_return.parquet`` (the backbone's out-of-sample expected
returns for the symbol and horizon, the drift monitor's reference).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.models.protocol import Backbone
from quantmm_resources.registry.pyfunc_model import log_pyfunc, to_model_input, version_meta

ALIASES = ("candidate", "active", "previous")
LINEAGE_FILE = "lineage.json"
REFERENCE_FILE = "reference/oos_expected_return.parquet"
MAX_TAG_LENGTH = 500  # a longer lineage value is cut in its tag (lineage.json keeps it whole)
TRUNCATED = "...[truncated: see lineage.json]"
_TAG_KEY = re.compile(r"[^A-Za-z0-9_.\-/ :]")


def canonical_json(obj: Any) -> str:
    """Return ``obj`` as canonical JSON (sorted keys, no spaces; non-JSON values as strings)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def lineage_hash(lineage: dict[str, Any]) -> str:
    """Return the sha256 (hex) of the canonical JSON of ``lineage``."""
    return hashlib.sha256(canonical_json(lineage).encode()).hexdigest()


def lineage_tags(lineage: dict[str, Any], prefix: str = "lineage.") -> dict[str, str]:
    """Return ``lineage`` as flat string tags ``lineage.<key>[.<sub>]`` (long values cut) plus ``lineage_hash``."""
    out: dict[str, str] = {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{key}.{k}", v)
            return
        text = value if isinstance(value, str) else canonical_json(value)
        if len(text) > MAX_TAG_LENGTH:
            text = text[: MAX_TAG_LENGTH - len(TRUNCATED)] + TRUNCATED
        out[_TAG_KEY.sub("_", prefix + key)] = text

    for k, v in lineage.items():
        walk(str(k), v)
    return out | {"lineage_hash": lineage_hash(lineage)}


class ModelRegistry(dg.ConfigurableResource):
    """Registers candidate versions, reads them back, and moves the ``active`` / ``previous`` aliases."""

    tracking_uri: str = Field(description="MLflow tracking (and registry) URI: sqlite:///..., postgresql+psycopg://...")
    artifact_root: str = Field(description="Directory of the run artifacts (used when the experiment is created).")
    experiment: str = Field(default="quantmm-registry", description="Experiment the registration runs belong to.")

    # -- plumbing ------------------------------------------------------------------------------------------
    def client(self) -> Any:
        """Return an ``MlflowClient`` on this tracking / registry URI (no global state)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _use(self) -> None:
        """Point MLflow's fluent API (runs, ``models:/`` loading) at this registry."""
        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def _experiment_id(self) -> str:
        import mlflow

        self._use()
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(self.experiment, artifact_location=Path(self.artifact_root).resolve().as_uri())

    @staticmethod
    def model_name(symbol: str, horizon: str) -> str:
        """Return the registered model name of (symbol, horizon): ``quantmm.{symbol}.{horizon}``."""
        return f"quantmm.{symbol}.{horizon}"

    # -- writing -------------------------------------------------------------------------------------------
    def register_candidate(
        self,
        model: Backbone,
        symbol: str,
        horizon: str,
        signal: SignalConfig,
        contract_version: str,
        feature_names: list[str],
        latent_dim: int,
        lineage: dict[str, Any],
        reference: pl.DataFrame | np.ndarray,
        input_example: pl.DataFrame,
    ) -> str:
        """Log ``model`` as the pyfunc of (symbol, horizon) with its lineage and reference predictions in one run,
        register it as a new version tagged with the lineage, set alias ``candidate`` on it; return the version.

        ``input_example``: a few feature-matrix rows of ``symbol`` (contract columns, ``symbol_code`` included).
        """
        import mlflow

        name = self.model_name(symbol, horizon)
        rows = input_example.filter(pl.col("symbol") == symbol)
        if rows.height == 0:
            raise ValueError(f"register_candidate {name}: the input example has no rows of {symbol}")
        codes = rows["symbol_code"].unique().to_list() if "symbol_code" in rows.columns else []
        meta = version_meta(
            model,
            symbol,
            horizon,
            signal,
            contract_version,
            feature_names,
            latent_dim,
            int(codes[0]) if len(codes) == 1 else None,
        )
        example = to_model_input(rows, contract_version)
        tags = {
            "symbol": symbol,
            "horizon": horizon,
            "backbone": model.name,
            "config_hash": model.config_hash(),
            "feature_contract_version": str(contract_version),
            "signal.config_hash": signal.config_hash(),
            **lineage_tags(lineage),
        }
        experiment_id = self._experiment_id()
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"register {name}", tags={"kind": "registry"}):
            mlflow.log_params({k: v for k, v in tags.items() if not k.startswith("lineage")} | signal.record())
            info = log_pyfunc(model, meta, example)
            mlflow.log_text(json.dumps(lineage, sort_keys=True, indent=1, default=str), LINEAGE_FILE)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(REFERENCE_FILE).name
                _reference_frame(reference).write_parquet(path)
                mlflow.log_artifact(str(path), str(Path(REFERENCE_FILE).parent))
        version = mlflow.register_model(info.model_uri, name, tags=tags)
        self.client().set_registered_model_alias(name, "candidate", str(version.version))
        return str(version.version)

    def move_active(self, name: str, to_version: str, previous_version: str | None) -> None:
        """Set ``active`` to ``to_version`` and ``previous`` to ``previous_version`` (deleted when None).

        Only :mod:`quantmm_resources.registry.promotion` calls this, after the ledger recorded the move.
        """
        client = self.client()
        client.set_registered_model_alias(name, "active", str(to_version))
        if previous_version is not None:
            client.set_registered_model_alias(name, "previous", str(previous_version))
        elif "previous" in self.aliases(name):
            client.delete_registered_model_alias(name, "previous")

    def clear_active(self, name: str) -> None:
        """Delete ``active`` and ``previous`` (reconcile, when the ledger has no head for ``name``)."""
        client = self.client()
        present = self.aliases(name)
        for alias in ("active", "previous"):
            if alias in present:
                client.delete_registered_model_alias(name, alias)

    # -- reading -------------------------------------------------------------------------------------------
    def registered_names(self) -> list[str]:
        """Return the sorted names of the registered models ``quantmm.*``."""
        client, names, token = self.client(), [], None
        while True:
            page = client.search_registered_models(filter_string="name LIKE 'quantmm.%'", page_token=token)
            names += [m.name for m in page]
            token = page.token
            if not token:
                return sorted(names)

    def alias_map(self) -> dict[str, dict[str, str]]:
        """Every ``quantmm.*`` model's aliases in one search, ``{name: {"active": v, ...}}`` (the app's poll)."""
        client, out, token = self.client(), {}, None
        while True:
            page = client.search_registered_models(filter_string="name LIKE 'quantmm.%'", page_token=token)
            for m in page:
                found = m.aliases or {}
                out[m.name] = {a: str(found[a]) for a in ALIASES if a in found}
            token = page.token
            if not token:
                return dict(sorted(out.items()))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Return the versions of ``name``, oldest first: version, run_id, created_at (UTC), status, aliases, tags."""
        client, found, token = self.client(), [], None
        while True:
            page = client.search_model_versions(filter_string=f"name = '{name}'", page_token=token)
            found += list(page)
            token = page.token
            if not token:
                break
        aliases = self.aliases(name) if found else {}
        return [
            {
                "version": str(v.version),
                "run_id": v.run_id,
                "created_at": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC),
                "status": v.status,
                "aliases": sorted(a for a, ver in aliases.items() if ver == str(v.version)),
                "tags": dict(v.tags),
            }
            for v in sorted(found, key=lambda v: int(v.version))
        ]

    def has_version(self, name: str, version: str) -> bool:
        """Whether ``name`` has version ``version``."""
        from mlflow.exceptions import MlflowException

        try:
            self.client().get_model_version(name, str(version))
        except MlflowException:
            return False
        return True

    def aliases(self, name: str) -> dict[str, str]:
        """Return ``{"candidate": v, "active": v, "previous": v}`` (aliases not set are absent)."""
        found = self.client().get_registered_model(name).aliases or {}
        return {a: str(found[a]) for a in ALIASES if a in found}

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        """Return the tags of version ``version`` of ``name``."""
        return dict(self.client().get_model_version(name, str(version)).tags)

    def _read(self, name: str, version: str, path: str, read: Any) -> Any:
        """Download artifact ``path`` of a version's run into a temporary folder and return ``read(local path)``."""
        client = self.client()
        run_id = client.get_model_version(name, str(version)).run_id
        if not run_id:
            raise ValueError(f"{name} version {version} has no run: it was not registered by register_candidate")
        with tempfile.TemporaryDirectory(prefix="quantmm-registry-") as tmp:
            return read(Path(client.download_artifacts(run_id, path, dst_path=tmp)))

    def lineage(self, name: str, version: str) -> dict[str, Any]:
        """Return the whole lineage (``lineage.json``) of a version."""
        return self._read(name, version, LINEAGE_FILE, lambda p: json.loads(p.read_text()))

    def reference_series(self, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ts_us, expected_return)`` of a version's reference (ts_us all -1 when registered without
        times): the drift sensor thins it to one prediction per horizon."""
        frame = self._read(name, version, REFERENCE_FILE, pl.read_parquet)
        values = frame["expected_return"].cast(pl.Float64).to_numpy()
        if "ts_event" not in frame.columns:
            return np.full(values.size, -1, np.int64), values
        return frame["ts_event"].dt.epoch("us").to_numpy().astype(np.int64), values

    def log_gate_reports(self, name: str, version: str, reports: dict[str, Any]) -> None:
        """Log the gate reports (JSON) of a version into its run, as ``gates/<gate>.json``."""
        client = self.client()
        run_id = client.get_model_version(name, str(version)).run_id
        for gate, report in reports.items():
            client.log_text(run_id, json.dumps(report, indent=1, sort_keys=True, default=str), f"gates/{gate}.json")

    def gate_reports(self, name: str, version: str, gate: str) -> dict[str, Any]:
        """Return one gate report a version's run holds."""
        return self._read(name, version, f"gates/{gate}.json", lambda p: json.loads(p.read_text()))

    def reference_predictions(self, name: str, version: str) -> np.ndarray:
        """Return the out-of-sample expected returns a version was registered with (float64)."""
        return self._read(name, version, REFERENCE_FILE, lambda p: pl.read_parquet(p)["expected_return"].to_numpy())

    def model_uri(self, name: str, alias_or_version: str) -> str:
        """Return ``models:/name/version`` for a version number, ``models:/name@alias`` for an alias."""
        ref = str(alias_or_version)
        return f"models:/{name}/{ref}" if ref.isdigit() else f"models:/{name}@{ref}"

    def load(self, name: str, alias_or_version: str) -> Any:
        """Load the pyfunc of a version (number) or alias (``candidate``, ``active``, ``previous``)."""
        import mlflow

        self._use()
        return mlflow.pyfunc.load_model(self.model_uri(name, alias_or_version))


def _reference_frame(reference: pl.DataFrame | np.ndarray) -> pl.DataFrame:
    """The reference as a frame: ``expected_return`` (float64) and, when given, ``ts_event`` (UTC)."""
    if isinstance(reference, pl.DataFrame):
        if "expected_return" not in reference.columns:
            raise ValueError("register_candidate: the reference frame needs an expected_return column")
        cols = [c for c in ("ts_event", "expected_return") if c in reference.columns]
        return reference.select(cols).with_columns(pl.col("expected_return").cast(pl.Float64))
    return pl.DataFrame({"expected_return": np.asarray(reference, dtype=np.float64).ravel()})
