"""Target offsets: the dataset turns a recorded scene and end-effector poses into each step's offset to
what it heads for, carries it through cleaning and mirroring, and --target-offset-weight trains a
training-only head to read it from the language model's last hidden states."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_ros.data.bag import BagReader, MissingTopicsError
from vla_ros.data.cli import add_topic_arguments, topics_from_args
from vla_ros.data.dataset import (
    DEFAULT_SCENE_TOPIC,
    CleaningConfig,
    Episode,
    Goal,
    SyncConfig,
    TopicConfig,
    load_episodes,
    target_offsets,
)
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.loading import load_checkpoint
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import write_tokenizer
from vla_ros.sim import Workcell
from vla_ros.train.bc import (
    ActionTokenDataset,
    TargetOffsetHead,
    TrainingError,
    config_from_args,
    mirror_episode,
    train,
)
from vla_ros.train.cli import add_train_arguments
from vla_ros.train.record import record_demonstrations, workcell_config

torch.set_num_threads(1)
KEEP_ALL = CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)
SCENE = TopicConfig(scene=DEFAULT_SCENE_TOPIC)
SYNC = SyncConfig(control_rate_hz=10.0)


def _goal(object_id: str = "p1", target_id: str = "bin", direction: str = "") -> Goal:
    positions = {"p1": np.array([0.5, 0.1, 0.02]), "bin": np.array([0.6, -0.2, 0.0])}
    return Goal(object_id, target_id, direction, positions)


def test_a_step_heads_for_the_object_until_the_gripper_first_closes_then_for_the_location():
    ee = [np.array([0.45, 0.0, 0.3]), np.array([0.5, 0.1, 0.05]), np.array([0.5, 0.1, 0.04]), np.zeros(3)]
    gripper = np.array([1.0, 1.0, 0.0, 1.0])  # closes at step 2, opens again at step 3
    actions = np.zeros((4, 7))
    actions[:, 6] = gripper
    offsets = target_offsets(actions, ee, [_goal()] * 4)
    np.testing.assert_allclose(offsets[0], [0.05, 0.1, -0.28])
    np.testing.assert_allclose(offsets[1], [0.0, 0.0, -0.03])
    np.testing.assert_allclose(offsets[2], [0.0, 0.0, -0.02])  # the closing step still heads for the part
    np.testing.assert_allclose(offsets[3], [0.6, -0.2, 0.0])  # after a close: the location, for good
    # move_to names only a location; a push (a direction) moves its part, so it has no offset at all;
    # an unknown pose or scene gives none for that step.
    assert np.allclose(target_offsets(actions[:1], ee[:1], [_goal(object_id="")])[0], [0.15, -0.2, -0.3])
    assert target_offsets(actions, ee, [_goal(target_id="", direction="left")] * 4) == [None] * 4
    assert target_offsets(actions[:2], [None, ee[1]], [_goal(), None]) == [None, None]
    # A new instruction starts its own approach: its object again, not the last one's location.
    second = Goal("p1", "tray", "", {"p1": np.zeros(3), "tray": np.ones(3)})
    after = target_offsets(actions, ee, [_goal(), _goal(), _goal(), second])
    np.testing.assert_allclose(after[3], [0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("offsets")
    record_demonstrations(
        out / "pp", tasks=["pick_place"], episodes=2, seed_start=0, image_size_px=56, progress=False
    )
    record_demonstrations(
        out / "mt",
        tasks=["move_to"],
        episodes=1,
        seed_start=0,
        image_size_px=56,
        random_start=True,
        progress=False,
    )
    return out


def _episodes(directory) -> list[Episode]:
    return load_episodes(sorted(directory.iterdir()), SCENE, SYNC, KEEP_ALL)[0]


def _recorded_ee_positions(bag) -> np.ndarray:
    """The /ee_pose messages of a record-demos bag: one per step, then the pose after the last action."""
    with BagReader(bag) as reader:
        return np.array(
            [
                [m.msg.pose.position.x, m.msg.pose.position.y, m.msg.pose.position.z]
                for m in reader.messages(["/ee_pose"])
            ]
        )


def test_recorded_offsets_lead_to_the_named_part_then_to_the_place(recorded):
    episodes = _episodes(recorded / "pp")
    assert len(episodes) == 2
    with Workcell(workcell_config(56)) as cell:
        for seed, episode in enumerate(episodes):
            cell.reset(seed, "pick_place")
            part = cell.part_position(cell.task.part_id)
            place = next(loc for loc in cell.layout.locations if loc.id == cell.task.location_id)
            ee = _recorded_ee_positions(episode.metadata["bag"])
            assert len(ee) == len(episode) + 1
            offsets = episode.target_offsets
            assert len(offsets) == len(episode) and all(o is not None for o in offsets)
            closed = int(np.argmax(episode.actions[:, 6] < 0.5))
            assert closed > 3
            # Up to the first close, the part where the reset left it (the scene rounds to 0.1 mm)...
            for k in range(closed + 1):
                np.testing.assert_allclose(offsets[k], part - ee[k], atol=1e-4)
            # ...which the expert closes on: the fingers are then around it, within a few mm across.
            assert np.linalg.norm(offsets[closed][:2]) < 0.01 < np.linalg.norm(offsets[0][:2])
            # After it, the place on the table, which the arm ends up above with the part put away.
            for k in range(closed + 1, len(episode)):
                np.testing.assert_allclose(offsets[k], [*place.xy_m, 0.0] - ee[k], atol=1e-4)
            assert np.linalg.norm(offsets[-1][:2]) < place.half_size_m


def test_move_to_heads_for_its_location_and_mirroring_flips_the_offsets(recorded):
    (episode,) = _episodes(recorded / "mt")
    ee = _recorded_ee_positions(episode.metadata["bag"])
    with Workcell(workcell_config(56)) as cell:
        cell.reset(0, "move_to")
        place = next(loc for loc in cell.layout.locations if loc.id == cell.task.location_id)
    np.testing.assert_allclose(np.stack(episode.target_offsets), [*place.xy_m, 0.0] - ee[:-1], atol=1e-4)
    kept = episode.subset(np.arange(len(episode)) % 2 == 1)
    np.testing.assert_array_equal(np.stack(kept.target_offsets), np.stack(episode.target_offsets[1::2]))
    mirrored = mirror_episode(episode)
    np.testing.assert_array_equal(
        np.stack(mirrored.target_offsets), np.stack(episode.target_offsets) * [1.0, -1.0, 1.0]
    )
    # Read without the scene topic, an episode has no offsets at all (not a list of Nones).
    plain = load_episodes([episode.metadata["bag"]], TopicConfig(), SYNC, KEEP_ALL)[0][0]
    assert plain.target_offsets is None


@pytest.fixture(scope="module")
def prompt_tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    write_tokenizer(directory)
    return PromptTokenizer.from_dir(directory)


def test_batches_carry_offsets_mirrored_with_their_image(prompt_tokenizer):
    offset = np.array([0.1, 0.2, -0.3])
    n = 16
    episode = Episode(
        images=[np.zeros((32, 32, 3), dtype=np.uint8)] * n,
        actions=np.zeros((n, 7)),
        instruction="move to the red gear",
        target_offsets=[offset] * (n - 1) + [None],
    )
    stats = ActionStatistics(q01=np.full(7, -1.0), q99=np.ones(7), mask=np.ones(7, dtype=bool))
    dataset = ActionTokenDataset(
        [episode],
        ImageProcessor(image_size_px=28),
        prompt_tokenizer,
        ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size),
        stats,
        train=True,
        mirror=True,
        offsets=True,
    )
    batch = dataset.batch(list(range(n)))
    assert batch["target_offsets"].dtype == torch.float32
    np.testing.assert_array_equal(batch["offset_known"].numpy(), [True] * (n - 1) + [False])
    flips = [dataset.is_mirrored(i) for i in range(n - 1)]
    assert any(flips) and not all(flips)  # both occur in 15 draws
    for i, flipped in enumerate(flips):
        expected = offset * [1.0, -1.0, 1.0] if flipped else offset
        np.testing.assert_allclose(batch["target_offsets"][i].numpy(), expected, rtol=1e-6)


def test_the_offset_head_learns_the_offsets_and_is_not_exported(recorded, tmp_path, train_config):
    bags = sorted(p for d in (recorded / "pp", recorded / "mt") for p in d.iterdir())
    supervised = train(
        train_config(bags, tmp_path / "sup", target_offset_weight=1.0, max_steps=40, heldout_episodes=1)
    )
    errors = [m["train_target_offset_error_cm"] for m in supervised.metrics]
    # The offsets span tens of cm; a few dozen steps bring the head's error well down.
    assert errors[-1] < 0.5 * errors[0]
    assert "val_target_offset_error_cm" in supervised.metrics[-1]
    plain = train(train_config(bags, tmp_path / "plain", max_steps=2))
    assert "train_target_offset_error_cm" not in plain.metrics[-1]
    names = set(load_file(str(tmp_path / "sup" / "checkpoint" / "model.safetensors")))
    assert names == set(load_file(str(tmp_path / "plain" / "checkpoint" / "model.safetensors")))
    state = load_file(str(tmp_path / "sup" / "training_state" / "trainable.safetensors"))
    # The head stays with the run, and can be put back on the exported model to read it in closed
    # loop (benchmarks/probe_target_offset.py): it answers what it answered in training.
    model = load_checkpoint(tmp_path / "sup" / "checkpoint").model
    head = TargetOffsetHead(model).load_run(tmp_path / "sup")
    for name, param in head.named_state().items():
        torch.testing.assert_close(param.detach(), state[name].float())
    pixels, ids = torch.zeros(1, 6, 56, 56), torch.ones(1, 5, dtype=torch.long)
    with pytest.raises(TrainingError, match="no hidden states"):
        head.readout()
    with torch.no_grad():
        model(pixels, ids)
    hidden = head._latest[0].float()
    expected = (
        hidden @ state["target_offset_head.linear.weight"].float().T + state["target_offset_head.linear.bias"]
    ) * 0.1
    torch.testing.assert_close(head.readout(), expected)
    assert head.readout().shape == (1, 1 + model.num_patches + 4, 3)
    with pytest.raises(TrainingError, match="train with --target-offset-weight"):
        TargetOffsetHead(model).load_run(tmp_path / "plain")
    with pytest.raises(TrainingError, match=r"is .* a training run directory"):
        TargetOffsetHead(model).load_run(tmp_path / "nowhere")


def test_target_offsets_need_a_scene_and_a_sane_weight(tmp_path, train_config):
    plain = write_demo_bag(tmp_path / "plain", np.zeros((4, 7)), image_size=(56, 56), seed=0)
    with pytest.raises(MissingTopicsError, match=r"scene topic /vla/scene is missing \(set --scene-topic\)"):
        train(train_config([plain], tmp_path / "a", target_offset_weight=1.0, max_steps=1))
    with pytest.raises(TrainingError, match="target_offset_weight must be >= 0"):
        train_config([plain], tmp_path / "b", target_offset_weight=float("nan"))


def test_the_command_line_reaches_the_config():
    train_parser = argparse.ArgumentParser()
    add_train_arguments(train_parser)
    args = train_parser.parse_args(
        ["--bags", "b", "--out", "o", "--init", "tiny", "--target-offset-weight", "0.5"]
    )
    config = config_from_args(args)
    assert config.target_offset_weight == 0.5 and config.topics.scene == DEFAULT_SCENE_TOPIC
    parser = argparse.ArgumentParser()
    add_topic_arguments(parser)
    assert topics_from_args(parser.parse_args(["--scene-topic", "/my/scene"])).scene == "/my/scene"
    assert topics_from_args(parser.parse_args([])).scene is None
