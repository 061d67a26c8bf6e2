"""The gated promotion function: it moves ``active`` only for the version whose blocking gates all passed.

The candidate runs are planted on an ephemeral instance as runless events (a ``candidate_models`` materialization
naming the version and one result per gate), the versions are real registrations of fitted Ridge backbones in a
SQLite MLflow, and the ledger is a SQLite operational store.
"""

from __future__ import annotations

import dagster as dg
import mlflow
import numpy as np
import pytest

from quantmm_resources.registry import history
from quantmm_resources.registry.gated_promotion import (
    GATES,
    PromotionRefused,
    gate_status,
    promote_candidate,
    rollback_active,
)
from quantmm_resources.settings import get_settings
from tests.resources.test_model_registry import NAME, btc_rows, build_world, new_registry, register, to_model_input

pytestmark = pytest.mark.xdist_group("model_registry")  # shares the module-sized registry world's cost
KEY = "1h|BTCUSDT"


@pytest.fixture(scope="module")
def world():
    return build_world()


@pytest.fixture
def setup(tmp_path, world):
    registry = new_registry(tmp_path)
    versions = [register(registry, world, k) for k in (0, 1)]
    return registry, versions, f"sqlite:///{tmp_path / 'ops.db'}"


def plant(instance: dg.DagsterInstance, version: str, failing: str | None = None) -> None:
    """A candidate run that gated ``version``: every gate passed except ``failing``."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization("candidate_models", partition=KEY, metadata={"model_version": version})
    )
    for gate in GATES:
        ok = gate != failing
        report = {"verdict": "pass" if ok else "fail", "deciding": "all criteria" if ok else f"{gate}-criterion"}
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("candidate_models"),
                check_name=gate,
                passed=ok,
                metadata={"model_version": version, "gate_report": dg.MetadataValue.json(report)},
            )
        )


def test_passing_gates_promote_and_the_alias_loads_the_promoted_version(setup, instance, world):
    registry, (v1, v2), ops = setup
    registry.client().set_registered_model_alias(NAME, "candidate", v1)
    plant(instance, v1)
    done = promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "gates passed")
    assert done == {"model": NAME, "from": None, "to": v1, "ledger_id": done["ledger_id"]}
    assert registry.aliases(NAME)["active"] == v1
    ledger = history(ops, NAME)
    assert ledger.height == 1 and ledger["operator"][0] == "alice" and ledger["to_version"][0] == v1
    assert '"model_gate"' in ledger["gate_report"][0]  # the gate reports go into the ledger
    mlflow.set_registry_uri(registry.tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@active")
    expected = world.models[0].predict(world.data, np.flatnonzero(world.data.symbol_code == 0)[:50])["1h"]
    got = loaded.predict(to_model_input(btc_rows(world).head(50), "fc-test-3"))
    assert np.array_equal(got["expected_return"].to_numpy(), expected.expected_return)


@pytest.mark.parametrize("failing", list(GATES))
def test_each_blocking_gate_failing_alone_blocks_the_promotion(setup, instance, failing):
    registry, (_v1, v2), ops = setup
    plant(instance, v2, failing=failing)
    status = gate_status(instance, "BTCUSDT", "1h")
    assert status.version == v2 and not status.passed and status.checks[failing] == "failed"
    with pytest.raises(PromotionRefused, match=rf"{failing} failed \({failing}-criterion\)"):
        promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "try")
    assert "active" not in registry.aliases(NAME) and history(ops, NAME).is_empty()  # nothing moved


def test_only_the_gated_version_moves(setup, instance):
    registry, (v1, v2), ops = setup
    with pytest.raises(PromotionRefused, match="no candidate_models run registered a version"):
        promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "nothing gated yet")
    plant(instance, v2)
    with pytest.raises(PromotionRefused, match=f"version {v1} was not gated by the latest candidate run"):
        promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "the old one", version=v1)
    registry.client().set_registered_model_alias(NAME, "candidate", v1)  # re-registered since the gates ran
    with pytest.raises(PromotionRefused, match=f"the candidate alias points at v{v1}, the gates passed for v{v2}"):
        promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "moved")


def test_rollback_restores_the_previous_version_and_is_a_ledger_row(setup, instance):
    registry, (v1, v2), ops = setup
    registry.client().set_registered_model_alias(NAME, "candidate", v1)
    plant(instance, v1)
    promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "alice", "first")
    registry.client().set_registered_model_alias(NAME, "candidate", v2)
    plant(instance, v2)
    promote_candidate(instance, registry, ops, "BTCUSDT", "1h", "bob", "second")
    assert registry.aliases(NAME) == {"candidate": v2, "active": v2, "previous": v1}
    rollback_active(registry, ops, "BTCUSDT", "1h", "carol", "v2 misbehaves")
    assert registry.aliases(NAME)["active"] == v1
    ledger = history(ops, NAME)
    assert ledger["action"].to_list() == ["rollback", "promote", "promote"]
    row = ledger.row(0, named=True)
    assert (row["operator"], row["from_version"], row["to_version"]) == ("carol", v2, v1)


def test_active_models_and_the_promote_job_go_through_the_same_gates(setup, instance, monkeypatch):
    from quantmm_assets.defs.active_models import _condition, active_models
    from quantmm_jobs.model_jobs import promote_job
    from quantmm_resources.opstore import OperationalStore

    registry, (v1, v2), ops = setup
    resources = {"registry": registry, "opstore": OperationalStore(url=ops)}
    registry.client().set_registered_model_alias(NAME, "candidate", v1)
    plant(instance, v1, failing="model_gate")
    run = {"partition_key": KEY, "resources": resources, "instance": instance}
    refused = dg.materialize([active_models], raise_on_error=False, **run)
    assert not refused.success and "active" not in registry.aliases(NAME)
    plant(instance, v1)
    assert dg.materialize([active_models], **run).success
    assert registry.aliases(NAME)["active"] == v1 and history(ops, NAME)["operator"].to_list() == ["automation"]
    again = dg.materialize([active_models], **run)
    (mat,) = again.asset_materializations_for_node("active_models")
    assert mat.metadata["moved"].value is False and history(ops, NAME).height == 1  # already active: no new row

    registry.client().set_registered_model_alias(NAME, "candidate", v2)
    plant(instance, v2)
    config = {
        "ops": {
            "promote_candidate_op": {
                "config": {"symbol": "BTCUSDT", "horizon": "1h", "operator": "dana", "reason": "ui"}
            }
        }
    }
    assert promote_job.execute_in_process(run_config=config, resources=resources, instance=instance).success
    assert registry.aliases(NAME)["active"] == v2 and history(ops, NAME)["operator"][0] == "dana"

    assert _condition() is None  # automation is off by default
    monkeypatch.setenv("QUANTMM_AUTO_PROMOTE", "true")
    get_settings.cache_clear()
    try:
        assert "all_deps_blocking_checks_passed" in str(_condition())
    finally:
        get_settings.cache_clear()
