"""VLAPolicy: image + instruction -> Action, its decoding, inputs and training forward."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vla_ros.action import Action
from vla_ros.model.action_tokenizer import UnnormKeyError
from vla_ros.model.modeling_openvla import IGNORE_INDEX
from vla_ros.model.processing import ImageFormatError, collate_training_examples
from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=1)


@pytest.fixture(scope="module")
def policy(tiny_dir):
    return VLAPolicy(PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32"))


def _noise(seed=0, shape=(240, 320, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_predict_action_returns_an_unnormalised_seven_dim_action(policy):
    action = policy.predict_action(_noise(), "pick up the red cube")
    assert isinstance(action, Action)
    assert len(action.token_ids) == 7
    assert action.is_finite() and action.inference_time_s > 0
    expected = policy.action_statistics.unnormalize(
        policy.action_tokenizer.decode(np.array(action.token_ids))
    )
    assert np.allclose(action.vector, expected)
    assert action.extras["unnorm_key"] == "sim_workcell"


def test_black_white_and_noise_images_give_different_first_step_logits(policy):
    """Guard against openvla #346 (newer transformers silently dropped the image)."""
    _, input_ids = policy.encode_inputs(_noise(), "pick up the red cube")
    logits = []
    for image in (
        np.zeros((224, 224, 3), np.uint8),
        np.full((224, 224, 3), 255, np.uint8),
        _noise(1, (224, 224, 3)),
    ):
        pixel_values, _ = policy.encode_inputs(image, "pick up the red cube")
        logits.append(policy.core_model.first_step_logits(pixel_values, input_ids)[0])
    for i in range(3):
        for j in range(i + 1, 3):
            assert (logits[i] - logits[j]).abs().max() > 1e-3, (i, j)


def test_kv_cached_greedy_decoding_equals_recomputing_the_whole_sequence(policy):
    model = policy.core_model
    pixel_values, input_ids = policy.encode_inputs(_noise(2), "open the drawer")
    cached = model.generate_action_tokens(pixel_values, input_ids, 7)[0].tolist()
    ids = input_ids
    uncached = []
    for _ in range(7):
        next_id = int(model.first_step_logits(pixel_values, ids)[0].argmax())
        uncached.append(next_id)
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    assert cached == uncached


def test_constrained_decoding_is_the_argmax_over_action_tokens_of_the_full_logits(policy):
    model = policy.core_model
    lo, hi = policy.action_tokenizer.token_id_range
    pixel_values, input_ids = policy.encode_inputs(_noise(8), "slide the tray to the left")
    fast = model.generate_action_tokens(pixel_values, input_ids, 7, allowed_token_range=(lo, hi))[0].tolist()
    ids, slow = input_ids, []
    for _ in range(7):
        next_id = lo + int(model.first_step_logits(pixel_values, ids)[0, lo:hi].argmax())
        slow.append(next_id)
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    assert fast == slow


def test_decoding_matches_transformers_generate_on_the_same_inputs(policy):
    model = policy.core_model
    pixel_values, input_ids = policy.encode_inputs(_noise(3), "push the blue block left")
    embeds, mask = model.embed_multimodal(pixel_values, input_ids)
    with torch.inference_mode():
        generated = model.language_model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=7, do_sample=False, pad_token_id=32000
        )
    assert generated[0, -7:].tolist() == model.generate_action_tokens(pixel_values, input_ids, 7)[0].tolist()


def test_constrained_decoding_emits_only_action_tokens(tiny_dir, policy):
    constrained = VLAPolicy(
        PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32", constrain_to_action_tokens=True),
        loaded=policy.loaded,
    )
    action = constrained.predict_action(_noise(4), "stack the cube on the bin")
    assert all(31744 <= t < 32000 for t in action.token_ids)
    assert action.extras["all_tokens_are_action_tokens"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.uint8), "grayscale"),
        (np.zeros((64, 64, 1), np.uint8), "grayscale"),
        (np.zeros((64, 64, 4), np.uint8), "alpha"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((3, 64, 64, 3), np.uint8), "HxWx3"),
        (np.zeros((0, 64, 3), np.uint8), "no pixels"),
    ],
)
def test_images_that_are_not_rgb_uint8_are_refused_with_a_fix(policy, image, message):
    with pytest.raises(ImageFormatError, match=message):
        policy.predict_action(image, "pick up the cube")


