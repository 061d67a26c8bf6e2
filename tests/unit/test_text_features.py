"""Text bucket features on the dense 5m grid and pooled text latents: hand cases, no look-ahead, history, speed."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.text.features import TEXT_BUCKET_FEATURES, TEXT_LOOKBACK_DAYS, text_bucket_features
from quantmm_assets.core.text.pooling import latent_schema, pool_latents
from quantmm_assets.core.text.scoring import TEXT_ITEMS_SCHEMA, text_items
from quantmm_assets.core.universe import Universe
from quantmm_resources.sources.synthetic import market as sm
from quantmm_resources.sources.synthetic import text as st

UNIVERSE_FILE = Path(__file__).resolve().parents[2] / "quantmm_resources" / "config" / "universe.toml"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
M5 = timedelta(minutes=5)
H1 = timedelta(hours=1)


def item(minutes: float, kind: str = "post", linked: bool = True, **kw) -> dict:
    """One text item available ``minutes`` after T0."""
    ts = T0 + timedelta(minutes=minutes)
    base = {
        "symbol": "BTCUSDT",
        "kind": kind,
        "platform": "t",
        "id": f"{kind}{minutes}",
        "ts_event": ts - timedelta(minutes=10),
        "ts_available": ts,
        "author": "a",
        "linked": linked,
        "text": "x",
        "content_hash": "h",
        "tokens": 10,
        "sentiment": 0.0,
        "event_words": 0,
        "engagement": None,
        "engagement_observed_at": None,
    }
    return base | kw


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TEXT_ITEMS_SCHEMA).sort("ts_available", "kind", "id")


def at(features: pl.DataFrame, minutes: float) -> dict:
    return features.filter(pl.col("ts_event") == T0 + timedelta(minutes=minutes)).row(0, named=True)


def features(rows: list[dict], start: datetime = T0, end: datetime = T0 + timedelta(hours=3)) -> pl.DataFrame:
    return text_bucket_features(frame(rows), "BTCUSDT", start, end)


def test_grid_is_dense_with_the_declared_columns() -> None:
    out = features([], end=T0 + timedelta(days=1))
    assert out.columns == ["symbol", "ts_event", "ts_available", *TEXT_BUCKET_FEATURES]
    assert len(out) == 288 and (out["ts_event"] == out["ts_available"]).all()
    assert out["ts_event"][0] == T0 and out["ts_event"][-1] == T0 + timedelta(days=1) - M5
    assert out["sym_post_count"].dtype == pl.Int32 and out["sym_unique_authors_1h"].sum() == 0
    assert out["sym_sentiment_1h"].null_count() == 288 and out["sym_burst_z_1d"].null_count() == 288
    assert (out["sym_engagement_growth_1h"] == 0).all() and (out["sym_comment_post_ratio_1h"] == 0).all()
    assert len(features([], end=T0 + timedelta(minutes=7))) == 2  # t = T0, T0 + 5m


def test_bucket_counts_use_half_open_buckets() -> None:
    rows = [
        item(10),  # exactly at t = 10: in bucket 10
        item(5.0001),  # just after 5: in bucket 10
        item(5),  # in bucket 5
        item(7, kind="comment"),
        item(8, linked=False),
        item(9, kind="comment", linked=False),
        item(9.5, kind="comment", linked=False),
    ]
    out = features(rows)
    assert at(out, 5)["sym_post_count"] == 1
    row = at(out, 10)
    assert (row["sym_post_count"], row["sym_comment_count"], row["mkt_post_count"], row["mkt_comment_count"]) == (
        2,
        1,
        1,
        2,
    )
    assert at(out, 15)["sym_post_count"] == 0


def test_one_hour_window_excludes_t_minus_1h_and_includes_t() -> None:
    out = features([item(60, sentiment=0.5, author="x")])
    assert at(out, 55)["sym_sentiment_1h"] is None
    assert at(out, 60)["sym_sentiment_1h"] == 0.5  # available at t: in
    assert at(out, 115)["sym_sentiment_1h"] == 0.5
    assert at(out, 120)["sym_sentiment_1h"] is None  # available at t - 1h: out
    assert [at(out, m)["sym_unique_authors_1h"] for m in (55, 60, 115, 120)] == [0, 1, 1, 0]


def test_sentiment_weights_use_engagement_only_once_observed() -> None:
    rows = [
        item(0, sentiment=0.8, engagement=20, engagement_observed_at=T0 + timedelta(minutes=30)),
        item(5, sentiment=-0.4, engagement=5, engagement_observed_at=None),  # unknown: weight 1
        item(10, sentiment=0.2, engagement=-3, engagement_observed_at=T0),  # negative: weight 1 + ln(1) = 1
        item(10, kind="comment", linked=False, sentiment=-1.0),
    ]
    out = features(rows)
    assert at(out, 25)["sym_sentiment_1h"] == pytest.approx((0.8 - 0.4 + 0.2) / 3)  # 20 not observed yet
    w = 1 + math.log(21)
    assert at(out, 30)["sym_sentiment_1h"] == pytest.approx((0.8 * w - 0.4 + 0.2) / (w + 2))
    assert at(out, 30)["mkt_sentiment_1h"] == pytest.approx(-1.0)
    assert at(out, 5)["mkt_sentiment_1h"] is None


def test_authors_ratio_and_event_density() -> None:
    rows = [
        item(0, author="a", tokens=10, event_words=1),
        item(5, kind="comment", author="a", tokens=5, event_words=0),
        item(6, kind="comment", author=None, tokens=5, event_words=2),
        item(7, kind="comment", author="b", linked=False, tokens=100, event_words=50),
        item(8, kind="comment", author="c", tokens=0),
    ]
    row = at(features(rows), 10)
    assert row["sym_unique_authors_1h"] == 2  # a, c; null and unlinked authors are not counted
    assert row["sym_comment_post_ratio_1h"] == pytest.approx(3 / 2)
    assert row["sym_event_density_1h"] == pytest.approx(3 / 20)
    zero = at(features([item(0, tokens=0)]), 0)
    assert zero["sym_event_density_1h"] is None


def test_engagement_growth_compares_the_last_two_hours() -> None:
    rows = [
        item(10, engagement=9, engagement_observed_at=T0),
        item(70, engagement=99, engagement_observed_at=T0 + timedelta(minutes=90)),
        item(75, linked=False, engagement=1000, engagement_observed_at=T0),
        item(80, engagement=50, engagement_observed_at=None),
    ]
    out = features(rows)
    assert at(out, 10)["sym_engagement_growth_1h"] == pytest.approx(math.log(10))
    assert at(out, 85)["sym_engagement_growth_1h"] == pytest.approx(-math.log(10))  # 99 not observed yet
    assert at(out, 90)["sym_engagement_growth_1h"] == pytest.approx(math.log(100) - math.log(10))
    assert at(out, 125)["sym_engagement_growth_1h"] == pytest.approx(math.log(100) - math.log(10))
    assert at(out, 130)["sym_engagement_growth_1h"] == pytest.approx(-math.log(100))  # 99 moved to (t-2h, t-1h]


def test_burst_z_is_against_the_last_day_of_buckets() -> None:
    start = T0 + timedelta(days=1)
    rows = [item(24 * 60 + 56 + i) for i in range(3)] + [item(24 * 60 - 2, linked=False)]
    out = features(rows, start=start, end=start + timedelta(hours=3))
    counts = np.zeros(288)
    counts[-1] = 3
    row = at(out, 24 * 60 + 60)
    assert row["sym_burst_z_1d"] == pytest.approx((3 - counts.mean()) / counts.std(ddof=1))
    mkt = np.zeros(288)
    mkt[-13] = 1  # the unlinked item's bucket (t = start) seen from start + 1h
    assert row["mkt_burst_z_1d"] == pytest.approx((0 - mkt.mean()) / mkt.std(ddof=1))
    assert at(out, 24 * 60 + 55)["sym_burst_z_1d"] is None  # a day without linked items: std = 0


@pytest.fixture(scope="module")
def sample_items() -> pl.DataFrame:
    """BTC items of 12 synthetic days; engagement observed 0-3 h after availability, or never."""
    with open(UNIVERSE_FILE, "rb") as fh:
        universe = Universe.from_dict(tomllib.load(fh))
    pairs = [st.social_day(11, sm.DEFAULT_ORIGIN, d, sm.DEFAULT_SYMBOLS, 240.0, True) for d in range(12)]
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    params = IngestParams(start=origin, end=origin + timedelta(days=15), universe=universe)
    raw = []
    for name, frames in (("social_posts_raw", [p for p, _ in pairs]), ("social_comments_raw", [c for _, c in pairs])):
        f = pl.concat(frames).with_columns(pl.lit("synthetic").alias("platform"))
        delay = pl.Series(np.random.default_rng(len(name)).integers(-1, 180, len(f)), dtype=pl.Int64)
        observed = pl.when(delay >= 0).then(pl.col("ts_event") + pl.duration(minutes=10 + delay))
        raw.append(normalize(name, f.with_columns(observed.alias("engagement_observed_at")), params).clean)
    return text_items(raw[0], raw[1], "BTCUSDT")


def truncate(items: pl.DataFrame, cut: datetime) -> pl.DataFrame:
    """What was known at ``cut``: items available by then, engagement observed by then."""
    late = pl.col("engagement_observed_at") > cut
    return items.filter(pl.col("ts_available") <= cut).with_columns(
        pl.when(late).then(None).otherwise(pl.col("engagement")).alias("engagement"),
        pl.when(late).then(None).otherwise(pl.col("engagement_observed_at")).alias("engagement_observed_at"),
    )


def test_no_look_ahead_at_any_cut(sample_items: pl.DataFrame) -> None:
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    start, end = origin + timedelta(days=4), origin + timedelta(days=7)
    full = text_bucket_features(sample_items, "BTCUSDT", start, end)
    cuts = [
        start,
        start + timedelta(hours=7, minutes=3),
        start + timedelta(days=1, minutes=5),
        end - timedelta(seconds=1),
    ]
    for cut in cuts:
        part = text_bucket_features(truncate(sample_items, cut), "BTCUSDT", start, end)
        keep = pl.col("ts_event") <= cut
        assert_frame_equal(part.filter(keep), full.filter(keep), check_exact=True)
    assert full["sym_sentiment_1h"].null_count() < len(full) / 4
    assert full["sym_engagement_growth_1h"].abs().sum() > 0


def test_lookback_days_are_enough_and_chunks_agree(sample_items: pl.DataFrame) -> None:
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    start, end = origin + timedelta(days=6), origin + timedelta(days=8)
    full = text_bucket_features(sample_items, "BTCUSDT", start, end)
    recent = sample_items.filter(pl.col("ts_available") > start - timedelta(days=TEXT_LOOKBACK_DAYS))
    assert_frame_equal(text_bucket_features(recent, "BTCUSDT", start, end), full, check_exact=True)
    mid = start + timedelta(days=1)
    halves = [text_bucket_features(sample_items, "BTCUSDT", a, b) for a, b in ((start, mid), (mid, end))]
    assert_frame_equal(pl.concat(halves), full, check_exact=True)


def test_features_on_26k_items_fill_the_grid(sample_items: pl.DataFrame) -> None:
    big = pl.concat([sample_items] * 5)  # ~26k items over 12 days
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    out = text_bucket_features(big, "BTCUSDT", origin, origin + timedelta(days=12))
    assert len(out) == 12 * 288 and len(big) > 20_000


# --- pooled latents ----------------------------------------------------------------------------------------


def test_pool_latents_hand_case() -> None:
    rows = [
        item(0, author="p", engagement=10, engagement_observed_at=T0 + timedelta(minutes=20)),
        item(12, engagement=3, engagement_observed_at=T0 + timedelta(days=9)),  # observed long after: weight 1
        item(30, kind="comment"),
    ]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    out = pool_latents(frame(rows), vectors, "BTCUSDT", T0, T0 + timedelta(hours=3))
    assert out.schema == pl.Schema(latent_schema(2))
    times = out["ts_event"].to_list()
    assert times[0] == T0 and times[-1] == T0 + timedelta(minutes=85)  # the comment leaves at 30 + 60 min
    assert len(times) == 18  # sparse: every 5m from 0 to 85 min (all have text)
    assert (out["symbol"] == "BTCUSDT").all() and (out["ts_event"] == out["ts_available"]).all()

    def row(minutes: int) -> dict:
        return at(out, minutes)

    assert row(0)["post_latent"] == [1.0, 0.0] and row(0)["comment_latent"] is None
    assert (row(0)["post_n"], row(0)["comment_n"]) == (1, 0)
    assert row(15)["post_latent"] == pytest.approx([0.5, 0.5])  # engagement not observed until 20
    w = 1 + math.log(11)
    assert row(20)["post_latent"] == pytest.approx([w / (w + 1), 1 / (w + 1)])
    assert row(55)["post_n"] == 2 and row(55)["post_latent"] == pytest.approx([w / (w + 1), 1 / (w + 1)])
    assert row(60)["post_n"] == 1 and row(60)["post_latent"] == pytest.approx([0.0, 1.0])  # t - 1h: out
    assert row(30)["comment_latent"] == pytest.approx([0.5, 0.5]) and row(30)["comment_n"] == 1
    assert row(80)["post_latent"] is None and row(80)["post_n"] == 0 and row(80)["comment_n"] == 1


def test_pool_latents_edges() -> None:
    empty = pool_latents(frame([]), np.zeros((0, 4), dtype=np.float32), "BTCUSDT", T0, T0 + H1)
    assert empty.is_empty() and empty.schema == pl.Schema(latent_schema(4))
    with pytest.raises(ValueError, match="vectors"):
        pool_latents(frame([item(0)]), np.zeros((2, 4)), "BTCUSDT", T0, T0 + H1)
    late = pool_latents(frame([item(0)]), np.ones((1, 3)), "BTCUSDT", T0 + 2 * H1, T0 + 3 * H1)
    assert late.is_empty()  # before the window of every grid time


def test_pool_latents_agree_with_a_direct_computation(sample_items: pl.DataFrame) -> None:
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    start, end = origin + timedelta(days=3), origin + timedelta(days=4)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(sample_items), 8)).astype(np.float32)
    out = pool_latents(sample_items, vectors, "BTCUSDT", start, end)
    ts = sample_items["ts_available"].to_list()
    obs = sample_items["engagement_observed_at"].to_list()
    eng = sample_items["engagement"].to_list()
    kinds = sample_items["kind"].to_list()
    for r in out.sample(25, seed=1).iter_rows(named=True):
        t = r["ts_event"]
        idx = [i for i in range(len(ts)) if t - H1 < ts[i] <= t and kinds[i] == "post"]
        assert r["post_n"] == len(idx)
        if idx:
            w = np.array([1 + (math.log1p(max(eng[i], 0)) if obs[i] and obs[i] <= t else 0.0) for i in idx])
            assert r["post_latent"] == pytest.approx((w[:, None] * vectors[idx]).sum(0) / w.sum(), abs=1e-5)


def test_pool_latents_have_no_look_ahead(sample_items: pl.DataFrame) -> None:
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    start, end = origin + timedelta(days=4), origin + timedelta(days=6)
    vectors = np.random.default_rng(3).standard_normal((len(sample_items), 16)).astype(np.float32)
    full = pool_latents(sample_items, vectors, "BTCUSDT", start, end)
    for cut in (start + timedelta(hours=5, minutes=2), start + timedelta(days=1, hours=13)):
        known = truncate(sample_items, cut)
        part = pool_latents(known, vectors[: len(known)], "BTCUSDT", start, end)
        keep = pl.col("ts_event") <= cut
        assert_frame_equal(part.filter(keep), full.filter(keep), check_exact=True)


def test_pool_latents_on_26k_items(sample_items: pl.DataFrame) -> None:
    big = pl.concat([sample_items] * 5).sort("ts_available")  # ~26k items
    vectors = np.random.default_rng(0).standard_normal((len(big), 384)).astype(np.float32)
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    pool_latents(big.head(10), vectors[:10], "BTCUSDT", origin, origin + H1)  # warm-up (imports)
    out = pool_latents(big, vectors, "BTCUSDT", origin, origin + timedelta(days=12))
    assert len(out) > 3000 and len(big) > 25_000
