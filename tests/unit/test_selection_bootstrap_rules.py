"""The block bootstrap pieces of the gate (core.gates.selection_bootstrap), from their rules: blocks anchored at the
first step, validation, and the ECE buckets at their edges (hand-computed)."""

import math

import numpy as np
import pytest

from quantmm_assets.core.gates.selection_bootstrap import (
    N_BUCKETS,
    block_codes,
    block_multiplicities,
    ece_interval,
    selection_interval,
)

H = 3600 * 1_000_000  # one hour in microseconds


def test_blocks_are_anchored_at_the_first_step_and_dense():
    ts = np.array([10, 30, 35, 58]) * H  # from 10:00 on day 0: blocks of a day start at 10:00, not at midnight
    assert block_codes(ts, 3600).tolist() == [0, 0, 1, 2]
    assert block_codes(np.array([0, 1, 80]) * H, 3600).tolist() == [0, 0, 1]  # empty days leave no gap in codes
    assert block_codes(ts, 7 * 24 * 3600).tolist() == [0, 0, 0, 0]  # 7d horizon: 7-day blocks
    empty = block_codes(np.array([], dtype=np.int64), 3600)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_multiplicities_draw_as_many_blocks_as_there_are():
    w = block_multiplicities(5, 1, seed=3)
    assert w.shape == (1, 5) and w.sum() == 5 and w.dtype == np.float64
    assert block_multiplicities(0, 4, seed=0).shape == (4, 0)
    with pytest.raises(ValueError, match="n_boot >= 1"):
        block_multiplicities(3, 0, seed=0)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_the_level_must_lie_strictly_between_0_and_1(level):
    x, codes = np.ones((2, 1)), np.array([0, 1])
    with pytest.raises(ValueError, match="0 < level < 1"):
        selection_interval(x, codes, 0, block_multiplicities(2, 3, 0), level)


def test_mismatched_or_empty_inputs():
    w = block_multiplicities(2, 3, 0)
    with pytest.raises(ValueError, match="do not match"):
        selection_interval(np.ones((3, 1)), np.array([0, 1]), 0, w, 0.9)
    with pytest.raises(ValueError, match="do not match"):
        selection_interval(np.ones((2, 1)), np.array([0, 1]), 1, w, 0.9)
    empty = selection_interval(np.ones((0, 2)), np.zeros(0, np.int64), 0, w, 0.9)
    assert math.isnan(empty.estimate) and empty.n_blocks == 0 and empty.n_boot == 3


def test_one_resample_gives_one_quantile():
    x = np.array([[1.0], [3.0]])
    w = np.array([[1.0, 1.0]])  # the resample is the sample itself: the centered max is 0
    got = selection_interval(x, np.array([0, 1]), 0, w, 0.9)
    assert (got.estimate, got.low, got.high, got.n_blocks) == (2.0, 2.0, 2.0, 2)


def _ece(conf, hits):
    w = np.array([[1.0]])  # one block, drawn once: the interval is the point
    return ece_interval(np.array(conf), np.array(hits, float), np.zeros(len(conf), np.int64), w, 0.9)


def test_ece_buckets_at_their_edges():
    assert N_BUCKETS == 10
    # 0.85 in bucket 8, 1.0 in the top bucket (9): |0.85 - 1| + |1.0 - 0| over 2 rows
    assert _ece([0.85, 1.0], [1, 0]).estimate == pytest.approx(0.575)
    # 0.05 in bucket 0, 0.15 in bucket 1: |0.05 - 0| + |0.15 - 1| over 2 rows
    assert _ece([0.05, 0.15], [0, 1]).estimate == pytest.approx(0.45)
    # a non-finite confidence is left out: one row, |0.3 - 1|
    got = _ece([0.3, np.nan], [1, 1])
    assert got.estimate == pytest.approx(0.7) and (got.low, got.high) == (pytest.approx(0.7), pytest.approx(0.7))
    none = _ece([np.nan], [1])
    assert math.isnan(none.estimate) and none.n_blocks == 0 and none.n_boot == 1


def test_edges_of_the_interval_inputs():
    w = block_multiplicities(2, 3, 0)
    with pytest.raises(ValueError, match="do not match"):  # a code equal to the number of blocks is out of range
        selection_interval(np.ones((2, 1)), np.array([0, 2]), 0, w, 0.9)
    one = selection_interval(np.array([[0.5]]), np.array([0]), 0, np.array([[1.0], [1.0]]), 0.9)
    assert (one.estimate, one.low, one.high, one.n_blocks, one.n_boot) == (0.5, 0.5, 0.5, 1, 2)


def test_ece_keeps_every_block_when_the_last_one_has_no_scored_row():
    conf, hits, codes = np.array([0.7, np.nan]), np.array([1.0, 1.0]), np.array([0, 1])
    got = ece_interval(conf, hits, codes, np.array([[1.0, 1.0], [2.0, 0.0]]), 0.9)
    assert got.estimate == pytest.approx(0.3) and got.n_blocks == 1 and got.n_boot == 2
