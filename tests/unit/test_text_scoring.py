"""Per-text scores: lexicon sentiment with negation, event words, content hash, and the symbol's text items."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.schemas import SOCIAL_COMMENTS_RAW, SOCIAL_POSTS_RAW
from quantmm_assets.core.text.scoring import (
    EVENT_WORDS,
    LEXICON,
    TEXT_ITEMS_SCHEMA,
    content_hash,
    score_texts,
    text_items,
)
from quantmm_assets.core.universe import Universe
from quantmm_resources.sources.synthetic import lexicon as lex
from quantmm_resources.sources.synthetic import market as sm
from quantmm_resources.sources.synthetic import text as st

UNIVERSE_FILE = Path(__file__).resolve().parents[2] / "quantmm_resources" / "config" / "universe.toml"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_raw(days: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Raw posts and comments (as ingested: ts_available, symbols) of the synthetic sample's first days."""
    with open(UNIVERSE_FILE, "rb") as fh:
        universe = Universe.from_dict(tomllib.load(fh))
    pairs = [st.social_day(seed, sm.DEFAULT_ORIGIN, d, sm.DEFAULT_SYMBOLS, 240.0, True) for d in range(days)]
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    params = IngestParams(start=origin, end=origin + timedelta(days=days + 3), universe=universe)
    extra = [pl.col("ts_event").alias("engagement_observed_at"), pl.lit("synthetic").alias("platform")]
    posts = normalize("social_posts_raw", pl.concat([p for p, _ in pairs]).with_columns(extra), params).clean
    comments = normalize("social_comments_raw", pl.concat([c for _, c in pairs]).with_columns(extra), params).clean
    return posts, comments


def sentiment(text: str) -> float:
    return score_texts(pl.Series([text]))["sentiment"][0]


def expected(total: float) -> float:
    return total / math.sqrt(total * total + 15.0)


def test_lexicon_covers_the_synthetic_words_with_their_signs() -> None:
    assert 60 <= len(LEXICON) <= 120
    assert all(-1.0 <= w <= 1.0 and w != 0 for w in LEXICON.values())
    assert all(LEXICON[w] > 0 for w in lex.BULLISH_WORDS)
    assert all(LEXICON[w] < 0 for w in lex.BEARISH_WORDS)
    filler = lex.NEUTRAL_PHRASES + lex.REPLY_PHRASES + lex.TITLE_PHRASES
    assert score_texts(pl.Series(list(filler)))["sentiment"].abs().max() == 0.0


def test_sentiment_is_a_normalised_lexicon_sum() -> None:
    assert sentiment("BULLISH") == pytest.approx(expected(LEXICON["bullish"]))
    assert sentiment("moon moon, crash") == pytest.approx(expected(2 * LEXICON["moon"] + LEXICON["crash"]))
    assert sentiment("just looked at the chart") == 0.0
    many = sentiment(" ".join(["moon"] * 50))
    assert 0.99 < many < 1.0


def test_negation_flips_within_three_words_of_the_clause() -> None:
    b = LEXICON["bullish"]
    assert sentiment("not bullish") == pytest.approx(expected(-b))
    assert sentiment("I don't feel very bullish") == pytest.approx(expected(-b))  # 3 words before
    assert sentiment("I don’t feel very bullish") == pytest.approx(expected(-b))  # typographic apostrophe
    assert sentiment("never thought it was bullish") == pytest.approx(expected(b))  # 4 words before: no flip
    assert sentiment("not financial advice. bullish") == pytest.approx(expected(b))  # clause boundary
    assert sentiment("no idea, crash") == pytest.approx(expected(LEXICON["crash"]))
    assert sentiment("this isn't a sell-off") == pytest.approx(expected(-LEXICON["sell-off"]))


def test_tokens_and_event_words() -> None:
    scores = score_texts(pl.Series(["SEC approves the ETF! $BTC listing soon", "", None, "hack, hack."]))
    assert scores["tokens"].to_list() == [7, 0, 0, 2]
    assert scores["event_words"].to_list() == [4, 0, 0, 2]
    assert scores["sentiment"][1] == 0.0 and scores["sentiment"][2] == 0.0
    assert scores.schema == {"tokens": pl.Int32, "sentiment": pl.Float64, "event_words": pl.Int32}
    assert {"hack", "etf", "sec", "halving", "airdrop", "unlock", "delisting"} <= EVENT_WORDS


def test_content_hash_normalises_unicode_and_whitespace() -> None:
    h = content_hash("caf\u00e9  to the\n moon ")
    assert h == content_hash("cafe\u0301 to the moon")  # NFD input, other whitespace
    assert len(h) == 64 and int(h, 16) >= 0
    assert h != content_hash("cafe to the moon")


