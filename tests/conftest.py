"""Shared fixtures: an isolated QUANTMM_HOME per test, an ephemeral Dagster instance, the real-data folder."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
import synthetic_models

from quantmm_resources.settings import get_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


UNGROUPED = pytest.StashKey[set[str]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Find the tests that ``--dist loadgroup`` would run outside their ``xdist_group``.

    Grouped tests share an expensive per-process cache (the fusion honesty worlds); ungrouped, each worker
    rebuilds it and ``make test`` takes minutes longer. pytest-xdist marks a group by suffixing the node id
    (``...@group``), which pytest 9.2 stopped honouring (it renamed ``Node._nodeid``): hence ``pytest<9.2``.
    """
    if getattr(config.option, "loadgroup", False):  # an xdist worker of a --dist loadgroup run
        config.stash[UNGROUPED] = {
            item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
        }


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.nodeid in item.config.stash.get(UNGROUPED, set()):
        pytest.fail(
            "--dist loadgroup ignored this test's xdist_group: this pytest / pytest-xdist pair does not group "
            "(pytest 9.2 renamed Node._nodeid); install the versions of requirements.lock",
            pytrace=False,
        )


@pytest.fixture(scope="session", autouse=True)
def _worlds_shared_by_workers(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """Under pytest-xdist, build each synthetic world once per run: the workers' base folders share a parent."""
    if worker_id != "master":
        synthetic_models.SHARED_DIR = tmp_path_factory.getbasetemp().parent / "synthetic-worlds"


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


PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def pg_database():
    """A PostgreSQL database of its own on 127.0.0.1:5432 (trust auth), dropped afterwards; the test is skipped when
    PostgreSQL is not reachable (an absent optional resource)."""
    import uuid

    import psycopg

    from quantmm_resources.opstore import engine_for

    name = f"quantmm_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    engine_for.cache_clear()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


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
