"""The portfolio allocator's rules (quantmm_assets/core/portfolio), each with numbers computed by hand.

Vol targeting: daily vol = vol_forecast * sqrt(1 day / h), raw weight = side * 0.01 / daily vol, so a 1d vol of 0.02
gives 0.5. Caps scale proportionally only when exceeded; contributions always sum to the target.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.portfolio.allocator import Allocation, AllocatorConfig, allocate

COLUMNS = ("symbol", "horizon", "position", "expected_return", "cost", "vol_forecast", "expected_funding")
DTYPES = (pl.Utf8, pl.Utf8, pl.Int64, pl.Float64, pl.Float64, pl.Float64, pl.Float64)
BIG = 100.0


def sig(*rows: tuple) -> pl.DataFrame:
    """Build a signals frame from (symbol, horizon, position, er, cost, vol, funding) tuples."""
    return pl.DataFrame(list(rows), schema=dict(zip(COLUMNS, DTYPES, strict=True)), orient="row")


def long(symbol: str, horizon: str = "1d", vol: float | None = 0.02, side: int = 1) -> tuple:
    """A held position with a clear edge (0.05 - 0.001) and zero funding."""
    return (symbol, horizon, side, side * 0.05, 0.001, vol, 0.0)


def loose(**kwargs: float) -> AllocatorConfig:
    """A config whose caps do not bind unless overridden."""
    caps = {"risk_budget": BIG, "symbol_cap": BIG, "bucket_cap": BIG, "cluster_cap": BIG, "max_turnover": BIG}
    return AllocatorConfig(**(caps | kwargs))


def weights(a: Allocation) -> dict[tuple[str, str], float]:
    return {(r["symbol"], r["horizon"]): r["weight"] for r in a.contributions.iter_rows(named=True)}


def col(a: Allocation, name: str) -> dict[str, object]:
    return dict(zip(a.targets["symbol"], a.targets[name].to_list(), strict=True))


def test_rule1_flat_missing_vol_and_funding_reasons():
    rows = [
        ("A", "1d", 0, 0.05, 0.001, 0.02, 0.0),
        long("B", vol=None),
        long("C", vol=0.0),
        long("D", vol=-0.01),
        long("E", vol=float("nan")),
        ("F", "1d", 1, 0.5, 0.25, 0.02, 0.25),  # edge 0.25, after funding exactly 0: not held
        long("G"),
        ("H", "1d", 1, None, 0.001, 0.02, 0.0),
    ]
    a = allocate(sig(*rows), {}, None, loose())
    reason = dict(zip(a.contributions["symbol"], a.contributions["reason"], strict=True))
    assert reason == {
        "A": "flat signal",
        "B": "no vol forecast",
        "C": "no vol forecast",
        "D": "no vol forecast",
        "E": "no vol forecast",
        "F": "funding eats the edge",
        "G": "held",
        "H": "no edge (expected_return or cost missing)",
    }
    assert col(a, "target") == {**dict.fromkeys("ABCDEFH", 0.0), "G": 0.5}
    f = a.contributions.filter(pl.col("symbol") == "F").row(0, named=True)
    assert (f["edge"], f["edge_after_funding"], f["raw_weight"]) == (0.25, 0.0, 0.0)
    unbucketed = allocate(sig(long("A", "4h")), {}, None, loose(buckets={"1d": "trend"}))
    assert unbucketed.contributions["reason"].to_list() == ["horizon in no bucket"]


def test_funding_flips_a_marginal_long_to_zero_but_not_the_same_short():
    # edge = 0.01 - 0.004 = 0.006; funding 0.007: the long pays it (-0.001), the short receives it (+0.013)
    signals = sig(("L", "1d", 1, 0.01, 0.004, 0.02, 0.007), ("S", "1d", -1, -0.01, 0.004, 0.02, 0.007))
    a = allocate(signals, {}, None, loose())
    c = {r["symbol"]: r for r in a.contributions.iter_rows(named=True)}
    assert c["L"]["edge_after_funding"] == pytest.approx(-0.001, abs=1e-15)
    assert c["S"]["edge_after_funding"] == pytest.approx(0.013, abs=1e-15)
    assert (c["L"]["weight"], c["L"]["reason"]) == (0.0, "funding eats the edge")
    assert (c["S"]["weight"], c["S"]["reason"]) == (-0.5, "held")
    off = allocate(signals, {}, None, loose(funding_in_edge=False))
    assert col(off, "target") == {"L": 0.5, "S": -0.5}


def test_unknown_funding_is_zero_and_noted():
    a = allocate(sig(("L", "1d", 1, 0.01, 0.004, 0.02, None)), {}, None, loose())
    assert col(a, "target") == {"L": 0.5}
    assert a.contributions["funding"].to_list() == [0.0]
    assert "funding: L 1d expected_funding unknown (null or NaN): taken as 0" in a.notes


def test_rule2_vol_targeting_per_horizon():
    rows = [
        long("A", "1h", vol=0.004),  # daily 0.004 * sqrt(24)
        long("B", "4h", vol=0.01),  # daily 0.01 * sqrt(6)
        long("C", "1d", vol=0.02, side=-1),  # daily 0.02: -0.5
        long("D", "7d", vol=0.07),  # daily 0.07 / sqrt(7)
    ]
    a = allocate(sig(*rows), {}, None, loose())
    raw = dict(zip(a.contributions["symbol"], a.contributions["raw_weight"], strict=True))
    assert raw["A"] == pytest.approx(0.01 / (0.004 * math.sqrt(24)), rel=1e-12)
    assert raw["B"] == pytest.approx(0.01 / (0.01 * math.sqrt(6)), rel=1e-12)
    assert raw["C"] == pytest.approx(-0.5, rel=1e-12)
    assert raw["D"] == pytest.approx(0.01 * math.sqrt(7) / 0.07, rel=1e-12)
    assert col(a, "target") == raw  # no cap binds: the target is the raw weight
    doubled = allocate(sig(long("C")), {}, None, loose(bucket_daily_vol={"trend": 0.02}))
    assert col(doubled, "target") == {"C": pytest.approx(1.0, rel=1e-12)}
    floored = allocate(sig(long("C", vol=0.02)), {}, None, loose(eps=0.5))  # vol 0.02 < eps: 0.01 / 0.5
    assert col(floored, "target") == {"C": pytest.approx(0.02, rel=1e-12)}


def test_rule3_bucket_cap_scales_the_bucket_gross():
    rows = [long("A"), long("B", side=-1), long("C", "1h", vol=0.02 / math.sqrt(24))]  # 0.5, -0.5, 0.5
    rows.append(("D", "1d", 0, 0.05, 0.001, 0.02, 0.0))  # flat, in the trend bucket: not scaled, not bound
    a = allocate(sig(*rows), {}, None, loose(bucket_cap=0.75))
    # trend gross |0.5| + |-0.5| = 1.0 > 0.75: scaled by 0.75; mean_reversion 0.5 <= 0.75: kept
    assert col(a, "target") == {"A": 0.375, "B": -0.375, "C": pytest.approx(0.5, rel=1e-12), "D": 0.0}
    assert col(a, "binding") == {"A": ["bucket_cap"], "B": ["bucket_cap"], "C": [], "D": []}
    at_cap = allocate(sig(*rows[:3]), {}, None, loose(bucket_cap=1.0))  # exactly at the cap: not scaled
    assert col(at_cap, "target")["A"] == 0.5 and col(at_cap, "binding")["A"] == []


def test_rule4_symbol_cap_scales_the_symbol_net():
    rows = [long("A"), long("A", "7d", vol=0.02 * math.sqrt(7)), long("B"), long("B", "7d", 0.02 * math.sqrt(7), -1)]
    a = allocate(sig(*rows), {}, None, loose(symbol_cap=0.5))
    w = weights(a)
    # A: 0.5 + 0.5 = 1.0 > 0.5, each scaled by 0.5; B nets to 0: kept
    assert w[("A", "1d")] == pytest.approx(0.25, abs=1e-12) and w[("A", "7d")] == pytest.approx(0.25, abs=1e-12)
    assert w[("B", "1d")] == 0.5 and w[("B", "7d")] == pytest.approx(-0.5, abs=1e-12)
    assert col(a, "target")["A"] == pytest.approx(0.5, abs=1e-12)
    assert col(a, "binding") == {"A": ["symbol_cap"], "B": []}


def correlated_returns(n: int = 60, short: int | None = None, seed: int = 3, factor: float = 2.0) -> pl.DataFrame:
    """A and B perfectly correlated (B = factor * A), C independent, D with only ``short`` bars when given."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(0, 0.01, n), rng.normal(0, 0.01, n)
    ts = list(range(n))
    parts = {"A": (ts, x), "B": (ts, factor * x), "C": (ts, z)}
    if short is not None:
        parts["D"] = (ts[:short], x[:short])
    return pl.DataFrame(
        {
            "symbol": [s for s, (t, _) in parts.items() for _ in t],
            "ts_event": [v for t, _ in parts.values() for v in t],
            "ret": [float(v) for _, r in parts.values() for v in r],
        }
    )


