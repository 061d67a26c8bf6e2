"""The fine-tune sensor: a failed model gate asks for a fine-tune attempt, a trained attempt for the gate again, at
most two attempts; insufficient evidence asks for nothing (tuning cannot create evidence)."""

from __future__ import annotations

import dagster as dg

from quantmm_jobs.finetune_sensor import finetune_sensor
from quantmm_resources.registry.gated_promotion import GATES

KEY = "1h|BTCUSDT"


def plant_candidate(instance: dg.DagsterInstance, version: str, candidate: str, verdict: str = "fail") -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("candidate_models", partition=KEY, metadata={"model_version": version})
    )
    for gate in GATES:
        ok = gate != "model_gate"
        report = {"verdict": "pass" if ok else verdict, "candidate": candidate, "deciding": "window_wins"}
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("candidate_models"),
                check_name=gate,
                passed=ok,
                metadata={"gate_report": dg.MetadataValue.json(report)},
            )
        )


def trained(instance: dg.DagsterInstance, key: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("trained_backbones", partition=key))


def tick(instance: dg.DagsterInstance):
    return finetune_sensor(dg.build_sensor_context(instance=instance))


def requests(result) -> list[tuple[str, str]]:
    assert isinstance(result, dg.SensorResult), result
    return [(r.job_name, r.partition_key) for r in result.run_requests]


def test_a_failed_gate_trains_two_attempts_at_most_and_gates_each_again(instance):
    assert isinstance(tick(instance), dg.SkipReason)  # nothing gated yet
    plant_candidate(instance, "1", "lightgbm")
    assert requests(tick(instance)) == [("train_job", "lightgbm~ft1")]
    trained(instance, "lightgbm~ft1")
    assert requests(tick(instance)) == [("candidates_job", KEY)]
    plant_candidate(instance, "2", "lightgbm~ft1")  # the attempt ranked first and failed too
    assert requests(tick(instance)) == [("train_job", "lightgbm~ft2")]
    trained(instance, "lightgbm~ft2")
    assert requests(tick(instance)) == [("candidates_job", KEY)]
    plant_candidate(instance, "3", "lightgbm")
    done = tick(instance)
    assert isinstance(done, dg.SkipReason) and "failed after 2 fine-tune attempts of lightgbm" in done.skip_message


def test_insufficient_evidence_asks_for_nothing(instance):
    plant_candidate(instance, "1", "ridge", verdict="insufficient evidence")
    assert isinstance(tick(instance), dg.SkipReason)


def test_each_backbone_report_asks_for_the_candidates_it_covers(instance):
    from quantmm_jobs.definitions import defs
    from quantmm_jobs.finetune_sensor import candidates_sensor

    instance.report_runless_asset_event(
        dg.AssetMaterialization("backbone_report", metadata={"symbols": "BTCUSDT, ETHUSDT", "horizons": "1h, 4h"})
    )
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    result = candidates_sensor(context)
    requests = list(result.run_requests if isinstance(result, dg.SensorResult) else result)
    assert sorted(r.partition_key for r in requests) == ["1h|BTCUSDT", "1h|ETHUSDT", "4h|BTCUSDT", "4h|ETHUSDT"]
    assert len({r.run_key for r in requests}) == 4
