"""Per-text scores of social posts and comments: lexicon sentiment, event words, token counts, content hash.

Pure polars (no Dagster, no I/O). ``text_items`` turns the raw posts and comments into one row per text
relevant to a symbol (linked to it, or market-wide chatter linked to no symbol), scored with vectorized
string operations: the texts are tokenized once, exploded, joined to the lexicon and aggregated back.

Sentiment is a crypto/finance lexicon sum, VADER-style normalised into (-1, 1): ``s / sqrt(s^2 + 15)``.
A negator (not, no, never, isn't, don't, ...) among the 3 preceding words of the same clause flips a
word's sign; clauses end at ``. , ; : ! ?`` so that "not financial advice. bullish" stays bullish.
"""

from __future__ import annotations

import hashlib
import unicodedata

import polars as pl

from quantmm_assets.core.schemas import UTC_TS

SENTIMENT_ALPHA = 15.0  # VADER's normalisation constant
NEGATION_SCOPE = 3  # words before a lexicon word that a negator may stand in

# Weights in [-1, 1]; includes every word of the synthetic lexicon's BULLISH_WORDS / BEARISH_WORDS
# (quantmm_resources/sources/synthetic/lexicon.py).
LEXICON: dict[str, float] = {
    # bullish: crypto slang
    "moon": 0.9,
    "mooning": 0.9,
    "bullish": 1.0,
    "breakout": 0.7,
    "rally": 0.7,
    "pump": 0.6,
    "pumping": 0.6,
    "ath": 0.6,
    "undervalued": 0.7,
    "accumulate": 0.5,
    "accumulating": 0.5,
    "surge": 0.7,
    "surging": 0.7,
    "gains": 0.6,
    "rocket": 0.8,
    "uptrend": 0.7,
    "hodl": 0.3,
    "lambo": 0.6,
    "wagmi": 0.6,
    "parabolic": 0.6,
    "squeeze": 0.3,
    "rebound": 0.5,
    "recovery": 0.4,
    "soaring": 0.8,
    "skyrocket": 0.9,
    "adoption": 0.4,
    "outperform": 0.6,
    "buy": 0.3,
    # bullish: general
    "strong": 0.5,
    "optimistic": 0.6,
    "great": 0.5,
    "love": 0.5,
    "winning": 0.6,
    "profit": 0.5,
    "profits": 0.5,
    "green": 0.4,
    "upside": 0.5,
    "growth": 0.4,
    "bull": 0.6,
    "beat": 0.3,
    "good": 0.3,
    "confident": 0.5,
    "excited": 0.5,
    "higher": 0.3,
    # bearish: crypto slang
    "bearish": -1.0,
    "dump": -0.7,
    "dumping": -0.7,
    "crash": -0.9,
    "crashing": -0.9,
    "rug": -0.9,
    "rugpull": -1.0,
    "scam": -0.9,
    "plunge": -0.8,
    "rekt": -0.8,
    "overvalued": -0.7,
    "fud": -0.4,
    "liquidated": -0.7,
    "hack": -0.8,
    "hacked": -0.9,
    "exploit": -0.7,
    "sell-off": -0.7,
    "selloff": -0.7,
    "capitulation": -0.8,
    "downtrend": -0.7,
    "ngmi": -0.6,
    "bagholder": -0.5,
    "bagholding": -0.5,
    "ponzi": -0.9,
    "bubble": -0.5,
    "sell": -0.3,
    "collapse": -0.9,
    "tank": -0.6,
    "tanking": -0.7,
    "insolvent": -0.9,
    # bearish: general
    "weak": -0.5,
    "losses": -0.6,
    "loss": -0.5,
    "fear": -0.6,
    "panic": -0.7,
    "terrible": -0.7,
    "worried": -0.5,
    "red": -0.4,
    "bear": -0.6,
    "downside": -0.5,
    "risky": -0.3,
    "bad": -0.4,
    "lower": -0.3,
    "recession": -0.6,
    "fraud": -0.9,
    "bankrupt": -0.9,
}
_NEGATOR_WORDS = (
    "not no never nor none nobody nothing cannot without hardly isn't isnt don't dont doesn't doesnt didn't didnt "
    "aren't arent wasn't wasnt weren't werent won't wont can't cant couldn't couldnt shouldn't shouldnt "
    "wouldn't wouldnt ain't aint haven't havent hasn't hasnt"
)
_EVENT_WORDS = (
    "hack hacked exploit exploited etf etfs sec lawsuit lawsuits sued listing listed listings delisting delisted "
    "halving upgrade upgrades fork hardfork liquidation liquidations liquidated bankruptcy bankrupt approval "
    "approved approves ban banned airdrop unlock unlocks regulation regulations regulator subpoena settlement "
    "outage halt halted mainnet testnet merger acquisition partnership fomc cpi rate-hike indictment arrested "
    "insolvency insolvent depeg depegged burn staking"
)
NEGATORS = frozenset(_NEGATOR_WORDS.split())
EVENT_WORDS = frozenset(_EVENT_WORDS.split())