def test_rule5_cluster_cap_scales_the_cluster_net():
    a = allocate(sig(long("A"), long("B"), long("C")), {}, correlated_returns(), loose(cluster_cap=0.6))
    # A and B are one cluster, net 1.0 > 0.6: each scaled by 0.6; C alone at 0.5 <= 0.6
    assert col(a, "target") == {"A": pytest.approx(0.3, abs=1e-12), "B": pytest.approx(0.3, abs=1e-12), "C": 0.5}
    assert col(a, "cluster") == {"A": 0, "B": 0, "C": 1}
    assert col(a, "binding") == {"A": ["cluster_cap"], "B": ["cluster_cap"], "C": []}
    hedged = allocate(sig(long("A"), long("B", side=-1)), {}, correlated_returns(), loose(cluster_cap=0.6))
    assert col(hedged, "target") == {"A": 0.5, "B": -0.5}  # net 0: not scaled


def test_rule6_risk_budget_scales_everything():
    a = allocate(sig(long("A"), long("B", side=-1), long("C")), {}, None, loose(risk_budget=1.0))
    # gross 1.5 > 1.0: every contribution times 2/3
    assert col(a, "target") == pytest.approx({"A": 1 / 3, "B": -1 / 3, "C": 1 / 3}, abs=1e-12)
    assert col(a, "binding") == {s: ["risk_budget"] for s in "ABC"}
    # the gross is over symbol nets: A long 1d and short 7d nets to 0, so 0 + 0.5 + 0.5 = 1.0 is within the budget
    hedged = [long("A"), long("A", "7d", 0.02 * math.sqrt(7), -1), long("B"), long("C")]
    kept = allocate(sig(*hedged), {}, None, loose(risk_budget=1.0))
    assert weights(kept)[("B", "1d")] == 0.5 and col(kept, "binding")["B"] == []


