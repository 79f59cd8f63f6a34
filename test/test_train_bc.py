"""Behaviour cloning runs: it learns, it resumes where it stopped, LoRA adapters load in the policy."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_ros.data.dataset import CleaningConfig, SyncConfig
from vla_ros.data.synthetic import step_image, write_demo_bag
from vla_ros.model.loading import load_checkpoint
from vla_ros.model.processing import ImageProcessor
from vla_ros.model.tiny import PRESETS, make_tiny_checkpoint, sincos_position_embedding
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy
from vla_ros.train.checkpoints import STATE_DIR, export_resume_point
from vla_ros.train.config import TrainConfig, TrainingError
from vla_ros.train.loop import learning_rate_at, train

torch.set_num_threads(1)
IMAGE_PX = 28


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """Two short demonstrations, each repeating its own action: what to do follows from the instruction."""
    tmp = tmp_path_factory.mktemp("bags")
    rng = np.random.default_rng(0)
    paths = []
    for i, instruction in enumerate(("put the red gear in the bin", "move to the parts tray")):
        action = np.append(rng.uniform(-0.03, 0.03, 6), i % 2)
        actions = np.tile(action, (8, 1))
        paths.append(
            write_demo_bag(tmp / f"demo{i}", actions, image_size=(32, 32), seed=i, instruction=instruction)
        )
    return [str(p) for p in paths]


def _config(bags, out, **overrides) -> TrainConfig:
    base = dict(
        bags=bags,
        out_dir=str(out),
        init="tiny",
        image_size_px=IMAGE_PX,
        batch_size=8,
        learning_rate=2e-3,
        warmup_steps=2,
        heldout_episodes=0,
        seed=0,
        progress=False,
        sync=SyncConfig(control_rate_hz=5.0),
        cleaning=CleaningConfig(outlier_iqr_k=None),
    )
    base.update(overrides)
    return TrainConfig(**base)


def test_a_short_run_drives_the_loss_down_and_token_accuracy_up(bags, tmp_path):
    result = train(_config(bags, tmp_path / "run", max_steps=30, learning_rate=5e-3))
    assert result.step == 30 and not result.interrupted
    first, last = result.metrics[0], result.metrics[-1]
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert last["train_action_token_accuracy"] > first["train_action_token_accuracy"] + 0.4
    # The output is a checkpoint the model core and the policy load as they are.
    checkpoint = tmp_path / "run" / "checkpoint"
    stats = json.loads((checkpoint / "dataset_statistics.json").read_text())
    assert list(stats) == ["sim_workcell"]
    policy = VLAPolicy(PolicyConfig(checkpoint, precision="fp32", center_crop=True))
    assert policy.unnorm_key == "sim_workcell"
    action = policy.predict_action(np.zeros((32, 32, 3), dtype=np.uint8), "move to the parts tray")
    assert action.vector.shape == (7,)
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == len(result.metrics)


def test_resume_continues_at_the_saved_step_and_matches_an_uninterrupted_run(bags, tmp_path):
    straight = train(_config(bags, tmp_path / "straight", max_steps=4, epochs=1))
    assert straight.step == 4
    stopped = train(_config(bags, tmp_path / "resumed", max_steps=4), stop_after_steps=2)
    assert stopped.step == 2 and stopped.interrupted is False
    state = json.loads((tmp_path / "resumed" / STATE_DIR / "state.json").read_text())
    assert state["step"] == 2
    resumed = train(_config(bags, tmp_path / "resumed", max_steps=4), resume=True)
    assert resumed.step == 4
    a = load_file(str(tmp_path / "straight" / STATE_DIR / "trainable.safetensors"))
    b = load_file(str(tmp_path / "resumed" / STATE_DIR / "trainable.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_export_run_writes_the_resume_points_weights_as_the_run_itself_does(bags, tmp_path):
    # A run stopped at step 2 of 4 exports its checkpoint; the resume point exported on its own must
    # give the same weights, and load as a policy.
    run = tmp_path / "run"
    train(_config(bags, run, max_steps=4, mirror_augment=True), stop_after_steps=2)
    step, written = export_resume_point(run, tmp_path / "exported")
    assert step == 2 and written == [tmp_path / "exported"]
    a = load_file(str(run / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "exported" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert (tmp_path / "exported" / "dataset_statistics.json").read_text() == (
        run / "checkpoint" / "dataset_statistics.json"
    ).read_text()
    policy = VLAPolicy(PolicyConfig(tmp_path / "exported", precision="fp32", center_crop=True))
    assert policy.predict_action(np.zeros((32, 32, 3), dtype=np.uint8), "move to the parts tray").is_finite()
    # The default destination names the step; a later resume point is a later step.
    train(_config(bags, run, max_steps=4, mirror_augment=True), resume=True)
    step, written = export_resume_point(run)
    assert step == 4 and written == [run / "step4"]
    assert not torch.equal(
        load_file(str(run / "step4" / "model.safetensors"))["projector.fc1.weight"], b["projector.fc1.weight"]
    )


def test_export_run_of_a_lora_run_writes_its_adapter(bags, tmp_path):
    spec = replace(PRESETS["tiny"], image_size_px=IMAGE_PX)
    base = make_tiny_checkpoint(tmp_path / "base", spec=spec, seed=1)
    run = tmp_path / "lora"
    train(_config(bags, run, init=None, base=str(base), mode="lora", max_steps=2))
    step, written = export_resume_point(run, tmp_path / "exported")
    assert step == 2 and written == [tmp_path / "exported" / "adapter"]
    a = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "exported" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_export_run_without_a_run_or_a_resume_point_says_which(bags, tmp_path):
    with pytest.raises(TrainingError, match=r"no train_config\.json"):
        export_resume_point(tmp_path)
    run = tmp_path / "run"
    train(_config(bags, run, max_steps=1))
    for name in ("state.json", "trainable.safetensors"):
        (run / STATE_DIR / name).rename(run / STATE_DIR / f"{name}.away")
        with pytest.raises(TrainingError, match="no complete resume point"):
            export_resume_point(run)
        (run / STATE_DIR / f"{name}.away").rename(run / STATE_DIR / name)
    assert export_resume_point(run)[0] == 1


def test_resume_without_a_saved_state_says_so(bags, tmp_path):
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(_config(bags, tmp_path / "fresh", max_steps=1), resume=True)


def test_lora_run_saves_an_adapter_the_policy_loads_with_its_statistics(bags, tmp_path):
    spec = replace(PRESETS["tiny"], image_size_px=IMAGE_PX)
    base = make_tiny_checkpoint(tmp_path / "base", spec=spec, seed=1)
    config = _config(
        bags, tmp_path / "lora", init=None, base=str(base), mode="lora", max_steps=2, export_merged=True
    )
    result = train(config)
    adapter = tmp_path / "lora" / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "dataset_statistics.json"} <= {
        p.name for p in adapter.iterdir()
    }
    lora_b = [t for n, t in load_file(str(adapter / "adapter_model.safetensors")).items() if "lora_B" in n]
    assert lora_b and any(float(t.abs().max()) > 0 for t in lora_b)  # trained: B left zero init
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 32
    policy = VLAPolicy(PolicyConfig(base, precision="fp32", adapter_dir=adapter))
    # The base's own statistics stay available, the adapter's dataset is the default.
    assert policy.unnorm_key == "sim_workcell"
    assert np.allclose(
        policy.action_statistics.q99,
        json.loads((adapter / "dataset_statistics.json").read_text())["sim_workcell"]["action"]["q99"],
    )
    image = np.full((32, 32, 3), 90, dtype=np.uint8)
    with_adapter = policy.predict_action(image, "move to the parts tray")
    merged = load_checkpoint(result.outputs[1], precision="fp32")
    merged_policy = VLAPolicy(PolicyConfig(result.outputs[1], precision="fp32"), loaded=merged)
    assert merged_policy.predict_action(image, "move to the parts tray").token_ids == with_adapter.token_ids


def test_qlora_trains_an_adapter_on_a_4bit_base(bags, tmp_path):
    spec = replace(PRESETS["tiny"], image_size_px=IMAGE_PX)
    base = make_tiny_checkpoint(tmp_path / "base", spec=spec, seed=1)
    result = train(_config(bags, tmp_path / "qlora", init=None, base=str(base), mode="qlora", max_steps=2))
    assert result.step == 2
    assert (tmp_path / "qlora" / "adapter" / "adapter_model.safetensors").is_file()
    policy = VLAPolicy(PolicyConfig(base, precision="fp32", adapter_dir=tmp_path / "qlora" / "adapter"))
    assert policy.predict_action(np.zeros((32, 32, 3), dtype=np.uint8), "move to the parts tray").is_finite()


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    config = TrainConfig(
        bags=[], out_dir="x", init="tiny", learning_rate=1.0, warmup_steps=4, min_lr_ratio=0.1
    )
    lrs = [learning_rate_at(s, config, total_steps=14) for s in range(15)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert lrs[14] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(0.55)


def test_configuration_errors_name_the_fix():
    with pytest.raises(TrainingError, match="exactly one of --base"):
        TrainConfig(bags=[], out_dir="x")
    with pytest.raises(TrainingError, match="qlora quantizes a pretrained base"):
        TrainConfig(bags=[], out_dir="x", init="tiny", mode="qlora")
    with pytest.raises(TrainingError, match="patch_position_weight must be >= 0"):
        TrainConfig(bags=[], out_dir="x", init="tiny", patch_position_weight=float("nan"))


def _untrained_fine_tune(bags, tmp_path, **overrides):
    """One step at learning rate 0 from a tiny base: what the run changes is what the options did."""
    spec = replace(PRESETS["tiny"], image_size_px=IMAGE_PX)
    base = make_tiny_checkpoint(tmp_path / "base", spec=spec, seed=1)
    config = _config(
        bags,
        tmp_path / "run",
        init=None,
        base=str(base),
        max_steps=1,
        learning_rate=0.0,
        warmup_steps=0,
        min_lr_ratio=0.0,
        save_dtype="fp32",
        **overrides,
    )
    return base, config, train(config)


def test_a_base_fine_tuned_at_a_new_image_size_keeps_its_weights_and_loads_at_that_size(bags, tmp_path):
    base, _, result = _untrained_fine_tune(bags, tmp_path, image_size_px=2 * IMAGE_PX)
    resized = load_checkpoint(result.outputs[0], precision="fp32")
    assert resized.model.config.image_size_px == resized.image_processor.image_size_px == 2 * IMAGE_PX
    assert resized.model.num_patches == 4 * load_checkpoint(base, precision="fp32").model.num_patches
    # Nothing trained (lr 0): every weight but the position embeddings is the base's, bit for bit.
    before = load_checkpoint(base, precision="fp32").model.state_dict()
    after = resized.model.state_dict()
    changed = {
        name
        for name in before
        if before[name].shape != after[name].shape or not torch.equal(before[name], after[name])
    }
    assert changed == {
        "vision_backbone.featurizer.pos_embed",
        "vision_backbone.fused_featurizer.pos_embed",
    }
    policy = VLAPolicy(PolicyConfig(result.outputs[0], precision="fp32"), loaded=resized)
    assert policy.predict_action(np.zeros((40, 40, 3), dtype=np.uint8), "move to the parts tray").is_finite()


def test_add_sincos_position_adds_the_patterns_to_a_bases_embeddings_and_changes_nothing_else(bags, tmp_path):
    base, config, result = _untrained_fine_tune(bags, tmp_path, add_sincos_position=True)
    before = load_checkpoint(base, precision="fp32").model.state_dict()
    after = load_checkpoint(result.outputs[0], precision="fp32").model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"vision_backbone.featurizer.pos_embed", "vision_backbone.fused_featurizer.pos_embed"}
    grid = IMAGE_PX // 14
    for name in changed:
        # What was learnt is kept: the embeddings are the base's plus the fixed pattern.
        pattern = sincos_position_embedding(grid, grid, before[name].shape[-1])[None]
        torch.testing.assert_close(after[name], before[name] + pattern, rtol=0, atol=1e-6)
    # An adapter cannot carry changed base weights; a fresh model takes the init override instead.
    with pytest.raises(TrainingError, match="use --mode full"):
        train(replace(config, out_dir=str(tmp_path / "lora"), mode="lora"))


def test_an_adapter_cannot_change_the_base_image_size(bags, tmp_path):
    spec = replace(PRESETS["tiny"], image_size_px=IMAGE_PX)
    base = make_tiny_checkpoint(tmp_path / "base", spec=spec, seed=1)
    config = _config(
        bags, tmp_path / "lora", init=None, base=str(base), image_size_px=2 * IMAGE_PX, mode="lora"
    )
    with pytest.raises(TrainingError, match="use --mode full"):
        train(config)


def test_patch_position_loss_makes_the_exported_tokens_tell_where_they_are(bags, tmp_path):
    """--patch-position-weight: every projector token learns its row and column; the head is not exported."""
    size = 56  # a 4 x 4 patch grid
    config = _config(
        bags,
        tmp_path / "run",
        image_size_px=size,
        max_steps=100,
        learning_rate=5e-3,
        patch_position_weight=1.0,
    )
    result = train(config, stop_after_steps=50)
    resumed = train(config, resume=True)  # the head's weights and optimiser state resume too
    assert result.step == 50 and resumed.step == 100
    losses = [m["train_patch_position_loss"] for m in result.metrics + resumed.metrics]
    assert losses[0] > 2.0  # chance: 2 ln 4 = 2.77
    assert losses[-1] < 0.25 * losses[0]

    state = load_file(str(tmp_path / "run" / STATE_DIR / "trainable.safetensors"))
    head = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("patch_position_head.")}
    assert set(head) == {"linear.weight", "linear.bias"}
    checkpoint = tmp_path / "run" / "checkpoint"
    exported = load_file(str(checkpoint / "model.safetensors"))
    assert not any("patch_position" in name for name in exported)

    # The bags' own frames: 16 images are few enough to memorize, so this checks that the export keeps
    # what the head was trained on, not that it generalizes (probe_patch_positions.py measures that).
    processor = ImageProcessor(image_size_px=size)
    pixels = processor.batch([step_image(k, 32, 32, seed=i) for i in (0, 1) for k in range(8)])

    def position_accuracy(model) -> float:
        with torch.no_grad():
            logits = model.embed_image(pixels).float() @ head["linear.weight"].float().T + head["linear.bias"]
        row, col = torch.arange(16) // 4, torch.arange(16) % 4  # of each image's 16 tokens
        hits = (logits[..., :4].argmax(-1) == row) & (logits[..., 4:].argmax(-1) == col)
        return hits.float().mean().item()

    trained = load_checkpoint(checkpoint, precision="fp32").model.eval()
    fresh = load_checkpoint(
        make_tiny_checkpoint(tmp_path / "fresh", spec=replace(PRESETS["tiny"], image_size_px=size), seed=0),
        precision="fp32",
    ).model.eval()
    assert position_accuracy(trained) > 0.9
    assert position_accuracy(fresh) < 0.5
