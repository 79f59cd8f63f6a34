"""The training data path: bag -> cleaned episodes -> statistics -> tokens, and its inverse at inference."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.data.dataset import CleaningConfig, compute_dataset_statistics, load_episodes
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.modeling_openvla import IGNORE_INDEX
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import write_tokenizer
from vla_ros.train.data import ActionTokenDataset, random_crop, split_episodes


@pytest.fixture(scope="module")
def prompt_tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    write_tokenizer(directory)
    return PromptTokenizer.from_dir(directory)


def _crafted_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    motion = rng.normal(0.0, 0.01, (n, 6))
    gripper = (rng.random(n) > 0.5).astype(float)
    actions = np.column_stack([motion, gripper])
    actions[3] = [0, 0, 0, 0, 0, 0, actions[2, 6]]  # a no-op: cleaning drops it
    return actions


def _dataset(episodes, prompt_tokenizer, train=False):
    stats = ActionStatistics.from_norm_stats(compute_dataset_statistics(episodes))
    return ActionTokenDataset(
        episodes,
        ImageProcessor(image_size_px=28),
        prompt_tokenizer,
        ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size),
        stats,
        train=train,
    )


def test_action_tokens_decode_to_the_cleaned_action_within_half_a_bin(tmp_path, prompt_tokenizer):
    rng = np.random.default_rng(1)
    bags = [
        write_demo_bag(tmp_path / f"b{i}", _crafted_actions(rng, 30), image_size=(16, 16), seed=i)
        for i in range(2)
    ]
    episodes, report = load_episodes(bags)
    assert report.steps_out == 58  # one no-op per bag removed before tokenisation
    data = _dataset(episodes, prompt_tokenizer)
    stats, tokenizer = data.statistics, data.action_tokenizer
    cleaned = np.concatenate([e.actions for e in episodes])
    half_bin_normalised = (tokenizer.max_action - tokenizer.min_action) / (tokenizer.n_bins - 1) / 2
    half_bin_raw = half_bin_normalised * (stats.q99 - stats.q01) / 2
    half_bin_raw[~stats.mask] = half_bin_normalised
    inside = (cleaned >= stats.q01) & (cleaned <= stats.q99) | ~stats.mask
    for i in range(len(data)):
        _, _, labels = data[i]
        tokens = np.array([t for t in labels if t != IGNORE_INDEX][:7])
        lo, hi = tokenizer.token_id_range
        assert np.all((tokens >= lo) & (tokens < hi))
        decoded = stats.unnormalize(tokenizer.decode(tokens))
        error = np.abs(decoded - cleaned[i])
        # Within [q01, q99] a bin's centre is at most half a bin away; beyond it the value is clipped.
        assert np.all(error[inside[i]] <= half_bin_raw[inside[i]] + 1e-9)
        assert np.all(decoded >= stats.q01 - 1e-9) and np.all(
            decoded[stats.mask] <= stats.q99[stats.mask] + 1e-9
        )
    assert np.array_equal(data.actions[0], cleaned[0])


def test_statistics_come_from_the_cleaned_actions(tmp_path, prompt_tokenizer):
    rng = np.random.default_rng(2)
    bag = write_demo_bag(tmp_path / "b", _crafted_actions(rng, 40), image_size=(16, 16))
    kept, _ = load_episodes([bag])
    everything, _ = load_episodes([bag], cleaning=CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None))
    stats = compute_dataset_statistics(kept)
    assert stats["num_transitions"] == 39
    assert stats["action"]["mask"] == [True] * 6 + [False]
    np.testing.assert_allclose(stats["action"]["q01"], np.quantile(kept[0].actions, 0.01, axis=0))
    assert compute_dataset_statistics(everything)["num_transitions"] == 40


def test_training_crops_vary_with_epoch_and_evaluation_uses_the_centre(tmp_path, prompt_tokenizer):
    bag = write_demo_bag(tmp_path / "b", _crafted_actions(np.random.default_rng(3), 6), image_size=(40, 40))
    episodes, _ = load_episodes([bag], cleaning=CleaningConfig(outlier_iqr_k=None))
    train = _dataset(episodes, prompt_tokenizer, train=True)
    evaluation = _dataset(episodes, prompt_tokenizer, train=False)
    first = train.pixel_values(0)
    assert first.shape == (6, 28, 28)
    assert np.array_equal(first, train.pixel_values(0))  # same (seed, epoch, index): same crop
    crops = set()
    for epoch in range(8):
        train.set_epoch(epoch)
        crops.add(train.pixel_values(0).numpy().tobytes())
    assert len(crops) > 1
    expected = ImageProcessor(image_size_px=28)(episodes[0].images[0], center_crop_image=True)
    np.testing.assert_allclose(evaluation.pixel_values(0), expected, atol=1e-6)


def test_random_crop_keeps_ninety_percent_of_the_area():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    crop = random_crop(image, np.random.default_rng(0), 0.9)
    assert crop.shape == (95, 95, 3)


def test_held_out_split_takes_whole_episodes_and_keeps_some_for_training(tmp_path):
    rng = np.random.default_rng(4)
    bags = [write_demo_bag(tmp_path / f"b{i}", _crafted_actions(rng, 5), image_size=(8, 8)) for i in range(5)]
    episodes, _ = load_episodes(bags, cleaning=CleaningConfig(outlier_iqr_k=None))
    assert len(episodes) == 5
    train, held = split_episodes(episodes, 0.2, None, seed=0)
    assert len(held) == 1 and len(train) == 4
    assert {e.episode_id for e in train}.isdisjoint({e.episode_id for e in held})
    train, held = split_episodes(episodes[:1], 0.5, None, seed=0)
    assert len(train) == 1 and not held
