"""The full-size architecture matches the official OpenVLA-7B checkpoint, name for name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from vla_ros.model.configuration_openvla import ConfigError, OpenVLAConfig
from vla_ros.model.loading import (
    WeightMismatchError,
    build_empty_model,
    check_weights,
    read_weight_headers,
)

# openvla/openvla-7b on the Hugging Face hub reports 7,541,237,184 parameters.
OPENVLA_7B_PARAMETERS = 7_541_237_184

# The official config.json minus norm_stats and auto_map (the text_config really is this short).
OFFICIAL_CONFIG = {
    "arch_specifier": "no-align+fused-gelu-mlp",
    "architectures": ["OpenVLAForActionPrediction"],
    "hf_llm_id": "meta-llama/Llama-2-7b-hf",
    "image_resize_strategy": "resize-naive",
    "image_sizes": [224, 224],
    "llm_backbone_id": "llama2-7b-pure",
    "llm_max_length": 2048,
    "model_type": "openvla",
    "n_action_bins": 256,
    "output_projector_states": False,
    "pad_to_multiple_of": 64,
    "pad_token_id": 32000,
    "text_config": {
        "model_type": "llama",
        "pad_token_id": 32000,
        "torch_dtype": "bfloat16",
        "vocab_size": 32064,
    },
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "timm_override_act_layers": [None, None],
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_fused_vision_backbone": True,
    "vision_backbone_id": "dinosiglip-vit-so-224px",
}

KNOWN_SHAPES = {
    "vision_backbone.featurizer.cls_token": (1, 1, 1024),
    "vision_backbone.featurizer.reg_token": (1, 4, 1024),
    "vision_backbone.featurizer.pos_embed": (1, 256, 1024),
    "vision_backbone.featurizer.patch_embed.proj.weight": (1024, 3, 14, 14),
    "vision_backbone.featurizer.blocks.0.ls1.scale_factor": (1024,),
    "vision_backbone.featurizer.blocks.23.ls2.scale_factor": (1024,),
    "vision_backbone.featurizer.norm.weight": (1024,),
    "vision_backbone.fused_featurizer.pos_embed": (1, 256, 1152),
    "vision_backbone.fused_featurizer.blocks.26.mlp.fc1.weight": (4304, 1152),
    "vision_backbone.fused_featurizer.attn_pool.latent": (1, 1, 1152),
    "vision_backbone.fused_featurizer.attn_pool.kv.weight": (2304, 1152),
    "projector.fc1.weight": (8704, 2176),
    "projector.fc1.bias": (8704,),
    "projector.fc2.weight": (4096, 8704),
    "projector.fc3.weight": (4096, 4096),
    "language_model.model.embed_tokens.weight": (32064, 4096),
    "language_model.model.layers.0.self_attn.q_proj.weight": (4096, 4096),
    "language_model.model.layers.31.mlp.down_proj.weight": (4096, 11008),
    "language_model.model.norm.weight": (4096,),
    "language_model.lm_head.weight": (32064, 4096),
}


@pytest.fixture(scope="module")
def full_size_shapes() -> dict[str, tuple[int, ...]]:
    model = build_empty_model(OpenVLAConfig.from_dict(OFFICIAL_CONFIG))
    assert all(p.device.type == "meta" for p in model.parameters())
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def test_full_size_model_has_openvla_7b_parameter_count(full_size_shapes):
    total = 0
    for shape in full_size_shapes.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    assert total == OPENVLA_7B_PARAMETERS


def test_full_size_model_uses_official_parameter_names_and_shapes(full_size_shapes):
    for name, shape in KNOWN_SHAPES.items():
        assert full_size_shapes.get(name) == shape, name
    assert not [n for n in full_size_shapes if n.endswith(".gamma")], (
        "LayerScale must be stored as scale_factor"
    )
    assert sum(n.startswith("vision_backbone.featurizer.blocks.") for n in full_size_shapes) == 24 * 14
    assert sum(n.startswith("language_model.model.layers.") for n in full_size_shapes) == 32 * 9
    prefixes = {n.split(".")[0] for n in full_size_shapes}
    assert prefixes == {"vision_backbone", "projector", "language_model"}


def test_official_minimal_text_config_means_llama_2_7b_sizes():
    llama = OpenVLAConfig.from_dict(OFFICIAL_CONFIG).llama_config()
    assert (llama.hidden_size, llama.num_hidden_layers, llama.intermediate_size) == (4096, 32, 11008)
    assert llama.vocab_size == 32064


def test_config_round_trip_keeps_unknown_official_fields():
    config = OpenVLAConfig.from_dict(OFFICIAL_CONFIG)
    again = config.to_dict()
    for key, value in OFFICIAL_CONFIG.items():
        assert again[key] == value, key
    assert "timm_model_kwargs" not in again  # only small models write it


def test_config_refuses_a_model_that_emits_its_action_tokens_in_another_order():
    with pytest.raises(ConfigError, match="action_token_order"):
        OpenVLAConfig.from_dict({**OFFICIAL_CONFIG, "action_token_order": [2, 0, 1, 3, 4, 5, 6]})


def _write_sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """A valid bf16 safetensors file whose data section is a hole: headers only take disk space."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        f.truncate(8 + len(blob) + offset)


def _write_sparse_checkpoint(directory: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    names = sorted(shapes)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, start=1):
        fname = f"model-{i:05d}-of-00002.safetensors"
        _write_sparse_safetensors(directory / fname, {n: shapes[n] for n in part})
        weight_map.update(dict.fromkeys(part, fname))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_a_checkpoint_in_the_official_layout_passes_the_weight_check(tmp_path, full_size_shapes):
    _write_sparse_checkpoint(tmp_path, full_size_shapes)
    headers = read_weight_headers(tmp_path)
    assert len(headers) == len(full_size_shapes)
    check_weights(full_size_shapes, headers)


def test_weight_check_names_missing_unexpected_and_misshapen_weights(tmp_path, full_size_shapes):
    shapes = dict(full_size_shapes)
    del shapes["projector.fc3.bias"]
    shapes["projector.fc4.weight"] = (4, 4)
    shapes["language_model.model.norm.weight"] = (4095,)
    _write_sparse_checkpoint(tmp_path, shapes)
    with pytest.raises(WeightMismatchError) as err:
        check_weights(full_size_shapes, read_weight_headers(tmp_path))
    message = str(err.value)
    assert "projector.fc3.bias" in message
    assert "projector.fc4.weight" in message
    assert "language_model.model.norm.weight" in message
