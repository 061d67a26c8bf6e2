"""One text encoder per lake: the pin that keeps latents of different encoders out of one matrix."""

from pathlib import Path

import pytest

from quantmm_resources.lake_views import TEXT_ENCODER_PIN, pin_text_encoder, pinned_text_encoder

MINILM, HASHING = "minilm-l6-v2/384", "hashing-v1/384"


def test_first_run_pins_and_the_same_encoder_passes(tmp_path: Path) -> None:
    assert pinned_text_encoder(tmp_path) is None
    assert pin_text_encoder(tmp_path, {MINILM}) == MINILM
    assert pin_text_encoder(tmp_path, {MINILM}) == MINILM
    assert pinned_text_encoder(tmp_path) == MINILM
    assert [p.name for p in tmp_path.joinpath(TEXT_ENCODER_PIN[0]).iterdir()] == [TEXT_ENCODER_PIN[1]]  # no temp left


def test_another_encoder_is_refused_with_the_way_out(tmp_path: Path) -> None:
    pin_text_encoder(tmp_path, {MINILM})
    with pytest.raises(ValueError, match="pinned to minilm-l6-v2/384") as err:
        pin_text_encoder(tmp_path, {HASHING}, fallback_reason="ImportError: no torch")
    message = str(err.value)
    assert HASHING in message and "ImportError: no torch" in message and "feature_matrix_main" in message
    assert pinned_text_encoder(tmp_path) == MINILM  # the pin is unchanged


def test_one_run_with_two_encoders_is_refused_even_before_a_pin(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="several encoders"):
        pin_text_encoder(tmp_path, {MINILM, HASHING})
    assert pinned_text_encoder(tmp_path) is None