def test_rule7_turnover_limit_carries_part_of_the_current_position():
    signals = sig(("A", "1d", 0, 0.0, 0.001, 0.02, 0.0), long("B"))
    current = {"A": 0.4, "C": -0.2, "D": 0.0}
    a = allocate(signals, current, None, loose(max_turnover=0.5))
    # desired A 0, B 0.5, C 0, D 0; turnover 0.4 + 0.5 + 0.2 = 1.1 > 0.5: k = 5/11
    k = 0.5 / 1.1
    assert col(a, "desired") == {"A": 0.0, "B": 0.5, "C": 0.0, "D": 0.0}
    assert col(a, "target") == pytest.approx({"A": 0.4 * (1 - k), "B": 0.5 * k, "C": -0.2 * (1 - k), "D": 0.0})
    assert sum(abs(t) for t in a.targets["trade"]) == pytest.approx(0.5, abs=1e-12)
    assert list(weights(a)) == [("A", "1d"), ("A", "carry"), ("B", "1d"), ("C", "carry")]  # D: no current, no carry
    assert weights(a)[("A", "carry")] == pytest.approx(0.4 * 6 / 11, abs=1e-12)
    assert col(a, "binding") == {"A": ["turnover"], "B": ["turnover"], "C": ["turnover"], "D": []}
    free = allocate(signals, current, None, loose(max_turnover=1.1))  # exactly at the limit: not scaled
    assert col(free, "target") == col(free, "desired") and "carry" not in free.contributions["horizon"]
    assert set(map(tuple, col(free, "binding").values())) == {()} and not any("turnover" in n for n in free.notes)


