"""LoRA adapters written by our code load, switch and merge; merging does not change the actions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_ros.model import adapters
from vla_ros.model.loading import load_checkpoint, save_checkpoint
from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=5)


def _train_like(model, seed: int) -> None:
    """Give the adapter non-zero B matrices, as training would (B starts at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


@pytest.fixture(scope="module")
def adapter_dirs(tiny_dir, tmp_path_factory):
    """Two different adapters saved by our code."""
    out = {}
    for seed, name in ((1, "pick"), (2, "place")):
        model = adapters.add_lora_adapter(load_checkpoint(tiny_dir, precision="fp32").model, name)
        _train_like(model, seed)
        out[name] = adapters.save_adapter(model, tmp_path_factory.mktemp(name), name)
    return out


def _logits(model, checkpoint, seed=0):
    image = np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    pixel_values = checkpoint.image_processor(image)[None]
    input_ids = torch.tensor([checkpoint.prompt_tokenizer.encode_prompt("put the gear on the tray")])
    return adapters.base_model(model).first_step_logits(pixel_values, input_ids)


def test_new_adapter_uses_upstream_fine_tuning_defaults(tiny_dir):
    model = load_checkpoint(tiny_dir, precision="fp32").model
    config = adapters.lora_config(model)
    assert (config.r, config.lora_alpha) == (32, 16)
    targets = set(config.target_modules)
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= targets
    assert {"qkv", "proj", "fc1", "fc2", "fc3"} <= targets
    assert "lm_head" not in targets
    peft_model = adapters.add_lora_adapter(model)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_saved_adapter_is_in_peft_layout_with_official_module_names(adapter_dirs):
    directory = adapter_dirs["pick"]
    assert sorted(p.name for p in directory.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((directory / "adapter_config.json").read_text())
    assert config["r"] == 32 and config["lora_alpha"] == 16


def test_loaded_adapter_reproduces_the_saved_one(tiny_dir, tmp_path):
    checkpoint = load_checkpoint(tiny_dir, precision="fp32")
    trained = adapters.add_lora_adapter(load_checkpoint(tiny_dir, precision="fp32").model, "pick")
    _train_like(trained, 1)
    directory = adapters.save_adapter(trained, tmp_path / "pick")
    loaded = adapters.load_adapter(checkpoint.model, directory, "pick")
    assert torch.allclose(_logits(loaded, checkpoint), _logits(trained, checkpoint), atol=1e-6)


def test_switching_adapters_switches_outputs(tiny_dir, adapter_dirs):
    checkpoint = load_checkpoint(tiny_dir, precision="fp32")
    base = _logits(checkpoint.model, checkpoint)
    model = adapters.load_adapter(checkpoint.model, adapter_dirs["pick"], "pick")
    pick = _logits(model, checkpoint)
    model = adapters.load_adapter(model, adapter_dirs["place"], "place")
    place = _logits(model, checkpoint)
    adapters.set_active_adapter(model, "pick")
    assert torch.allclose(_logits(model, checkpoint), pick, atol=1e-6)
    assert not torch.allclose(pick, place, atol=1e-3)
    assert not torch.allclose(pick, base, atol=1e-3)
    with pytest.raises(adapters.AdapterError, match="loaded: pick, place"):
        adapters.set_active_adapter(model, "stack")


def test_merged_and_unmerged_adapter_give_the_same_actions(tiny_dir, adapter_dirs, tmp_path):
    unmerged = VLAPolicy(PolicyConfig(tiny_dir, precision="fp32", adapter_dir=adapter_dirs["place"]))
    merged = VLAPolicy(
        PolicyConfig(tiny_dir, precision="fp32", adapter_dir=adapter_dirs["place"], merge_adapter=True)
    )
    assert not isinstance(merged.model, adapters.PeftModel)
    images = [np.random.default_rng(s).integers(0, 256, (200, 260, 3), dtype=np.uint8) for s in range(3)]
    for image in images:
        a = unmerged.predict_action(image, "place the cube in the bin")
        b = merged.predict_action(image, "place the cube in the bin")
        assert a.token_ids == b.token_ids
    # A merged model saves as an ordinary checkpoint and loads through the same loader.
    out = save_checkpoint(
        merged.core_model,
        tmp_path / "merged",
        image_processor=merged.image_processor,
        tokenizer_dir=tiny_dir,
        norm_stats=merged.loaded.norm_stats,
    )
    reloaded = VLAPolicy(PolicyConfig(out, precision="fp32"))
    for image in images:
        assert (
            reloaded.predict_action(image, "place the cube in the bin").token_ids
            == merged.predict_action(image, "place the cube in the bin").token_ids
        )


def test_policy_switches_between_loaded_adapters(tiny_dir, adapter_dirs):
    policy = VLAPolicy(PolicyConfig(tiny_dir, precision="fp32", adapter_dir=adapter_dirs["pick"]))
    policy.load_adapter(adapter_dirs["place"], "place")
    checkpoint = policy.loaded
    place = _logits(policy.model, checkpoint)
    policy.use_adapter("default")
    assert not torch.allclose(_logits(policy.model, checkpoint), place, atol=1e-3)


def test_adapter_directory_without_safetensors_is_refused(tiny_dir, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(adapters.AdapterError, match=r"adapter_model\.safetensors"):
        adapters.load_adapter(load_checkpoint(tiny_dir, precision="fp32").model, tmp_path)