def test_processor_stacks_dinov2_and_siglip_normalisations(policy):
    pixels = policy.image_processor(np.full((10, 20, 3), 255, np.uint8))
    assert pixels.shape == (6, 224, 224)
    assert torch.allclose(
        pixels[:3, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )
    assert torch.allclose(pixels[3:], torch.ones(3, 224, 224))


def test_center_crop_shows_the_model_the_middle_of_the_image(policy):
    image = np.zeros((100, 100, 3), np.uint8)
    image[:2] = 255  # a white band at the top edge; a 90%-area crop keeps the central 95x95 px
    cropped = policy.image_processor(image, center_crop_image=True)
    plain = policy.image_processor(image)
    assert cropped[3:].max() == pytest.approx(-1.0, abs=0.02)  # SigLIP channels: all black
    assert plain[3:, :3].max() > 0.9


def test_prompt_is_lowercased_and_ends_with_the_space_token(policy):
    ids = policy.prompt_tokenizer.encode_prompt("PICK UP the Red Cube")
    assert ids == policy.prompt_tokenizer.encode_prompt("pick up the red cube")
    assert ids[0] == 1 and ids[-1] == 29871


def test_wrong_unnorm_key_lists_the_available_datasets(tiny_dir, policy):
    with pytest.raises(UnnormKeyError, match="available: sim_workcell"):
        VLAPolicy(PolicyConfig(checkpoint_dir=tiny_dir, unnorm_key="bridge_orig"), loaded=policy.loaded)


def test_several_datasets_need_an_explicit_unnorm_key(tiny_dir, tmp_path):
    directory = shutil.copytree(tiny_dir, tmp_path / "two")
    stats = json.loads((directory / "dataset_statistics.json").read_text())
    stats["bridge_orig"] = stats["sim_workcell"]
    (directory / "dataset_statistics.json").write_text(json.dumps(stats))
    with pytest.raises(UnnormKeyError, match="bridge_orig, sim_workcell"):
        VLAPolicy(PolicyConfig(checkpoint_dir=directory, precision="fp32"))
    assert VLAPolicy(
        PolicyConfig(checkpoint_dir=directory, precision="fp32", unnorm_key="bridge_orig")
    ).unnorm_key == ("bridge_orig")


def test_training_example_puts_loss_on_the_action_tokens_and_eos_only(policy):
    stats = policy.action_statistics
    action = (stats.q01 + stats.q99) / 2
    input_ids, labels = policy.encode_training_example(action, "pick up the cube")
    assert len(input_ids) == len(labels)
    labelled = [t for t in labels if t != IGNORE_INDEX]
    assert labelled[:-1] == policy.action_tokenizer.encode(stats.normalize(action)).tolist()
    assert labelled[-1] == policy.prompt_tokenizer.eos_token_id
    assert labels[:-8] == [IGNORE_INDEX] * (len(labels) - 8)


def test_training_forward_loss_equals_cross_entropy_of_the_full_logits(policy):
    examples = [
        policy.encode_training_example(np.zeros(7), "pick up the cube"),
        policy.encode_training_example(np.full(7, 0.01), "put the red bolt into the left tray"),
    ]
    input_ids, attention_mask, labels = collate_training_examples(
        examples, policy.prompt_tokenizer.pad_token_id
    )
    pixel_values = policy.image_processor.batch([_noise(5), _noise(6)])
    full = policy.forward(pixel_values, input_ids, attention_mask).logits
    out = policy.forward(pixel_values, input_ids, attention_mask, labels)
    n_patches = policy.core_model.num_patches
    # The logit at multimodal position p predicts text token p - n_patches + 1.
    expected = []
    for b in range(2):
        for t in range(1, labels.shape[1]):
            if labels[b, t] != IGNORE_INDEX:
                expected.append(full[b, t - 1 + n_patches])
    assert torch.allclose(out.logits, torch.stack(expected), atol=1e-5)
    reference = torch.nn.functional.cross_entropy(torch.stack(expected), out.labels)
    assert torch.allclose(out.loss, reference, atol=1e-5)
    assert out.labels.numel() == 16


def test_training_loss_backpropagates_into_the_vision_backbone(tiny_dir):
    policy = VLAPolicy(PolicyConfig(checkpoint_dir=tiny_dir, precision="fp32"))
    input_ids, attention_mask, labels = collate_training_examples(
        [policy.encode_training_example(np.zeros(7), "pick up the cube")],
        policy.prompt_tokenizer.pad_token_id,
    )
    out = policy.forward(policy.image_processor.batch([_noise(7)]), input_ids, attention_mask, labels)
    out.loss.backward()
    grad = policy.core_model.vision_backbone.featurizer.patch_embed.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