def _posts(rows: list[dict]) -> pl.DataFrame:
    base = {"platform": "reddit", "source": "test", "url": None, "num_comments": None, "community": "c"}
    return pl.DataFrame([{**base, **r} for r in rows], schema=SOCIAL_POSTS_RAW.columns)


def _comments(rows: list[dict]) -> pl.DataFrame:
    base = {"platform": "reddit", "source": "test", "post_id": None, "parent_id": None, "community": "c"}
    return pl.DataFrame([{**base, **r} for r in rows], schema=SOCIAL_COMMENTS_RAW.columns)


def _row(i: str, minutes: int, symbols: list[str] | None, **kw) -> dict:
    ts = T0 + timedelta(minutes=minutes)
    return {"id": i, "ts_event": ts, "ts_available": ts + timedelta(minutes=10), "symbols": symbols, "author": "a"} | kw


def test_text_items_keeps_linked_and_market_wide_items() -> None:
    posts = _posts(
        [
            _row(
                "p1",
                5,
                ["BTCUSDT"],
                title="BTC to the moon",
                text="bullish",
                engagement_score=10,
                engagement_observed_at=T0 + timedelta(hours=1),
            ),
            _row("p2", 1, ["ETHUSDT"], title=None, text="ETH only"),
            _row("p3", 1, [], title=None, text="market wide", engagement_score=7, engagement_observed_at=None),
            _row("p4", 0, ["ETHUSDT", "BTCUSDT"], title="", text="both"),
        ]
    )
    comments = _comments(
        [
            _row("c1", 1, None, text="no symbols at all", engagement_score=3, engagement_observed_at=T0),
            _row("c2", 2, ["ETHUSDT"], text="eth comment"),
            _row("c3", 5, ["BTCUSDT"], text="btc comment"),
        ]
    )
    items = text_items(posts, comments, "BTCUSDT")
    assert items.schema == pl.Schema(TEXT_ITEMS_SCHEMA)
    assert items["id"].to_list() == ["p4", "c1", "p3", "c3", "p1"]  # by ts_available, kind, id
    assert items["kind"].to_list() == ["post", "comment", "post", "comment", "post"]
    assert items["linked"].to_list() == [True, False, False, True, True]
    assert (items["symbol"] == "BTCUSDT").all()
    by_id = {r["id"]: r for r in items.iter_rows(named=True)}
    assert by_id["p1"]["text"] == "BTC to the moon\nbullish"
    assert by_id["p4"]["text"] == "\nboth"  # an empty title is still a title
    assert by_id["p3"]["text"] == "market wide"
    assert by_id["p1"]["engagement"] == 10
    assert by_id["p3"]["engagement"] is None  # observation time unknown: the count is not usable
    assert by_id["c1"]["engagement"] == 3
    assert by_id["p1"]["content_hash"] == content_hash("BTC to the moon\nbullish")
    assert by_id["p1"]["sentiment"] == pytest.approx(expected(LEXICON["moon"] + LEXICON["bullish"]))
    assert by_id["p1"]["tokens"] == 5


def test_text_items_of_nothing_is_empty_with_the_schema() -> None:
    empty = text_items(SOCIAL_POSTS_RAW.empty(), SOCIAL_COMMENTS_RAW.empty(), "BTCUSDT")
    assert empty.is_empty() and empty.schema == pl.Schema(TEXT_ITEMS_SCHEMA)
    assert text_items(pl.DataFrame(), pl.DataFrame(), "BTCUSDT").schema == pl.Schema(TEXT_ITEMS_SCHEMA)


@pytest.fixture(scope="module")
def sample() -> tuple[pl.DataFrame, pl.DataFrame]:
    return synthetic_raw(38)


def test_scores_pick_up_the_planted_sentiment(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    origin = sm.parse_origin(sm.DEFAULT_ORIGIN)
    items = text_items(*sample, "BTCUSDT").filter(pl.col("linked") & (pl.col("ts_event") < origin + timedelta(days=20)))
    hourly = (
        items.group_by(hour=(pl.col("ts_event") - pl.lit(origin)).dt.total_hours())
        .agg(pl.col("sentiment").mean())
        .sort("hour")
    )
    latent = sm.sentiment_path(7, "BTCUSDT", 20)[hourly["hour"].to_numpy()]
    assert np.corrcoef(hourly["sentiment"].to_numpy(), latent)[0, 1] > 0.4  # measured ~0.6


def test_text_items_keeps_all_25k_unlinked_texts(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    posts, comments = (f.with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias("symbols")) for f in sample)
    text_items(posts.head(100), comments.head(100), "BTCUSDT")  # warm-up
    items = text_items(posts, comments, "BTCUSDT")
    assert len(items) > 25_000