def test_empty_signals_move_the_current_book_toward_zero():
    a = allocate(pl.DataFrame(), {"B": -0.4, "A": 0.4}, None)  # default max_turnover 0.5 < 0.8: k = 0.625
    assert a.targets["symbol"].to_list() == ["A", "B"]
    assert col(a, "target") == pytest.approx({"A": 0.15, "B": -0.15}, abs=1e-12)
    assert a.contributions["horizon"].to_list() == ["carry", "carry"]
    assert "signals: none: every current position moves toward 0" in a.notes


def test_output_order_is_deterministic():
    rows = [long("B", "7d"), long("A", "1d"), long("B", "1h"), long("A", "4h"), long("B", "1d")]
    a = allocate(sig(*rows), {"B": 0.3, "A": -0.3}, None, AllocatorConfig(max_turnover=0.1))
    assert list(weights(a)) == [("A", "4h"), ("A", "1d"), ("A", "carry"), ("B", "1h"), ("B", "1d"), ("B", "7d")] + [
        ("B", "carry")
    ]
    shuffled = allocate(sig(*reversed(rows)), {"A": -0.3, "B": 0.3}, None, AllocatorConfig(max_turnover=0.1))
    assert shuffled.targets.equals(a.targets) and shuffled.contributions.equals(a.contributions)


def test_correlation_clusters_and_their_notes():
    a = allocate(sig(long("A"), long("B"), long("C"), long("D")), {}, correlated_returns(short=10), loose())
    assert col(a, "cluster") == {"A": 0, "B": 0, "C": 1, "D": 2}
    assert "correlation: A-D has 10 overlapping returns (< 48): not linked" in a.notes
    assert "correlation: B-D has 10 overlapping returns (< 48): not linked" in a.notes
    linked = allocate(sig(long("A"), long("D")), {}, correlated_returns(short=10), loose(min_corr_obs=10))
    assert col(linked, "cluster") == {"A": 0, "D": 0}
    # seed 2, B = 3A: the computed correlation is 1 - 2e-16; cluster_corr = 1 still links them (rounding tolerance)
    returns = correlated_returns(seed=2, factor=3.0)
    perfect = allocate(sig(long("A"), long("B"), long("C")), {}, returns, loose(cluster_corr=1.0))
    assert col(perfect, "cluster") == {"A": 0, "B": 0, "C": 1}
    flipped = correlated_returns().with_columns(
        pl.when(pl.col("symbol") == "B").then(-pl.col("ret")).otherwise(pl.col("ret")).alias("ret")
    )
    assert col(allocate(sig(long("A"), long("B")), {}, flipped, loose()), "cluster") == {"A": 0, "B": 1}
    for none in (None, pl.DataFrame(schema={"symbol": pl.Utf8, "ts_event": pl.Int64, "ret": pl.Float64})):
        alone = allocate(sig(long("A"), long("B")), {}, none, loose())
        assert col(alone, "cluster") == {"A": 0, "B": 1}
        assert "correlation: no returns given: every symbol is its own cluster" in alone.notes
    missing = allocate(sig(long("A"), long("E")), {}, correlated_returns(), loose())
    assert "correlation: E has no returns: not linked" in missing.notes
    flat = pl.DataFrame({"symbol": ["A", "B"] * 50, "ts_event": [t for t in range(50) for _ in "AB"], "ret": 0.0})
    assert "correlation: A-B is undefined (constant returns over 50 bars): not linked" in (
        allocate(sig(long("A"), long("B")), {}, flat, loose()).notes
    )


