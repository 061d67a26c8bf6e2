"""The demo's last act: the gate reports of the candidates, one promotion where the gates allow it, and plainly
why the others were refused."""

from __future__ import annotations

import dagster as dg
import polars as pl

from quantmm_resources.registry import ModelRegistry, history
from quantmm_resources.registry.gated_promotion import (
    GATES,
    PromotionRefused,
    gate_status,
    operator_name,
    promote_candidate,
    rollback_active,
)
from quantmm_resources.settings import QuantmmSettings


def show_gates_and_promote(
    settings: QuantmmSettings,
    instance: dg.DagsterInstance,
    registry: ModelRegistry,
    symbols: list[str],
    horizons: list[str],
) -> bool:
    """Print each candidate's gates; promote the first whose gates all passed; say why the others cannot move.
    Return whether one was promoted."""
    print("\ncandidates and their gates (leakage / data quality / model):")
    statuses = [gate_status(instance, s, h) for s in symbols for h in horizons]
    for st in statuses:
        verdicts = " / ".join(st.checks.get(g, "not run") for g in GATES)
        model = st.reports.get("model_gate", {})
        steps = f"{model.get('n_held', 0)} held of {model.get('n_steps', 0)} steps, {model.get('n_windows', 0)} windows"
        print(
            f"  {st.model_name:<22} v{st.version}  {verdicts:<28} model gate: {model.get('verdict', '?')} "
            f"(decided by {model.get('deciding', '?')}; {steps}; candidate {model.get('candidate', '?')})"
        )
    passing = [st for st in statuses if st.passed]
    ops_url = settings.resolved_ops_url
    if passing:
        st = passing[0]
        symbol, horizon = st.model_name.split(".")[1:]
        done = promote_candidate(
            instance, registry, ops_url, symbol, horizon, operator_name(None), "demo: gates passed"
        )
        print(
            f"\npromoted {done['model']} v{done['to']}: every blocking gate passed on this synthetic world, whose "
            "planted signal is strong enough for it (real data rarely is: see the gate report)"
        )
        print(_model_gate_lines(st))
        run_id = registry.load(st.model_name, "active").metadata.run_id
        print(f"models:/{st.model_name}@active loads the promoted version (its MLflow run {run_id[:8]})")
    else:
        print(
            "\nno candidate passed its gates on this synthetic world: nothing was promoted (that is the gates "
            "doing their job on a short history, where a good model often cannot show enough evidence)"
        )
    refused = next((st for st in statuses if not st.passed), None)
    if refused is not None:
        symbol, horizon = refused.model_name.split(".")[1:]
        try:
            promote_candidate(instance, registry, ops_url, symbol, horizon, operator_name(None), "demo: try")
        except PromotionRefused as exc:
            print(f"refused, as it should be: {exc}")
        print(_model_gate_lines(refused))
    ledger = history(ops_url)
    print(f"\npromotion ledger ({ops_url}): {ledger.height} row(s); `quantmm registry list` shows the registry")
    return bool(passing)


def show_rollback(
    instance: dg.DagsterInstance, registry: ModelRegistry, ops_url: str, symbol: str, horizon: str
) -> None:
    """Promote the newly gated version of (symbol, horizon), then roll it back to the one before."""
    done = promote_candidate(instance, registry, ops_url, symbol, horizon, operator_name(None), "demo: a retrain")
    print(f"\npromoted the retrained {done['model']}: v{done['from']} -> v{done['to']}")
    rollback_active(registry, ops_url, symbol, horizon, operator_name(None), "demo: show the rollback")
    name = done["model"]
    print(f"rolled back {name} (a ledger row of its own): active is v{registry.aliases(name).get('active')} again")
    with pl.Config(tbl_cols=10, fmt_str_lengths=40, tbl_width_chars=160, tbl_hide_dataframe_shape=True):
        print(history(ops_url, name).drop("gate_report"))


def _model_gate_lines(status) -> str:
    """The model gate's criteria of one candidate, one line each: the value, the threshold and why."""
    report = status.reports.get("model_gate", {})
    lines = [f"model gate of {status.model_name} v{status.version}:"]
    for c in report.get("criteria", []):
        mark = "n/a " if c["passed"] is None else ("pass" if c["passed"] else "FAIL")
        lines.append(f"  [{mark}] {c['name']:<36} {c['why']}")
    return "\n".join(lines)
