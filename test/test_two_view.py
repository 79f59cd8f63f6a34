"""Two camera views per step (scene camera + wrist camera): record-demos writes the wrist frames, the
dataset pairs them with the scene frames by stamp, training makes a model whose config says it looks at
both, and the policy and the workcell rollout feed it both."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_ros.cli.eval import register as register_eval
from vla_ros.data.bag import BagReader, BagWriter, MissingTopicsError
from vla_ros.data.dataset import (
    DEFAULT_TARGET_MASK_TOPIC,
    CleaningConfig,
    SyncConfig,
    TopicConfig,
    compute_dataset_statistics,
    load_episodes,
    read_bag_episodes,
)
from vla_ros.image_codec import PackedImage
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.configuration_openvla import ConfigError, OpenVLAConfig
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import TinySpec, build_tiny_model, write_tokenizer
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy
from vla_ros.sim import Workcell, run_episode, workcell_config
from vla_ros.train.config import TrainingError
from vla_ros.train.data import ActionTokenDataset, mirror_episode
from vla_ros.train.loop import train
from vla_ros.train.record import WRIST_CAMERA_TOPIC, record_demonstrations

torch.set_num_threads(1)
KEEP_ALL = CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)
SYNC = SyncConfig(control_rate_hz=10.0)
WRIST = TopicConfig(extra_cameras=(WRIST_CAMERA_TOPIC,))
SIM_POLICY = Path(__file__).resolve().parents[1] / "models" / "sim_policy"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_view")
    record_demonstrations(
        out / "pp",
        tasks=["pick_place"],
        episodes=2,
        seed_start=0,
        image_size_px=56,
        progress=False,
        wrist_camera=True,
    )
    record_demonstrations(
        out / "plain", tasks=["move_to"], episodes=1, seed_start=0, image_size_px=56, progress=False
    )
    return out


def test_recorded_wrist_frames_go_with_the_scene_frame_of_each_step(recorded):
    bags = sorted((recorded / "pp").iterdir())
    episodes = load_episodes(bags, WRIST, SYNC, KEEP_ALL)[0]
    assert len(episodes) == 2
    for seed, episode in enumerate(episodes):
        assert episode.num_views == 2 and len(episode.step_data.get("extra_views")) == len(episode)
        with BagReader(episode.metadata["bag"]) as reader:
            stamps = [m.msg.header.stamp for m in reader.messages([WRIST_CAMERA_TOPIC])]
        assert len(stamps) == len(episode)
        # The first wrist frame is what the wrist camera sees at the reset, and not the scene view.
        with Workcell(workcell_config(56, wrist_camera=True)) as cell:
            cell.reset(seed, "pick_place")
            np.testing.assert_array_equal(episode.step_data.get("extra_views")[0][0], cell.render("wrist"))
        assert not np.array_equal(episode.step_data.get("extra_views")[0][0], episode.images[0])
        # The arm moves, so the wrist view changes along the episode.
        assert not np.array_equal(
            episode.step_data.get("extra_views")[0][0], episode.step_data.get("extra_views")[-1][0]
        )
    # Cleaning keeps each step's views together; mirroring flips them with the scene frame.
    episode = episodes[0]
    kept = episode.subset(np.arange(len(episode)) % 3 == 0)
    assert all(
        a[0] is b[0]
        for a, b in zip(
            kept.step_data.get("extra_views"), episode.step_data.get("extra_views")[::3], strict=True
        )
    )
    mirrored = mirror_episode(episode)
    np.testing.assert_array_equal(
        mirrored.step_data.get("extra_views")[5][0], episode.step_data.get("extra_views")[5][0][:, ::-1]
    )
    # Read with one camera, an episode has no extra views at all.
    plain = load_episodes(bags[:1], TopicConfig(), SYNC, KEEP_ALL)[0][0]
    assert plain.step_data.get("extra_views") is None and plain.num_views == 1


def test_packed_frames_train_on_exactly_the_recorded_pixels(recorded, tmp_path):
    """Training reads bags with pack_images: its steps must see the same pixels, both views."""
    bags = sorted((recorded / "pp").iterdir())
    # With the target masks too: each mask is checked against its frame's size, packed or not.
    topics = TopicConfig(extra_cameras=(WRIST_CAMERA_TOPIC,), target_mask=DEFAULT_TARGET_MASK_TOPIC)
    plain = load_episodes(bags, topics, SYNC, KEEP_ALL)[0]
    packed = load_episodes(bags, topics, SYNC, KEEP_ALL, pack_images=True)[0]
    assert [len(e) for e in packed] == [len(e) for e in plain]
    for a, b in zip(plain, packed, strict=True):
        assert any(m is not None for m in a.step_data.get("target_mask"))
        for m, n in zip(a.step_data.get("target_mask"), b.step_data.get("target_mask"), strict=True):
            assert (m is None and n is None) or np.array_equal(m, n)
        assert all(isinstance(im, PackedImage) for im in b.images)
        assert all(isinstance(v, PackedImage) for views in b.step_data.get("extra_views") for v in views)
        for t in range(len(a)):
            np.testing.assert_array_equal(np.asarray(b.images[t]), a.images[t])
            np.testing.assert_array_equal(
                np.asarray(b.step_data.get("extra_views")[t][0]), a.step_data.get("extra_views")[t][0]
            )
        held = sum(im.nbytes for im in b.images) + sum(
            v.nbytes for views in b.step_data.get("extra_views") for v in views
        )
        assert held < sum(im.nbytes for im in a.images) * 2 / 4
    # The training set's inputs (mirroring and random crops included) are the same tensors.
    directory = tmp_path / "tok"
    write_tokenizer(directory)
    prompt_tokenizer = PromptTokenizer.from_dir(directory)
    make = dict(
        image_processor=ImageProcessor(image_size_px=28),
        prompt_tokenizer=prompt_tokenizer,
        action_tokenizer=ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size),
        statistics=ActionStatistics.from_norm_stats(compute_dataset_statistics(plain)),
        train=True,
        mirror=True,
    )
    a, b = ActionTokenDataset(plain, **make), ActionTokenDataset(packed, **make)
    assert any(a.is_mirrored(i) for i in range(len(a))) and not all(a.is_mirrored(i) for i in range(len(a)))
    for i in range(len(a)):
        assert torch.equal(a.pixel_values(i), b.pixel_values(i))


def test_a_bag_without_the_wrist_camera_fails_naming_the_option(recorded):
    with pytest.raises(MissingTopicsError, match="--wrist-camera-topic"):
        load_episodes(sorted((recorded / "plain").iterdir()), WRIST, SYNC, KEEP_ALL)
    with pytest.raises(ValueError, match="read once"):
        TopicConfig(extra_cameras=("/camera/image_raw",))


def test_wrist_frames_pair_by_stamp_and_a_step_without_one_is_skipped(tmp_path):
    """Step k's scene frame is stamped k * 100 ms. Wrist frames (header stamp, logged at): with step 0's
    stamp; 30 ms before step 1's; none for step 2 (the newest is 130 ms older); for step 3 one 10 ms
    before and one 10 ms after it (logged before the step: a camera whose clock runs ahead); step 4
    then takes that later one, 90 ms older than its own frame."""
    path = tmp_path / "bag"

    def rgb(value: int) -> np.ndarray:
        return np.full((8, 8, 3), value, dtype=np.uint8)

    ms = 1_000_000
    t0 = 1_000 * ms
    # step -> [(header offset ms, log offset ms, pixel value)]
    wrist = {0: [(0, 0, 10)], 1: [(-30, -30, 11)], 3: [(-10, -10, 13), (10, -1, 14)]}
    with BagWriter(path) as bag:
        bag.write_instruction("/vla/instruction", t0 - ms, "move to the tray")
        for k in range(5):
            stamp = t0 + k * 100 * ms
            for header, logged, value in wrist.get(k, []):
                bag.write_image(
                    WRIST_CAMERA_TOPIC, stamp + logged * ms, rgb(value), "wrist", stamp + header * ms
                )
            bag.write_image("/camera/image_raw", stamp, rgb(k))
            bag.write_action_step(
                "/vla/action_step", stamp + ms, [0.01, 0, 0, 0, 0, 0, 1], image_stamp_ns=stamp
            )
    skipped = Counter()
    (episode,) = read_bag_episodes(path, WRIST, SYNC, skipped)
    assert [int(im[0, 0, 0]) for im in episode.images] == [0, 1, 3, 4]
    assert [int(v[0][0, 0, 0]) for v in episode.step_data.get("extra_views")] == [10, 11, 13, 14]
    reason = f"no {WRIST_CAMERA_TOPIC} frame within one control period of the camera frame"
    assert skipped == Counter({reason: 1})


def test_a_two_view_model_uses_its_second_view_and_says_so_in_its_config():
    spec = TinySpec(image_size_px=28, vit_depth=1, llm_num_layers=1)
    model = build_tiny_model(spec, seed=0)
    model.config = model.config.replace(num_images=2)
    assert model.num_patches == 2 * model.patches_per_image
    scene, wrist = torch.randn(1, 6, 28, 28), torch.randn(1, 6, 28, 28)
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        logits = model(torch.cat([scene, wrist], dim=1), ids).logits
        other = model(torch.cat([scene, torch.randn(1, 6, 28, 28)], dim=1), ids).logits
    assert logits.shape[1] == 1 + model.num_patches + 3
    assert not torch.allclose(logits[:, -1], other[:, -1])  # the wrist view reaches the LM
    with pytest.raises(ValueError, match="2 camera view"):
        model(scene, ids)
    # config.json: written only for a multi-view model (an official file stays as it was), and checked.
    assert model.config.to_dict()["num_images"] == 2
    assert "num_images" not in model.config.replace(num_images=1).to_dict()
    assert OpenVLAConfig.from_dict(model.config.to_dict()).num_images == 2
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="num_images"):
            model.config.replace(num_images=bad)


def test_training_on_two_views_gives_a_policy_that_looks_through_the_wrist(
    recorded, tmp_path, train_config, capsys
):
    bags = sorted((recorded / "pp").iterdir())
    result = train(
        train_config(
            bags,
            tmp_path / "run",
            topics=WRIST,
            max_steps=20,
            mirror_augment=True,
            target_attention_weight=1.0,
            patch_position_weight=1.0,
        )
    )
    losses = [m["train_loss"] for m in result.metrics]
    assert losses[-1] < losses[0]
    checkpoint = tmp_path / "run" / "checkpoint"
    assert json.loads((checkpoint / "config.json").read_text())["num_images"] == 2
    policy = VLAPolicy(PolicyConfig(checkpoint, center_crop=True, constrain_to_action_tokens=True))
    assert policy.num_images == 2
    with Workcell(workcell_config(56, wrist_camera=True)) as cell:
        instruction = cell.reset(0, "pick_place")
        scene, wrist = cell.render(), cell.render("wrist")
        action = policy.predict_action(scene, instruction, extra_images=(wrist,))
        assert action.is_finite()
        with pytest.raises(ValueError, match="wrist camera"):
            policy.predict_action(scene, instruction)
        assert run_episode(cell, policy, seed=1, task="pick_place", max_steps=3).steps == 3
    with Workcell(workcell_config(56)) as cell, pytest.raises(ValueError, match="wrist_camera=True"):
        run_episode(cell, policy, seed=1, task="pick_place", max_steps=3)
    # Offline evaluation on the bags feeds each step's wrist frame too; without it, it says what is missing.
    argv = ["eval-bag", str(bags[0]), "--model", str(checkpoint), "--precision", "fp32", "--device", "cpu"]
    argv += ["--control-rate-hz", "10", "--no-progress", "--out"]
    parser = argparse.ArgumentParser(prog="vla-ros")
    register_eval(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([*argv, str(tmp_path / "eval"), "--wrist-camera-topic", WRIST_CAMERA_TOPIC])
    assert args.func(args) == 0
    (row,) = json.loads((tmp_path / "eval" / "summary.json").read_text())["comparison"]
    assert row["steps"] == len(load_episodes(bags[:1], WRIST, SYNC, KEEP_ALL)[0][0])
    args = parser.parse_args([*argv, str(tmp_path / "eval1")])
    assert args.func(args) == 2
    assert "wrist camera" in capsys.readouterr().err
    # A one-view base gains the view only in full training: an adapter cannot carry the config change.
    with pytest.raises(TrainingError, match="--mode full"):
        train(
            train_config(
                bags,
                tmp_path / "lora",
                topics=WRIST,
                base=str(SIM_POLICY),
                init=None,
                image_size_px=None,
                mode="lora",
                max_steps=1,
            )
        )
    # A two-view base read with one camera is refused, not fed one view.
    with pytest.raises(TrainingError, match="2 camera views"):
        train(
            train_config(
                bags,
                tmp_path / "one",
                base=str(checkpoint),
                init=None,
                image_size_px=None,
                mode="full",
                max_steps=1,
            )
        )