BAD = {
    "missing column": (lambda s: s.drop("expected_funding"), "expected_funding"),
    "unknown horizon": (lambda s: s.with_columns(pl.lit("2h").alias("horizon")), "unknown horizons"),
    "duplicate": (lambda s: pl.concat([s, s]), "duplicate"),
    "position 2": (lambda s: s.with_columns(pl.lit(2).alias("position")), "position"),
    "position 0.5": (lambda s: s.with_columns(pl.lit(0.5).alias("position")), "position"),
    "null position": (lambda s: s.with_columns(pl.lit(None, pl.Int64).alias("position")), "position"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_signals_raise(case: str):
    change, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        allocate(change(sig(long("A"))), {}, None)


def test_bad_current_and_returns_raise():
    with pytest.raises(ValueError, match="current"):
        allocate(sig(long("A")), {"A": float("nan")}, None)
    with pytest.raises(ValueError, match="ret"):
        allocate(sig(long("A")), {}, correlated_returns().drop("ret"))
    with pytest.raises(ValueError, match="duplicate"):
        allocate(sig(long("A")), {}, pl.concat([correlated_returns(), correlated_returns()]))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"buckets": {"2h": "x"}}, "buckets"),
        ({"bucket_daily_vol": {"carry_trade": 0.01}}, "bucket_daily_vol"),
        ({"bucket_daily_vol": {"trend": -0.01}}, "bucket_daily_vol"),
        ({"bucket_daily_vol": {"trend": float("nan")}}, "bucket_daily_vol"),
        ({"risk_budget": 0.0}, "risk_budget"),
        ({"symbol_cap": -0.1}, "symbol_cap"),
        ({"bucket_cap": float("inf")}, "bucket_cap"),
        ({"cluster_cap": float("nan")}, "cluster_cap"),
        ({"cluster_corr": 0.0}, "cluster_corr"),
        ({"cluster_corr": 1.5}, "cluster_corr"),
        ({"min_corr_obs": 1}, "min_corr_obs"),
        ({"max_turnover": -0.5}, "max_turnover"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict, field: str):
    with pytest.raises(ValueError, match=field):
        AllocatorConfig(**kwargs)


def test_config_edges_are_accepted():
    AllocatorConfig(cluster_corr=1.0, max_turnover=0.0, bucket_daily_vol={"trend": 0.0}, min_corr_obs=2)


def test_config_params_and_hash_are_stable():
    buckets = {"1h": "mean_reversion", "4h": "event", "1d": "trend", "7d": "trend"}
    params = {f"allocator.buckets.{h}": b for h, b in buckets.items()}
    params |= {f"allocator.bucket_daily_vol.{b}": 0.01 for b in ("event", "mean_reversion", "trend")}
    params |= {"allocator.risk_budget": 1.0, "allocator.symbol_cap": 0.5, "allocator.bucket_cap": 0.75}
    params |= {"allocator.cluster_corr": 0.8, "allocator.cluster_cap": 0.6, "allocator.max_turnover": 0.5}
    params |= {"allocator.eps": 1e-8, "allocator.min_corr_obs": 48.0, "allocator.funding_in_edge": "true"}
    config = AllocatorConfig()
    assert config.as_params() == params
    assert config.config_hash() == hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    reordered = AllocatorConfig(buckets={"7d": "trend", "1d": "trend", "4h": "event", "1h": "mean_reversion"})
    assert reordered.config_hash() == config.config_hash() and hash(reordered) == hash(config)
    assert AllocatorConfig(symbol_cap=0.4).config_hash() != config.config_hash()
    assert AllocatorConfig(funding_in_edge=False).config_hash() != config.config_hash()


def random_case(rng: np.random.Generator) -> tuple[pl.DataFrame, dict[str, float], pl.DataFrame | None, dict, list]:
    """Signals, current weights, returns with known clusters (perfectly correlated groups), config kwargs."""
    n = int(rng.integers(1, 7))
    symbols = [f"S{i}" for i in range(n)]
    group = [int(g) for g in rng.integers(0, max(1, n - 1), size=n)]
    base = {g: rng.normal(0, 0.01, 80) for g in set(group)}
    returns = pl.DataFrame(
        {
            "symbol": [s for s in symbols for _ in range(80)],
            "ts_event": list(range(80)) * n,
            "ret": np.concatenate([base[g] * (1 + i) for i, g in enumerate(group)]),
        }
    )
    if rng.random() < 0.2:
        returns, group = None, list(range(n))
    rows = []
    for s in symbols:
        for h, days in (("1h", 1 / 24), ("4h", 1 / 6), ("1d", 1.0), ("7d", 7.0)):
            if rng.random() < 0.7:
                pos = int(rng.integers(-1, 2))
                vol = None if rng.random() < 0.05 else float(rng.lognormal(np.log(0.02), 0.7) * math.sqrt(days))
                funding = None if rng.random() < 0.1 else float(rng.normal(0, 0.003))
                rows.append((s, h, pos, pos * float(rng.uniform(0, 0.02)), float(rng.uniform(0, 0.01)), vol, funding))
    kwargs = {
        "risk_budget": rng.uniform(0.2, 2),
        "symbol_cap": rng.uniform(0.1, 1),
        "bucket_cap": rng.uniform(0.2, 2),
        "cluster_cap": rng.uniform(0.1, 1.5),
        "max_turnover": rng.uniform(0.05, 2),
        "bucket_daily_vol": {"trend": rng.uniform(0.001, 0.03), "event": rng.uniform(0.001, 0.03)},
    }
    current = {s: float(rng.uniform(-1, 1)) for s in symbols + ["X"] if rng.random() < 0.6}
    feasible = rng.random() < 0.7
    if feasible and current:  # inside every cap, so the caps hold on the target too (it mixes current and desired)
        room = min(kwargs["symbol_cap"], kwargs["cluster_cap"], kwargs["risk_budget"])
        total = sum(abs(v) for v in current.values())
        current = {s: v * room / total * rng.uniform(0, 1) for s, v in current.items()}
    return sig(*rows), current, returns, kwargs, [feasible or not current, dict(zip(symbols, group, strict=True))]


