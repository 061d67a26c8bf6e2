"""The text encoder: hashing encoder, SQLite cache, MiniLM fallback, and the real MiniLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantmm_assets.core.text.scoring import content_hash
from quantmm_resources import text_encoder as te
from quantmm_resources.text_encoder import EncodeStats, TextEncoder, hashing_embed

TEXTS = ["watching $BTC. moon setup", "the order book is thin", "", "watching $BTC. moon setup", "rekt! so rekt"]


def test_hashing_encoder_is_normalized_and_deterministic() -> None:
    a = hashing_embed(TEXTS, 384)
    assert a.dtype == np.float32 and a.shape == (5, 384)
    norms = np.linalg.norm(a, axis=1)
    assert norms[[0, 1, 3, 4]] == pytest.approx(1.0, abs=1e-6)
    assert norms[2] == 0.0  # no words: the zero vector
    assert np.array_equal(a, hashing_embed(TEXTS, 384)) and np.array_equal(a[0], a[3])
    assert float(a[0] @ hashing_embed(["moon setup watching $btc"], 384)[0]) > 0.5  # unigrams shared
    assert hashing_embed(["Moon"], 64)[0].tolist() == hashing_embed(["moon"], 64)[0].tolist()


def test_hashing_is_stable_across_processes_and_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from quantmm_resources.text_encoder import TextEncoder\n"
        f"enc = TextEncoder(model='hashing', cache_path={str(tmp_path / 'c.sqlite')!r})\n"
        f"v, s = enc.embed({TEXTS!r})\n"
        "print(json.dumps({'v': v.tolist(), 'torch': 'torch' in sys.modules, 'id': s.encoder_id}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["id"] == "hashing-v1/384"
    assert np.array_equal(np.array(result["v"], dtype=np.float32), hashing_embed(TEXTS, 384))


def test_cache_serves_identical_vectors_and_counts_hits(tmp_path: Path) -> None:
    enc = TextEncoder(model="hashing", cache_path=str(tmp_path / "cache" / "emb.sqlite"), dim=128)
    hashes = [content_hash(t) for t in TEXTS]
    first, s1 = enc.embed(TEXTS, hashes)
    assert isinstance(s1, EncodeStats) and s1.encoder_id == "hashing-v1/128" and not s1.fallback
    assert (s1.n, s1.cached, s1.computed) == (5, 0, 4)  # the duplicate text is embedded once
    second, s2 = enc.embed(TEXTS, hashes)
    assert (s2.n, s2.cached, s2.computed) == (5, 5, 0)
    assert np.array_equal(first, second) and second.dtype == np.float32 and second.shape == (5, 128)
    more, s3 = enc.embed(["new text", TEXTS[1]])  # hashes computed when omitted
    assert (s3.cached, s3.computed) == (1, 1) and np.array_equal(more[1], first[1])
    empty, s4 = enc.embed([], [])
    assert empty.shape == (0, 128) and s4.n == 0
    with pytest.raises(ValueError, match="hashes"):
        enc.embed(["a"], [])


def test_cache_serves_22k_texts_without_recomputing(tmp_path: Path) -> None:
    texts = [f"post number {i} about $BTC moon" for i in range(22_500)]
    hashes = [content_hash(t) for t in texts]
    enc = TextEncoder(model="hashing", cache_path=str(tmp_path / "emb.sqlite"))
    enc.embed(texts, hashes)
    _, stats = enc.embed(texts, hashes)
    assert stats.cached == 22_500 and stats.computed == 0


def test_failed_minilm_load_falls_back_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("weights not found")

    monkeypatch.setattr(te, "_MODEL", {})
    monkeypatch.setattr(te, "load_minilm", broken)
    enc = TextEncoder(model="minilm", cache_path=str(tmp_path / "emb.sqlite"))
    vectors, stats = enc.embed(TEXTS)
    assert stats.fallback and stats.encoder_id == "hashing-v1/384"
    assert stats.fallback_reason is not None and "OSError" in stats.fallback_reason
    assert "weights not found" in stats.fallback_reason
    assert np.array_equal(vectors, hashing_embed(TEXTS, 384))
    again, stats2 = enc.embed(TEXTS)  # served from the hashing rows of the cache, still flagged
    assert stats2.fallback and stats2.cached == 5 and np.array_equal(again, vectors)


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="384"):
        TextEncoder(model="minilm", dim=128, cache_path=str(tmp_path / "e.sqlite")).embed(["x"])
    with pytest.raises(ValueError, match="unknown"):
        TextEncoder(model="bert", cache_path=str(tmp_path / "e.sqlite")).embed(["x"])


def test_real_minilm_embeds_meaningfully(tmp_path: Path) -> None:
    enc = TextEncoder(model="minilm", cache_path=str(tmp_path / "emb.sqlite"))
    texts = [
        "Bitcoin is rallying hard today, the price keeps going up",
        "BTC price surging, strong bullish breakout this morning",
        "My grandmother baked a chocolate cake for the village fair",
    ]
    vectors, stats = enc.embed(texts)
    assert not stats.fallback, stats.fallback_reason
    assert stats.encoder_id == "minilm-l6-v2/384" and vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2
    again, stats2 = enc.embed(texts)
    assert stats2.cached == 3 and np.array_equal(again, vectors)