_WORD = r"\$?[a-z0-9]+(?:['\-][a-z0-9]+)*"
_BOUNDARY = r"[.,;:!?]+"
_TOKEN = rf"{_WORD}|{_BOUNDARY}"

TEXT_ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "kind": pl.Utf8,  # "post" | "comment"
    "platform": pl.Utf8,
    "id": pl.Utf8,
    "ts_event": UTC_TS,
    "ts_available": UTC_TS,
    "author": pl.Utf8,
    "linked": pl.Boolean,  # linked to this symbol (else: linked to no symbol at all, market-wide)
    "text": pl.Utf8,
    "content_hash": pl.Utf8,
    "tokens": pl.Int32,
    "sentiment": pl.Float64,
    "event_words": pl.Int32,
    "engagement": pl.Int64,  # null when the observation time is unknown
    "engagement_observed_at": UTC_TS,
}


def normalize_text(text: str) -> str:
    """NFC-normalize and collapse whitespace (runs of any whitespace to one space, stripped)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_hash(text: str) -> str:
    """SHA-256 hex of the normalized text: the key of the embedding cache."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def score_texts(texts: pl.Series) -> pl.DataFrame:
    """Score each text: ``tokens`` (Int32), ``sentiment`` (Float64) and ``event_words`` (Int32), in input order."""
    n = len(texts)
    toks = (
        pl.DataFrame({"_tok": texts.cast(pl.Utf8).fill_null("")})
        .with_row_index("_i")
        .select(
            "_i",
            pl.col("_tok").str.to_lowercase().str.replace_all("\u2019", "'", literal=True).str.extract_all(_TOKEN),
        )
        .explode("_tok")
        .drop_nulls("_tok")
    )
    boundary = pl.col("_tok").str.contains(rf"^{_BOUNDARY}$")
    words = (
        toks.with_columns(
            # A clause is a run of words of one text between boundaries; ids increase along the frame.
            (boundary | (pl.col("_i") != pl.col("_i").shift(1)).fill_null(True)).cum_sum().alias("_clause"),
            boundary.alias("_b"),
        )
        .filter(~pl.col("_b"))
        .with_columns(
            pl.col("_tok").replace_strict(LEXICON, default=0.0, return_dtype=pl.Float64).alias("_score"),
            pl.col("_tok").is_in(list(NEGATORS)).alias("_neg"),
            pl.col("_tok").is_in(list(EVENT_WORDS)).alias("_event"),
        )
    )
    negated = pl.any_horizontal(
        [
            ((pl.col("_clause").shift(k) == pl.col("_clause")) & pl.col("_neg").shift(k)).fill_null(False)
            for k in range(1, NEGATION_SCOPE + 1)
        ]
    )
    per_text = (
        words.with_columns(pl.when(negated).then(-pl.col("_score")).otherwise(pl.col("_score")).alias("_score"))
        .group_by("_i")
        .agg(
            pl.len().cast(pl.Int32).alias("tokens"),
            pl.col("_score").sum().alias("_sum"),
            pl.col("_event").sum().cast(pl.Int32).alias("event_words"),
        )
    )
    s = pl.col("_sum").fill_null(0.0)
    return (
        pl.DataFrame({"_i": pl.arange(0, n, dtype=pl.UInt32, eager=True)})
        .join(per_text, on="_i", how="left")
        .sort("_i")
        .select(
            pl.col("tokens").fill_null(0),
            (s / (s * s + SENTIMENT_ALPHA).sqrt()).alias("sentiment"),
            pl.col("event_words").fill_null(0),
        )
    )


