"""Batched prediction: prompts of different lengths decoded together give each row its own answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

INSTRUCTIONS = [
    "pick up the red cube",
    "put the small blue gear in the scrap bin on the left",
    "go",
    "move to the tray",
    "put the long steel shaft with the cracked end into the inspection station please",
]


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96 + 8 * seed, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=3)


@pytest.mark.parametrize("constrained", [False, True])
def test_each_row_of_a_batch_gets_the_action_it_would_get_alone(tiny_dir, constrained):
    policy = VLAPolicy(
        PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32", constrain_to_action_tokens=constrained)
    )
    images = [_noise(i) for i in range(len(INSTRUCTIONS))]
    lengths = {len(policy.prompt_tokenizer.encode_prompt(text)) for text in INSTRUCTIONS}
    assert len(lengths) == len(INSTRUCTIONS), "the prompts must differ in length to exercise the padding"

    batched = policy.predict_actions(images, INSTRUCTIONS)
    for image, text, action in zip(images, INSTRUCTIONS, batched, strict=True):
        alone = policy.predict_action(image, text)
        assert action.token_ids == alone.token_ids, text
        np.testing.assert_array_equal(action.vector, alone.vector)
        assert action.extras["batch_size"] == len(INSTRUCTIONS)


def test_first_step_logits_of_a_left_padded_batch_match_each_prompt_alone(tiny_dir):
    policy = VLAPolicy(PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32"))
    model = policy.core_model
    rows = [policy.encode_inputs(_noise(i), text) for i, text in enumerate(INSTRUCTIONS)]
    pixel_values = torch.cat([pixels for pixels, _ in rows])
    input_ids, attention_mask = policy._left_pad([ids[0] for _, ids in rows])
    assert attention_mask is not None and (attention_mask == 0).any()
    batched = model.first_step_logits(pixel_values, input_ids, attention_mask)
    for row, (pixels, ids) in enumerate(rows):
        alone = model.first_step_logits(pixels, ids)[0]
        torch.testing.assert_close(batched[row], alone, rtol=0, atol=1e-4)


def test_a_batch_needs_one_instruction_per_image(tiny_dir):
    policy = VLAPolicy(PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32"))
    with pytest.raises(ValueError, match="2 images but 1 instructions"):
        policy.predict_actions([_noise(0), _noise(1)], ["go"])
    assert policy.predict_actions([], []) == []
