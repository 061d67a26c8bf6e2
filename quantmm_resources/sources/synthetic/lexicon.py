"""Vocabulary of the synthetic social text: sentiment words, symbol names, communities, phrases, authors.

Pure numpy (no Dagster, no I/O). ``text`` draws its posts and comments from these lists;
which sentiment word is drawn, and so the planted signal, is decided there. The sentiment words are
ordinary words so that a generic sentiment model picks the signal up (see docs/synthetic_sample.md).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from quantmm_resources.sources.synthetic.base import day_rng

BULLISH_WORDS = (
    "bullish",
    "moon",
    "breakout",
    "pump",
    "rally",
    "undervalued",
    "accumulate",
    "rocket",
    "surge",
    "strong",
    "gains",
    "uptrend",
    "optimistic",
    "great",
    "love",
    "winning",
)
BEARISH_WORDS = (
    "bearish",
    "dump",
    "crash",
    "rug",
    "plunge",
    "overvalued",
    "capitulation",
    "rekt",
    "weak",
    "losses",
    "downtrend",
    "scam",
    "fear",
    "panic",
    "terrible",
    "worried",
)
# Names used in text; they mirror the aliases of quantmm_resources/config/universe.toml.
NAMES: dict[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "BNB": "binance coin",
    "SOL": "solana",
    "XRP": "ripple",
    "DOGE": "dogecoin",
    "ADA": "cardano",
    "TRX": "tron",
    "LINK": "chainlink",
    "AVAX": "avalanche",
}
TOPIC_WEIGHTS: dict[str, float] = {
    "BTCUSDT": 0.30,
    "ETHUSDT": 0.20,
    "SOLUSDT": 0.13,
    "XRPUSDT": 0.11,
    "DOGEUSDT": 0.06,
    "BNBUSDT": 0.05,
    "ADAUSDT": 0.04,
    "LINKUSDT": 0.03,
    "AVAXUSDT": 0.03,
    "TRXUSDT": 0.02,
}
COMMUNITIES: dict[str, str] = {
    "BTC": "Bitcoin",
    "ETH": "ethtrader",
    "BNB": "bnbchainofficial",
    "SOL": "solana",
    "XRP": "XRP",
    "DOGE": "dogecoin",
    "ADA": "cardano",
    "TRX": "Tronix",
    "LINK": "Chainlink",
    "AVAX": "Avax",
}
GENERAL_COMMUNITIES = ("CryptoCurrency", "CryptoMarkets", "altcoin", "SatoshiStreetBets")
TITLE_PHRASES = (
    "daily discussion",
    "price check",
    "what next?",
    "thoughts?",
    "chart update",
    "weekly outlook",
    "market update",
    "question about fees",
    "today's move",
    "levels to watch",
)
NEUTRAL_PHRASES = (
    "just looked at the chart",
    "what do you all think",
    "volume is picking up",
    "anyone else watching this",
    "funding looks unusual",
    "read the news this morning",
    "the order book is thin",
    "waiting for the weekly close",
    "not financial advice",
    "daily candle just closed",
    "been holding since last year",
    "open interest keeps moving",
    "my plan for the week",
    "the range is getting tight",
    "zooming out on the weekly",
    "keeping an eye on the levels",
    "what are your targets",
    "spot flows matter more",
    "this cycle feels different",
    "checking the four hour chart",
)
REPLY_PHRASES = (
    "same here",
    "source?",
    "we will see",
    "remind me in a week",
    "depends on the macro",
    "check the funding",
    "no idea",
    "following this",
    "ok but why",
    "zoom out",
    "mods?",
    "how so",
)
SENTIMENT_TEMPLATES = (
    "{w}",
    "{w}!",
    "so {w} right now",
    "{w} vibes",
    "looks {w} to me",
    "calling it {w}",
    "honestly {w}",
    "{w} setup",
)
_ADJ = ("quiet", "rapid", "lunar", "stoic", "blue", "silent", "lazy", "crypto", "degen", "based", "chill", "hodl")
_NOUN = ("whale", "otter", "falcon", "miner", "trader", "panda", "wizard", "hamster", "viking", "sloth", "node")
N_AUTHORS = 4000


@lru_cache(maxsize=16)
def author_pool(seed: int) -> tuple[list[str], np.ndarray]:
    """Return the author names of ``seed`` and their Zipf-like posting probabilities."""
    rng = day_rng(seed, "authors", "pool", 0)
    names = [
        f"{_ADJ[a]}_{_NOUN[b]}{n}"
        for a, b, n in zip(
            rng.integers(len(_ADJ), size=N_AUTHORS),
            rng.integers(len(_NOUN), size=N_AUTHORS),
            rng.integers(1, 9999, size=N_AUTHORS),
            strict=True,
        )
    ]
    weights = 1.0 / (np.arange(N_AUTHORS) + 3.0) ** 1.1
    return names, weights / weights.sum()


def symbol_mention(base: str, form: int) -> str:
    """Name a symbol: 0 cashtag ($SOL), 1 name (solana), 2 upper-case ticker (SOL)."""
    if form == 1 and base in NAMES:
        return NAMES[base]
    return base if form == 2 else f"${base}"


# Every sentiment phrase, indexed [bullish (0/1), word, template].
SENTIMENT_PHRASES = np.array(
    [[[t.format(w=w) for t in SENTIMENT_TEMPLATES] for w in words] for words in (BEARISH_WORDS, BULLISH_WORDS)],
    dtype=object,
)
