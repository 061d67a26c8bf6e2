"""The synthetic social text: structure, threads, heavy tails, and the planted signal seen through text."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from quantmm_assets.core.symbols import link_symbols, symbol_patterns
from quantmm_assets.core.universe import Universe
from quantmm_resources.sources.synthetic import lexicon as lex
from quantmm_resources.sources.synthetic import market as sm
from quantmm_resources.sources.synthetic import text as st

UNIVERSE_FILE = Path(__file__).resolve().parents[2] / "quantmm_resources" / "config" / "universe.toml"
ORIGIN_STR = sm.DEFAULT_ORIGIN
ORIGIN = sm.parse_origin(ORIGIN_STR)
SYMBOLS = sm.DEFAULT_SYMBOLS
POSTS_PER_DAY = 240.0
IC_DAYS = 240  # 240 days x 24 hours x 5 symbols = 28,800 (symbol, hour) pairs: standard error ~0.006
IC_SEEDS = (7, 11)
BULL = r"\b(?:" + "|".join(lex.BULLISH_WORDS) + r")\b"
BEAR = r"\b(?:" + "|".join(lex.BEARISH_WORDS) + r")\b"


@pytest.fixture(scope="module")
def universe() -> Universe:
    with open(UNIVERSE_FILE, "rb") as fh:
        return Universe.from_dict(tomllib.load(fh))


def _days(seed: int, signal: bool, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    days = [st.social_day(seed, ORIGIN_STR, d, SYMBOLS, POSTS_PER_DAY, signal) for d in range(n)]
    return pl.concat([p for p, _ in days]), pl.concat([c for _, c in days])


def text_rank_ic(seed: int, signal: bool, universe: Universe, n_days: int = IC_DAYS) -> float:
    """Return the pooled rank IC of (#bullish - #bearish words in items linked to S in hour k) vs the perp
    log return of S in hour k+1."""
    posts, comments = _days(seed, signal, n_days)
    items = pl.concat(
        [posts.select("ts_event", text=pl.col("title") + ". " + pl.col("text")), comments.select("ts_event", "text")]
    )
    items = items.filter(pl.col("ts_event") < ORIGIN + timedelta(days=n_days)).with_columns(
        hour=(pl.col("ts_event") - pl.lit(ORIGIN)).dt.total_seconds() // 3600,
        score=pl.col("text").str.count_matches(BULL).cast(pl.Int64)
        - pl.col("text").str.count_matches(BEAR).cast(pl.Int64),
    )
    n_hours = n_days * 24
    patterns = symbol_patterns(universe)
    xs, ys = [], []
    for symbol in SYMBOLS:
        linked = items.filter(pl.col("text").str.contains(patterns[symbol]))
        per_hour = linked.group_by("hour").agg(pl.col("score").sum())
        x = np.zeros(n_hours)
        x[per_hour["hour"].to_numpy().astype(np.int64)] = per_hour["score"].to_numpy()
        perp_close = sm.symbol_path(seed, symbol, n_days + 1, ORIGIN).perp_close
        close = np.log(perp_close[sm.BARS_PER_HOUR - 1 :: sm.BARS_PER_HOUR])  # [k]: close ending hour k
        xs.append(x)
        ys.append(np.diff(close)[:n_hours])  # [k] = log return of hour k+1
    return float(spearmanr(np.concatenate(xs), np.concatenate(ys))[0])


@pytest.fixture(scope="module")
def ics(universe: Universe) -> dict[tuple[int, bool], float]:
    return {(seed, sig): text_rank_ic(seed, sig, universe) for seed in IC_SEEDS for sig in (True, False)}


@pytest.mark.parametrize("seed", IC_SEEDS)
def test_text_predicts_next_hour_return(ics: dict[tuple[int, bool], float], seed: int) -> None:
    assert 0.025 < ics[(seed, True)] < 0.06  # the target is about 0.03 to 0.05


@pytest.mark.parametrize("seed", IC_SEEDS)
def test_noise_switch_removes_the_signal(ics: dict[tuple[int, bool], float], seed: int) -> None:
    assert abs(ics[(seed, False)]) < 0.015


@pytest.fixture(scope="module")
def sample() -> tuple[pl.DataFrame, pl.DataFrame]:
    return _days(7, True, 30)


def test_lexicon_is_ordinary_sentiment_words() -> None:
    assert not set(lex.BULLISH_WORDS) & set(lex.BEARISH_WORDS)
    assert {"moon", "bullish", "breakout", "pump"} <= set(lex.BULLISH_WORDS)
    assert {"dump", "bearish", "crash", "rug"} <= set(lex.BEARISH_WORDS)
    assert all(re.fullmatch(r"[a-z]+", w) for w in lex.BULLISH_WORDS + lex.BEARISH_WORDS)


def test_filler_never_names_a_symbol_or_a_sentiment_word(universe: Universe) -> None:
    patterns = [re.compile(p) for p in symbol_patterns(universe).values()]
    lexicon = re.compile(BULL + "|" + BEAR)
    filler = lex.NEUTRAL_PHRASES + lex.REPLY_PHRASES + lex.TITLE_PHRASES + lex.SENTIMENT_TEMPLATES
    for phrase in filler + ("watching", " vs ", " and "):
        assert not any(p.search(phrase) for p in patterns), phrase
        assert not lexicon.search(phrase.replace("{w}", "")), phrase
    for word in lex.BULLISH_WORDS + lex.BEARISH_WORDS:
        assert not any(p.search(word) for p in patterns), word


def test_names_are_universe_aliases(universe: Universe) -> None:
    for listing in universe.listings:
        assert lex.NAMES[listing.base] in listing.aliases


def test_posts_name_zero_one_or_two_symbols_in_every_form(
    sample: tuple[pl.DataFrame, pl.DataFrame], universe: Universe
) -> None:
    posts, _ = sample
    linked = posts.select(n=link_symbols(pl.col("title") + ". " + pl.col("text"), universe).list.len())["n"]
    share = linked.value_counts(normalize=True).sort("n")
    shares = dict(zip(share["n"].to_list(), share["proportion"].to_list(), strict=True))
    assert set(shares) == {0, 1, 2}
    assert 0.08 < shares[0] < 0.3 and shares[1] > 0.55 and 0.05 < shares[2] < 0.2
    text = posts["text"]
    assert text.str.contains(r"\$BTC\b").any() and text.str.contains(r"\bbitcoin\b").any()
    assert text.str.contains(r"\bBTC\b").any() and text.str.contains(r"\bbinance coin\b").any()
    assert (posts["platform"] == "synthetic").all() and posts["community"].n_unique() >= 6


def test_comments_follow_their_parent(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    posts, comments = sample
    post_ts = dict(zip(posts["id"].to_list(), posts["ts_event"].to_list(), strict=True))
    comment_ts = dict(zip(comments["id"].to_list(), comments["ts_event"].to_list(), strict=True))
    assert len(comment_ts) == len(comments) > len(posts)
    n_nested = 0
    for _cid, pid, parent, ts in comments.select("id", "post_id", "parent_id", "ts_event").iter_rows():
        assert ts > post_ts[pid] and ts - post_ts[pid] < st.MAX_COMMENT_DELAY
        if parent != pid:
            n_nested += 1
            assert parent.startswith(pid) and comment_ts[parent] < ts
    assert n_nested > 0.2 * len(comments)
    counts = comments.group_by("post_id").len()
    joined = posts.join(counts, left_on="id", right_on="post_id", how="left")
    joined = joined.with_columns(pl.col("len").fill_null(0))
    assert (joined["num_comments"] == joined["len"]).all()


def test_engagement_and_authors_are_heavy_tailed(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    posts, comments = sample
    score = posts["engagement_score"].to_numpy()
    assert (score >= 0).all() and score.max() > 20 * max(np.median(score), 1)
    assert posts["num_comments"].max() >= 20
    authors = pl.concat([posts["author"], comments["author"]]).value_counts(sort=True)["count"].to_numpy()
    top = authors[: max(1, len(authors) // 100)].sum() / authors.sum()
    assert top > 0.08  # the top 1% of authors write more than 8% of the items


def test_arrivals_are_bursty(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    posts, _ = sample
    hour = ((posts["ts_event"] - ORIGIN).dt.total_seconds() // 3600).to_numpy()
    counts = np.bincount(hour, minlength=30 * 24).reshape(30, 24).astype(float)
    residual = counts - counts.mean(axis=0, keepdims=True)  # remove the diurnal profile
    assert residual.var() / counts.mean() > 2.0  # a Poisson process would give about 1


def test_noise_switch_changes_only_the_sentiment_words() -> None:
    lexicon = re.compile(BULL + "|" + BEAR)
    sig_posts, sig_comments = st.social_day(7, ORIGIN_STR, 3, SYMBOLS, POSTS_PER_DAY, True)
    noise_posts, noise_comments = st.social_day(7, ORIGIN_STR, 3, SYMBOLS, POSTS_PER_DAY, False)
    for sig, noise in ((sig_posts, noise_posts), (sig_comments, noise_comments)):
        assert sig.drop("text").equals(noise.drop("text"))
        assert (sig["text"] != noise["text"]).any()
        strip = [lexicon.sub("", t) for t in sig["text"]], [lexicon.sub("", t) for t in noise["text"]]
        assert strip[0] == strip[1]
