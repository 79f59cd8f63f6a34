"""Tiny models of the OpenVLA architecture: written in the official layout, loaded back unchanged."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_ros.model.loading import (
    MissingCheckpointFileError,
    WeightDtypeError,
    WeightMismatchError,
    load_checkpoint,
    save_checkpoint,
)
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import PRESETS, build_tiny_model, make_tiny_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", seed=3)


@pytest.fixture
def broken_dir(tiny_dir, tmp_path):
    """A private copy to damage."""
    return shutil.copytree(tiny_dir, tmp_path / "copy")


def _inputs(checkpoint, seed: int = 0):
    image = np.random.default_rng(seed).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    pixel_values = checkpoint.image_processor(image)[None]
    input_ids = torch.tensor([checkpoint.prompt_tokenizer.encode_prompt("Put the red cube in the tray")])
    return pixel_values, input_ids


def test_tiny_checkpoint_has_the_official_layout(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    for required in (
        "config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "preprocessor_config.json",
        "dataset_statistics.json",
    ):
        assert required in names
    shards = sorted(n for n in names if n.endswith(".safetensors"))
    assert len(shards) >= 2 and shards[0].startswith("model-00001-of-")
    index = json.loads((tiny_dir / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["vision_backbone.featurizer.blocks.0.ls1.scale_factor"] in shards
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == 32064
    assert config["timm_model_ids"] == [
        "vit_large_patch14_reg4_dinov2.lvd142m",
        "vit_so400m_patch14_siglip_224",
    ]


def test_tiny_tokenizer_is_laid_out_like_llama_2(tiny_dir):
    tok = PromptTokenizer.from_dir(tiny_dir)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 32000)
    assert tok.base_vocab_size == 32000
    assert tok.tokenizer.token_to_id("▁") == 29871
    ids = tok.encode_prompt("Pick Up the Bolt")
    assert ids[0] == 1 and ids[-1] == 29871
    assert tok.decode(ids[1:-1]) == "In: What action should the robot take to pick up the bolt?\nOut:"


def test_tiny_tokenizer_keeps_the_workcells_words_whole(tiny_dir):
    # A part's or place's name split into letters is one more thing a two-layer policy must assemble.
    from vla_ros.sim.layout import LOCATION_CATALOGUE, PART_CATALOGUE, PART_COLORS_RGBA

    tok = PromptTokenizer.from_dir(tiny_dir)
    names = [*PART_COLORS_RGBA, *PART_CATALOGUE, *(location["name"] for location in LOCATION_CATALOGUE)]
    for name in names:
        pieces = tok.tokenizer.encode(name).tokens
        assert pieces == [f"▁{word}" for word in name.split()], (name, pieces)


def test_build_save_load_gives_the_same_outputs(tiny_dir):
    original = build_tiny_model("tiny", seed=3)
    loaded = load_checkpoint(tiny_dir, precision="fp32")
    pixel_values, input_ids = _inputs(loaded)
    expected = original.first_step_logits(pixel_values, input_ids)
    assert torch.equal(loaded.model.first_step_logits(pixel_values, input_ids), expected)
    assert torch.equal(
        loaded.model.generate_action_tokens(pixel_values, input_ids, 7),
        original.generate_action_tokens(pixel_values, input_ids, 7),
    )


def test_different_seeds_give_different_models(tiny_dir):
    loaded = load_checkpoint(tiny_dir, precision="fp32")
    pixel_values, input_ids = _inputs(loaded)
    other = build_tiny_model("tiny", seed=4)
    assert not torch.allclose(
        loaded.model.first_step_logits(pixel_values, input_ids),
        other.first_step_logits(pixel_values, input_ids),
    )


def test_bf16_load_stays_close_to_fp32(tiny_dir):
    fp32 = load_checkpoint(tiny_dir, precision="fp32")
    bf16 = load_checkpoint(tiny_dir, precision="bf16")
    assert bf16.model.language_model.lm_head.weight.dtype == torch.bfloat16
    pixel_values, input_ids = _inputs(fp32)
    a = fp32.model.first_step_logits(pixel_values, input_ids)
    b = bf16.model.first_step_logits(pixel_values, input_ids)
    assert torch.nn.functional.cosine_similarity(a, b).item() > 0.99


def test_save_in_bf16_writes_bf16_tensors_and_config(tiny_dir, tmp_path):
    loaded = load_checkpoint(tiny_dir, precision="fp32")
    out = save_checkpoint(
        loaded.model,
        tmp_path / "bf16",
        image_processor=loaded.image_processor,
        tokenizer_dir=tiny_dir,
        dtype=torch.bfloat16,
    )
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert load_file(str(out / "model.safetensors"))["projector.fc1.weight"].dtype == torch.bfloat16
    assert load_checkpoint(out, precision="bf16").norm_stats == {}  # no statistics were given


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "preprocessor_config.json"])
def test_missing_file_is_named(broken_dir, name):
    (broken_dir / name).unlink()
    with pytest.raises(MissingCheckpointFileError, match=name):
        load_checkpoint(broken_dir, precision="fp32")


def test_missing_shard_is_named(broken_dir):
    (broken_dir / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(MissingCheckpointFileError, match=re.escape("model-00002-of-00004.safetensors")):
        load_checkpoint(broken_dir, precision="fp32")


def test_pickle_weights_are_refused_with_a_hint(broken_dir):
    for path in broken_dir.glob("model*"):
        path.unlink()
    torch.save({"x": torch.zeros(1)}, broken_dir / "pytorch_model.bin")
    with pytest.raises(MissingCheckpointFileError, match="pickle"):
        load_checkpoint(broken_dir, precision="fp32")


def _rewrite_shard(directory, change):
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    shard = index["weight_map"]["projector.fc1.weight"]
    tensors = load_file(str(directory / shard))
    change(tensors)
    save_file(tensors, str(directory / shard))
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shard}
    index["weight_map"].update(dict.fromkeys(tensors, shard))
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))


def test_missing_and_unexpected_weights_are_named(broken_dir):
    def change(tensors):
        del tensors["projector.fc1.weight"]
        tensors["projector.fc9.weight"] = torch.zeros(2, 2)

    _rewrite_shard(broken_dir, change)
    with pytest.raises(
        WeightMismatchError, match=r"missing weights \(1\): projector.fc1.weight.*projector.fc9"
    ):
        load_checkpoint(broken_dir, precision="fp32")


def test_integer_weights_are_refused(broken_dir):
    def change(tensors):
        tensors["projector.fc1.weight"] = tensors["projector.fc1.weight"].to(torch.int8)

    _rewrite_shard(broken_dir, change)
    with pytest.raises(WeightDtypeError, match=re.escape("projector.fc1.weight")):
        load_checkpoint(broken_dir, precision="fp32")


def test_config_that_does_not_match_the_weights_is_reported(broken_dir):
    config = json.loads((broken_dir / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3
    (broken_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightMismatchError, match=re.escape("language_model.model.layers.2")):
        load_checkpoint(broken_dir, precision="fp32")


def test_dataset_statistics_file_extends_config_norm_stats(broken_dir):
    config = json.loads((broken_dir / "config.json").read_text())
    config["norm_stats"] = {"bridge_orig": {"action": {"q01": [0] * 7, "q99": [1] * 7}}}
    (broken_dir / "config.json").write_text(json.dumps(config))
    assert sorted(load_checkpoint(broken_dir, precision="fp32").norm_stats) == ["bridge_orig", "sim_workcell"]


def test_image_processor_round_trips_through_preprocessor_config():
    processor = ImageProcessor()
    assert ImageProcessor.from_preprocessor_config(processor.to_preprocessor_config()) == processor


def test_saving_over_an_existing_checkpoint_replaces_it_whole(tiny_dir, tmp_path):
    first = build_tiny_model("tiny", seed=10)
    second = build_tiny_model("tiny", seed=11)
    processor = ImageProcessor()
    for model in (first, second, second):
        out = save_checkpoint(model, tmp_path / "ckpt", image_processor=processor, tokenizer_dir=tiny_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    loaded = load_checkpoint(out, precision="fp32")
    assert torch.equal(loaded.model.projector.fc1.weight, second.projector.fc1.weight)


def test_set_image_size_resamples_the_position_embeddings_and_saves_at_the_new_size(tiny_dir, tmp_path):
    spec = replace(PRESETS["tiny"], image_size_px=56)
    model = build_tiny_model(spec, seed=0)
    vits = (model.vision_backbone.featurizer, model.vision_backbone.fused_featurizer)
    grids = [vit.pos_embed.detach().reshape(1, 4, 4, -1).permute(0, 3, 1, 2) for vit in vits]
    model.set_image_size(112)
    assert model.num_patches == 64 and model.config.image_sizes == [112, 112]
    for vit, grid in zip(vits, grids, strict=True):
        # A smooth upsampling of the learned grid, not a fresh initialisation.
        expected = torch.nn.functional.interpolate(grid, size=(8, 8), mode="bicubic", antialias=True)
        assert torch.allclose(
            vit.pos_embed.detach(), expected.permute(0, 2, 3, 1).reshape(1, 64, -1), atol=1e-5
        )
    with pytest.raises(ValueError, match="multiple of the 14 px patch"):
        model.set_image_size(100)

    saved = save_checkpoint(
        model, tmp_path / "resized", image_processor=ImageProcessor(image_size_px=112), tokenizer_dir=tiny_dir
    )
    loaded = load_checkpoint(saved, precision="fp32")
    assert loaded.model.config.image_size_px == 112
    assert torch.equal(
        loaded.model.vision_backbone.featurizer.pos_embed, model.vision_backbone.featurizer.pos_embed
    )


def _position_readout_accuracy(model: torch.nn.Module, size: int) -> float:
    """Fit a least-squares readout of each projector token's patch row and column on 12 random smooth
    images (a 4 x 4 grid of random colours, bilinearly upsampled: scene-like, unlike per-pixel noise);
    the fraction of tokens of 4 other images whose row and column it gets right."""
    grid = size // 14
    colours = torch.rand(16, 6, 4, 4, generator=torch.Generator().manual_seed(0)) * 4 - 2
    images = torch.nn.functional.interpolate(colours, size=(size, size), mode="bilinear")
    with torch.no_grad():
        tokens = model.embed_image(images).double()  # [16, grid * grid, D]
    index = torch.arange(grid * grid)
    target = torch.cat([torch.eye(grid)[index // grid], torch.eye(grid)[index % grid]], 1).double()
    x = torch.cat([tokens, torch.ones(*tokens.shape[:2], 1, dtype=torch.float64)], 2)
    fit = torch.linalg.lstsq(x[:12].reshape(-1, x.shape[-1]), target.repeat(12, 1)).solution
    guess = x[12:] @ fit
    hits = (guess[..., :grid].argmax(-1) == index // grid) & (guess[..., grid:].argmax(-1) == index % grid)
    return hits.double().mean().item()


def test_sincos_position_init_makes_a_fresh_models_tokens_say_where_they_are():
    size = 112  # an 8 x 8 patch grid
    spec = replace(PRESETS["tiny"], image_size_px=size)
    sincos = build_tiny_model(replace(spec, sincos_position_init=1), seed=0)
    default = build_tiny_model(spec, seed=0)
    assert not torch.equal(
        sincos.vision_backbone.featurizer.pos_embed, default.vision_backbone.featurizer.pos_embed
    )
    a, b = _position_readout_accuracy(sincos, size), _position_readout_accuracy(default, size)
    print(f"held-out row+column accuracy: sin-cos {a:.2f}, timm init {b:.2f} (chance 1/64)")
    assert a > 0.6 and a > b + 0.3
    # Everything else is the same model: the same seed draws the same weights.
    for (name, p), q in zip(sincos.named_parameters(), default.parameters(), strict=True):
        if not name.endswith("pos_embed"):
            assert torch.equal(p, q), name