def assert_caps(w: dict[str, float], groups: dict[str, int], config: AllocatorConfig) -> None:
    assert max((abs(v) for v in w.values()), default=0.0) <= config.symbol_cap + 1e-12
    assert sum(abs(v) for v in w.values()) <= config.risk_budget + 1e-12
    for g in set(groups.values()):
        assert abs(sum(w[s] for s, gs in groups.items() if gs == g)) <= config.cluster_cap + 1e-12


def test_every_cap_holds_on_random_inputs():
    rng = np.random.default_rng(20240607)
    bound = dict.fromkeys(("bucket_cap", "symbol_cap", "cluster_cap", "risk_budget", "turnover"), 0)
    for _ in range(300):
        signals, current, returns, kwargs, (feasible, groups) = random_case(rng)
        config = AllocatorConfig(**kwargs)
        a = allocate(signals, current, returns, config)
        t = a.targets
        assert t["symbol"].to_list() == sorted(set(signals["symbol"]) | set(current))
        sums = dict(a.contributions.group_by("symbol").agg(pl.col("weight").sum()).iter_rows())
        target, desired, cur = col(a, "target"), col(a, "desired"), col(a, "current")
        groups = {s: g for s, g in groups.items() if s in target}  # a symbol without signals or current is absent
        for s in target:
            assert abs(sums.get(s, 0.0) - target[s]) <= 1e-12
            assert col(a, "trade")[s] == pytest.approx(target[s] - cur[s], abs=1e-15)
        turnover = sum(abs(target[s] - cur[s]) for s in target)
        assert turnover <= config.max_turnover + 1e-12
        carried = any("turnover" in b for b in t["binding"].to_list())
        assert ("carry" in a.contributions["horizon"]) == (carried and any(v != 0 for v in cur.values()))
        if not carried:
            assert target == pytest.approx(desired, abs=1e-15)
        else:
            assert turnover == pytest.approx(config.max_turnover, abs=1e-9)
        if returns is not None:  # the clusters are the perfectly correlated groups
            got = {s: c for s, c in col(a, "cluster").items() if s in groups}
            assert {frozenset(s for s in got if got[s] == c) for c in got.values()} == {
                frozenset(s for s in groups if groups[s] == g) for g in groups.values()
            }
        assert_caps({s: v for s, v in desired.items() if s in groups}, groups, config)
        if feasible or not carried:
            full = groups | {s: -1 for s in target if s not in groups}
            assert_caps(target, full, config)
        held = a.contributions.filter(pl.col("horizon") != "carry")
        for bucket, gross in held.group_by("bucket").agg(pl.col("weight").abs().sum()).iter_rows():
            assert gross <= config.bucket_cap + 1e-12, bucket
        assert (held.filter(pl.col("reason") != "held")["weight"] == 0).all()
        assert ((held["weight"] * held["side"]) >= 0).all()
        assert ((held["weight"].abs() - held["raw_weight"].abs()) <= 1e-15).all()
        for binding in t["binding"]:
            for b in binding:
                bound[b] += 1
    assert all(v > 0 for v in bound.values()), bound  # every constraint was exercised
