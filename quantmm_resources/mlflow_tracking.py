"""MLflow tracking for the experiment assets: SQLite under QUANTMM_HOME by default, any tracking URI in production.

The plain file store is in maintenance mode in MLflow 3 (see ENV-NOTES), so the embedded default is
``sqlite:///$QUANTMM_HOME/mlflow.db`` with artifacts under ``$QUANTMM_HOME/mlartifacts``.

The assets hand over what a run is (params, the signal config, metrics, files built in core, the refit model);
what MLflow makes of it (param names, metric keys and steps, artifact paths) is decided here:
:meth:`MlflowTracking.log_backbone_run` and :meth:`MlflowTracking.log_report`.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from quantmm_assets.core.evaluation.metrics import calibration_table
from quantmm_assets.core.evaluation.plots import close_figure, plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.signal import SignalConfig
from quantmm_resources.provenance import canonical_hash

MAX_PARAM_LENGTH = 500  # MLflow's limit on one param value (longer ones go in as JSON artifacts)
PER_FOLD_KEYS = ("variant", "fold", "horizon")


class MlflowTracking(dg.ConfigurableResource):
    """Opens MLflow runs in one experiment and logs params, metrics, tables, figures and pickled models."""

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///..., postgresql://..., http://...).")
    artifact_root: str = Field(description="Directory of the run artifacts (used when the experiment is created).")
    experiment: str = Field(default="quantmm-backbones", description="Experiment the runs belong to.")

    def _client_setup(self) -> str:
        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(self.tracking_uri)
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(self.experiment, artifact_location=Path(self.artifact_root).resolve().as_uri())

    @contextmanager
    def run(self, name: str, tags: dict[str, str] | None = None, parent_run_id: str | None = None) -> Iterator[Any]:
        """Start a run (nested under ``parent_run_id`` when given) and yield the ``mlflow.ActiveRun``."""
        import mlflow

        experiment_id = self._client_setup()
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=name,
            tags=tags or {},
            nested=parent_run_id is not None,
            parent_run_id=parent_run_id,
        ) as active:
            yield active

    @staticmethod
    def log_params(params: dict[str, Any]) -> None:
        """Log ``params`` (values stringified; too-long values go to ``params/<name>.json``)."""
        import mlflow

        short, long = {}, {}
        for k, v in params.items():
            text = v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)
            (short if len(text) <= MAX_PARAM_LENGTH else long)[k] = text
        mlflow.log_params(short)
        for k, text in long.items():
            mlflow.log_text(text, f"params/{k}.json")

    @staticmethod
    def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
        """Log the finite metrics of ``metrics``."""
        import math

        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}, step=step)

    @staticmethod
    def log_pickle(obj: Any, artifact_path: str) -> None:
        """Log ``obj`` pickled as ``artifact_path`` (e.g. ``model/backbone.pkl``)."""
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_path).name
            path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
            mlflow.log_artifact(str(path), str(Path(artifact_path).parent) if "/" in artifact_path else None)

    @staticmethod
    def log_file(path: Path, artifact_dir: str | None = None) -> None:
        """Log a local file as an artifact."""
        import mlflow

        mlflow.log_artifact(str(path), artifact_dir)

    def log_backbone_run(
        self,
        params: dict[str, Any],
        signal: SignalConfig,
        per_fold: pl.DataFrame,
        curves: list[tuple[int, dict[str, float]]],
        predictions: pl.DataFrame,
        model: Any | None = None,
    ) -> None:
        """Log a trained backbone into the active run.

        ``params`` plus the signal config (``signal.*`` and ``signal.config_hash``); ``per_fold`` (one row per
        variant, fold and horizon) as metrics ``<variant>.<horizon>.<metric>`` at step ``fold``; ``curves`` as
        ``(step, {name: value})``; under ``evaluation/`` the out-of-sample ``predictions`` (parquet), their
        calibration table (CSV), the cumulative PnL and the reliability diagram (PNG); ``model`` (the refit) pickled
        as ``model/backbone.pkl``.
        """
        import mlflow

        self.log_params({**params, **signal.record()})
        for r in per_fold.iter_rows(named=True):
            values = {f"{r['variant']}.{r['horizon']}.{k}": v for k, v in r.items() if k not in PER_FOLD_KEYS}
            self.log_metrics(values, step=int(r["fold"]))
        for step, values in curves:
            self.log_metrics(values, step=step)
        cal = calibration_table(predictions)
        with tempfile.TemporaryDirectory() as tmp:
            predictions.write_parquet(Path(tmp) / "oos_predictions.parquet")
            cal.write_csv(Path(tmp) / "calibration.csv")
            for name in ("oos_predictions.parquet", "calibration.csv"):
                self.log_file(Path(tmp) / name, "evaluation")
        for name, fig in (
            ("cumulative_pnl.png", plot_cumulative_pnl(predictions, signal=signal)),
            ("calibration.png", plot_calibration(cal)),
        ):
            mlflow.log_figure(fig, f"evaluation/{name}")
            close_figure(fig)
        if model is not None:
            self.log_pickle(model, "model/backbone.pkl")

    @staticmethod
    def log_lineage(lineage: dict[str, Any]) -> str:
        """Log ``lineage`` as ``lineage.json`` into the active run and its sha256 as the tag ``lineage_hash``;
        return the hash."""
        import mlflow

        digest = canonical_hash(lineage)
        mlflow.log_text(json.dumps(lineage, indent=2, sort_keys=True, default=str), "lineage.json")
        mlflow.set_tag("lineage_hash", digest)
        return digest

    def load_pickle(self, run_id: str, artifact_path: str = "model/backbone.pkl") -> Any:
        """Unpickle an artifact of a run (by default the refit a training run logged)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path)
        return pickle.loads(Path(local).read_bytes())

    def load_lineage(self, run_id: str) -> dict[str, Any]:
        """The ``lineage.json`` a training run logged."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/lineage.json")

    def log_report(self, files: list[Path], signal: SignalConfig, name: str = "backbone_report") -> str:
        """Log the comparison report's ``files`` under ``report/`` in a run of its own, with the signal config it
        was evaluated under; return the run id."""
        with self.run(name, tags={"kind": "report"}) as run:
            self.log_params(signal.record())
            for path in files:
                self.log_file(Path(path), "report")
            return run.info.run_id
