"""MLflow tracking for the experiment assets: SQLite under QUANTMM_HOME by default, any tracking URI in production.

The plain file store is in maintenance mode in MLflow 3 (see ENV-NOTES), so the embedded default is
``sqlite:///$QUANTMM_HOME/mlflow.db`` with artifacts under ``$QUANTMM_HOME/mlartifacts``.
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
from pydantic import Field

MAX_PARAM_LENGTH = 500  # MLflow's limit on one param value (longer ones go in as JSON artifacts)


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
