"""Seeded synthetic social text: posts and comments that carry the planted sentiment signal.

Pure numpy/polars (no Dagster, no I/O). Each UTC day ``d`` (counted from the origin) is generated
from its own seeded generators, so a day's posts, and the comments on them (up to
``MAX_COMMENT_DELAY`` later), never depend on the requested window.

Arrivals: a per-minute Poisson intensity = diurnal baseline (peak 15:00 UTC, quieter weekends) plus
bursts (about 3 a day, exponential decay of 15-90 minutes, each focused on one symbol; a burst of
the previous day spills over midnight). Posts name one symbol (70%), two (12%) or none (18%), by
cashtag (``$SOL``), name (``solana``) or upper-case ticker (``SOL``), the words
``core.symbols.link_symbols`` links; the rest is neutral filler that names no symbol of the universe.
Authors come from a pool with Zipf-like activity; scores and comment counts are heavy-tailed; each
comment replies to its post or to an earlier comment of the same post, and comes after its parent.

**The planted signal.** Every post or comment about symbol ``i`` published during hour ``k`` draws a
Poisson number of sentiment words; each is bullish (from ``BULLISH_WORDS``) with probability
``sigmoid(BULL_BASE_LOGIT + SENTIMENT_KAPPA * s_i[k])`` and bearish (``BEARISH_WORDS``) otherwise (the
vocabulary lives in ``lexicon``), where ``s_i`` is the latent hourly sentiment of
``market.sentiment_path``, which moves the returns of hour ``k+1`` (see that module). With
``text_signal=False`` the probability is ``sigmoid(BULL_BASE_LOGIT)``: same words, same arrivals, no
information; the returns are unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from quantmm_resources.sources.synthetic.base import SOURCE, day_rng, parse_origin
from quantmm_resources.sources.synthetic.lexicon import (
    BULLISH_WORDS,
    COMMUNITIES,
    GENERAL_COMMUNITIES,
    NEUTRAL_PHRASES,
    REPLY_PHRASES,
    SENTIMENT_PHRASES,
    SENTIMENT_TEMPLATES,
    TITLE_PHRASES,
    TOPIC_WEIGHTS,
    author_pool,
    symbol_mention,
)
from quantmm_resources.sources.synthetic.market import sentiment_path

PLATFORM = "synthetic"
URL_ROOT = "https://synthetic.invalid"
MAX_COMMENT_DELAY = timedelta(days=2)
SENTIMENT_KAPPA = 0.9  # logit tilt of the bullish-word probability per unit of latent sentiment
BULL_BASE_LOGIT = 0.2  # crypto chatter leans bullish
POST_SENTIMENT_WORDS = 1.6  # mean sentiment words per post (Poisson)
COMMENT_SENTIMENT_WORDS = 1.2


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Return the logistic function of ``x``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _bursts(seed: int, day: int, topic_p: np.ndarray, rate: float) -> np.ndarray:
    """Return the bursts of ``day`` as rows (start minute, amplitude, decay minutes, focus symbol)."""
    rng = day_rng(seed, "bursts", "all", day)
    n = rng.poisson(3.0)
    return np.column_stack(
        [
            rng.uniform(0, 1440, n),
            rate * np.exp(rng.normal(0.8, 0.5, n)),
            rng.uniform(15, 90, n),
            rng.choice(len(topic_p), size=n, p=topic_p),
        ]
    )


def _intensity(
    seed: int, day: int, weekday: int, posts_per_day: float, topic_p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-minute total intensity, burst intensity and the dominant burst's focus symbol."""
    rate = posts_per_day / 1440.0
    minute = np.arange(1440) + 0.5
    diurnal = 1.0 + 0.45 * np.cos(2 * np.pi * (minute / 60.0 - 15.0) / 24.0)
    base = 0.75 * rate * diurnal * (0.85 if weekday >= 5 else 1.0)
    parts = []
    for d, shift in ((day - 1, -1440.0), (day, 0.0)):
        if d >= 0:
            b = _bursts(seed, d, topic_p, rate)
            b[:, 0] += shift
            parts.append(b)
    b = np.concatenate(parts)
    burst = np.zeros((1, 1440))
    focus = np.zeros(1440, dtype=np.int64)
    if len(b):
        dt = minute[None, :] - b[:, 0:1]
        burst = np.where(dt >= 0, b[:, 1:2] * np.exp(-np.clip(dt, 0, None) / b[:, 2:3]), 0.0)
        focus = b[np.argmax(burst, axis=0), 3].astype(np.int64)
    burst_total = burst.sum(axis=0)
    return base + burst_total, burst_total, focus


