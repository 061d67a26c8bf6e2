"""The ONE place where the environment picks resources (local / ci / prod; synthetic / bundle / live)."""

from __future__ import annotations

from pathlib import Path

from quantmm_resources.io_manager import PolarsParquetIOManager
from quantmm_resources.lake import LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.settings import QuantmmSettings
from quantmm_resources.text_encoder import TextEncoder

SOURCES = ("synthetic", "bundle", "live")


def source_resources(settings: QuantmmSettings, source: str, bundle_dir: Path | None = None) -> dict:
    """The exchange / macro / social resources of one kind of source."""
    if source == "synthetic":
        from quantmm_resources.sources.synthetic import SyntheticExchange, SyntheticMacro, SyntheticSocial

        symbols = settings.universe().symbols
        common = {"seed": settings.synthetic_seed, "symbols": symbols}
        return {
            "exchange": SyntheticExchange(**common),
            "macro": SyntheticMacro(seed=settings.synthetic_seed),
            "social": SyntheticSocial(**common, text_signal=settings.synthetic_text_signal),
        }
    if source == "bundle":
        from quantmm_resources.sources.bundle import BundleExchange, BundleMacro, BundleSocial

        path = bundle_dir or settings.bundle_dir
        if path is None:
            raise ValueError(
                "source 'bundle' needs a bundle directory (QUANTMM_BUNDLE_DIR or `quantmm bundle import DIR`)"
            )
        path = str(Path(path).resolve())
        return {
            "exchange": BundleExchange(path=path),
            "macro": BundleMacro(path=path),
            "social": BundleSocial(path=path),
        }
    if source == "live":
        from quantmm_resources.sources.binance_rest import BinanceRestExchange
        from quantmm_resources.sources.combined import RedditAndNewsSocial
        from quantmm_resources.sources.fred import FredMacro
        from quantmm_resources.sources.reddit import RedditSocial
        from quantmm_resources.sources.rss import RssNewsSocial

        social = RedditAndNewsSocial(reddit=RedditSocial(), news=RssNewsSocial())
        return {"exchange": BinanceRestExchange(), "macro": FredMacro(), "social": social}
    raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")


def build_resources(settings: QuantmmSettings, source: str | None = None, bundle_dir: Path | None = None) -> dict:
    """Every resource the definitions need, for this environment."""
    return {
        "lake_io_manager": PolarsParquetIOManager(base_dir=str(settings.lake_dir)),
        "opstore": OperationalStore(url=settings.resolved_ops_url),
        "lake": LakeResource(base_dir=str(settings.lake_dir)),
        "text_encoder": TextEncoder(model=settings.text_encoder, cache_path=str(settings.embedding_cache)),
        "mlflow": MlflowTracking(
            tracking_uri=settings.resolved_mlflow_uri, artifact_root=str(settings.mlflow_artifacts)
        ),
        "registry": ModelRegistry(
            tracking_uri=settings.resolved_mlflow_uri, artifact_root=str(settings.mlflow_artifacts)
        ),
        **source_resources(settings, source or settings.resolved_source, bundle_dir),
    }


def dagster_instance_yaml(settings: QuantmmSettings) -> str:
    """dagster.yaml for $DAGSTER_HOME: PostgreSQL when DAGSTER_PG_URL is set (the repository's dagster.yaml),
    else SQLite under DAGSTER_HOME with the pooled event-log storage (see dagster_storage.py)."""
    if settings.dagster_pg_url:
        return (Path(__file__).resolve().parents[1] / "dagster.yaml").read_text()
    home = settings.dagster_home.resolve()
    return f"""# Embedded default: SQLite under DAGSTER_HOME.
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config:
    base_dir: {home / "history"}
event_log_storage:
  module: quantmm_resources.dagster_storage
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {home / "history" / "runs"}
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config:
    base_dir: {home / "schedules"}
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 4
telemetry:
  enabled: false
"""


MARKER = "# written by quantmm"


def ensure_dagster_home(settings: QuantmmSettings) -> Path:
    """Create the Dagster home with the right dagster.yaml and return it. A dagster.yaml that quantmm did not
    write (an operator's own) is left as it is."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists() or path.read_text().startswith(MARKER):
        path.write_text(
            f"{MARKER} (quantmm_resources/environment.py); edits are overwritten\n" + dagster_instance_yaml(settings)
        )
    return home