def _relevant(frame: pl.DataFrame, kind: str, symbol: str) -> pl.DataFrame:
    """Rows of ``frame`` linked to ``symbol`` or to no symbol, with the common item columns."""
    if frame.is_empty():
        return pl.DataFrame(schema={c: TEXT_ITEMS_SCHEMA[c] for c in _ITEM_BASE})
    cols = frame.columns
    syms = pl.col("symbols") if "symbols" in cols else pl.lit(None, dtype=pl.List(pl.Utf8))
    linked = syms.list.contains(pl.lit(symbol)).fill_null(False)
    unlinked = syms.list.len().fill_null(0) == 0
    text = pl.col("text").fill_null("")
    if "title" in cols:
        text = pl.when(pl.col("title").is_not_null()).then(pl.col("title") + "\n" + text).otherwise(text)
    observed = pl.col("engagement_observed_at") if "engagement_observed_at" in cols else pl.lit(None, dtype=UTC_TS)
    score = pl.col("engagement_score") if "engagement_score" in cols else pl.lit(None, dtype=pl.Int64)
    author = pl.col("author") if "author" in cols else pl.lit(None, dtype=pl.Utf8)
    return frame.filter(linked | unlinked).select(
        pl.lit(kind).alias("kind"),
        pl.col("platform").cast(pl.Utf8),
        pl.col("id").cast(pl.Utf8),
        pl.col("ts_event").cast(UTC_TS),
        pl.col("ts_available").cast(UTC_TS),
        author.cast(pl.Utf8).alias("author"),
        linked.alias("linked"),
        text.alias("text"),
        pl.when(observed.is_not_null()).then(score).otherwise(None).cast(pl.Int64).alias("engagement"),
        observed.cast(UTC_TS).alias("engagement_observed_at"),
    )


_ITEM_BASE = (
    "kind",
    "platform",
    "id",
    "ts_event",
    "ts_available",
    "author",
    "linked",
    "text",
    "engagement",
    "engagement_observed_at",
)


def text_items(posts: pl.DataFrame, comments: pl.DataFrame, symbol: str) -> pl.DataFrame:
    """Scored posts and comments relevant to ``symbol`` (linked to it or to no symbol), as ``TEXT_ITEMS_SCHEMA``.

    Posts read ``title + "\\n" + text`` when they have a title. ``engagement`` is the engagement score only
    when its observation time is known (``engagement_observed_at`` non-null). Sorted by ts_available, kind, id.
    """
    items = pl.concat([_relevant(posts, "post", symbol), _relevant(comments, "comment", symbol)])
    if items.is_empty():
        return pl.DataFrame(schema=TEXT_ITEMS_SCHEMA)
    items = items.sort("ts_available", "kind", "id")
    hashes = pl.Series("content_hash", [content_hash(t) for t in items["text"].to_list()], dtype=pl.Utf8)
    scores = score_texts(items["text"])
    return (
        pl.concat([items, scores], how="horizontal")
        .with_columns(pl.lit(symbol, dtype=pl.Utf8).alias("symbol"), hashes)
        .select([pl.col(c).cast(t) for c, t in TEXT_ITEMS_SCHEMA.items()])
    )
