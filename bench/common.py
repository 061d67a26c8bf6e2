"""What every bench shares: the real-data folder and the settings of a bench home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from quantmm_resources.settings import QuantmmSettings

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class BenchSettings(QuantmmSettings):
    """Settings whose Dagster instance lives under the bench home, whatever ``DAGSTER_HOME`` says."""

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def bench_settings(home: Path, text_encoder: str = "minilm") -> BenchSettings:
    """A bench home: its own lake, operational store, MLflow store and embedded (SQLite) Dagster instance."""
    return BenchSettings(
        home=home, text_encoder=text_encoder, ops_url=None, dagster_pg_url=None, mlflow_tracking_uri=None
    )


def bench_paths(data_dir: Path | None, home: Path | None, name: str) -> tuple[Path, Path]:
    """The real-data folder (FileNotFoundError when absent) and the bench home (a fresh temporary one by default);
    MiniLM is loaded from the installed package, never downloaded (the library's own offline flag)."""
    data_dir = data_dir or DEFAULT_DATA
    if not (data_dir / "binance_usdt_5m").is_dir():
        raise FileNotFoundError(f"bench data not found: {data_dir}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    return data_dir, home or Path(tempfile.mkdtemp(prefix=f"quantmm-bench-{name}-"))
