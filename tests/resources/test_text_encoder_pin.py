"""One text encoder per lake: the pin that keeps latents of different encoders out of one matrix."""

from pathlib import Path

import pytest

from quantmm_resources.lake import TEXT_ENCODER_PIN, Lake

MINILM, HASHING = "minilm-l6-v2/384", "hashing-v1/384"


def test_first_run_pins_and_the_same_encoder_passes(tmp_path: Path) -> None:
    assert Lake(tmp_path).pinned_text_encoder() is None
    assert Lake(tmp_path).pin_text_encoder({MINILM}) == MINILM
    assert Lake(tmp_path).pin_text_encoder({MINILM}) == MINILM
    assert Lake(tmp_path).pinned_text_encoder() == MINILM
    assert [p.name for p in tmp_path.joinpath(TEXT_ENCODER_PIN[0]).iterdir()] == [TEXT_ENCODER_PIN[1]]  # no temp left


def test_another_encoder_is_refused_with_the_way_out(tmp_path: Path) -> None:
    Lake(tmp_path).pin_text_encoder({MINILM})
    with pytest.raises(ValueError, match="pinned to minilm-l6-v2/384") as err:
        Lake(tmp_path).pin_text_encoder({HASHING}, fallback_reason="ImportError: no torch")
    message = str(err.value)
    assert HASHING in message and "ImportError: no torch" in message and "feature_matrix_main" in message
    assert Lake(tmp_path).pinned_text_encoder() == MINILM  # the pin is unchanged


def test_one_run_with_two_encoders_is_refused_even_before_a_pin(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="several encoders"):
        Lake(tmp_path).pin_text_encoder({MINILM, HASHING})
    assert Lake(tmp_path).pinned_text_encoder() is None
