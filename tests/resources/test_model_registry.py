"""The model registry: a Ridge backbone registered as the pyfunc of (BTCUSDT, 1h) in MLflow (SQLite under tmp_path).

Registration sets ``candidate`` with lineage tags, ``lineage.json`` and the reference predictions; the pyfunc loaded
by alias predicts exactly what the backbone predicts on the same rows and refuses rows it was not built for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.models import get_model_info

from quantmm_assets.core.features.matrix import LATENT_COLUMNS
from quantmm_assets.core.signal import SignalConfig, signal
from quantmm_assets.models.data import ModelData, model_data
from quantmm_assets.models.protocol import Backbone
from quantmm_assets.models.registry import BACKBONES
from quantmm_resources.registry import ModelRegistry, to_model_input
from quantmm_resources.registry.model_registry import TRUNCATED
from quantmm_resources.registry.pyfunc_model import QuantmmPyfunc, empty_labels
from tests.unit.models.test_backbone_contract import DIM, HORIZONS, splits, synthetic

pytestmark = pytest.mark.xdist_group("model_registry")  # the module's registry is built once, on one worker
SYMBOLS = ("BTCUSDT", "ETHUSDT")
CONTRACT = "fc-test-3"
SIGNAL = SignalConfig(score_threshold={"1h": 0.05}, confidence_threshold={"1h": 0.52})
NAME = "quantmm.BTCUSDT.1h"


@dataclass(frozen=True)
class World:
    """A small fitted world: the feature-matrix rows, the model data built from them and fitted Ridge backbones."""

    rows: pl.DataFrame  # feature-matrix rows of both symbols (contract columns)
    data: ModelData
    names: list[str]  # the contract's ordered feature names (flat, then the latents)
    models: tuple[Backbone, ...]  # Ridge with different alphas: distinguishable versions
    test: np.ndarray  # out-of-sample row indices of data


def matrix_rows(data: ModelData) -> pl.DataFrame:
    """Return ``data`` as feature-matrix rows: symbol, ts_event, symbol_code, the flat features, the latents."""
    frame = pl.DataFrame(
        {
            "symbol": [SYMBOLS[c] for c in data.symbol_code],
            "ts_event": pl.Series(data.t).cast(pl.Datetime("us", "UTC")),
            "symbol_code": pl.Series(data.symbol_code).cast(pl.Int32),
            **{n: pl.Series(data.x[:, j]).fill_nan(None) for j, n in enumerate(data.feature_names)},
        }
    )
    for i, c in enumerate(LATENT_COLUMNS):
        lists = pl.Series(c, data.text[:, i * DIM : (i + 1) * DIM]).cast(pl.List(pl.Float32))
        frame = frame.with_columns(pl.when(pl.Series(data.text_mask)).then(lists).otherwise(None).alias(c))
    return frame


def build_world(n_t: int = 250) -> World:
    """Fit Ridge backbones (alpha 10 and 1000) on 2 symbols x ``n_t`` synthetic rows, rebuilt from matrix rows."""
    rows = matrix_rows(synthetic(3, n_t=n_t))
    names = [n for n in rows.columns if n not in ("symbol", "ts_event", "symbol_code")]
    source = synthetic(3, n_t=n_t)
    labels = pl.concat(
        [
            pl.DataFrame(
                {
                    "symbol": [SYMBOLS[c] for c in source.symbol_code],
                    "ts_event": pl.Series(source.t).cast(pl.Datetime("us", "UTC")),
                    "horizon": h,
                    "ret": source.ret[:, j],
                    "rv": source.rv[:, j],
                    "cost": source.cost[:, j],
                    "funding": 0.0,
                    "complete": source.label_ok[:, j],
                }
            )
            for j, h in enumerate(HORIZONS)
        ]
    )
    data = model_data(rows, labels, names, HORIZONS, latent_dim=DIM)
    train, test, inner = splits(data)
    models = tuple(BACKBONES["ridge"](random_seed=7, alpha=a).fit(data, train, inner) for a in (10.0, 1000.0))
    return World(rows=rows, data=data, names=names, models=models, test=test)


def lineage(n: int = 0) -> dict:
    return {
        "git_commit": f"{n:040x}",
        "git_dirty": False,
        "config_hash": "abc123",
        "cost_config": {"fee_bps": 4.0, "slippage_bps": 1.0},
        "feature_contract_version": CONTRACT,
        "text_encoder": "hashing-64",
        "fold_spec_hash": "f" * 12,
        "training_window": {"start": "1970-01-01", "end": "1970-01-02"},
        "partitions": ["1970-01-01|BTCUSDT", "1970-01-01|ETHUSDT"] * 40,  # long: cut in its tag
    }


def btc_rows(world: World) -> pl.DataFrame:
    return world.rows.filter(pl.col("symbol") == "BTCUSDT")


def oos_expected_return(world: World, model: Backbone) -> np.ndarray:
    idx = world.test[world.data.symbol_code[world.test] == 0]
    return model.predict(world.data, idx)["1h"].expected_return


def register(registry: ModelRegistry, world: World, k: int, symbol: str = "BTCUSDT", horizon: str = "1h") -> str:
    """Register backbone ``k`` of ``world`` for (symbol, horizon); return the version."""
    return registry.register_candidate(
        world.models[k],
        symbol,
        horizon,
        SIGNAL,
        CONTRACT,
        world.names,
        DIM,
        lineage(k),
        oos_expected_return(world, world.models[k]),
        world.rows.filter(pl.col("symbol") == symbol).head(4),
    )


def new_registry(root: Path, tracking_uri: str | None = None) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=tracking_uri or f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "mlartifacts")
    )


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def registered(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRegistry, str]:
    registry = new_registry(tmp_path_factory.mktemp("registry"))
    return registry, register(registry, world, 0)


def test_register_sets_candidate_with_lineage_reference_and_signature(world, registered) -> None:
    registry, version = registered
    assert registry.model_name("BTCUSDT", "1h") == NAME
    assert version == "1" and registry.aliases(NAME) == {"candidate": "1"}
    assert registry.registered_names() == [NAME]
    assert [v["version"] for v in registry.versions(NAME)] == ["1"]
    assert registry.versions(NAME)[0]["aliases"] == ["candidate"]

    tags = registry.version_tags(NAME, version)
    full = lineage(0)
    assert (
        tags["lineage_hash"]
        == hashlib.sha256(json.dumps(full, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )
    assert tags["lineage.git_commit"] == full["git_commit"] and tags["lineage.git_dirty"] == "false"
    assert tags["lineage.cost_config.fee_bps"] == "4.0" and tags["lineage.training_window.end"] == "1970-01-02"
    assert tags["lineage.partitions"].endswith(TRUNCATED) and len(tags["lineage.partitions"]) == 500
    assert tags["backbone"] == "ridge" and tags["config_hash"] == world.models[0].config_hash()
    assert tags["feature_contract_version"] == CONTRACT and tags["signal.config_hash"] == SIGNAL.config_hash()
    assert registry.lineage(NAME, version) == full  # lineage.json keeps the whole of it
    np.testing.assert_array_equal(
        registry.reference_predictions(NAME, version), oos_expected_return(world, world.models[0])
    )

    info = get_model_info(registry.model_uri(NAME, "candidate"))
    assert info.signature is not None and info.saved_input_example_info is not None
    inputs = {c.name: c for c in info.signature.inputs.inputs}
    assert {"symbol", "ts_event", "symbol_code", "feature_contract_version", *world.names} <= set(inputs)
    assert inputs["feature_contract_version"].required and not inputs["cost"].required
    assert not inputs["post_latent"].required and "expected_return" in info.signature.outputs.input_names()


def test_pyfunc_by_alias_predicts_exactly_what_the_backbone_predicts(world, registered) -> None:
    registry, _ = registered
    registry.load(NAME, "candidate")  # the registry's loader points MLflow at its store
    model = mlflow.pyfunc.load_model("models:/quantmm.BTCUSDT.1h@candidate")
    rows = btc_rows(world).slice(180, 60)
    out = model.predict(to_model_input(rows, CONTRACT))
    direct = world.models[0].predict(model_data(rows, empty_labels(), world.names, HORIZONS, DIM), np.arange(60))
    np.testing.assert_array_equal(out["expected_return"].to_numpy(), direct["1h"].expected_return)
    for k in ("vol_forecast", "signal_confidence", "y_base", "gate", "text_contribution", "degraded"):
        np.testing.assert_array_equal(out[k].to_numpy(), getattr(direct["1h"], k), err_msg=k)
    assert list(out.columns[:3]) == ["ts_event", "symbol", "horizon"] and "position" not in out.columns
    assert set(out["symbol"]) == {"BTCUSDT"} and set(out["horizon"]) == {"1h"}
    assert out["degraded"].any() and not out["degraded"].all()  # rows with and without text
    # the same rows as in the model data of the whole world
    idx = np.flatnonzero(world.data.symbol_code == 0)[180:240]
    np.testing.assert_allclose(out["expected_return"], world.models[0].predict(world.data, idx)["1h"].expected_return)

    shuffled = to_model_input(rows, CONTRACT).sample(frac=1.0, random_state=1).assign(cost=2e-4)
    again = model.predict(shuffled)  # in the input's order, with the position of the stored signal config
    back = again.set_index("ts_event").loc[out["ts_event"]]
    np.testing.assert_array_equal(back["expected_return"].to_numpy(), out["expected_return"].to_numpy())
    want = signal(again["expected_return"], 2e-4, again["vol_forecast"], again["signal_confidence"], "1h", SIGNAL)
    np.testing.assert_array_equal(again["position"].to_numpy(), want)
    assert set(np.unique(want)) <= {-1.0, 0.0, 1.0} and np.abs(want).sum() > 0


def test_pyfunc_refuses_rows_it_was_not_built_for(world, registered) -> None:
    registry, _ = registered
    model = registry.load(NAME, "1")
    eth = world.rows.filter(pl.col("symbol") == "ETHUSDT").head(3)
    with pytest.raises(ValueError, match=r"answers for symbol BTCUSDT only: got rows of \['ETHUSDT'\]"):
        model.predict(to_model_input(pl.concat([btc_rows(world).head(3), eth]), CONTRACT))
    with pytest.raises(ValueError, match=r"feature contract version\(s\) \['fc-test-4'\].*contract version fc-test-3"):
        model.predict(to_model_input(btc_rows(world).head(3), "fc-test-4"))
    assert isinstance(model.unwrap_python_model(), QuantmmPyfunc)
    assert model.unwrap_python_model().meta["feature_names"] == world.names


def test_registration_refuses_a_backbone_of_other_features(world, registered) -> None:
    registry, _ = registered
    with pytest.raises(ValueError, match="was fitted on features"):
        registry.register_candidate(
            world.models[0], "BTCUSDT", "1h", SIGNAL, CONTRACT, world.names[1:], DIM, {}, np.zeros(3), world.rows
        )
    with pytest.raises(ValueError, match="no rows of SOLUSDT"):
        registry.register_candidate(
            world.models[0], "SOLUSDT", "1h", SIGNAL, CONTRACT, world.names, DIM, {}, np.zeros(3), world.rows
        )
    assert [v["version"] for v in registry.versions(NAME)] == ["1"]
