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
``sigmoid(BULL_BASE_LOGIT + SENTIMENT_KAPPA * s_i[k])`` and bearish (``BEARISH_WORDS``) otherwise, where
``s_i`` is the latent hourly sentiment of ``core.synthetic_market.sentiment_path``, which moves the
returns of hour ``k+1`` (see that module). With ``text_signal=False`` the probability is
``sigmoid(BULL_BASE_LOGIT)``: same words, same arrivals, no information; the returns are unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from quantmm_assets.core.synthetic_market import SOURCE, day_rng, parse_origin, sentiment_path

PLATFORM = "synthetic"
MAX_COMMENT_DELAY = timedelta(days=2)
SENTIMENT_KAPPA = 0.9  # logit tilt of the bullish-word probability per unit of latent sentiment
BULL_BASE_LOGIT = 0.2  # crypto chatter leans bullish
POST_SENTIMENT_WORDS = 1.6  # mean sentiment words per post (Poisson)
COMMENT_SENTIMENT_WORDS = 1.2

BULLISH_WORDS = (
    "bullish", "moon", "breakout", "pump", "rally", "undervalued", "accumulate", "rocket",
    "surge", "strong", "gains", "uptrend", "optimistic", "great", "love", "winning",
)
BEARISH_WORDS = (
    "bearish", "dump", "crash", "rug", "plunge", "overvalued", "capitulation", "rekt",
    "weak", "losses", "downtrend", "scam", "fear", "panic", "terrible", "worried",
)
# Names used in text; they mirror the aliases of quantmm_resources/config/universe.toml.
NAMES: dict[str, str] = {
    "BTC": "bitcoin", "ETH": "ethereum", "BNB": "binance coin", "SOL": "solana", "XRP": "ripple",
    "DOGE": "dogecoin", "ADA": "cardano", "TRX": "tron", "LINK": "chainlink", "AVAX": "avalanche",
}
TOPIC_WEIGHTS: dict[str, float] = {
    "BTCUSDT": 0.30, "ETHUSDT": 0.20, "SOLUSDT": 0.13, "XRPUSDT": 0.11, "DOGEUSDT": 0.06,
    "BNBUSDT": 0.05, "ADAUSDT": 0.04, "LINKUSDT": 0.03, "AVAXUSDT": 0.03, "TRXUSDT": 0.02,
}
COMMUNITIES: dict[str, str] = {
    "BTC": "Bitcoin", "ETH": "ethtrader", "BNB": "bnbchainofficial", "SOL": "solana", "XRP": "XRP",
    "DOGE": "dogecoin", "ADA": "cardano", "TRX": "Tronix", "LINK": "Chainlink", "AVAX": "Avax",
}
GENERAL_COMMUNITIES = ("CryptoCurrency", "CryptoMarkets", "altcoin", "SatoshiStreetBets")
TITLE_PHRASES = (
    "daily discussion", "price check", "what next?", "thoughts?", "chart update", "weekly outlook",
    "market update", "question about fees", "today's move", "levels to watch",
)
NEUTRAL_PHRASES = (
    "just looked at the chart", "what do you all think", "volume is picking up", "anyone else watching this",
    "funding looks unusual", "read the news this morning", "the order book is thin",
    "waiting for the weekly close", "not financial advice", "daily candle just closed",
    "been holding since last year", "open interest keeps moving", "my plan for the week",
    "the range is getting tight", "zooming out on the weekly", "keeping an eye on the levels",
    "what are your targets", "spot flows matter more", "this cycle feels different",
    "checking the four hour chart",
)
REPLY_PHRASES = (
    "same here", "source?", "we will see", "remind me in a week", "depends on the macro",
    "check the funding", "no idea", "following this", "ok but why", "zoom out", "mods?", "how so",
)
SENTIMENT_TEMPLATES = ("{w}", "{w}!", "so {w} right now", "{w} vibes", "looks {w} to me", "calling it {w}",
                       "honestly {w}", "{w} setup")
_ADJ = ("quiet", "rapid", "lunar", "stoic", "blue", "silent", "lazy", "crypto", "degen", "based", "chill", "hodl")
_NOUN = ("whale", "otter", "falcon", "miner", "trader", "panda", "wizard", "hamster", "viking", "sloth", "node")
N_AUTHORS = 4000


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Return the logistic function of ``x``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@lru_cache(maxsize=16)
def _author_pool(seed: int) -> tuple[list[str], np.ndarray]:
    rng = day_rng(seed, "authors", "pool", 0)
    names = [f"{_ADJ[a]}_{_NOUN[b]}{n}" for a, b, n in zip(rng.integers(len(_ADJ), size=N_AUTHORS),
                                                         rng.integers(len(_NOUN), size=N_AUTHORS),
                                                         rng.integers(1, 9999, size=N_AUTHORS), strict=True)]
    weights = 1.0 / (np.arange(N_AUTHORS) + 3.0) ** 1.1
    return names, weights / weights.sum()


def _bursts(seed: int, day: int, topic_p: np.ndarray, rate: float) -> np.ndarray:
    """Return the bursts of ``day`` as rows (start minute, amplitude, decay minutes, focus symbol)."""
    rng = day_rng(seed, "bursts", "all", day)
    n = rng.poisson(3.0)
    return np.column_stack([rng.uniform(0, 1440, n), rate * np.exp(rng.normal(0.8, 0.5, n)),
                            rng.uniform(15, 90, n), rng.choice(len(topic_p), size=n, p=topic_p)])


def _intensity(seed: int, day: int, weekday: int, posts_per_day: float,
               topic_p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-minute total intensity, burst intensity and the dominant burst's focus symbol."""
    rate = posts_per_day / 1440.0
    minute = np.arange(1440) + 0.5
    diurnal = 1.0 + 0.45 * np.cos(2 * np.pi * (minute / 60.0 - 15.0) / 24.0)
    base = 0.75 * rate * diurnal * (0.85 if weekday >= 5 else 1.0)
    burst = np.zeros((1, 1440))
    focus = np.zeros(1440, dtype=np.int64)
    rows = [b for d, shift in ((day - 1, -1440.0), (day, 0.0)) if d >= 0 for b in _bursts(seed, d, topic_p, rate)
            if b[0] + shift > -1440] if day >= 0 else []
    shifts = [(-1440.0 if i < len(_bursts(seed, day - 1, topic_p, rate)) and day >= 1 else 0.0)
              for i in range(len(rows))]
    if rows:
        b = np.array(rows)
        dt = minute[None, :] - (b[:, 0] + np.array(shifts))[:, None]
        burst = np.where(dt >= 0, b[:, 1:2] * np.exp(-np.clip(dt, 0, None) / b[:, 2:3]), 0.0)
        focus = b[np.argmax(burst, axis=0), 3].astype(np.int64)
    burst_total = burst.sum(axis=0)
    return base + burst_total, burst_total, focus
