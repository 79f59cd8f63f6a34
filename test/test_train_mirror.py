"""Mirror augmentation: a left-right mirrored step is a consistent example (image, action, words)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_ros.data.dataset import Episode, SyncConfig, compute_dataset_statistics
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import write_tokenizer
from vla_ros.train.config import TrainConfig
from vla_ros.train.data import ActionTokenDataset, mirror_action, mirror_episode, mirror_instruction
from vla_ros.train.loop import train

torch.set_num_threads(1)


def test_mirroring_negates_lateral_translation_and_the_roll_and_yaw_rates():
    action = np.array([0.01, 0.02, -0.03, 0.1, 0.2, 0.3, 1.0])
    np.testing.assert_array_equal(mirror_action(action), [0.01, -0.02, -0.03, -0.1, 0.2, -0.3, 1.0])
    np.testing.assert_array_equal(mirror_action(mirror_action(action)), action)
    np.testing.assert_array_equal(action, [0.01, 0.02, -0.03, 0.1, 0.2, 0.3, 1.0])  # not in place


@pytest.mark.parametrize(
    ("text", "mirrored"),
    [
        ("push the red gear to the left", "push the red gear to the right"),
        ("Right then left", "Left then right"),
        ("put the bolt in the leftmost bin", "put the bolt in the leftmost bin"),  # not a whole word
        ("move to the parts tray", "move to the parts tray"),
        ("把齿轮放到左边的料箱里", "把齿轮放到右边的料箱里"),
    ],
)
def test_mirroring_swaps_left_and_right_in_the_instruction(text, mirrored):
    assert mirror_instruction(text) == mirrored


@pytest.fixture(scope="module")
def prompt_tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    write_tokenizer(directory)
    return PromptTokenizer.from_dir(directory)


def _episode(n: int = 40) -> Episode:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(n)]
    actions = np.column_stack([rng.normal(0.0, 0.01, (n, 6)), rng.random(n) > 0.5])
    return Episode(images=images, actions=actions, instruction="push the gear to the left")


def test_a_mirrored_training_step_sees_the_flipped_image_with_the_mirrored_action_and_words(prompt_tokenizer):
    episode = _episode()
    processor = ImageProcessor(image_size_px=28)
    action_tokenizer = ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size)
    stats = ActionStatistics.from_norm_stats(compute_dataset_statistics([episode, mirror_episode(episode)]))
    make = dict(
        image_processor=processor,
        prompt_tokenizer=prompt_tokenizer,
        action_tokenizer=action_tokenizer,
        statistics=stats,
    )
    data = ActionTokenDataset([episode], train=True, mirror=True, random_crop=False, **make)
    plain = ActionTokenDataset([episode], train=False, **make)
    mirrored = [i for i in range(len(data)) if data.is_mirrored(i)]
    assert 0.25 * len(data) < len(mirrored) < 0.75 * len(data)
    for i in range(len(data)):
        pixels, ids, labels = data[i]
        if i in mirrored:
            flipped = np.ascontiguousarray(episode.images[i][:, ::-1])
            expected_action = mirror_action(episode.actions[i])
            expected = prompt_tokenizer.encode_training_example(
                "push the gear to the right", data.action_tokens(expected_action).tolist()
            )
            torch.testing.assert_close(pixels, plain.image_processor(_center(plain, flipped)))
            assert (ids, labels) == expected
            np.testing.assert_array_equal(data.action(i), expected_action)
        else:
            torch.testing.assert_close(pixels, plain.pixel_values(i))
            assert (ids, labels) == plain.examples[i]
            np.testing.assert_array_equal(data.action(i), episode.actions[i])
    # Held-out evaluation never mirrors.
    assert not any(plain.is_mirrored(i) for i in range(len(plain)))


def _center(dataset: ActionTokenDataset, image: np.ndarray) -> np.ndarray:
    from vla_ros.model.processing import center_crop

    return center_crop(image, dataset.crop_area_fraction)


def test_training_with_mirroring_writes_statistics_symmetric_in_the_mirrored_dimensions(tmp_path):
    rng = np.random.default_rng(1)
    actions = np.column_stack([rng.uniform(0.0, 0.03, (10, 6)), np.ones(10)])  # all to the left
    bag = write_demo_bag(tmp_path / "demo", actions, image_size=(32, 32), seed=0, instruction="move left")
    config = TrainConfig(
        bags=[str(bag)],
        out_dir=str(tmp_path / "run"),
        init="tiny",
        image_size_px=28,
        batch_size=4,
        max_steps=2,
        heldout_episodes=0,
        mirror_augment=True,
        progress=False,
        sync=SyncConfig(control_rate_hz=5.0),
    )
    train(config)
    stats = json.loads((tmp_path / "run" / "dataset_statistics.json").read_text())["sim_workcell"]["action"]
    for dim in (1, 3, 5):
        assert stats["q01"][dim] == pytest.approx(-stats["q99"][dim]) and stats["q01"][dim] < 0.0
        assert stats["mean"][dim] == pytest.approx(0.0, abs=1e-12)
    assert stats["q01"][0] > 0.0  # forward motion is not mirrored
