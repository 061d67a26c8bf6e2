"""The signal of a prediction (DESIGN section 3), from the rule, with hand-computed values.

side = sign(er); edge = |er| - cost; score = edge / max(vol, eps); position = side when edge > 0, score > the
horizon's score threshold and confidence > its confidence threshold. Values are dyadic so the arithmetic is exact.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.core.signal import VOL_EPS, SignalConfig, edge, score, score_expr, signal, signal_expr


def frame(er: list[float], cost: list[float], vol: list[float | None], conf: list[float], horizon: list[str]):
    return pl.DataFrame(
        {"expected_return": er, "cost": cost, "vol_forecast": vol, "signal_confidence": conf, "horizon": horizon},
        schema={
            "expected_return": pl.Float64,
            "cost": pl.Float64,
            "vol_forecast": pl.Float64,
            "signal_confidence": pl.Float64,
            "horizon": pl.Utf8,
        },
    )


def both(er, cost, vol, conf, horizon: str, config: SignalConfig | None = None) -> list[float]:
    """Return the numpy positions after checking that the polars form gives the same."""
    got = signal(er, cost, vol, conf, horizon, config).tolist()
    n = len(got)
    df = frame(*(list(np.broadcast_to(np.asarray(a, float), n)) for a in (er, cost, vol, conf)), [horizon] * n)
    assert df.select(signal_expr(config, horizon)).to_series().to_list() == got
    assert df.select(signal_expr(config)).to_series().to_list() == got  # thresholds read from the horizon column
    return got


def test_edge_and_score_by_hand():
    assert edge([0.75, -0.75], 0.25).tolist() == [0.5, 0.5]
    assert score([0.75, -0.75, 0.125], 0.25, 2.0).tolist() == [0.25, 0.25, -0.0625]
    df = frame([0.75, 0.125], [0.25, 0.25], [2.0, 2.0], [0.9, 0.9], ["1h", "1h"])
    assert df.select(score_expr()).to_series().to_list() == [0.25, -0.0625]


def test_a_zero_edge_takes_no_position():
    # |er| == cost: edge 0, score 0; the confidence is high and the score threshold 0, still flat
    assert both([0.25, -0.25], 0.25, 2.0, 0.9, "1h") == [0.0, 0.0]
    assert both([0.25 + 2**-10, -(0.25 + 2**-10)], 0.25, 2.0, 0.9, "1h") == [1.0, -1.0]
    # Mutant notes, EQUIVALENT: the edge test ``edge > 0`` -> ``>= 0`` (numpy and polars) or ``|er| + cost > 0``
    # (polars): with a finite vol the floor is >= eps > 0, so edge <= 0 gives score <= 0, which never clears a
    # score threshold (kept >= 0 by SignalConfig). The score test alone flattens a zero or negative edge.


def test_a_score_exactly_at_the_threshold_is_not_cleared():
    at = SignalConfig(score_threshold={"1h": 0.25})  # er 0.75, cost 0.25, vol 2: score exactly 0.25
    assert both([0.75, -0.75], 0.25, 2.0, 0.9, "1h", at) == [0.0, 0.0]
    below = SignalConfig(score_threshold={"1h": 0.125})
    assert both([0.75, -0.75], 0.25, 2.0, 0.9, "1h", below) == [1.0, -1.0]


def test_a_confidence_exactly_at_the_threshold_is_not_cleared():
    assert both([0.75] * 3, 0.25, 2.0, [0.5, 0.5 + 2**-20, 0.25], "1h") == [0.0, 1.0, 0.0]
    higher = SignalConfig(confidence_threshold={"1h": 0.75})
    assert both([0.75] * 3, 0.25, 2.0, [0.75, 0.875, 0.9], "1h", higher) == [0.0, 1.0, 1.0]


def test_a_zero_vol_uses_eps():
    # score = 0.5 / 1e-8 = 5e7 (also for a negative vol): clears 1e7, not 1e8
    assert score(0.75, 0.25, [0.0, -1.0]).tolist() == [0.5 / VOL_EPS] * 2
    assert both([0.75, 0.75], 0.25, [0.0, -1.0], 0.9, "1h", SignalConfig(score_threshold={"1h": 1e7})) == [1.0, 1.0]
    assert both([0.75], 0.25, [0.0], 0.9, "1h", SignalConfig(score_threshold={"1h": 1e8})) == [0.0]
    # Mutant note: polars' floor ``vol < eps`` -> ``vol <= eps`` is EQUIVALENT (at vol == eps both give eps).
    wide = SignalConfig(score_threshold={"1h": 1.0}, eps=1.0)  # max(0, 1) = 1: score 0.5, not past 1
    assert both([0.75], 0.25, [0.0], 0.9, "1h", wide) == [0.0]
    assert both([0.75], 0.25, [0.0], 0.9, "1h", SignalConfig(score_threshold={"1h": 0.25}, eps=1.0)) == [1.0]


def test_per_horizon_thresholds_differ():
    config = SignalConfig(score_threshold={"4h": 0.5}, confidence_threshold={"1d": 0.95})
    # one row (score 0.25, confidence 0.9) per horizon: only 4h (score) and 1d (confidence) stay flat
    got = {h: both([0.75], 0.25, 2.0, 0.9, h, config)[0] for h in HORIZONS}
    assert got == {"1h": 1.0, "4h": 0.0, "1d": 0.0, "7d": 1.0}
    df = frame([0.75] * 4, [0.25] * 4, [2.0] * 4, [0.9] * 4, list(HORIZONS))
    assert df.select(signal_expr(config)).to_series().to_list() == [1.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="unknown horizon"):
        signal([0.75], 0.25, 2.0, 0.9, "2h", config)
    # Mutant note: the Float64 dtype of the polars thresholds dropped is EQUIVALENT: SignalConfig stores floats.


def test_missing_inputs_give_flat():
    assert both([0.75] * 4, 0.25, [math.nan, 2.0, 2.0, math.inf], [0.9, math.nan, 0.9, 0.9], "1h")[:2] == [0.0, 0.0]
    df = frame([0.75, 0.75, None], [0.25, 0.25, 0.25], [None, 2.0, 2.0], [0.9, 0.9, 0.9], ["1h", "9h", "1h"])
    # null vol, a horizon the config does not know, a null expected return: flat
    assert df.select(signal_expr()).to_series().to_list() == [0.0, 0.0, 0.0]


def test_the_default_is_the_signal_before_the_score():
    """Default thresholds (score 0, confidence 0.5): position = side when edge > 0 and confidence > 0.5."""
    rng = np.random.default_rng(0)
    n = 5000
    er, cost = rng.normal(0, 0.01, n), rng.uniform(0, 0.01, n)
    vol, conf = np.exp(rng.normal(-5, 1, n)), rng.choice([0.5, 0.25, 0.75, 0.9], n)
    before = np.where((np.abs(er) - cost > 0) & (conf > 0.5), np.sign(er), 0.0)
    for h in HORIZONS:
        np.testing.assert_array_equal(both(er, cost, vol, conf, h), before)


def test_config_params_round_trip_and_a_stable_hash():
    default = SignalConfig()
    params = default.as_params()
    assert params["signal.score_threshold.1h"] == 0.0 and params["signal.confidence_threshold.7d"] == 0.5
    assert len(params) == 2 * len(HORIZONS) + 1 and params["signal.eps"] == VOL_EPS
    assert default.config_hash() == "4e4a53430a49"  # pinned: a changed default or param name changes every run's hash
    custom = SignalConfig({"4h": 0.5}, {"1d": 0.6}, eps=1e-6)
    as_strings = {k: str(v) for k, v in custom.as_params().items()} | {"backbone": "ridge"}  # as MLflow returns
    assert SignalConfig.from_params(as_strings) == custom
    assert SignalConfig.from_params(as_strings).config_hash() == custom.config_hash() != default.config_hash()
    assert SignalConfig({"1h": 0.0}) == default and hash(SignalConfig({"1h": 0.0})) == hash(default)
    with pytest.raises(ValueError, match="unknown parameter"):
        SignalConfig.from_params({"signal.score_treshold.1h": "0.1"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_threshold": {"2h": 0.1}}, "unknown horizons"),
        ({"score_threshold": {"1h": -0.1}}, "out of range"),
        ({"confidence_threshold": {"1h": 1.0}}, "out of range"),
        ({"confidence_threshold": {"1h": math.nan}}, "out of range"),
        ({"eps": 0.0}, r"eps=0\.0"),
        ({"score_threshold": {"1h": math.inf}}, r"score_threshold\[1h\]=inf"),
        ({"confidence_threshold": {"4h": -0.25}}, r"confidence_threshold\[4h\]=-0\.25"),
        ({"eps": math.inf}, "out of range"),
        ({"eps": -1.0}, "out of range"),
        ({"eps": math.nan}, "out of range"),
        ({"confidence_threshold": {"9h": 0.5}}, "confidence_threshold for unknown horizons"),
        ({"score_threshold": {"9h": 0.5}}, "score_threshold for unknown horizons"),
    ],
)
def test_config_out_of_range_is_an_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SignalConfig(**kwargs)


def test_the_ends_of_the_ranges_are_allowed():
    edges = SignalConfig(score_threshold={"1h": 0.0}, confidence_threshold={"1h": 0.0})  # score >= 0, confidence >= 0
    assert edges.thresholds("1h") == (0.0, 0.0)
    # confidence 0.25 > 0: long; confidence 0 is not past 0: flat
    assert both([0.75, 0.75], 0.25, 2.0, [0.25, 0.0], "1h", edges) == [1.0, 0.0]


def test_non_finite_and_null_inputs_give_flat_quietly():
    # each row would clear every threshold if its non-finite input were taken at face value
    inf = math.inf
    rows = [(inf, 0.25, 2.0, 0.9), (0.75, -inf, 2.0, 0.9), (0.75, 0.25, -inf, 0.9), (0.75, 0.25, 2.0, inf)]
    er, cost, vol, conf = (list(c) for c in zip(*rows, (-inf, 0.25, 2.0, 0.9), strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf and inf / inf: no numpy warning
        assert both(er, cost, vol, conf, "1h") == [0.0] * 5
        assert signal([inf, 0.75], [inf, 0.25], [inf, 2.0], [0.9, 0.9], "1h").tolist() == [0.0, 1.0]
    # a null (None) in any input is flat; the row beside it is not
    assert signal([0.75, None], [0.25, 0.25], [2.0, 2.0], [0.9, 0.9], "1h").tolist() == [1.0, 0.0]
    assert signal([0.75, 0.75], [None, 0.25], [2.0, None], [0.9, 0.9], "1h").tolist() == [0.0, 0.0]
    assert signal([-0.75, 0.75], [0.25, 0.25], [2.0, 2.0], [0.9, None], "1h").tolist() == [-1.0, 0.0]
    assert math.isnan(edge([None], 0.25)[0]) and math.isnan(score([0.75, None], 0.25, 2.0)[1])
    # Mutant note: ``np.errstate(divide="ignore")`` dropped is EQUIVALENT: the divisor max(vol, eps) is never 0.


def test_signal_expr_on_other_columns_uses_the_given_horizon():
    """With a horizon given, its thresholds apply whatever the frame holds: no horizon column is needed."""
    config = SignalConfig(score_threshold={"4h": 0.5})
    df = pl.DataFrame({"er": [0.75, 1.25], "c": [0.25, 0.25], "v": [2.0, 2.0], "p": [0.9, 0.9]})  # scores 0.25, 0.5
    expr = signal_expr(config, "4h", "er", "c", "v", "p")
    assert df.select(expr).to_series().to_list() == [0.0, 0.0]
    assert df.select(signal_expr(config, "1h", "er", "c", "v", "p")).to_series().to_list() == [1.0, 1.0]
    wider = df.with_columns(horizon=pl.lit("1h"), vol_forecast=pl.lit(0.25))  # neither column is read
    assert wider.select(expr).to_series().to_list() == [0.0, 0.0]
    as_exprs = signal_expr(config, "4h", pl.col("er") * 2, pl.col("c"), pl.col("v"), pl.col("p"))  # 1.5: score 0.625
    assert df.select(as_exprs).to_series().to_list() == [1.0, 1.0]


def test_eps_is_kept_as_a_float_and_configs_hash_by_their_params():
    assert SignalConfig(eps=1).eps == 1.0 and isinstance(SignalConfig(eps=1).eps, float)
    assert SignalConfig(eps=1).config_hash() == SignalConfig(eps=1.0).config_hash()  # json: 1.0, not 1
    configs = [SignalConfig(), SignalConfig({"1h": 0.5}), SignalConfig(eps=1.0), SignalConfig({}, {"7d": 0.75})]
    assert len({hash(c) for c in configs}) == 4 and len(set(configs + [SignalConfig()])) == 4


def test_record_and_hash_by_hand():
    config = SignalConfig({"4h": 0.5}, {"1d": 0.625})
    # the sorted JSON of the params, written out: confidence, eps, score; horizons sorted as text (1d, 1h, 4h, 7d)
    text = (
        '{"signal.confidence_threshold.1d": 0.625, "signal.confidence_threshold.1h": 0.5, '
        '"signal.confidence_threshold.4h": 0.5, "signal.confidence_threshold.7d": 0.5, "signal.eps": 1e-08, '
        '"signal.score_threshold.1d": 0.0, "signal.score_threshold.1h": 0.0, "signal.score_threshold.4h": 0.5, '
        '"signal.score_threshold.7d": 0.0}'
    )
    assert json.loads(text) == config.as_params()
    want = hashlib.sha256(text.encode()).hexdigest()[:12]
    assert config.config_hash() == want
    assert config.record() == {**json.loads(text), "signal.config_hash": want}
    assert SignalConfig.from_params(config.record()) == config
    assert config.describe() == (
        "position = sign(expected_return) when edge = |expected_return| - cost > 0 and score = edge / "
        "max(vol_forecast, 1e-08) and confidence clear the thresholds (1h: score > 0 and confidence > 0.5; "
        "4h: score > 0.5 and confidence > 0.5; 1d: score > 0 and confidence > 0.625; 7d: score > 0 and "
        f"confidence > 0.5); signal config `{want}`"
    )


def test_from_params_reads_signal_keys_wherever_they_are():
    # other params first; a partial set takes the defaults (eps 1e-8) for the rest
    params = {"backbone": "ridge", "signal.config_hash": "0", "signal.score_threshold.7d": "0.25", "zz": 1}
    assert SignalConfig.from_params(params) == SignalConfig({"7d": 0.25})
    assert SignalConfig.from_params({"signal.eps": "0.5"}) == SignalConfig(eps=0.5)
    for key in ("signal.score_threshold", "signal.confidence_threshold", "signal.eps.1h", "signal.vol"):
        with pytest.raises(ValueError, match="unknown parameter"):
            SignalConfig.from_params({key: "0.5"})