def _sentiment_words(rng: np.random.Generator, owner_s: np.ndarray, text_signal: bool) -> list[str]:
    """Draw one sentiment phrase per entry of ``owner_s`` (the sentiment tilting it; nan = none)."""
    tilt = np.nan_to_num(owner_s) if text_signal else np.zeros(len(owner_s))
    bull = rng.random(len(owner_s)) < sigmoid(BULL_BASE_LOGIT + SENTIMENT_KAPPA * tilt)
    pick = rng.integers(len(BULLISH_WORDS), size=len(owner_s))
    tmpl = rng.integers(len(SENTIMENT_TEMPLATES), size=len(owner_s))
    return SENTIMENT_PHRASES[bull.astype(np.int64), pick, tmpl].tolist()


def _words_per_item(
    rng: np.random.Generator,
    n_items: int,
    mean: float,
    sym: np.ndarray,
    hour: np.ndarray,
    s: np.ndarray,
    text_signal: bool,
) -> list[list[str]]:
    """Draw each item's sentiment phrases, tilted by the sentiment of its symbols at its hour."""
    counts = rng.poisson(mean, n_items)
    item = np.repeat(np.arange(n_items), counts)
    which = rng.integers(2, size=len(item))  # which of the item's (up to two) symbols a word is about
    owner = np.where((which == 1) & (sym[item, 1] >= 0), sym[item, 1], sym[item, 0])
    owner_s = np.where(owner >= 0, s[np.maximum(owner, 0), hour[item]], np.nan)
    words = _sentiment_words(rng, owner_s, text_signal)
    ends = np.cumsum(counts).tolist()
    return [words[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _ts(origin: datetime, seconds: np.ndarray) -> pl.Series:
    micros = int(origin.timestamp() * 1e6) + seconds.astype(np.int64) * 1_000_000
    return pl.Series("ts_event", micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


@lru_cache(maxsize=512)
def social_day(
    seed: int, origin: str, day: int, symbols: tuple[str, ...], posts_per_day: float, text_signal: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (posts, comments) generated on ``day`` (comments may fall up to two days later)."""
    o = parse_origin(origin)
    n_sym = len(symbols)
    bases = [x.removesuffix("USDT") for x in symbols]
    topic_p = np.array([TOPIC_WEIGHTS.get(x, 0.03) for x in symbols]) if n_sym else np.ones(1)
    topic_p = topic_p / topic_p.sum()
    horizon = day + 1 + MAX_COMMENT_DELAY.days + 1
    s = np.zeros((n_sym, horizon * 24))
    for k, x in enumerate(symbols):
        s[k] = sentiment_path(seed, x, horizon)[: horizon * 24]
    rng = day_rng(seed, "posts", ",".join(symbols), day)
    weekday = (o.weekday() + day) % 7
    lam, lam_burst, focus = _intensity(seed, day, weekday, posts_per_day, topic_p)
    per_minute = rng.poisson(lam)
    minute = np.repeat(np.arange(1440), per_minute)
    n = len(minute)
    sec = day * 86400 + minute * 60 + rng.integers(60, size=n)
    order = np.argsort(sec, kind="stable")
    minute, sec = minute[order], sec[order]

    # Topics: burst focus, else none (18%) / one symbol (70%) / two symbols (12%).
    sym = np.full((n, 2), -1, dtype=np.int64)
    kind = rng.random(n)
    first = rng.choice(len(topic_p), size=n, p=topic_p)
    second = rng.choice(len(topic_p), size=n, p=topic_p)
    shift = 1 + rng.integers(max(n_sym - 1, 1), size=n)
    second = np.where(second == first, (first + shift) % max(n_sym, 1), second)
    in_burst = rng.random(n) < 0.8 * lam_burst[minute] / lam[minute]
    if n_sym:
        sym[:, 0] = np.where(in_burst, focus[minute], np.where(kind < 0.18, -1, first))
        sym[:, 1] = np.where(~in_burst & (kind >= 0.88) & (n_sym > 1), second, -1)
    hour = sec // 3600
    post_words = _words_per_item(rng, n, POST_SENTIMENT_WORDS, sym, hour, s, text_signal)

    authors, author_p = author_pool(seed)
    post_author = rng.choice(len(authors), size=n, p=author_p)
    n_comments = np.minimum(np.floor(np.exp(rng.normal(0.2, 1.1, n))), 300).astype(np.int64)
    score = np.floor(np.exp(0.9 * np.log1p(n_comments) + rng.normal(1.2, 1.0, n))).astype(np.int64)
    forms = rng.integers(3, size=(n, 2))
    own_community = rng.random(n) < 0.5
    general = rng.integers(len(GENERAL_COMMUNITIES), size=n)
    title_pick = rng.integers(len(TITLE_PHRASES), size=n)
    n_neutral = rng.integers(1, 4, size=n)
    neutral = rng.integers(len(NEUTRAL_PHRASES), size=(n, 3))
    stamp = (o + timedelta(days=day)).strftime("%Y%m%d")
    ids = [f"p{stamp}{i:05d}" for i in range(n)]
    titles, texts, communities = [], [], []
    rows = zip(
        sym.tolist(),
        forms.tolist(),
        title_pick.tolist(),
        n_neutral.tolist(),
        neutral.tolist(),
        own_community.tolist(),
        general.tolist(),
        post_words,
        strict=True,
    )
    for (a, b), form, tp, nn, neu, own, gen, words in rows:
        m = [symbol_mention(bases[x], f) for x, f in ((a, form[0]), (b, form[1])) if x >= 0]
        titles.append(f"{' vs '.join(m)}: {TITLE_PHRASES[tp]}" if m else TITLE_PHRASES[tp].capitalize())
        parts = [f"watching {' and '.join(m)}"] if m else []
        texts.append(". ".join(parts + [NEUTRAL_PHRASES[k] for k in neu[:nn]] + words))
        own = own and a >= 0 and bases[a] in COMMUNITIES
        communities.append(COMMUNITIES[bases[a]] if own else GENERAL_COMMUNITIES[gen])
    posts = pl.DataFrame(
        {
            "platform": [PLATFORM] * n,
            "id": ids,
            "ts_event": _ts(o, sec),
            "author": [authors[k] for k in post_author.tolist()],
            "community": communities,
            "title": titles,
            "text": texts,
            "url": [f"{URL_ROOT}/r/{c}/comments/{i}" for c, i in zip(communities, ids, strict=True)],
            "engagement_score": score,
            "num_comments": n_comments,
            "source": [SOURCE] * n,
        },
        schema_overrides={
            "platform": pl.Utf8,
            "id": pl.Utf8,
            "community": pl.Utf8,
            "title": pl.Utf8,
            "text": pl.Utf8,
            "author": pl.Utf8,
            "url": pl.Utf8,
            "source": pl.Utf8,
        },
    )
    comments = _comments(rng, o, sec, ids, sym, communities, n_comments, bases, s, text_signal, authors, author_p)
    return posts, comments


def _comments(
    rng: np.random.Generator,
    origin: datetime,
    post_sec: np.ndarray,
    post_ids: list[str],
    post_sym: np.ndarray,
    communities: list[str],
    n_comments: np.ndarray,
    bases: list[str],
    s: np.ndarray,
    text_signal: bool,
    authors: list[str],
    author_p: np.ndarray,
) -> pl.DataFrame:
    """Return the comments on the given posts (each after its parent, parent = post or earlier comment)."""
    post = np.repeat(np.arange(len(post_ids)), n_comments)
    c = len(post)
    delay = np.clip(np.exp(rng.normal(np.log(2400.0), 1.2, c)), 5, MAX_COMMENT_DELAY.total_seconds() - 400)
    order = np.lexsort((delay, post))
    delay = delay[order].astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n_comments)[:-1]])
    rank = np.arange(c) - offset[post]
    sec = post_sec[post] + delay + rank  # strictly increasing within a post
    to_post = (rank == 0) | (rng.random(c) < 0.55)
    parent_rank = np.floor(rng.random(c) * np.maximum(rank, 1)).astype(np.int64)
    sym = post_sym[post]
    words = _words_per_item(rng, c, COMMENT_SENTIMENT_WORDS, sym, sec // 3600, s, text_signal)
    mention = rng.random(c) < 0.45
    forms = rng.integers(3, size=c)
    reply = rng.integers(len(REPLY_PHRASES), size=c)
    author = rng.choice(len(authors), size=c, p=author_p)
    score = np.floor(np.exp(rng.normal(0.3, 1.1, c))).astype(np.int64)
    ids, parents, texts = [], [], []
    rows = zip(
        post.tolist(),
        rank.tolist(),
        to_post.tolist(),
        parent_rank.tolist(),
        sym[:, 0].tolist(),
        mention.tolist(),
        forms.tolist(),
        reply.tolist(),
        words,
        strict=True,
    )
    for k, r, top, pr, a, men, form, rep, w in rows:
        pid = post_ids[k]
        ids.append(f"{pid}c{r:03d}")
        parents.append(pid if top else f"{pid}c{pr:03d}")
        head = f"{symbol_mention(bases[a], form)} " if men and a >= 0 else ""
        texts.append(". ".join([head + REPLY_PHRASES[rep], *w]))
    post_list = post.tolist()
    return pl.DataFrame(
        {
            "platform": [PLATFORM] * c,
            "id": ids,
            "post_id": [post_ids[k] for k in post_list],
            "parent_id": parents,
            "ts_event": _ts(origin, sec),
            "author": [authors[k] for k in author.tolist()],
            "community": [communities[k] for k in post_list],
            "text": texts,
            "engagement_score": score,
            "source": [SOURCE] * c,
        },
        schema={
            "platform": pl.Utf8,
            "id": pl.Utf8,
            "post_id": pl.Utf8,
            "parent_id": pl.Utf8,
            "ts_event": pl.Datetime("us", "UTC"),
            "author": pl.Utf8,
            "community": pl.Utf8,
            "text": pl.Utf8,
            "engagement_score": pl.Int64,
            "source": pl.Utf8,
        },
    )


def social_window(
    seed: int,
    origin: str,
    symbols: tuple[str, ...],
    posts_per_day: float,
    text_signal: bool,
    start: datetime,
    end: datetime,
    kind: str,
) -> pl.DataFrame:
    """Return the posts (``kind="posts"``) or comments published in [start, end)."""
    o = parse_origin(origin)
    d0 = max(0, (start - o).days - (MAX_COMMENT_DELAY.days + 1 if kind == "comments" else 0))
    d1 = max(0, -(-int((end - o).total_seconds()) // 86400))
    which = 0 if kind == "posts" else 1
    frames = [social_day(seed, origin, d, symbols, posts_per_day, text_signal)[which] for d in range(d0, d1)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pl.DataFrame()
    out = pl.concat(frames).filter((pl.col("ts_event") >= start) & (pl.col("ts_event") < end))
    return out.sort("ts_event", "id")
