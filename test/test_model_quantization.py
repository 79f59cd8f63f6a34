"""bitsandbytes 8-bit and 4-bit tiny models run on the CPU and stay close to full precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_ros.model.loading import QuantizedModelError, is_quantized, load_checkpoint, save_checkpoint
from vla_ros.model.tiny import make_tiny_checkpoint

torch.set_num_threads(1)

INSTRUCTIONS = (
    "pick up the red cube",
    "open the drawer",
    "push the blue block left",
    "put the bolt in the tray",
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=2)


@pytest.fixture(scope="module")
def reference(tiny_dir):
    checkpoint = load_checkpoint(tiny_dir, precision="fp32")
    return checkpoint, _run(checkpoint)


def _run(checkpoint):
    """First-step logits and constrained action tokens over a few observations."""
    logits, tokens = [], []
    for i, instruction in enumerate(INSTRUCTIONS):
        image = np.random.default_rng(i).integers(0, 256, (224, 224, 3), dtype=np.uint8)
        pixel_values = checkpoint.image_processor(image)[None]
        input_ids = torch.tensor([checkpoint.prompt_tokenizer.encode_prompt(instruction)])
        logits.append(checkpoint.model.first_step_logits(pixel_values, input_ids)[0])
        tokens.append(
            checkpoint.model.generate_action_tokens(
                pixel_values, input_ids, 7, allowed_token_range=checkpoint.action_tokenizer.token_id_range
            )[0]
        )
    return torch.stack(logits), torch.stack(tokens)


@pytest.mark.parametrize(
    ("quantization", "precision", "min_cosine"),
    [("8bit", "bf16", 0.999), ("4bit-nf4", "fp32", 0.95), ("4bit-fp4", "fp32", 0.95)],
)
def test_quantized_tiny_model_runs_on_cpu_close_to_full_precision(
    tiny_dir, reference, quantization, precision, min_cosine
):
    quantized = load_checkpoint(tiny_dir, precision=precision, quantization=quantization)
    layer = quantized.model.language_model.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == ("Linear8bitLt" if quantization == "8bit" else "Linear4bit")
    assert (
        type(quantized.model.language_model.lm_head) is torch.nn.Linear
    )  # kept in precision, as transformers
    assert type(quantized.model.projector.fc1) is torch.nn.Linear  # not asked for
    ref_logits, ref_tokens = reference[1]
    logits, tokens = _run(quantized)
    assert tokens.shape == ref_tokens.shape
    assert torch.all((tokens >= 31744) & (tokens < 32000))
    cosine = torch.nn.functional.cosine_similarity(logits, ref_logits).min().item()
    agreement = (tokens == ref_tokens).float().mean().item()
    print(f"{quantization}: token agreement with fp32 {agreement:.2f}, min logit cosine {cosine:.4f}")
    assert cosine > min_cosine


def test_vision_and_projector_can_be_quantized_too(tiny_dir):
    checkpoint = load_checkpoint(
        tiny_dir, precision="fp32", quantization="4bit-nf4", quantize_vision=True, quantize_projector=True
    )
    assert type(checkpoint.model.projector.fc1).__name__ == "Linear4bit"
    assert type(checkpoint.model.vision_backbone.featurizer.blocks[0].attn.qkv).__name__ == "Linear4bit"
    logits, _ = _run(checkpoint)
    assert torch.isfinite(logits).all()


def test_quantized_model_refuses_to_be_moved_or_saved(tiny_dir, tmp_path):
    checkpoint = load_checkpoint(tiny_dir, precision="fp32", quantization="8bit")
    assert is_quantized(checkpoint.model)
    with pytest.raises(QuantizedModelError, match="load it again"):
        checkpoint.model.to(torch.float16)
    with pytest.raises(QuantizedModelError, match="refusing to save"):
        save_checkpoint(
            checkpoint.model,
            tmp_path / "out",
            image_processor=checkpoint.image_processor,
            tokenizer_dir=tiny_dir,
        )
