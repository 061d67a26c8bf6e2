"""Shared fixtures: an isolated QUANTMM_HOME per test, an ephemeral Dagster instance, the real-data folder."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from quantmm_resources.settings import get_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def quantmm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh QUANTMM_HOME (lake, operational store, Dagster home) for one test."""
    home = tmp_path / "qhome"
    monkeypatch.setenv("QUANTMM_HOME", str(home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # `make test` exports one; each test has its own
    monkeypatch.delenv("QUANTMM_OPS_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real data folder absent: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def new_york_clock(monkeypatch: pytest.MonkeyPatch):
    """The process's local time zone set to New York (UTC-5 in winter), so a naive instant read as local is off."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
