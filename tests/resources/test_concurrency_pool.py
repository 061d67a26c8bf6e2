"""Training, registration and promotion share the pool ``quantmm_models`` with a limit of 1 on the instance the
environment writes, so two processes (the CLI runs in-process, outside the run queue) never run its steps at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg

from quantmm_assets.defs.active_models import active_models
from quantmm_assets.defs.candidate_assets import candidate_models
from quantmm_assets.defs.model_assets import trained_backbones
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.settings import get_settings

POOL = "quantmm_models"
SCRIPT = textwrap.dedent(
    """
    import sys, time, dagster as dg
    @dg.asset(pool="quantmm_models", name=sys.argv[2])
    def step():
        time.sleep(2)
    dg.materialize([step], instance=dg.DagsterInstance.from_config(sys.argv[1]))
    """
)


def test_the_model_assets_share_one_pool_of_one_slot(quantmm_home):
    assert {a.op.pool for a in (trained_backbones, candidate_models, active_models)} == {POOL}
    home = ensure_dagster_home(get_settings())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.get_concurrency_info(POOL).limit == 1


def test_two_processes_never_run_a_pool_step_at_once(quantmm_home):
    home = str(ensure_dagster_home(get_settings()))
    dg.DagsterInstance.from_config(home).dispose()  # the schema first: two processes must not race to create it
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, home, name]) for name in ("first", "second")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with dg.DagsterInstance.from_config(home) as instance:
        spans = {}
        for name in ("first", "second"):
            records = instance.fetch_materializations(dg.AssetKey(name), limit=1).records
            run_id = records[0].run_id
            events = instance.all_logs(run_id)
            start = next(
                e.timestamp for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
            )
            end = next(
                e.timestamp for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
            )
            spans[name] = (start, end)
    (a0, a1), (b0, b1) = sorted(spans.values())
    assert b0 >= a1  # the second step started only after the first had finished
